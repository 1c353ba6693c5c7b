"""Writing result layers for people: GeoJSON (RFC 7946), GeoPackage (QGIS), CSV (Excel). One writer for
every command that writes a file."""
from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd

from zeren.layers.errors import InputFileError

DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".csv": "CSV"}


def output_path(text: str | Path, suffixes=tuple(DRIVERS)) -> Path:
    """The path to write, checked before any work is done: a known format and an existing folder."""
    path = Path(text)
    if path.suffix.lower() not in suffixes:
        raise InputFileError(f"{path}: unsupported output format {path.suffix or '(none)'}; "
                             f"use {', '.join(sorted(suffixes))}")
    if not path.parent.exists():
        raise InputFileError(f"{path}: the folder {path.parent} does not exist")
    return path


def _plain_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists and dicts as JSON text: no file format here has a column type for them."""
    out = frame.copy()
    for col in out.columns:
        if col != "geometry" and out[col].map(lambda v: isinstance(v, (list, dict, tuple))).any():
            out[col] = [json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, (list, dict, tuple))
                        else v for v in out[col]]
    return out


def write_layers(path: str | Path, layers: dict[str, gpd.GeoDataFrame], *, csv_wkt_column: str | None = "wkt") -> Path:
    """Write frames (EPSG:4326) by the path's suffix. GeoPackage holds every layer (each replaced); GeoJSON
    and CSV hold the first. CSV carries the geometry as WKT in ``csv_wkt_column`` (None: no geometry column,
    for inputs whose lon/lat columns already say where each row is)."""
    path = output_path(path)
    driver = DRIVERS[path.suffix.lower()]
    if driver != "GPKG" and path.exists():
        path.unlink()
    for name, frame in layers.items():
        frame = _plain_columns(frame)
        if driver == "CSV":
            table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
            if csv_wkt_column:
                table[csv_wkt_column] = frame.geometry.to_wkt(rounding_precision=8)
            table.to_csv(path, index=False, encoding="utf-8")
            return path
        extra = {"geometry_type": "Polygon"} if frame.empty else {}
        frame.to_file(path, driver=driver, layer=name if driver == "GPKG" else None, engine="pyogrio", **extra)
        if driver == "GeoJSON":
            break
    return path


def write_frame(frame: gpd.GeoDataFrame, path: str | Path, layer: str, **options) -> Path:
    return write_layers(path, {layer: frame}, **options)
