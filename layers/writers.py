"""Writing result layers for people: GeoJSON (RFC 7946), GeoPackage (QGIS), GeoParquet (1.1; geopandas, GDAL,
DuckDB), CSV (Excel). One writer for every command that writes a file.

Files are where users wait, so the common path is columnar: CSV through pyarrow's writer, GeoPackage through
pyogrio's Arrow path, GeoParquet through pyarrow; a column of lists or dicts is encoded to JSON text once per
column only when it holds such values (columns already of JSON text, as ``zeren assign`` makes them, pass as
they are). :class:`LayerWriter` writes one layer chunk by chunk, into a temporary file renamed into place when
the last chunk is written: a failed or interrupted run leaves no half-written output."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
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

DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".csv": "CSV", ".parquet": "Parquet"}
_PLAIN_KINDS = {"string", "empty", "integer", "floating", "mixed-integer-float", "boolean", "decimal", "datetime",
                "datetime64", "date", "timedelta", "timedelta64", "time", "period", "bytes"}


def output_path(text: str | Path, suffixes=tuple(DRIVERS)) -> Path:
    """The path to write, checked before any work is done: a known format and an existing folder."""
    path = Path(text)
    if path.suffix.lower() not in suffixes:
        raise InputFileError(f"{path}: unsupported output format {path.suffix or '(none)'}; "
                             f"use {', '.join(sorted(suffixes))}")
    if not path.parent.exists():
        raise InputFileError(f"{path}: the folder {path.parent} does not exist")
    return path


def _needs_json(column: pd.Series) -> bool:
    if column.dtype != object:
        return False
    return pd.api.types.infer_dtype(column, skipna=True) not in _PLAIN_KINDS


def _plain_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists and dicts as JSON text: no file format here has a column type for them. Only columns that hold
    such values are touched (found by one typed scan per column, not a Python call per cell)."""
    out = None
    for col in frame.columns:
        if col == getattr(frame, "_geometry_column_name", None) or not _needs_json(frame[col]):
            continue
        out = frame.copy() if out is None else out
        out[col] = pd.Series([json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, (list, dict, tuple))
                              else v for v in frame[col]], index=frame.index, dtype=object)
    return frame if out is None else out


def _arrow_table(frame: pd.DataFrame, *, csv: bool = False) -> pa.Table:
    """An Arrow table of the attribute columns: object columns of text stay text (None as null). For CSV,
    booleans are written ``True`` / ``False`` as pandas and Python write them (Arrow would write ``true``)."""
    frame = pd.DataFrame(frame)
    if csv:
        for col in frame.columns:
            if pd.api.types.is_float_dtype(frame[col].dtype):
                frame[col] = pd.Series(_float_text(frame[col].to_numpy(dtype=float, na_value=np.nan)),
                                       index=frame.index, dtype=object)
            elif pd.api.types.is_bool_dtype(frame[col].dtype):
                values = frame[col].to_numpy(dtype=object, na_value=None)
                text = np.where(values == True, "True", "False").astype(object)  # noqa: E712  (NA stays NA)
                text[pd.isna(frame[col]).to_numpy()] = None
                frame[col] = pd.Series(text, index=frame.index, dtype=object)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, f in enumerate(table.schema):  # a column with no value yet is text (the next chunk may fill it)
        if pa.types.is_null(f.type):
            table = table.set_column(i, pa.field(f.name, pa.string()), table.column(i).cast(pa.string()))
    return table


def _text_for_nulls(table: pa.Table) -> pa.Table:
    """A column with no value yet (Arrow's null type) as text, as ``_arrow_table`` makes it."""
    for i, f in enumerate(table.schema):
        if pa.types.is_null(f.type):
            table = table.set_column(i, pa.field(f.name, pa.string()), table.column(i).cast(pa.string()))
    return table


