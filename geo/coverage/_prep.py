"""Plumbing shared by the coverage analyses: input checks, the zones of one kind as of a date, the metric
CRS, geometry repair, unions and overlap tables. Everything is vectorised over shapely 2 arrays."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pyproj import CRS, Transformer
from shapely.errors import GEOSException

from zeren.geo.prepared import private_prepared
from zeren.geo.repair import polygonal_part

from zeren.geo.appointments import active_appointments
from zeren.geo.crs import metric_crs
from zeren.geo.errors import GeoInputError
from zeren.geo.kinds import ALL_KINDS, BASE_KINDS
from zeren.geo.validity import active_mask, as_timestamp

ZONE_COLUMNS = ("kind", "code", "valid_from", "valid_to")
APPOINTMENT_COLUMNS = ("planner_id", "zone_kind", "zone_code", "role", "start", "end")
WGS84 = CRS.from_epsg(4326)
_EMPTY = np.array([], dtype=object)
# Relative area agreement between a coverage union and the sum of its parts (see union_polygons).
_COVERAGE_AREA_RTOL = 1e-9


def check_kind(kind: str, what: str = "kind") -> str:
    """``kind`` if it is a zone kind Zeren knows; GeoInputError naming the valid kinds otherwise."""
    if kind not in ALL_KINDS:
        raise GeoInputError(f"unknown zone {what} {kind!r}; valid kinds: {', '.join(ALL_KINDS)}")
    return kind


def check_columns(frame: pd.DataFrame, required, what: str) -> None:
    """GeoInputError naming the missing columns, if any."""
    if frame is None:
        raise GeoInputError(f"no {what} frame given")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise GeoInputError(f"the {what} frame lacks column(s) {', '.join(missing)}; "
                            f"expected at least {', '.join(required)} (see layers/CONTRACT.md)")


def check_zones(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The zones frame in EPSG:4326 (reprojected if it came in another CRS)."""
    check_columns(zones, ZONE_COLUMNS, "zones")
    if not isinstance(zones, gpd.GeoDataFrame) or zones.geometry.name not in zones.columns:
        raise GeoInputError("zones must be a GeoDataFrame with a geometry column")
    if zones.crs is None:
        raise GeoInputError("the zones frame has no CRS; Zeren's zones are EPSG:4326 lon/lat (set_crs(4326))")
    if not zones.crs.equals(WGS84, ignore_axis_order=True):
        zones = zones.to_crs(WGS84)
    return zones


def check_appointments(appointments: pd.DataFrame | None) -> pd.DataFrame:
    """The appointments frame, or an empty one when None."""
    if appointments is None:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c in ("start", "end") else object)
                             for c in ("id",) + APPOINTMENT_COLUMNS})
    check_columns(appointments, APPOINTMENT_COLUMNS, "appointments")
    return appointments


def day(ts: pd.Timestamp) -> str:
    """YYYY-MM-DD."""
    return ts.date().isoformat()


def kinds_hint(zones: gpd.GeoDataFrame, as_of: pd.Timestamp, option: str = "--kind", exclude=()) -> str:
    """What to try when a report finds no zones of the kind asked for: the kinds in force on ``as_of`` with
    their counts, and the option that picks the most specific base kind among them (e.g. ``--kind
    district``); "" when the store has none. Starts with "; " so it can follow a message."""
    live = zones[active_mask(zones["valid_from"], zones["valid_to"], as_of)] if len(zones) else zones
    counts = live["kind"].astype(str).value_counts() if len(live) else pd.Series(dtype="int64")
    counts = counts.drop([k for k in exclude if k in counts.index])
    if counts.empty:
        return f"; the store has no zones in force on {day(as_of)}"
    order = [k for k in ALL_KINDS if k in counts.index] + sorted(set(counts.index) - set(ALL_KINDS))
    listed = ", ".join(f"{k} ({int(counts[k]):,})" for k in order)
    base = [k for k in BASE_KINDS if k in counts.index]
    param = option.lstrip("-").replace("-", "_")
    return f"; zones in force: {listed}" + (f" — try {option} {base[0]} ({param}={base[0]} over HTTP)"
                                            if base else "")


