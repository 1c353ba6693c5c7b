"""Gaps in planner coverage: the named units without a lead planner, and the uncovered ground."""
from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from zeren.geo.coverage import _prep
from zeren.geo.coverage._prep import Metric

REASONS = ("unit_without_planner", "sliver", "outside_units")
REASON_LABELS = {
    "unit_without_planner": ("无责任规划师的单元", "unit without a planner"),
    "sliver": ("单元间缝隙", "sliver between units"),
    "outside_units": ("单元以外区域", "ground outside every unit"),
}
# Bare pieces this small, or this thin, are floating-point noise of the overlay (two boundaries digitised from
# the same line meet a few nanometres apart), not ground anyone forgot: they are dropped, neither drawn nor
# counted as slivers nor added to the gap area. A real sliver between survey lines is centimetres wide.
NOISE_M2 = 1.0
NOISE_WIDTH_M = 0.01
# A gap piece shares a unit (or lies in a district) when they share more than this fraction of the piece.
_SHARE_TOL = 1e-6

UNIT_COLUMNS = {"code": "str", "name": "str", "district_code": "str", "district_name": "str",
                "area_m2": "float64", "population": "Int64"}
GAP_COLUMNS = {"gap_id": "int64", "reason": "str", "area_m2": "float64", "width_m": "float64",
               "district_codes": "str", "unit_codes": "str"}


@dataclass(frozen=True)
class GapsResult:
    """Coverage gaps of one kind of unit as of a date, within a territory.

    ``units_without_planner``: code, name, district_code, district_name, area_m2, population, geometry
    (sorted by code). ``gaps``: the territory minus the units with a lead, as polygons: each cluster of
    adjacent units without a lead (reason "unit_without_planner", their ``unit_codes``) and each piece
    of bare ground in no unit ("sliver" or "outside_units"); columns gap_id, reason, area_m2, width_m
    (mean width 2·area/perimeter of bare ground; NaN for unit pieces), district_codes and unit_codes
    (comma-joined, sorted), geometry. Bare pieces under ``sliver_m2`` are only counted
    (``small_slivers``, ``small_slivers_area_m2``; ``gap_area_m2`` includes them); bare pieces under
    ``NOISE_M2`` or thinner than ``NOISE_WIDTH_M`` are overlay noise, dropped (``noise_pieces`` counts
    them) and in no total. ``invalid``: kind,
    code, problem of every geometry repaired or ignored. ``union_method``: "coverage_union" when the
    units form a clean coverage, else "union_all". Geometries are EPSG:4326; areas are m2 in
    ``metric_crs``.
    """

    kind: str
    as_of: pd.Timestamp
    within: str | None
    territory_kind: str | None
    territory_codes: tuple[str, ...]
    metric_crs: CRS | None
    union_method: str
    territory_area_m2: float
    covered_area_m2: float
    gap_area_m2: float
    units_total: int
    units_with_lead: int
    units_without_planner: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    small_slivers: int
    small_slivers_area_m2: float
    sliver_m2: float
    invalid: pd.DataFrame = field(default_factory=lambda: _prep._problems("", [], []))
    noise_pieces: int = 0  # bare pieces dropped as overlay noise (under NOISE_M2 or NOISE_WIDTH_M wide)
    nothing_to_cover: bool = False
    message: str = ""

    @property
    def covered_pct(self) -> float:
        return 100.0 * self.covered_area_m2 / self.territory_area_m2 if self.territory_area_m2 > 0 else float("nan")


@dataclass(frozen=True)
class GapPieces:
    """Gap polygons (lon/lat) with their area and mean width in metres."""

    pieces: np.ndarray
    area_m2: np.ndarray
    width_m: np.ndarray


@dataclass(frozen=True)
class Ground:
    """What of a territory the led units leave uncovered: pieces made of units without a lead, and bare
    ground in no unit. Polygons in lon/lat, with their metric twins where the overlay was done in metres
    (None entries otherwise)."""

    unit_pieces: np.ndarray
    unit_projected: np.ndarray
    bare_pieces: np.ndarray
    bare_projected: np.ndarray
    geoms: np.ndarray  # the units' geometries as used (repaired where checked)
    method: str  # "coverage_union": a clean tiling; "union_all": anything else
    problems: pd.DataFrame


