"""Read a walking street network: lines from a GeoPackage/GeoJSON/Shapefile, or OSM ways from .osm/.pbf.

OSM: GDAL's OSM driver (via pyogrio), layer ``lines``; tags not in their own column live in ``other_tags``
(``"key"=>"value",...``). Walkable means a ``highway`` way that is not excluded by ``walkable_mask``:

* never: motorway, motorway_link, construction, proposed, abandoned, razed, disused, raceway, bus_guideway,
  escape, busway (no pedestrians by law or not built);
* trunk and trunk_link only with an explicit ``foot=yes|designated|permissive`` or a ``sidewalk`` tag
  (in Chinese OSM data ``trunk`` is mostly 城市快速路, urban expressways without pedestrian access, and
  where a trunk road has pavements they are usually drawn as separate footways, which are kept);
* not with ``foot=no|private|use_sidepath``, nor ``access=private|no`` unless ``foot`` allows it.
"""
from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from zeren.geo.crs import InputCRS, geometries_to_wgs84, lonlat_problems
from zeren.layers.errors import InputFileError
from zeren.layers.importer import read_table

# Readers raise layers.errors.InputFileError (a ValueError); kept under this name for callers.
LayerReadError = InputFileError

OSM_SUFFIXES = (".osm", ".pbf")
NEVER_WALKABLE = frozenset({
    "motorway", "motorway_link", "construction", "proposed", "abandoned", "razed", "disused", "raceway",
    "bus_guideway", "escape", "busway", "planned",
})
FOOT_ALLOWED = frozenset({"yes", "designated", "permissive", "official"})
FOOT_FORBIDDEN = frozenset({"no", "private", "use_sidepath"})
ACCESS_FORBIDDEN = frozenset({"private", "no"})
SIDEWALK_PRESENT = frozenset({"yes", "both", "left", "right", "separate"})
TRUNK = frozenset({"trunk", "trunk_link"})


def is_osm(path) -> bool:
    """True for .osm / .osm.pbf / .pbf files (read with GDAL's OSM driver)."""
    return str(path).lower().endswith(OSM_SUFFIXES)


def check_file(path, what: str = "file") -> Path:
    """The path, after checking that it names an existing, non-empty file."""
    if path is None or str(path).strip() == "":
        raise InputFileError(f"没有给出{what}路径 / no {what} path given")
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: 文件不存在 / no such {what}")
    if not p.is_file():
        raise InputFileError(f"{p}: 不是文件 / {what} is a folder, not a file")
    if p.stat().st_size == 0:
        raise InputFileError(f"{p}: 文件为空 / the {what} is empty")
    return p


def read_vector(path, *, layer=None, crs=None, what: str = "file") -> gpd.GeoDataFrame:
    """A GeoJSON/GeoPackage/zipped Shapefile/CSV (lon,lat or wkt) with its CRS stated.

    The CRS is the file's, or ``crs`` (which overrides it; CSV files need it). Web-map offsets (GCJ-02,
    BD-09) are undone: such data comes back in EPSG:4326. CSV rows name their line (``attrs['first_row']``).
    """
    p = check_file(path, what)
    frame, target = read_table(p, layer=layer, crs=crs)
    first_row = frame.attrs.get("first_row", 1)
    frame = frame.drop(columns=frame.attrs.get("geometry_columns", []))
    frame = _stated(frame, target)
    if target.crs.is_geographic:
        values = np.asarray(frame.geometry.values, dtype=object)
        present = ~(shapely.is_missing(values) | shapely.is_empty(values))
        if present.any():
            xy, idx = shapely.get_coordinates(values[present], return_index=True)
            problem = lonlat_problems(xy[:, 0], xy[:, 1])
            if (problem != "ok").any():
                from zeren.geo.errors import CoordinateError

                i = int(np.flatnonzero(problem != "ok")[0])
                row = int(np.flatnonzero(present)[idx[i]]) + first_row
                raise CoordinateError(f"{p.name}: 第{row}行经纬度无效 / row {row}: lon {xy[i, 0]:g}, lat {xy[i, 1]:g} "
                                      f"is {problem.ravel()[i]} for {target.label}")
    frame.attrs["first_row"] = first_row
    return frame


def _stated(frame: gpd.GeoDataFrame, target: InputCRS) -> gpd.GeoDataFrame:
    """The frame in ``target``'s CRS; GCJ-02/BD-09 coordinates moved back to WGS84."""
    if target.shift is not None:
        return gpd.GeoDataFrame(frame.drop(columns=frame.geometry.name),
                                geometry=geometries_to_wgs84(frame.geometry.values, target), crs=4326)
    return frame.set_crs(target.crs, allow_override=True)