def active_layer(zones: gpd.GeoDataFrame, kind: str, as_of: pd.Timestamp, *, strict: bool = True) -> gpd.GeoDataFrame:
    """The zones of ``kind`` valid on ``as_of`` (one per code, the latest edition), sorted by code, index 0..n-1.

    Empty when the layer has no zones at all. When it has editions but none valid on ``as_of``,
    GeoInputError (``strict``) or an empty frame.
    """
    of_kind = zones[(zones["kind"] == kind).to_numpy(dtype=bool)]
    if of_kind.empty:
        return of_kind.reset_index(drop=True)
    active = of_kind[active_mask(of_kind["valid_from"], of_kind["valid_to"], as_of)]
    if active.empty and strict:
        raise GeoInputError(f"no edition of the {kind!r} zones is valid on {day(as_of)}; "
                            f"editions: {_describe_editions(of_kind)}")
    codes = pd.Index(active["code"])
    if codes.is_monotonic_increasing and codes.is_unique:  # as the store returns them
        return active.reset_index(drop=True)
    keys = ["code", "edition"] if "edition" in active.columns else ["code"]
    active = active.sort_values(keys, kind="stable").drop_duplicates("code", keep="last")
    return active.reset_index(drop=True)


def _describe_editions(frame: pd.DataFrame) -> str:
    cols = [c for c in ("edition", "valid_from", "valid_to") if c in frame.columns]
    spans = frame[cols].drop_duplicates().sort_values(cols[0])
    out = []
    for row in spans.itertuples(index=False):
        rec = dict(zip(cols, row))
        start = "open" if pd.isna(rec.get("valid_from")) else day(pd.Timestamp(rec["valid_from"]))
        end = "open" if pd.isna(rec.get("valid_to")) else day(pd.Timestamp(rec["valid_to"]))
        label = f"{rec['edition']} " if "edition" in rec else ""
        out.append(f"{label}[{start}, {end})")
    return "; ".join(out[:10]) + (" ..." if len(out) > 10 else "")


def find_zone(zones: gpd.GeoDataFrame, code: str, as_of: pd.Timestamp, prefer: str | None = None) -> gpd.GeoDataFrame:
    """The one zone with ``code`` valid on ``as_of`` (any kind; ``prefer``, then coarse base kinds, win ties)."""
    code = str(code)
    rows = zones[(zones["code"].astype(str) == code).to_numpy(dtype=bool)]
    if rows.empty:
        raise GeoInputError(f"zone code {code!r} not found in any layer")
    active = rows[active_mask(rows["valid_from"], rows["valid_to"], as_of)]
    if active.empty:
        raise GeoInputError(f"zone code {code!r} exists but no edition of it is valid on {day(as_of)}; "
                            f"editions: {_describe_editions(rows)}")
    order = ([prefer] if prefer else []) + list(reversed(BASE_KINDS)) + list(ALL_KINDS)
    rank = {k: i for i, k in reversed(list(enumerate(order)))}
    keys = ["code", "edition"] if "edition" in active.columns else ["code"]
    active = active.assign(_rank=active["kind"].map(rank).fillna(len(order)).to_numpy())
    active = active.sort_values(["_rank"] + keys, ascending=[True] + [True] * len(keys), kind="stable")
    best_kind = active["kind"].iloc[0]
    return active[active["kind"] == best_kind].drop(columns="_rank").tail(1).reset_index(drop=True)


def lead_codes(appointments: pd.DataFrame, kind: str, as_of: pd.Timestamp) -> np.ndarray:
    """The codes of the zones of ``kind`` with an active lead on ``as_of``."""
    of_kind = appointments[(appointments["zone_kind"] == kind).to_numpy(dtype=bool)]
    leads = active_appointments(of_kind, as_of, role="lead")
    return pd.unique(leads["zone_code"].astype(str).to_numpy(object))


