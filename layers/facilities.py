"""Read facilities (POIs) and the category tables used by the life-circle health check (生活圈体检).

* ``load_categories`` — data/facility_categories.csv: ``category, name_zh, name_en, required, max_distance_m``.
* ``load_osm_map`` — data/osm_facility_map.csv: ``key, value, category``; first matching row wins; ``*`` as
  value matches any value of the key.
* ``read_osm_pois`` — OSM ``points`` plus the centroids of ``multipolygons`` that match the map.
* ``read_pois`` / ``read_points`` — GeoPackage/GeoJSON/zipped Shapefile of points, or CSV with lon/lat
  columns (CSV needs ``crs``: wgs84, cgcs2000, gcj02, bd09 or EPSG:n, as everywhere in Zeren).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from zeren.geo.lifecircle import LifeCircleError, validate_categories
from zeren.geo.lifecircle._crs import bounds_wgs84, metric_crs
from zeren.layers.resources import data_file
from zeren.layers.errors import InputFileError
from zeren.layers.network import check_file, is_osm, osm_tag, read_vector

CATEGORIES_CSV = data_file("facility_categories.csv")
OSM_MAP_CSV = data_file("osm_facility_map.csv")


def _read_csv(path, what: str) -> pd.DataFrame:
    p = check_file(path, what)
    try:
        return pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as exc:
        raise InputFileError(f"无法读取CSV / cannot read {what} {p.name}: {exc}") from None


def load_categories(path=None) -> pd.DataFrame:
    """The facility category table (default: the shipped data/facility_categories.csv), validated."""
    table = _read_csv(path or CATEGORIES_CSV, "category table")
    try:
        return validate_categories(table)
    except LifeCircleError as exc:
        raise InputFileError(f"{Path(path or CATEGORIES_CSV).name}: {exc}") from None


def load_osm_map(path=None) -> pd.DataFrame:
    """The OSM tag -> category map (default: data/osm_facility_map.csv): ``key, value, category``."""
    p = Path(path or OSM_MAP_CSV)
    table = _read_csv(p, "OSM tag map")
    missing = {"key", "value", "category"} - set(table.columns)
    if missing:
        raise InputFileError(f"{p.name} 缺少列 / {p.name} lacks columns: {', '.join(sorted(missing))}")
    table = table[["key", "value", "category"]].apply(lambda col: col.str.strip())
    empty = (table == "").any(axis=1).to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0]) + 2  # header is line 1
        raise InputFileError(f"{p.name} 第{row}行有空值 / {p.name} line {row} has an empty key, value or category")
    return table.reset_index(drop=True)


def categorise_osm(frame: pd.DataFrame, mapping: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Category and the matching ``key=value`` per OSM feature (None when no rule matches); first rule wins."""
    category = pd.Series(None, index=frame.index, dtype=object)
    matched = pd.Series(None, index=frame.index, dtype=object)
    tags = {key: osm_tag(frame, key) for key in mapping["key"].unique()}
    for key, value, cat in mapping[["key", "value", "category"]].itertuples(index=False):  # rules, not rows
        tag = tags[key]
        hit = (tag.notna() if value == "*" else tag == value) & category.isna()
        category[hit] = cat
        matched[hit] = key + "=" + tag[hit].astype(str)
    none = lambda s: s.astype(object).where(s.notna(), None)  # noqa: E731  (pandas may hand back NaN)
    return none(category), none(matched)


def _metric_centroids(values: np.ndarray, crs) -> np.ndarray:
    """Centroids computed in a local metric CRS (not in degrees), returned in ``crs``."""
    series = gpd.GeoSeries(values, crs=crs)
    metric = metric_crs(bounds_wgs84(series))
    return np.asarray(series.to_crs(metric).centroid.to_crs(crs).values, dtype=object)


def read_osm_pois(path, mapping=None, *, dedupe: bool = True) -> gpd.GeoDataFrame:
    """Facilities from an OSM file: ``osm_id, name, category, osm_tag, source, geometry`` (EPSG:4326).

    Points come from the ``points`` layer, areas (schools, parks...) from ``multipolygons`` as their
    centroids. With ``dedupe`` a point lying inside an area of the same category is dropped (one site
    mapped twice, e.g. a clinic node inside its hospital building).
    """
    p = check_file(path, "OSM file")
    if not is_osm(p):
        raise InputFileError(f"不是OSM文件 / not an OSM file (.osm/.pbf): {p.name}")
    rules = load_osm_map() if mapping is None else mapping
    points, point_geoms = _osm_layer_pois(p, "points", rules)
    areas, area_geoms = _osm_layer_pois(p, "multipolygons", rules)
    if dedupe and len(points) and len(areas):
        pi, ai = shapely.STRtree(area_geoms).query(point_geoms, predicate="within")
        same = points["category"].to_numpy()[pi] == areas["category"].to_numpy()[ai]
        drop = np.zeros(len(points), dtype=bool)
        drop[pi[same]] = True
        points = points[~drop]
    return gpd.GeoDataFrame(pd.concat([points, areas], ignore_index=True), crs=points.crs)