def parse_other_tags(values: pd.Series) -> pd.Series:
    """OSM ``other_tags`` (``"k"=>"v","k2"=>"v2"``) as a Series of dicts (empty dict when missing)."""
    pattern = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')
    return values.map(lambda s: dict(pattern.findall(s)) if isinstance(s, str) else {})


def osm_tag(frame: pd.DataFrame, key: str) -> pd.Series:
    """Value of one OSM tag per row: its own column when GDAL gave one, else read out of ``other_tags``."""
    out = pd.Series(None, index=frame.index, dtype=object)
    if key in frame.columns:
        out = frame[key].astype(object).where(frame[key].notna(), None)
    if "other_tags" in frame.columns:
        pattern = r'(?:^|,)"' + re.escape(key) + r'"=>"((?:[^"\\]|\\.)*)"'
        extracted = frame["other_tags"].astype("string").str.extract(pattern, expand=False)
        extracted = extracted.astype(object).where(extracted.notna(), None)
        out = out.where(out.notna(), extracted)
    return out


def walkable_mask(frame: pd.DataFrame) -> np.ndarray:
    """True for OSM ways a person may walk along (rules in the module docstring)."""
    highway = osm_tag(frame, "highway").fillna("").astype(str).str.lower()
    foot = osm_tag(frame, "foot").fillna("").astype(str).str.lower()
    access = osm_tag(frame, "access").fillna("").astype(str).str.lower()
    sidewalk = pd.concat([osm_tag(frame, k) for k in ("sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right")],
                         axis=1).fillna("").astype(str).apply(lambda col: col.str.lower())
    has_sidewalk = sidewalk.isin(SIDEWALK_PRESENT).any(axis=1)
    foot_ok = foot.isin(FOOT_ALLOWED)
    ok = (highway != "") & ~highway.isin(NEVER_WALKABLE)
    ok &= ~highway.isin(TRUNK) | foot_ok | has_sidewalk
    ok &= ~foot.isin(FOOT_FORBIDDEN)
    ok &= ~access.isin(ACCESS_FORBIDDEN) | foot_ok
    return ok.to_numpy(dtype=bool)


def _lines_only(frame: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    values = np.asarray(frame.geometry.values, dtype=object)
    present = ~(shapely.is_missing(values) | shapely.is_empty(values))
    if not present.any():
        raise InputFileError(f"{name} 为空 / {name} has no features")
    types = shapely.get_type_id(values[present])
    lines = np.isin(types, (1, 5))
    if not lines.any():
        found = sorted(set(shapely.get_type_id(values[present]).tolist()))
        names = {0: "Point", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint", 6: "MultiPolygon", 7: "GeometryCollection"}
        raise InputFileError(f"{name} 不是线要素 / {name} has no line geometries (found "
                             f"{', '.join(names.get(t, str(t)) for t in found)}); a street network needs lines")
    frame = frame.loc[present].loc[lines]
    return frame.explode(index_parts=False).reset_index(drop=True)


def read_osm_lines(path, *, walkable: bool = True) -> gpd.GeoDataFrame:
    """OSM ways (``lines`` layer) with ``osm_id, name, highway, other_tags``; only walkable ones by default."""
    p = check_file(path, "OSM file")
    try:
        frame = pyogrio.read_dataframe(p, layer="lines", columns=["osm_id", "name", "highway", "other_tags"],
                                       on_invalid="ignore")
    except Exception as exc:
        raise InputFileError(f"无法读取OSM文件 / cannot read OSM file {p.name}: {exc}") from None
    frame = frame[frame["highway"].notna()]
    if walkable:
        frame = frame[walkable_mask(frame)]
    if len(frame) == 0:
        raise InputFileError(f"{p.name} 中没有可步行道路 / {p.name} has no walkable highway ways")
    return _lines_only(frame.reset_index(drop=True), p.name)


def read_network(path, *, layer=None, crs=None, walkable: bool = True) -> gpd.GeoDataFrame:
    """Street lines for the walking network, in the file's CRS (or ``crs`` when the file states none).

    OSM files are filtered to walkable ways; other files are taken as they are, except that a ``highway``
    column, when present, is filtered by the same rules (pass ``walkable=False`` to keep every line).
    """
    if is_osm(path):
        if crs is not None:
            raise InputFileError("OSM文件总是WGS84，不能指定坐标系 / OSM files are always WGS84: do not pass crs")
        return read_osm_lines(path, walkable=walkable)
    p = check_file(path, "network file")
    frame = read_vector(p, layer=layer, crs=crs, what="network file")
    if walkable and "highway" in frame.columns:
        frame = frame[walkable_mask(frame)]
        if len(frame) == 0:
            raise InputFileError(f"{p.name} 中没有可步行道路 / {p.name} has no walkable lines after the highway filter")
    return _lines_only(frame, p.name)