def has_lead(codes: np.ndarray, lead_zone_codes: np.ndarray) -> np.ndarray:
    """Element-wise: is the code among ``lead_zone_codes`` (unique)?"""
    return pd.Index(lead_zone_codes).get_indexer(pd.Index(np.asarray(codes, dtype=object))) >= 0


# -- geometry ---------------------------------------------------------------------------------------

def geometry_array(frame: gpd.GeoDataFrame) -> np.ndarray:
    """The frame's geometries as a numpy object array (shapely geometries or None)."""
    return np.asarray(frame.geometry.array, dtype=object)


def repair(geoms: np.ndarray, kind: str, codes: np.ndarray,
           check: np.ndarray | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Valid (Multi)Polygons: invalid ones made valid, collections reduced to their polygons, anything
    else (missing, empty, lines, points) set to None. Also a frame ``kind, code, problem``, one row per
    geometry touched. ``check`` (a mask) limits the costly ``is_valid`` test to some geometries; the
    others are only checked for being non-empty polygons."""
    geoms = np.asarray(geoms, dtype=object)
    type_id = shapely.get_type_id(geoms)  # -1 for None
    missing = type_id < 0
    empty = ~missing & shapely.is_empty(geoms)
    polygon = np.isin(type_id, (3, 6)) & ~empty
    valid = polygon.copy()
    test = polygon if check is None else polygon & np.asarray(check, dtype=bool)
    valid[test] = shapely.is_valid(geoms[test])
    if valid.sum() == len(geoms):
        return geoms, _problems(kind, _EMPTY, _EMPTY)
    fixed = geoms.copy()
    problem = np.full(len(geoms), "", dtype=object)
    problem[missing] = "missing geometry"
    problem[empty] = "empty geometry"
    invalid = polygon & ~valid
    if invalid.any():
        reasons = shapely.is_valid_reason(geoms[invalid])
        problem[invalid] = np.array([f"invalid geometry ({r}); repaired with make_valid" for r in reasons],
                                    dtype=object)
    collection = (type_id == 7) & ~empty
    problem[collection] = "geometry collection; its polygons kept"
    other = ~missing & ~empty & ~polygon & ~collection
    if other.any():
        problem[other] = np.array([f"not a polygon ({g.geom_type}); ignored" for g in geoms[other]], dtype=object)
    redo = invalid | collection
    if redo.any():
        fixed[redo] = polygonal_part(shapely.make_valid(geoms[redo]))
    fixed[missing | empty | other] = None
    lost = redo & shapely.is_empty(fixed)
    problem[lost] = problem[lost] + "; nothing polygonal left, ignored"
    fixed[lost] = None
    bad = ~valid
    return fixed, _problems(kind, np.asarray(codes, dtype=object)[bad], problem[bad])


def _problems(kind: str, codes, problems) -> pd.DataFrame:
    return pd.DataFrame({"kind": pd.Series([kind] * len(codes), dtype=object),
                         "code": pd.Series(codes, dtype=object), "problem": pd.Series(problems, dtype=object)})


def union_polygons(geoms: np.ndarray, metric: "Metric | None" = None,
                   fallback: bool = True) -> tuple[shapely.Geometry | None, str]:
    """The union of lon/lat polygons and the method used.

    ``coverage_union_all`` (an order of magnitude faster, and exact in any CRS since it computes no new
    vertex) when the input is a valid coverage, which is checked on the result instead of with
    ``coverage_is_valid`` (three times the cost of the union): GEOS raises on badly noded or duplicated
    input, overlapping input leaves an invalid result, and the area of a correct union equals the sum of
    the parts' areas. Otherwise ``union_all``, in the metric CRS when ``metric`` is given (or, without
    ``fallback``, ``(None, "not_a_coverage")``).
    """
    geoms = np.asarray(geoms, dtype=object)
    geoms = geoms[~shapely.is_missing(geoms)]
    if len(geoms) == 0:
        return shapely.Polygon(), "empty"
    if len(geoms) == 1:
        return geoms[0], "single"
    try:
        result = shapely.coverage_union_all(geoms)
    except GEOSException:
        result = None
    if result is not None and shapely.is_valid(result):
        total = float(shapely.area(geoms).sum())
        if abs(shapely.area(result) - total) <= _COVERAGE_AREA_RTOL * max(total, 1e-300):
            return result, "coverage_union"
    if not fallback:
        return None, "not_a_coverage"
    if metric is None:
        return shapely.union_all(geoms), "union_all"
    return metric.back(shapely.union_all(metric(geoms))), "union_all"


def subtract(territory: shapely.Geometry, union: shapely.Geometry) -> np.ndarray:
    """The polygons of ``territory`` minus ``union`` (a valid polygonal geometry), same as
    ``get_parts(difference(territory, union))`` but read from the union's structure: its holes are gap
    pieces as they are (minus any islands of the union inside them, clipped to the territory), and only
    the union's outer shells go through an overlay with the territory. On a tiling most gaps are holes,
    so this costs a fraction of the full difference."""
    if union is None or shapely.is_empty(union):
        return _polygons(np.array([territory], dtype=object))
    comps = shapely.get_parts(union)
    comps = comps[shapely.get_type_id(comps) == 3]
    rings, owner = shapely.get_rings(comps, return_index=True)
    is_hole = np.ones(len(rings), dtype=bool)
    is_hole[np.r_[0, np.flatnonzero(np.diff(owner)) + 1]] = False  # the first ring of each is its shell
    fills = shapely.polygons(rings[~is_hole])
    holes, hole_owner = shapely.polygons(rings[is_hole]), owner[is_hole]
    island = np.zeros(len(comps), dtype=bool)
    hole_islands = (np.zeros(0, int), np.zeros(0, int))
    if len(holes) and len(comps) > 1:
        # a point inside each part itself (not in its holes): the part is an island iff it lies in a hole
        h, k = shapely.STRtree(shapely.point_on_surface(comps)).query(holes, predicate="contains")
        keep = hole_owner[h] != k
        hole_islands = (h[keep], k[keep])
        island[k[keep]] = True
    outer = shapely.multipolygons(fills[~island]) if (~island).sum() > 1 else fills[~island][0]
    pieces = [_polygons(np.array([shapely.difference(territory, outer)], dtype=object))]
    if len(holes):
        h, k = hole_islands
        for hole in np.unique(h):  # rare: parts of the union inside another part's hole
            holes[hole] = shapely.difference(holes[hole], shapely.union_all(fills[k[h == hole]]))
        pieces.append(clip_to(territory, holes))
    out = np.concatenate(pieces)
    return out[~shapely.is_empty(out)]


def clip_to(territory: shapely.Geometry, pieces: np.ndarray) -> np.ndarray:
    """The polygons of ``pieces`` within ``territory``: pieces it covers as they are, the others clipped.
    Pieces that leave the territory only by rounding noise are kept whole: clipping them would let the
    overlay's snapping move their edges by more than the noise."""
    pieces = np.asarray(pieces, dtype=object)
    if len(pieces) == 0:
        return pieces
    prepared = private_prepared(territory)  # the caller's zone may be shared with other threads
    inside = shapely.covers(prepared, pieces)
    crossing = np.flatnonzero(~inside & shapely.intersects(prepared, pieces))
    outside = shapely.area(shapely.difference(pieces[crossing], territory))
    whole = outside <= _COVERAGE_AREA_RTOL * shapely.area(pieces[crossing])
    inside[crossing[whole]] = True
    clipped = shapely.intersection(pieces[crossing[~whole]], territory)
    out = np.concatenate([_polygons(pieces[inside]), _polygons(clipped)])
    return out[~shapely.is_empty(out)]