def _osm_layer_pois(path: Path, layer: str, rules: pd.DataFrame) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Mapped features of one OSM layer (areas as centroids) and their original geometries."""
    try:
        with warnings.catch_warnings():  # GDAL's notes on repaired OSM rings; broken areas are dropped
            warnings.simplefilter("ignore", RuntimeWarning)
            frame = pyogrio.read_dataframe(path, layer=layer, on_invalid="ignore")
    except Exception as exc:
        raise InputFileError(f"无法读取OSM文件 / cannot read OSM file {path.name} ({layer}): {exc}") from None
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    cat, tag = categorise_osm(frame, rules)
    keep = cat.notna().to_numpy()
    frame, cat, tag = frame[keep], cat[keep], tag[keep]
    ids = frame["osm_id"].astype(object)
    if "osm_way_id" in frame.columns:  # areas from ways carry osm_way_id, from relations osm_id
        ids = ids.where(ids.notna(), frame["osm_way_id"].astype(object))
    geoms = np.asarray(frame.geometry.values, dtype=object)
    where = geoms if layer == "points" or len(geoms) == 0 else _metric_centroids(geoms, frame.crs)
    out = gpd.GeoDataFrame({"osm_id": ids.to_numpy(), "name": frame["name"].to_numpy(), "category": cat.to_numpy(),
                            "osm_tag": tag.to_numpy(), "source": layer}, geometry=where, crs=frame.crs)
    return out, geoms


def read_points(path, *, crs=None, layer=None, what: str = "points", allow_missing: bool = False) -> gpd.GeoDataFrame:
    """Points from a GeoPackage/GeoJSON/zipped Shapefile (file CRS, or ``crs``) or a CSV of lon/lat (needs ``crs``).

    Polygons are refused (give a point, e.g. the community centre). A row without coordinates is an
    error naming its line, unless ``allow_missing`` (POIs: the health check reports such rows).
    """
    p = check_file(path, what)
    frame = read_vector(p, layer=layer, crs=crs, what=what)
    first_row = frame.attrs.get("first_row", 1)
    values = np.asarray(frame.geometry.values, dtype=object)
    present = ~(shapely.is_missing(values) | shapely.is_empty(values))
    if not present.any():
        raise InputFileError(f"{p.name}: 没有点要素 / the {what} holds no points")
    if not allow_missing and not present.all():
        row = int(np.flatnonzero(~present)[0]) + first_row
        raise InputFileError(f"{p.name}: 第{row}行没有坐标 / row {row} has no coordinates (lon/lat or geometry)")
    types = shapely.get_type_id(values)
    bad = present & (types != 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + first_row
        kind = shapely.get_type_id(values[row - first_row])
        names = {1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon"}
        raise InputFileError(f"{p.name}: 第{row}行不是点 / row {row} is a {names.get(kind, kind)}; the {what} must "
                             f"hold points")
    return frame


def read_pois(path, *, category_col: str = "category", crs=None, layer=None, mapping=None) -> gpd.GeoDataFrame:
    """Facilities with a category: OSM files through the tag map, other files by their ``category_col``.

    Rows without a category stay in the frame (the health check counts and reports them).
    """
    if is_osm(path):
        if crs is not None:
            raise InputFileError("OSM文件总是WGS84，不能指定坐标系 / OSM files are always WGS84: do not pass crs")
        return read_osm_pois(path, mapping)
    frame = read_points(path, crs=crs, layer=layer, what="POI file", allow_missing=True)
    if category_col not in frame.columns:
        raise InputFileError(f"{Path(path).name} 没有类别列 {category_col!r} / {Path(path).name} has no "
                             f"{category_col!r} column (columns: {', '.join(map(str, frame.columns))})")
    if category_col != "category":
        frame = frame.rename(columns={category_col: "category"})
    return frame