def uncovered_ground(territory: shapely.Geometry, geoms: np.ndarray, led: np.ndarray, kind: str,
                     codes: np.ndarray, metric: Metric) -> Ground:
    """The territory minus the led units, split into unit pieces and bare ground.

    When the units' coverage union verifies (a clean tiling, see ``_prep.union_polygons``): the unit
    pieces are the clusters of adjacent units without a lead (their coverage union, clipped to the
    territory) and the bare ground is the territory minus the union of all units, of which there is none
    when that union is the territory vertex for vertex (a district layer dissolved from its
    subdistricts). Coverage unions compute no new vertex, so this is exact in lon/lat; the led units need
    no ``is_valid`` of their own (the verified union proves they tile cleanly), the others are checked
    since they are reported. Otherwise every unit is checked and repaired and the overlays are done with
    ``union_all`` in the metric CRS.
    """
    geoms = np.asarray(geoms, dtype=object)
    led = np.asarray(led, dtype=bool)
    fixed, problems = _prep.repair(geoms, kind, codes, check=~led if len(geoms) > 1 else None)
    present = ~shapely.is_missing(fixed)
    union, method = _prep.union_polygons(fixed[present], fallback=False)
    if method != "not_a_coverage":
        unled = fixed[present & ~led]
        clusters = shapely.get_parts(shapely.coverage_union_all(unled)) if len(unled) else unled
        units = _prep.clip_to(territory, clusters)
        if shapely.is_empty(union) or not _prep.same_shape(territory, union):
            bare_m = _prep.subtract(metric(territory), metric(union))
            bare = metric.back(bare_m)
        else:
            bare = bare_m = np.zeros(0, dtype=object)
        return Ground(units, np.full(len(units), None, dtype=object), bare, bare_m, fixed, "coverage_union",
                      problems)
    fixed, problems = _prep.repair(geoms, kind, codes)
    present = ~shapely.is_missing(fixed)
    projected = metric(fixed[present])
    led_m = shapely.union_all(projected[led[present]])
    unled_m = shapely.union_all(projected[~led[present]])
    territory_m = metric(territory)
    units_m = _prep.clip_to(territory_m, shapely.get_parts(shapely.difference(unled_m, led_m)))
    bare_m = _prep.subtract(territory_m, shapely.union_all(np.array([led_m, unled_m], dtype=object)))
    return Ground(metric.back(units_m), units_m, metric.back(bare_m), bare_m, fixed, "union_all", problems)


def measure(pieces: np.ndarray, projected: np.ndarray | None, metric: Metric) -> GapPieces:
    """Areas and mean widths (2·area/perimeter) of lon/lat pieces, from ``projected`` (their metric
    twins) where given, else reprojected."""
    pieces = np.asarray(pieces, dtype=object)
    projected = np.full(len(pieces), None, dtype=object) if projected is None else projected.copy()
    todo = shapely.is_missing(projected)
    projected[todo] = metric(pieces[todo])
    area = shapely.area(projected)
    perimeter = shapely.length(projected)
    width = np.divide(2.0 * area, perimeter, out=np.zeros_like(area), where=perimeter > 0)
    return GapPieces(pieces, area, width)