def same_shape(a: shapely.Geometry, b: shapely.Geometry) -> bool:
    """Whether two polygonal geometries are the same, vertex for vertex (after normalising ring order,
    start and orientation): as a district layer dissolved from its subdistricts is to their union."""
    return bool(shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), tolerance=0.0))


def _polygons(geoms: np.ndarray) -> np.ndarray:
    """The single polygons in ``geoms`` (collections flattened, other types dropped)."""
    parts = shapely.get_parts(geoms)
    if (shapely.get_type_id(parts) != 3).any():
        parts = shapely.get_parts(polygonal_part(parts))
    return parts


class Metric:
    """Reprojection between lon/lat and the metric CRS of the data (geo.crs.metric_crs).

    Overlays whose inputs do not share their vertices exactly (intersections of overlapping zones,
    unions of a tiling that is not a clean coverage) are computed in this CRS: there GEOS's robustness
    fallbacks snap at sub-millimetre scale, in degrees at centimetres, which over kilometres of
    near-coincident edges makes slivers of hundreds of m2 (seen on the Chengdu subdistricts).
    """

    def __init__(self, crs: CRS):
        self.crs = crs
        self._forward, self._back = _transformers(self.crs.to_wkt())

    def __call__(self, geoms):
        """Lon/lat geometries in the metric CRS."""
        return _apply(self._forward, geoms)

    def back(self, geoms):
        """Metric geometries in lon/lat."""
        return _apply(self._back, geoms)

    def area(self, geoms) -> np.ndarray:
        """Areas in m2 of lon/lat geometries (0 for missing ones)."""
        return np.nan_to_num(shapely.area(self(np.asarray(geoms, dtype=object))), nan=0.0)

    def shared_area(self, a, b) -> np.ndarray:
        """Element-wise area in m2 of the intersection of lon/lat geometries, overlaid in metres."""
        a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        if len(a) == 0:
            return np.zeros(0)
        return np.nan_to_num(shapely.area(shapely.intersection(self(a), self(b))), nan=0.0)


