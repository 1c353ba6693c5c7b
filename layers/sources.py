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
# A CSV up to this size is read in one call, parsed on every core (1,000,000 points, 40 MB: 0.1 s where the
# streaming reader, always single-threaded, takes 0.15-0.35 s); a larger one streams in flat memory.
_WHOLE_READ_BYTES = 64 << 20


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
    _points: bool = field(default=False, repr=False)

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
            options = dict(
                read_options=pa_csv.ReadOptions(encoding=self._encoding, block_size=_BLOCK_BYTES),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                      strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                      null_values=[]))
            if self.path.stat().st_size <= _WHOLE_READ_BYTES:  # read at once, on every core (the streaming
                tables = _slices(pa_csv.read_csv(str(self.path), **options), size)  # reader uses one)
            else:
                tables = _read_ahead(_rebatch(pa_csv.open_csv(str(self.path), **options), size))
            empty = True
            for table in tables:
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

    @property
    def point_layer(self) -> bool:
        """A GeoParquet file or GDAL layer that declares 2D points (its chunks can stay Arrow tables)."""
        return self._points

    def point_tables(self, size: int | None = None) -> Iterator[tuple[pa.Table, tuple | None, np.ndarray | None]]:
        """A GeoParquet file's or GDAL layer's rows as Arrow tables of about ``size`` rows: (attributes, (x, y),
        None) for a chunk of points (x, y in the file's CRS, NaN for a missing or empty point), (attributes,
        None, geometries) for a chunk holding other geometries. At least one table."""
        empty = True
        for table, column in self._arrow_tables(size):
            wkb = table.column(column)
            attrs = table.drop_columns([column])
            empty = False
            xy = wkb_point_xy(wkb)
            if xy is not None:
                yield attrs, xy, None
                continue
            geoms = shapely.from_wkb(_wkb_numpy(wkb), on_invalid="ignore" if self.kind == "ogr" else "raise")
            xy = point_xy(geoms)
            yield (attrs, xy, None) if xy is not None else (attrs, None, geoms)
        if empty:
            yield pa.table({}), (np.zeros(0), np.zeros(0)), None

    def _arrow_tables(self, size: int | None) -> Iterator[tuple[pa.Table, str]]:
        if self.kind == "parquet":
            column = self._geo_meta["primary_column"]
            file = pq.ParquetFile(self.path)
            batches = file.iter_batches(batch_size=size) if size else file.iter_batches()
            for table in _rebatch(batches, size):
                yield table, column
            return
        options = {"encoding": self._ogr_encoding} if self._ogr_encoding else {}
        try:
            with pyogrio.open_arrow(self._source, layer=self.layer, batch_size=size or 65_536, use_pyarrow=True,
                                    **options) as (meta, reader):
                column = meta["geometry_name"] or "wkb_geometry"
                for table in _rebatch(reader, size):
                    yield table, column
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise InputFileError(f"{self.path}: cannot be read ({first_line(exc)}); check the file is complete "
                                 f"and valid GeoJSON / GeoPackage / Shapefile") from None

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


def _wkb_numpy(wkb) -> np.ndarray:
    """A WKB column (Arrow, maybe a GeoArrow extension type) as a numpy array of bytes (None where null)."""
    if isinstance(wkb.type, pa.ExtensionType):
        wkb = wkb.cast(wkb.type.storage_type) if hasattr(wkb, "cast") else wkb.storage
    return wkb.to_numpy(zero_copy_only=False)


_POINT_WKB = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])


def wkb_point_xy(wkb) -> tuple[np.ndarray, np.ndarray] | None:
    """x, y of a WKB column that holds only 2D little-endian points (21 bytes each: what GDAL and shapely
    write) and nulls, read with numpy (NaN for null and empty points); None for anything else."""
    if isinstance(wkb, pa.ChunkedArray):
        wkb = wkb.combine_chunks() if wkb.num_chunks != 1 else wkb.chunk(0)
    if isinstance(wkb.type, pa.ExtensionType):
        wkb = wkb.storage
    if not (pa.types.is_binary(wkb.type) or pa.types.is_large_binary(wkb.type)):
        return None
    n = len(wkb)
    valid = np.ones(n, dtype=bool) if not wkb.null_count else wkb.is_valid().to_numpy(zero_copy_only=False)
    offsets = np.frombuffer(wkb.buffers()[1], dtype=np.int64 if pa.types.is_large_binary(wkb.type) else np.int32,
                            count=n + 1, offset=wkb.offset * (8 if pa.types.is_large_binary(wkb.type) else 4))
    lengths = np.diff(offsets)
    if not np.all(lengths[valid] == _POINT_WKB.itemsize):
        return None
    if not n:
        return np.zeros(0), np.zeros(0)
    if np.all(lengths[~valid] == 0):  # the points lie end to end in the data buffer: read them in place
        raw = np.frombuffer(wkb.buffers()[2], dtype=_POINT_WKB, count=int(valid.sum()), offset=int(offsets[0]))
    else:
        data = np.frombuffer(wkb.buffers()[2], dtype=np.uint8)
        starts = offsets[:-1][valid]
        raw = data[starts[:, None] + np.arange(_POINT_WKB.itemsize)].copy().view(_POINT_WKB).ravel()
    if not (np.all(raw["order"] == 1) and np.all(raw["type"] == 1)):
        return None
    x, y = np.full(n, np.nan), np.full(n, np.nan)
    x[valid], y[valid] = raw["x"], raw["y"]
    return x, y


def point_xy(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """x, y of shapely geometries that are all 2D points or missing (NaN for missing and empty points);
    None when one is anything else (a MultiPoint, a polygon, a point with Z)."""
    geoms = np.asarray(geoms, dtype=object)
    types = shapely.get_type_id(geoms)
    if np.any((types != 0) & (types != -1)) or shapely.has_z(geoms).any():
        return None
    x, y = np.full(len(geoms), np.nan), np.full(len(geoms), np.nan)
    coords, at = shapely.get_coordinates(geoms, return_index=True)
    x[at], y[at] = coords[:, 0], coords[:, 1]
    return x, y


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


def _slices(table: pa.Table, size: int | None) -> Iterator[pa.Table]:
    """A table read whole, as the streaming path would give it: pieces of ``size`` rows (None: all)."""
    if size is None or table.num_rows <= size:
        yield table
        return
    for start in range(0, table.num_rows, size):
        yield table.slice(start, size)


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
    meta = geo["columns"].get(column, {})
    table._points = meta.get("encoding", "WKB").upper() == "WKB" and list(meta.get("geometry_types") or []) == ["Point"]
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
    table._points = info.get("geometry_type") == "Point"
    return table


__all__ = ["SiteTable", "csv_numbers", "point_xy", "wkb_point_xy",
           "open_csv", "open_parquet", "open_ogr", "csv_encoding", "first_line",
           "WKT_COLUMNS", "LON_COLUMNS", "LAT_COLUMNS"]