def coverage_gaps(zones: gpd.GeoDataFrame, appointments: pd.DataFrame, *, kind: str = "subdistrict",
                  within: str | None = None, as_of=None, sliver_m2: float = 1000.0,
                  sliver_width_m: float = 50.0, territory_kind: str = "district", crs=None) -> GapsResult:
    """Where ``kind`` units lack a lead planner on ``as_of``, within the ``territory_kind`` layer (or the
    zone ``within``, any kind, found by code).

    A unit lies in a ``within`` territory when at least half its area does. Bare ground (in the territory
    but in no unit) is a "sliver" when its mean width is under ``sliver_width_m``, else "outside_units".
    Without a ``territory_kind`` layer the territory is the units' own union.
    """
    _prep.check_kind(kind)
    _prep.check_kind(territory_kind, "territory kind")
    if not sliver_m2 >= 0 or not sliver_width_m >= 0:
        raise _prep.GeoInputError("sliver_m2 and sliver_width_m must be numbers >= 0")
    ts = _prep.as_of_timestamp(as_of)
    zones = _prep.check_zones(zones)
    appointments = _prep.check_appointments(appointments)

    units = _prep.active_layer(zones, kind, ts)
    districts = _prep.active_layer(zones, territory_kind, ts, strict=within is None)
    metric = _prep.metric_for(zones, crs) if len(zones) else None
    district_geoms, bad = _prep.repair(_prep.geometry_array(districts), territory_kind,
                                       districts["code"].to_numpy(object))
    district_union, district_method = _prep.union_polygons(district_geoms, metric)
    problems = [bad] if territory_kind != kind else []
    territory, t_kind, t_codes = _territory(zones, units, district_union, kind, territory_kind, within, ts,
                                            metric, problems)
    if units.empty or shapely.is_empty(territory):
        what = f"no {kind!r} zones" if units.empty else "an empty territory"
        return _nothing(kind, ts, within, t_kind, t_codes, sliver_m2, _invalid(problems),
                        f"nothing to cover: {what} valid on {_prep.day(ts)}"
                        + (_prep.kinds_hint(zones, ts) if units.empty else ""))

    # The units: which have a lead, which lie in the territory; the ground they leave uncovered.
    codes = units["code"].astype(str).to_numpy(object)
    raw = _prep.geometry_array(units)
    led = _prep.has_lead(codes, _prep.lead_codes(appointments, kind, ts))
    near = np.ones(len(units), dtype=bool)
    if within is not None:
        near[:] = False
        near[shapely.STRtree(raw).query(territory, predicate="intersects")] = True
    ground = uncovered_ground(territory, raw[near], led[near], kind, codes[near], metric)
    unit_geoms = raw.copy()
    unit_geoms[near] = ground.geoms
    problems.append(ground.problems)
    in_territory = near.copy()
    if within is not None:
        in_territory = _mostly_inside(unit_geoms, near & ~shapely.is_missing(unit_geoms), territory, metric)

    # Which units without a lead each unit piece holds; pieces that are exactly their units (most are)
    # take the units' areas, the others are measured themselves.
    missing_lead = np.flatnonzero(in_territory & ~led)
    located = missing_lead[~shapely.is_missing(unit_geoms[missing_lead])]
    unit_area = np.full(len(units), np.nan)
    unit_area[located] = metric.area(unit_geoms[located])
    u_geoms, u_area = unit_geoms[located], unit_area[located]
    u_idx, p_idx = _units_in_pieces(ground.unit_pieces, u_geoms, u_area, metric)
    units_gp, pure = _measure(ground.unit_pieces, ground.unit_projected, u_geoms, u_idx, p_idx, u_area, metric)
    bare_gp = measure(ground.bare_pieces, ground.bare_projected, metric)
    gp = GapPieces(np.concatenate([units_gp.pieces, bare_gp.pieces]),
                   np.concatenate([units_gp.area_m2, bare_gp.area_m2]),
                   np.concatenate([units_gp.width_m, bare_gp.width_m]))
    pure = np.concatenate([pure, np.zeros(len(bare_gp.pieces), dtype=bool)])
    unit_codes = _prep.join_codes(codes[located][u_idx], p_idx, len(gp.pieces))
    reason = np.where(unit_codes != "", "unit_without_planner",
                      np.where(gp.width_m < sliver_width_m, "sliver", "outside_units")).astype(object)
    width = np.where(reason == "unit_without_planner", np.nan, gp.width_m)  # a width for bare ground only
    bare = reason != "unit_without_planner"
    noise = bare & ((gp.area_m2 < NOISE_M2) | (gp.width_m < NOISE_WIDTH_M))
    small = bare & ~noise & (gp.area_m2 < sliver_m2)
    keep = ~small & ~noise

    best = np.full(len(units), -1)
    best[located], dist_codes = _districts(u_geoms, u_area, u_idx, p_idx, gp, pure, keep, districts,
                                           district_geoms, district_method == "coverage_union", metric)
    gaps = gpd.GeoDataFrame({
        "reason": pd.Series(reason[keep], dtype="str"),
        "area_m2": gp.area_m2[keep],
        "width_m": width[keep],
        "district_codes": pd.Series(dist_codes[keep], dtype="str"),
        "unit_codes": pd.Series(unit_codes[keep], dtype="str"),
    }, geometry=gpd.GeoSeries(gp.pieces[keep], crs=_prep.WGS84), crs=_prep.WGS84)
    units_out = _units_without_planner(units.iloc[missing_lead], unit_geoms[missing_lead],
                                       unit_area[missing_lead], best[missing_lead], kind, territory_kind,
                                       districts)
    territory_area = float(metric.area(np.array([territory], dtype=object))[0])
    gap_area = float(gp.area_m2[~noise].sum())
    return GapsResult(
        kind=kind, as_of=ts, within=None if within is None else str(within), territory_kind=t_kind,
        territory_codes=t_codes, metric_crs=metric.crs, union_method=ground.method,
        territory_area_m2=territory_area, covered_area_m2=max(territory_area - gap_area, 0.0),
        gap_area_m2=gap_area, units_total=int(in_territory.sum()), units_with_lead=int((in_territory & led).sum()),
        units_without_planner=units_out, gaps=_sort_gaps(gaps), small_slivers=int(small.sum()),
        small_slivers_area_m2=float(gp.area_m2[small].sum()), sliver_m2=float(sliver_m2),
        invalid=_invalid(problems), noise_pieces=int(noise.sum()),
    )