def _apply(transformer: Transformer, geoms):
    if isinstance(geoms, shapely.Geometry):
        return _apply(transformer, np.array([geoms], dtype=object))[0]
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return geoms
    return shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


@functools.lru_cache(maxsize=16)
def _transformers(wkt: str) -> tuple[Transformer, Transformer]:
    crs = CRS.from_wkt(wkt)
    return (Transformer.from_crs(WGS84, crs, always_xy=True), Transformer.from_crs(crs, WGS84, always_xy=True))


@functools.lru_cache(maxsize=64)
def _metric(bounds: tuple[float, float, float, float]) -> Metric:
    return Metric(metric_crs(bounds))


def metric_for(zones: gpd.GeoDataFrame, crs=None) -> Metric:
    """The metric CRS for a zones frame: from the bounds of the whole frame (every kind and edition), so
    every analysis of one data set measures in the same CRS whatever its filters."""
    if crs is not None:
        return Metric(CRS.from_user_input(crs))
    bounds = shapely.total_bounds(np.asarray(zones.geometry.array, dtype=object))
    return _metric(tuple(round(float(v), 4) for v in bounds))


@dataclass(frozen=True)
class Overlaps:
    """Child/parent pairs whose interiors share area: indices and area in m2."""

    child: np.ndarray
    parent: np.ndarray
    area_m2: np.ndarray


