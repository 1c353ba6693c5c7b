"""Reading site tables at disk speed, chunk by chunk: CSV through pyarrow's streaming reader (every column read
as text, as the user wrote it), GeoPackage / GeoJSON / Shapefile through pyogrio's Arrow path, GeoParquet
through pyarrow. Each chunk is a GeoDataFrame in the file's own coordinates; memory stays flat whatever the file
size. ``layers.importer.read_table`` reads a whole file the same way (one chunk)."""
from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pyogrio
import shapely

from zeren.layers.errors import InputFileError

WKT_COLUMNS = ("wkt", "WKT", "geometry", "geom", "the_geom")
LON_COLUMNS = ("lon", "lng", "longitude", "x", "经度")
LAT_COLUMNS = ("lat", "latitude", "y", "纬度")
_HEAD_BYTES = 4 << 20  # the part of a CSV read to guess its encoding
_BLOCK_BYTES = 16 << 20


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def csv_encoding(path: Path) -> str:
    """'utf8' or 'gbk' (Chinese CSVs saved by Excel are often GBK / CP936), from the file's first megabytes."""
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _HEAD_BYTES)
        return "utf8"
    except UnicodeDecodeError:
        return "gbk"


@dataclass
class SiteTable:
    """An opened site file: ``crs`` as the file states it (WKT, None when it states none), and ``chunks()``."""

    path: Path
    kind: str  # "csv", "parquet" or "ogr"
    crs: str | None
    layer: str | None = None
    first_row: int = 1  # how rows are named in messages: CSV rows by their line number
    geometry_columns: list[str] = field(default_factory=list)  # CSV columns that say where a row is
    count: int | None = None  # features, where the format says without reading
    # how to read it (set by the open_* functions)
    _encoding: str = field(default="utf8", repr=False)
    _names: list[str] = field(default_factory=list, repr=False)
    _csv_geometry: tuple = field(default=(None, None, None), repr=False)
    _geo_meta: dict = field(default_factory=dict, repr=False)
    _source: str = field(default="", repr=False)
    _ogr_encoding: str | None = field(default=None, repr=False)

    @property
    def header(self) -> list[str]:
        """The column names known before any row is read (a CSV's header line; empty for other formats, whose
        columns each chunk carries)."""
        return list(self._names)

    def chunks(self, size: int | None = None) -> Iterator[gpd.GeoDataFrame]:
        """The rows in chunks of about ``size`` (None: one chunk), each a GeoDataFrame with ``attrs``
        ``first_row`` (the name of its first row in messages) and ``geometry_columns``."""
        reader = {"csv": self._csv_chunks, "parquet": self._parquet_chunks, "ogr": self._ogr_chunks}[self.kind]
        row = self.first_row
        empty = True
        for frame in reader(size):
            frame.attrs["first_row"] = row
            frame.attrs["geometry_columns"] = list(self.geometry_columns)
            row += len(frame)
            empty = False
            yield frame
        if empty:
            frame = self._empty()
            frame.attrs["first_row"] = row
            frame.attrs["geometry_columns"] = list(self.geometry_columns)
            yield frame

    def read(self) -> gpd.GeoDataFrame:
        return next(iter(self.chunks(None)))

    # -- CSV
    def _csv_header(self) -> list[str]:
        encoding = "utf-8-sig" if self._encoding == "utf8" else "gbk"
        with open(self.path, encoding=encoding, newline="", errors="replace") as f:
            return next(csv.reader(f), [])

    @property
    def lonlat_columns(self) -> tuple[str, str] | None:
        """(lon, lat) column names of a CSV whose rows say where they are by two numbers; None otherwise."""
        _, lon_col, lat_col = self._csv_geometry
        return (lon_col, lat_col) if self.kind == "csv" and lon_col is not None else None

    def csv_tables(self, size: int | None = None) -> Iterator[pa.Table]:
        """A CSV's rows as Arrow tables of text (every column as written), about ``size`` rows each (None: one
        table), read ahead on a thread while the caller works on the previous one: no row becomes a Python
        object. At least one table (empty, with the header's columns, for a file without rows)."""
        names = self._names
        try:
            reader = pa_csv.open_csv(
                str(self.path),
                read_options=pa_csv.ReadOptions(encoding=self._encoding, block_size=_BLOCK_BYTES),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                      strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                      null_values=[]))
            empty = True
            for table in _read_ahead(_rebatch(reader, size)):
                empty = False
                yield table
            if empty:
                yield pa.table({n: pa.array([], type=pa.string()) for n in names})
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise InputFileError(f"{self.path}: not a readable CSV ({first_line(exc)}); check that every row has "
                                 f"as many fields as the header ({len(names)})") from None

    def _csv_chunks(self, size: int | None) -> Iterator[gpd.GeoDataFrame]:
        for table in self.csv_tables(size):
            if table.num_rows:
                yield self._csv_frame(table.to_pandas())

    def _csv_frame(self, frame: pd.DataFrame) -> gpd.GeoDataFrame:
        wkt_col, lon_col, lat_col = self._csv_geometry
        if wkt_col is not None:
            text = frame[wkt_col].to_numpy(dtype=object)
            text[text == ""] = None
            geoms = shapely.from_wkt(text, on_invalid="ignore")
        else:
            lon = pd.to_numeric(frame[lon_col], errors="coerce").to_numpy(float)
            lat = pd.to_numeric(frame[lat_col], errors="coerce").to_numpy(float)
            geoms = shapely.points(lon, lat)
            geoms[~(np.isfinite(lon) & np.isfinite(lat))] = None
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index))

    # -- GeoParquet
    def _parquet_chunks(self, size: int | None) -> Iterator[gpd.GeoDataFrame]:
        if size is None:
            yield gpd.read_parquet(self.path)
            return
        file = pq.ParquetFile(self.path)
        geo = self._geo_meta
        column = geo["primary_column"]
        for batch in file.iter_batches(batch_size=size):
            frame = batch.to_pandas()
            geoms = shapely.from_wkb(frame.pop(column).to_numpy(dtype=object))
            yield gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index), crs=self.crs)

    # -- GDAL formats
    def _ogr_chunks(self, size: int | None) -> Iterator[gpd.GeoDataFrame]:
        if size is None or (self.count is not None and self.count <= size):
            try:
                frame = pyogrio.read_dataframe(self._source, layer=self.layer, encoding=self._ogr_encoding,
                                               on_invalid="ignore", use_arrow=True)
            except Exception as exc:  # noqa: BLE001  (GDAL's errors: say what to check)
                raise InputFileError(f"{self.path}: cannot be read ({first_line(exc)}); check the file is complete "
                                     f"and valid GeoJSON / GeoPackage / Shapefile") from None
            yield frame
            return
        options = {"encoding": self._ogr_encoding} if self._ogr_encoding else {}
        with pyogrio.open_arrow(self._source, layer=self.layer, batch_size=size, use_pyarrow=True,
                                **options) as (meta, reader):
            column = meta["geometry_name"] or "wkb_geometry"
            for batch in reader:
                table = pa.Table.from_batches([batch])
                frame = table.drop_columns([column]).to_pandas()
                wkb = table.column(column)
                if isinstance(wkb.type, pa.ExtensionType):
                    wkb = wkb.cast(wkb.type.storage_type) if hasattr(wkb, "cast") else wkb
                geoms = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False), on_invalid="ignore")
                yield gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index), crs=self.crs)

    def _empty(self) -> gpd.GeoDataFrame:
        columns = {n: pd.Series(dtype=object) for n in self._names}
        return gpd.GeoDataFrame({**columns, "geometry": gpd.GeoSeries([], crs=self.crs)}, geometry="geometry")