def _territory(zones, units, district_union, kind, territory_kind, within, ts, metric, problems):
    """(territory geometry, its kind, its codes): the zone ``within``, else the territory layer's union,
    else the units' own union. Problems found in the geometries are appended to ``problems``."""
    if within is not None:
        zone = _prep.find_zone(zones, within, ts, prefer=territory_kind)
        t_kind, t_codes = str(zone["kind"].iloc[0]), (str(zone["code"].iloc[0]),)
        geom, bad = _prep.repair(_prep.geometry_array(zone), t_kind, np.array(t_codes, dtype=object))
        problems.append(bad)
        return (geom[0] if geom[0] is not None else shapely.Polygon()), t_kind, t_codes
    if district_union is not None and not shapely.is_empty(district_union):
        return district_union, territory_kind, ()
    fixed, _ = _prep.repair(_prep.geometry_array(units), kind, units["code"].to_numpy(object))
    return _prep.union_polygons(fixed, metric)[0], kind, ()


def _districts(u_geoms, u_area, u_idx, p_idx, gp: GapPieces, pure, keep, districts, district_geoms,
               disjoint: bool, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """The district of each unit without a lead (largest overlap; -1: none), and the comma-joined codes
    of every district each gap piece lies in: a pure piece's from its units, the kept others by overlay."""
    d_codes = districts["code"].astype(str).to_numpy(object)
    ut = _prep.overlap_table(u_geoms, district_geoms, metric, u_area, disjoint, children_inside=True)
    lies = ut.area_m2 > _SHARE_TOL * u_area[ut.child]
    via_units = pd.DataFrame({"u": u_idx, "p": p_idx})
    via_units = via_units[pure[p_idx]].merge(pd.DataFrame({"u": ut.child[lies], "d": ut.parent[lies]}), on="u")
    rest = np.flatnonzero(keep & ~pure)
    pt = _prep.overlap_table(gp.pieces[rest], district_geoms, metric, gp.area_m2[rest], disjoint,
                             children_inside=True)
    lies = pt.area_m2 > _SHARE_TOL * gp.area_m2[rest][pt.child]
    piece = np.concatenate([via_units["p"].to_numpy(int), rest[pt.child[lies]]])
    district = np.concatenate([via_units["d"].to_numpy(int), pt.parent[lies]])
    return _prep.best_parent(ut, len(u_geoms)), _prep.join_codes(d_codes[district], piece, len(gp.pieces))


def _invalid(problems: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [p for p in problems if len(p)]
    if not frames:
        return _prep._problems("", [], [])
    return pd.concat(frames, ignore_index=True).sort_values(["kind", "code"], kind="stable", ignore_index=True)


def _mostly_inside(geoms: np.ndarray, candidates: np.ndarray, territory, metric: Metric) -> np.ndarray:
    """Units with at least half their area in the territory."""
    out = np.zeros(len(geoms), dtype=bool)
    idx = np.flatnonzero(candidates)
    if len(idx) == 0:
        return out
    own = metric.area(geoms[idx])
    table = _prep.overlap_table(geoms[idx], np.array([territory], dtype=object), metric, own)
    share = np.zeros(len(idx))
    share[table.child] = table.area_m2 / np.where(own[table.child] > 0, own[table.child], 1.0)
    out[idx[share >= 0.5]] = True
    return out


def _units_in_pieces(pieces: np.ndarray, geoms: np.ndarray, area_m2: np.ndarray, metric: Metric):
    """(unit index, piece index) pairs where a unit lies in a gap piece: its representative point does,
    or (for the units and pieces left unpaired by that) they share more than a millionth of the unit's
    or the piece's area."""
    if len(pieces) == 0 or len(geoms) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    # (the query prepares a temporary copy of each piece: the pieces, maybe a cached result other threads
    # read, stay unprepared; see geo.prepared)
    piece, unit = shapely.STRtree(shapely.point_on_surface(geoms)).query(pieces, predicate="contains")
    lone_units = np.ones(len(geoms), dtype=bool)
    lone_units[unit] = False
    lone_pieces = np.ones(len(pieces), dtype=bool)
    lone_pieces[piece] = False
    extra = []
    if lone_units.any():
        u, p = shapely.STRtree(pieces).query(geoms[lone_units], predicate="intersects")
        extra.append((np.flatnonzero(lone_units)[u], p))
    if lone_pieces.any():
        p, u = shapely.STRtree(geoms).query(pieces[lone_pieces], predicate="intersects")
        extra.append((u, np.flatnonzero(lone_pieces)[p]))
    if extra:
        u2 = np.concatenate([e[0] for e in extra])
        p2 = np.concatenate([e[1] for e in extra])
        pairs = np.unique(np.column_stack([u2, p2]), axis=0)
        u2, p2 = pairs[:, 0], pairs[:, 1]
        shared = metric.shared_area(geoms[u2], pieces[p2])
        tol = _SHARE_TOL * np.minimum(area_m2[u2], metric.area(pieces[p2]))
        unit, piece = np.concatenate([unit, u2[shared > tol]]), np.concatenate([piece, p2[shared > tol]])
    order = np.lexsort((unit, piece))
    return unit[order], piece[order]


def _measure(pieces, projected, u_geoms, u_idx, p_idx, u_area, metric: Metric) -> tuple[GapPieces, np.ndarray]:
    """Measures of the unit pieces, and which are "pure" (exactly the units they hold, by lon/lat area):
    those take the sum of their units' areas and need no reprojection."""
    deg_piece = shapely.area(pieces)
    deg_units = np.bincount(p_idx, weights=shapely.area(u_geoms)[u_idx], minlength=len(pieces))
    held = np.bincount(p_idx, minlength=len(pieces)) > 0
    pure = held & (np.abs(deg_piece - deg_units) <= 1e-9 * deg_piece)
    area = np.bincount(p_idx, weights=u_area[u_idx], minlength=len(pieces))
    width = np.full(len(pieces), np.nan)
    other = np.flatnonzero(~pure)
    gp = measure(pieces[other], None if projected is None else projected[other], metric)
    area[other], width[other] = gp.area_m2, gp.width_m
    return GapPieces(pieces, area, width), pure


def _units_without_planner(rows: gpd.GeoDataFrame, geoms: np.ndarray, area_m2: np.ndarray, best: np.ndarray,
                           kind: str, territory_kind: str, districts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    codes = rows["code"].astype(str).to_numpy(object)
    if kind == territory_kind:
        d_code, d_name = codes, _prep.optional_column(rows, "name").to_numpy(object)
    else:
        d_codes = np.append(districts["code"].astype(str).to_numpy(object), None)
        d_names = np.append(_prep.optional_column(districts, "name").to_numpy(object), None)
        d_code, d_name = d_codes[best], d_names[best]  # best == -1 picks the trailing None
    name = _prep.optional_column(rows, "name").to_numpy(object)
    return gpd.GeoDataFrame({
        "code": pd.Series(codes, dtype="str"),
        "name": pd.Series(name, dtype="str"),
        "district_code": pd.Series(d_code, dtype="str"),
        "district_name": pd.Series(d_name, dtype="str"),
        "area_m2": np.asarray(area_m2, dtype=float),
        "population": _prep.population(rows).to_numpy(),
    }, geometry=gpd.GeoSeries(geoms, crs=_prep.WGS84), crs=_prep.WGS84)


def _sort_gaps(gaps: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Deterministic order: reason, unit codes, district codes, larger first, then position."""
    bounds = shapely.bounds(np.asarray(gaps.geometry.array, dtype=object))
    rank = gaps["reason"].map({r: i for i, r in enumerate(REASONS)}).to_numpy()
    order = np.lexsort((bounds[:, 1], bounds[:, 0], -gaps["area_m2"].to_numpy(),
                        gaps["district_codes"].to_numpy(object), gaps["unit_codes"].to_numpy(object), rank))
    gaps = gaps.iloc[order].reset_index(drop=True)
    gaps.insert(0, "gap_id", np.arange(1, len(gaps) + 1, dtype="int64"))
    return gaps


def _nothing(kind, ts, within, t_kind, t_codes, sliver_m2, invalid, message) -> GapsResult:
    return GapsResult(
        kind=kind, as_of=ts, within=None if within is None else str(within), territory_kind=t_kind,
        territory_codes=tuple(t_codes), metric_crs=None, union_method="empty", territory_area_m2=0.0,
        covered_area_m2=0.0, gap_area_m2=0.0, units_total=0, units_with_lead=0,
        units_without_planner=_prep.empty_geoframe(UNIT_COLUMNS), gaps=_prep.empty_geoframe(GAP_COLUMNS),
        small_slivers=0, small_slivers_area_m2=0.0, sliver_m2=float(sliver_m2), invalid=invalid,
        nothing_to_cover=True, message=message,
    )