def overlap_table(children: np.ndarray, parents: np.ndarray, metric: Metric,
                  child_area_m2: np.ndarray | None = None, parents_disjoint: bool = False,
                  children_inside: bool = False) -> Overlaps:
    """Area shared by every child with every parent (pairs sharing some area only), sorted by child.

    A child that meets a single parent while ``children_inside`` (the children lie in the parents'
    union), or that a parent covers, shares its own area; when ``parents_disjoint`` (a verified
    coverage) such a child shares nothing with the others, and only the parent holding its
    representative point is tested. Only the remaining pairs are intersected, in the metric CRS.
    Parents are the prepared side of every predicate: they are few and large. They are the callers' zones,
    shared with other threads: the tree queries prepare temporary copies, "covers" takes private prepared
    copies (see ``geo.prepared``).
    """
    children = np.asarray(children, dtype=object)
    parents = np.asarray(parents, dtype=object)
    if len(children) == 0 or len(parents) == 0:
        return Overlaps(np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    parent, child = shapely.STRtree(children).query(parents, predicate="intersects")
    order = np.lexsort((parent, child))
    parent, child = parent[order], child[order]
    own = np.zeros(len(child), dtype=bool)
    if children_inside:
        own = np.bincount(child, minlength=len(children))[child] == 1
    test = np.flatnonzero(~own)
    if parents_disjoint and len(test):
        ask = np.unique(child[test])
        home = np.full(len(children), -1)
        hp, hc = shapely.STRtree(shapely.point_on_surface(children[ask])).query(parents, predicate="contains")
        home[ask[hc]] = hp
        test = test[home[child[test]] == parent[test]]
    if len(test):
        own[test] = shapely.covers(private_prepared(parents)[parent[test]], children[child[test]])
    cut = ~own
    if parents_disjoint:
        cut &= ~np.isin(child, child[own])
    area = np.zeros(len(child))
    if own.any():
        area[own] = (child_area_m2[child[own]] if child_area_m2 is not None
                     else metric.area(children[child[own]]))
    if cut.any():
        area[cut] = metric.shared_area(children[child[cut]], parents[parent[cut]])
    keep = area > 0
    return Overlaps(child[keep], parent[keep], area[keep])


def best_parent(table: Overlaps, n: int) -> np.ndarray:
    """For each child 0..n-1 the parent it shares most area with in ``table`` (-1: none); ties go to the
    lower parent index (parents sorted by code: the lower code)."""
    best = np.full(n, -1)
    if len(table.child):
        order = np.lexsort((table.parent, -table.area_m2, table.child))
        child, first = np.unique(table.child[order], return_index=True)
        best[child] = table.parent[order][first]
    return best


def largest_overlap(children: np.ndarray, parents: np.ndarray, metric: Metric,
                    child_area_m2: np.ndarray | None = None, parents_disjoint: bool = False) -> np.ndarray:
    """For each child, the index of the parent it shares most area with (-1: none)."""
    table = overlap_table(children, parents, metric, child_area_m2, parents_disjoint, children_inside=True)
    return best_parent(table, len(children))


def join_codes(codes: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """Comma-joined sorted unique codes per group 0..n-1 ('' when a group has none)."""
    out = np.full(n, "", dtype=object)
    if len(group) == 0:
        return out
    codes = np.asarray(codes, dtype=object).astype(str)
    group = np.asarray(group)
    order = np.lexsort((codes, group))
    codes, group = codes[order], group[order]
    fresh = np.ones(len(codes), dtype=bool)
    fresh[1:] = (group[1:] != group[:-1]) | (codes[1:] != codes[:-1])
    codes, group = codes[fresh], group[fresh]
    first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    count = np.diff(np.r_[first, len(group)])
    single = count == 1
    out[group[first[single]]] = codes[first[single]]
    for start, size in zip(first[~single], count[~single]):  # only the groups with several codes
        out[group[start]] = ",".join(codes[start:start + size])
    return out


def optional_column(frame: pd.DataFrame, name: str, default=None) -> pd.Series:
    """The column, or ``default`` for every row when the frame has none."""
    if name in frame.columns:
        return frame[name]
    return pd.Series([default] * len(frame), index=frame.index, dtype=object)


def population(frame: pd.DataFrame) -> pd.Series:
    """The population column as nullable Int64 (all NA when absent)."""
    if "population" not in frame.columns:
        return pd.Series(pd.array([pd.NA] * len(frame), dtype="Int64"), index=frame.index)
    return pd.to_numeric(frame["population"], errors="coerce").round().astype("Int64")


def as_of_timestamp(as_of) -> pd.Timestamp:
    """geo.validity.as_timestamp, raising GeoInputError for what is not a date."""
    try:
        return as_timestamp(as_of)
    except (ValueError, TypeError) as exc:
        raise GeoInputError(f"as_of: {as_of!r} is not a date; write it as YYYY-MM-DD") from exc


def empty_geoframe(columns: dict[str, str], crs=WGS84) -> gpd.GeoDataFrame:
    """An empty GeoDataFrame with typed columns."""
    frame = pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