def csv_numbers(column) -> np.ndarray:
    """Text cells as floats, NaN where a cell is not a number (as ``pd.to_numeric(errors="coerce")`` reads
    them): Arrow's strict parser first, pandas' only for a chunk holding a cell Arrow refuses."""
    try:
        return pc.cast(column, pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        text = column.to_pandas() if hasattr(column, "to_pandas") else pd.Series(column)
        return pd.to_numeric(text, errors="coerce").to_numpy(float)


def _read_ahead(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The next table read on a thread while the caller works on this one (pyarrow's reader releases the GIL);
    an error while reading is raised where the table would have been yielded."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(next, tables, None)
        while True:
            table = pending.result()
            if table is None:
                return
            pending = pool.submit(next, tables, None)
            yield table


def _rebatch(reader, size: int | None) -> Iterator[pa.Table]:
    """Record batches of a streaming reader gathered into tables of at least ``size`` rows (None: all)."""
    pending, rows = [], 0
    for batch in reader:
        pending.append(batch)
        rows += batch.num_rows
        if size is not None and rows >= size:
            yield pa.Table.from_batches(pending)
            pending, rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def open_csv(path: Path) -> SiteTable:
    table = SiteTable(path=path, kind="csv", crs=None, first_row=2)  # line 1 is the header
    table._encoding = csv_encoding(path)
    names = table._csv_header()
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InputFileError(f"{path}: the header names {', '.join(dupes)} more than once; give each column its own "
                             f"name")
    table._names = names
    columns = {c.strip(): c for c in names}
    wkt_col = next((columns[c] for c in WKT_COLUMNS if c in columns), None)
    lon_col = next((columns[c] for c in LON_COLUMNS if c in columns), None)
    lat_col = next((columns[c] for c in LAT_COLUMNS if c in columns), None)
    if wkt_col is None and (lon_col is None or lat_col is None):
        raise InputFileError(f"{path}: a CSV needs a 'wkt' column or 'lon' and 'lat' columns; it has "
                             f"{', '.join(names) or 'no columns'}")
    table._csv_geometry = (wkt_col, None, None) if wkt_col is not None else (None, lon_col, lat_col)
    table.geometry_columns = [c for c in (wkt_col, lon_col, lat_col) if c is not None]
    return table


def open_parquet(path: Path) -> SiteTable:
    try:
        schema = pq.read_schema(path)
        count = pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFileError(f"{path}: cannot be read as Parquet ({first_line(exc)})") from None
    raw = (schema.metadata or {}).get(b"geo")
    if raw is None:
        raise InputFileError(f"{path}: a Parquet file without GeoParquet metadata ('geo'); write it with "
                             f"geopandas' to_parquet or GDAL (or give a CSV with lon/lat)")
    geo = json.loads(raw)
    column = geo["primary_column"]
    crs = geo["columns"].get(column, {}).get("crs", "OGC:CRS84")  # GeoParquet: no crs key means OGC:CRS84
    from pyproj import CRS

    table = SiteTable(path=path, kind="parquet", crs=CRS.from_user_input(crs).to_wkt() if crs else None,
                      count=count)
    table._geo_meta = geo
    return table


def open_ogr(source: str, path: Path, layer: str | None, encoding: str | None) -> SiteTable:
    try:
        info = pyogrio.read_info(source, layer=layer, encoding=encoding)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(f"{path}: cannot be read ({first_line(exc)}); check the file is complete and valid "
                             f"GeoJSON / GeoPackage / Shapefile") from None
    count = int(info["features"]) if info.get("features", -1) >= 0 else None
    table = SiteTable(path=path, kind="ogr", crs=info.get("crs"), layer=layer, count=count)
    if table.crs is not None:
        from pyproj import CRS

        table.crs = CRS.from_user_input(table.crs).to_wkt()
    table._source, table._ogr_encoding = source, encoding
    return table


__all__ = ["SiteTable", "csv_numbers", "open_csv", "open_parquet", "open_ogr", "csv_encoding", "first_line",
           "WKT_COLUMNS", "LON_COLUMNS", "LAT_COLUMNS"]