def _plain_text(table: pa.Table) -> pa.Table:
    """Dictionary-encoded columns as plain values (what a frame of the same rows gives GDAL and Parquet)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, pa.field(f.name, f.type.value_type), table.column(i).cast(f.type.value_type))
    return table


def _csv_text(table: pa.Table) -> pa.Table:
    """Booleans and floats of an Arrow table as the text ``_arrow_table(csv=True)`` gives them."""
    for i, f in enumerate(table.schema):
        column = table.column(i)
        if pa.types.is_boolean(f.type):
            text = pc.if_else(column, "True", "False")
        elif pa.types.is_floating(f.type):
            values = column.to_numpy()
            if column.null_count:
                values = np.where(column.is_null().to_numpy(zero_copy_only=False), np.nan, values)
            text = pa.array(_float_text(np.asarray(values, dtype=float)), type=pa.string(), from_pandas=True)
        else:
            continue
        table = table.set_column(i, pa.field(f.name, pa.string()), text)
    return table


def _point_wkb(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    """2D points as the WKB shapely writes (little-endian, 21 bytes each), null where a coordinate is NaN."""
    n = len(lon)
    record = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
    raw = np.empty(n, dtype=record)
    raw["order"], raw["type"], raw["x"], raw["y"] = 1, 1, lon, lat
    valid = np.isfinite(lon) & np.isfinite(lat)
    mask = None if valid.all() else pa.array(valid).buffers()[1]
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(21), n, [mask, pa.py_buffer(raw.tobytes())],
                                                 null_count=int(n - valid.sum()))
    return fixed.cast(pa.binary())


def _wgs84_projjson() -> dict:
    from pyproj import CRS

    return CRS.from_epsg(4326).to_json_dict()


def _float_text(values: np.ndarray) -> np.ndarray:
    """Floats as pandas and Python write them (``repr``: ``1200.0``, ``1e-05``; NaN as an empty cell), by
    Arrow's vectorised cast, with Python's repr only for the rare values where the two differ in style."""
    text = pc.cast(pa.array(values, type=pa.float64(), from_pandas=True), pa.string()).to_numpy(zero_copy_only=False)
    text = text.astype(object)
    finite = np.isfinite(values)
    size = np.abs(np.where(finite, values, 0.0))
    integral = finite & (values == np.floor(np.where(finite, values, 0.0))) & (size < 1e15)
    text[integral] = text[integral] + ".0"
    # Arrow writes 1e+10 where Python writes 10000000000.0 (from 1e10 up), and 1e-05 as Python does below 1e-4:
    # those take Python's repr
    odd = finite & (((size < 1e-4) & (size > 0)) | (size >= 1e10))
    text[odd] = [repr(float(v)) for v in values[odd]]
    text[~finite & np.isnan(values)] = None
    return text


class LayerWriter:
    """Write one layer (EPSG:4326) chunk by chunk: ``write(frame)`` for each chunk, ``close()`` at the end
    (or use it as a context manager: an exception discards the partial file). CSV carries the geometry as WKT
    in ``csv_wkt_column`` (None: no geometry column, for inputs whose lon/lat columns already say where each
    row is). A GeoPackage keeps its other layers and has this one replaced; other formats are replaced.
    ``geometry_type`` fixes a GeoPackage layer's type when the chunks to come may differ from the first
    ("Unknown" for any)."""

    def __init__(self, path: str | Path, layer: str, *, csv_wkt_column: str | None = "wkt",
                 geometry_type: str | None = None):
        self.path = output_path(path)
        self.driver = DRIVERS[self.path.suffix.lower()]
        self.layer = layer
        self.csv_wkt_column = csv_wkt_column
        self.geometry_type = geometry_type  # GeoPackage layer type; None: from the first chunk
        self.rows = 0
        self.chunks = 0
        # a temporary file renamed into place at the end (a GeoPackage starts as a copy of the existing file, so
        # its other layers are kept and this one is replaced)
        self._target = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp{self.path.suffix}")
        self._target.unlink(missing_ok=True)
        if self.driver == "GPKG" and self.path.exists():
            shutil.copyfile(self.path, self._target)
        self._csv = None
        self._csv_schema = None
        self._parquet = None
        self._parquet_meta = None
        self._json_first = True
        self._json_file = None

    # -- chunks
    def write(self, frame: gpd.GeoDataFrame) -> None:
        frame = _plain_columns(frame)
        geometry = frame.geometry
        attrs = pd.DataFrame(frame.drop(columns=geometry.name))
        if self.driver == "CSV":
            self._write_csv(attrs, geometry)
        elif self.driver == "Parquet":
            self._write_parquet(frame)
        elif self.driver == "GPKG":
            self._write_ogr(frame)
        else:
            self._write_geojson(frame)
        self.rows += len(frame)
        self.chunks += 1

    def write_points(self, table: pa.Table, lon: np.ndarray, lat: np.ndarray) -> None:
        """One chunk given as an Arrow table of attributes and its points' WGS84 ``lon`` / ``lat`` (NaN: no
        geometry), written without a pandas frame or a shapely object per row: the same file as ``write`` of
        the same rows as a GeoDataFrame of points."""
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        if self.driver in ("GeoJSON",) or (self.driver == "CSV" and self.csv_wkt_column):
            frame = _plain_text(table).to_pandas()
            geoms = shapely.points(lon, lat)
            geoms[~(np.isfinite(lon) & np.isfinite(lat))] = None
            self.write(gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326")))
            return
        table = _text_for_nulls(table)
        if self.driver == "CSV":
            self._write_csv_table(_csv_text(table))
        else:
            table = _plain_text(table)
            geometry = _point_wkb(lon, lat)
            if self.driver == "Parquet":
                table = table.append_column(pa.field("geometry", pa.binary()), geometry)
                if self._parquet is None:
                    meta = {"version": "1.1.0", "primary_column": "geometry",
                            "columns": {"geometry": {"encoding": "WKB", "geometry_types": [],
                                                     "crs": _wgs84_projjson()}}}
                    schema = table.schema.with_metadata({b"geo": json.dumps(meta).encode()})
                    self._parquet = pq.ParquetWriter(str(self._target), schema)
                self._parquet.write_table(table.cast(self._parquet.schema))
            else:
                # (pyogrio wants the geometry type on every call, appending too: the layer's own is kept then)
                pyogrio.write_arrow(table.append_column(pa.field("geometry", pa.binary()), geometry), self._target,
                                    layer=self.layer, driver=self.driver, geometry_name="geometry",
                                    geometry_type=self.geometry_type or "Point", crs="EPSG:4326",
                                    append=self.chunks > 0)
        self.rows += table.num_rows
        self.chunks += 1

    def _csv_sink(self):
        """The one open file every CSV chunk is written into, whichever path wrote the chunk before it (a file
        of points streams through the Arrow path, a chunk of other geometries through the frame path)."""
        if self._csv is None:
            self._csv = pa.OSFile(str(self._target), "wb")
        return self._csv

    def _write_csv_table(self, table: pa.Table) -> None:
        """Each chunk written by itself into the open file (the header with the first): a column may be
        dictionary-encoded in one chunk and plain text in the next, the cells are the same."""
        pa_csv.write_csv(table, self._csv_sink(), write_options=pa_csv.WriteOptions(
            include_header=self.chunks == 0, quoting_style="needed"))

    def _write_csv(self, attrs: pd.DataFrame, geometry: gpd.GeoSeries) -> None:
        if self.csv_wkt_column:
            attrs[self.csv_wkt_column] = pd.Series(geometry.to_wkt(rounding_precision=8).to_numpy(dtype=object),
                                                   index=attrs.index, dtype=object)
        try:
            table = _arrow_table(attrs, csv=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            table = None  # mixed-type columns (a property that is text here, a number there): pandas writes them
        if table is not None:
            if self._csv_schema is None:
                self._csv_schema = table.schema
            try:
                self._write_csv_table(table if table.schema == self._csv_schema else table.cast(self._csv_schema))
                return
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                pass  # a later chunk whose types differ from the first's: this one as pandas writes it
        if self.chunks == 0:
            text = attrs.to_csv(header=True, index=False)
        else:
            text = attrs.astype(object).where(attrs.notna(), None).to_csv(header=False, index=False)
        self._csv_sink().write(text.encode("utf-8"))

    def _write_parquet(self, frame: gpd.GeoDataFrame) -> None:
        geometry = frame.geometry
        table = _arrow_table(frame.drop(columns=geometry.name))
        table = table.append_column(pa.field(geometry.name, pa.binary()),
                                    pa.array(shapely.to_wkb(geometry.to_numpy()), type=pa.binary()))
        if self._parquet is None:
            meta = _geoparquet_metadata(frame)
            schema = table.schema.with_metadata({**(table.schema.metadata or {}), b"geo": json.dumps(meta).encode()})
            self._parquet = pq.ParquetWriter(str(self._target), schema)
        self._parquet.write_table(table.cast(self._parquet.schema))

    def _write_ogr(self, frame: gpd.GeoDataFrame, target: Path | None = None, *, append: bool | None = None) -> None:
        target = target or self._target
        append = self.chunks > 0 if append is None else append
        extra = {} if append else {"geometry_type": self.geometry_type or "Unknown"} if (
            frame.empty or self.geometry_type) else {}
        try:
            pyogrio.write_dataframe(frame, target, layer=self.layer, driver=self.driver, append=append,
                                    use_arrow=True, **extra)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
            pyogrio.write_dataframe(frame, target, layer=self.layer, driver=self.driver, append=append, **extra)

    def _write_geojson(self, frame: gpd.GeoDataFrame) -> None:
        # GDAL writes each chunk's features (C speed); they are spliced into one FeatureCollection
        if self._json_file is None:
            self._json_file = open(self._target, "w", encoding="utf-8")
            self._json_file.write('{\n"type": "FeatureCollection",\n"features": [\n')
        if frame.empty:
            return
        with tempfile.TemporaryDirectory(dir=self.path.parent, prefix=".zeren-") as tmp:
            part = Path(tmp) / "chunk.geojson"
            self._write_ogr(frame, part, append=False)
            text = part.read_text(encoding="utf-8")
        body = text[text.index('"features": [') + len('"features": ['):text.rindex("]")].strip("\n")
        if body.strip():
            if not self._json_first:
                self._json_file.write(",\n")
            self._json_file.write(body)
            self._json_first = False

    # -- end
    def close(self) -> Path:
        if self.driver == "CSV":
            if self._csv:
                self._csv.close()
            if not self._target.exists():  # no chunk at all: an empty table with no columns
                self._target.write_text("", encoding="utf-8")
        elif self.driver == "Parquet":
            if self._parquet is None:  # no chunk at all
                empty = gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs="EPSG:4326")
                self._write_parquet(empty)
            self._parquet.close()
        elif self.driver == "GeoJSON":
            if self._json_file is None:
                self._json_file = open(self._target, "w", encoding="utf-8")
                self._json_file.write('{\n"type": "FeatureCollection",\n"features": [\n')
            self._json_file.write("\n]\n}\n")
            self._json_file.close()
        elif not self.chunks:  # an empty GeoPackage layer still lists in QGIS
            self._write_ogr(gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs="EPSG:4326"), append=False)
        os.replace(self._target, self.path)
        return self.path

    def abort(self) -> None:
        """Discard what was written: the output path is left as it was."""
        for handle in (self._csv, self._parquet, self._json_file):
            if handle:
                try:
                    handle.close()
                except Exception:  # noqa: BLE001  (already failing: remove what was written)
                    pass
        self._target.unlink(missing_ok=True)

    def __enter__(self) -> "LayerWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _geoparquet_metadata(frame: gpd.GeoDataFrame) -> dict:
    """GeoParquet 1.1 'geo' metadata of the geometry column: WKB, its CRS as PROJJSON. Written with the first
    chunk, before the others are seen, so it names no geometry types (the spec's "not known") and no bbox."""
    name = frame.geometry.name
    crs = frame.crs.to_json_dict() if frame.crs is not None else None
    return {"version": "1.1.0", "primary_column": name,
            "columns": {name: {"encoding": "WKB", "geometry_types": [], "crs": crs}}}


def write_layers(path: str | Path, layers: dict[str, gpd.GeoDataFrame], *, csv_wkt_column: str | None = "wkt") -> Path:
    """Write frames (EPSG:4326) by the path's suffix. GeoPackage holds every layer (each replaced); GeoJSON,
    GeoParquet and CSV hold the first."""
    path = output_path(path)
    driver = DRIVERS[path.suffix.lower()]
    for name, frame in layers.items():
        with LayerWriter(path, name, csv_wkt_column=csv_wkt_column) as writer:
            writer.write(frame)
        if driver != "GPKG":
            break
    return path


def write_frame(frame: gpd.GeoDataFrame, path: str | Path, layer: str, **options) -> Path:
    return write_layers(path, {layer: frame}, **options)
