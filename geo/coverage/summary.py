"""Coverage summary per parent unit (district by default), and the rule for life circles."""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from zeren.geo.coverage import _prep
from zeren.geo.coverage.gaps import uncovered_ground
from zeren.geo.errors import GeoInputError
from zeren.geo.hierarchy import PARENT_KIND
from zeren.geo.kinds import BASE_KINDS, LIFE_CIRCLE

SUMMARY_COLUMNS = ["code", "name", "units_total", "units_with_lead", "units_with_lead_pct", "area_m2",
                   "covered_area_m2", "area_covered_pct", "population", "population_covered",
                   "population_covered_pct", "life_circles_total", "life_circles_with_planner",
                   "life_circles_with_planner_pct"]
LIFE_CIRCLE_COLUMNS = ["code", "name", "has_planner", "via", "planner_id", "base_code"]


@dataclass(frozen=True)
class CoverageSummary:
    """Coverage of ``kind`` units per ``by`` parent as of a date.

    ``table`` (one row per parent, sorted by code): code, name, units_total, units_with_lead,
    units_with_lead_pct, area_m2, covered_area_m2, area_covered_pct, population (of units with a known
    population), population_covered, population_covered_pct (NaN when no unit has one),
    life_circles_total, life_circles_with_planner, life_circles_with_planner_pct. ``totals``: the same
    figures for the whole ``by`` layer. ``life_circles``: :func:`life_circle_planners` with the parent
    of each circle (``parent_code``). A unit or circle belongs to the parent it shares most area with.
    """

    kind: str
    by: str
    as_of: pd.Timestamp
    metric_crs: CRS | None
    table: pd.DataFrame
    totals: dict
    life_circles: pd.DataFrame
    invalid: pd.DataFrame
    nothing_to_cover: bool = False
    message: str = ""


def life_circle_planners(zones: gpd.GeoDataFrame, appointments: pd.DataFrame, *, as_of=None,
                         base_kind: str = "subdistrict", crs=None) -> pd.DataFrame:
    """Which life circles have a planner on ``as_of``: through their own lead appointment, or else
    through the ``base_kind`` zone they share most area with, when that zone has a lead.

    Columns: code, name, has_planner, via ("own_lead" | "base_zone" | "none"), planner_id (lowest id
    when two leads collide), base_code (the largest-overlap base zone). Sorted by code.
    """
    _prep.check_kind(base_kind, "base kind")
    ts = _prep.as_of_timestamp(as_of)
    zones = _prep.check_zones(zones)
    appointments = _prep.check_appointments(appointments)
    metric = _prep.metric_for(zones, crs) if len(zones) else None
    return _life_circles(zones, appointments, ts, base_kind, metric, strict=True)[0]


def _life_circles(zones, appointments, ts, base_kind, metric, strict):
    """The life-circle rule (see :func:`life_circle_planners`): the frame, the circles' geometries and
    the problems found in them."""
    circles = _prep.active_layer(zones, LIFE_CIRCLE, ts, strict=strict)
    if circles.empty:
        frame = pd.DataFrame({c: pd.Series(dtype="bool" if c == "has_planner" else object)
                              for c in LIFE_CIRCLE_COLUMNS})
        return frame, np.zeros(0, dtype=object), _prep._problems(LIFE_CIRCLE, [], [])
    base = _prep.active_layer(zones, base_kind, ts, strict=False)
    c_codes = circles["code"].astype(str).to_numpy(object)
    b_codes = np.append(base["code"].astype(str).to_numpy(object), None)
    c_geoms, problems = _prep.repair(_prep.geometry_array(circles), LIFE_CIRCLE, c_codes)
    b_geoms, _ = _prep.repair(_prep.geometry_array(base), base_kind, b_codes[:-1])
    located = ~shapely.is_missing(c_geoms)
    best = np.full(len(circles), -1)
    best[located] = _prep.largest_overlap(c_geoms[located], b_geoms, metric)
    base_code = b_codes[best]  # -1 picks the trailing None
    own = _lead_of(c_codes, appointments, LIFE_CIRCLE, ts)
    via_base = _lead_of(base_code, appointments, base_kind, ts)
    has_own = pd.notna(own).astype(bool)
    has_base = pd.notna(via_base).astype(bool)
    frame = pd.DataFrame({
        "code": pd.Series(c_codes, dtype=object),
        "name": _prep.optional_column(circles, "name").to_numpy(object),
        "has_planner": has_own | has_base,
        "via": np.where(has_own, "own_lead", np.where(has_base, "base_zone", "none")).astype(object),
        "planner_id": pd.Series(np.where(has_own, own, via_base), dtype=object),
        "base_code": pd.Series(base_code, dtype=object),
    })
    return frame, c_geoms, problems


def _lead_of(codes: np.ndarray, appointments: pd.DataFrame, kind: str, ts: pd.Timestamp) -> np.ndarray:
    """The lead planner id of each zone code of ``kind`` (None when there is none or the code is None)."""
    from zeren.geo.appointments import leads_as_of

    of_kind = appointments[(appointments["zone_kind"] == kind).to_numpy(dtype=bool)]
    leads = leads_as_of(of_kind, ts)
    lookup = pd.Series(leads["planner_id"].to_numpy(object), index=leads["zone_code"].astype(str).to_numpy(object))
    found = pd.Index(lookup.index).get_indexer(pd.Index(np.asarray(codes, dtype=object)))
    values = np.append(lookup.to_numpy(object), None)
    return values[found]  # -1 (not found) picks the trailing None


def _check_by(kind: str, by: str) -> None:
    """Rows of base units group them by their own kind or a coarser one (subdistricts by district, not the
    reverse: a finer grouping has no answer, GEOS would only fail on it)."""
    if kind not in BASE_KINDS or by not in BASE_KINDS or by == kind:
        return
    parents, k = [], kind
    while k in PARENT_KIND:
        k = PARENT_KIND[k]
        parents.append(k)
    if by not in parents:
        hint = f"use by={' or by='.join(parents)}" if parents else f"{kind} is the coarsest kind: nothing holds it"
        raise GeoInputError(f"by: {by} is not a parent kind of {kind}; the rows group units by a coarser kind "
                            f"({hint})")


def coverage_summary(zones: gpd.GeoDataFrame, appointments: pd.DataFrame, *, kind: str = "subdistrict",
                     by: str = "district", as_of=None, crs=None) -> CoverageSummary:
    """Per ``by`` unit: ``kind`` units with a lead, area and population covered, life circles with a
    planner (life circles reach their planner through :func:`life_circle_planners` with ``kind`` as
    the base kind). Covered ground is the parent minus the gaps of ``coverage_gaps``'s construction."""
    _prep.check_kind(kind)
    _prep.check_kind(by, "parent kind")
    _check_by(kind, by)
    ts = _prep.as_of_timestamp(as_of)
    zones = _prep.check_zones(zones)
    appointments = _prep.check_appointments(appointments)
    units = _prep.active_layer(zones, kind, ts)
    parents = _prep.active_layer(zones, by, ts)
    metric = _prep.metric_for(zones, crs) if len(zones) else None
    circles, c_geoms, bad_circles = _life_circles(zones, appointments, ts, kind, metric, strict=False)
    if units.empty or parents.empty:
        missing = kind if units.empty else by
        return CoverageSummary(kind, by, ts, None, pd.DataFrame(columns=SUMMARY_COLUMNS), _totals(None),
                               circles.assign(parent_code=None), _prep._problems("", [], []), True,
                               f"nothing to cover: no {missing!r} zones valid on {_prep.day(ts)}"
                               + _prep.kinds_hint(zones, ts, "--kind" if units.empty else "--by"))
    codes = units["code"].astype(str).to_numpy(object)
    p_codes = parents["code"].astype(str).to_numpy(object)
    p_geoms, bad_parents = _prep.repair(_prep.geometry_array(parents), by, p_codes)
    u_geoms, bad_units = _prep.repair(_prep.geometry_array(units), kind, codes)
    invalid = pd.concat([p for p in (bad_parents, bad_units, bad_circles) if len(p)] or [bad_units],
                        ignore_index=True)
    invalid = invalid.drop_duplicates().sort_values(["kind", "code"], ignore_index=True)
    led = _prep.has_lead(codes, _prep.lead_codes(appointments, kind, ts))
    territory, p_method = _prep.union_polygons(p_geoms, metric)
    disjoint = p_method == "coverage_union"

    # Units and life circles to parents, by largest overlap.
    located = ~shapely.is_missing(u_geoms)
    u_area = np.zeros(len(units))
    u_area[located] = metric.area(u_geoms[located])
    parent_of = np.full(len(units), -1)
    parent_of[located] = _prep.largest_overlap(u_geoms[located], p_geoms, metric, u_area[located], disjoint)
    c_located = ~shapely.is_missing(c_geoms)
    circle_parent = np.full(len(circles), -1)
    circle_parent[c_located] = _prep.largest_overlap(c_geoms[c_located], p_geoms, metric,
                                                     parents_disjoint=disjoint)

    # Ground: each parent minus the gaps (the territory minus the led units, as coverage_gaps finds it).
    p_area = metric.area(p_geoms)
    ground = uncovered_ground(territory, u_geoms, led, kind, codes, metric)
    pieces = np.concatenate([ground.unit_pieces, ground.bare_pieces])
    projected = np.concatenate([ground.unit_projected, ground.bare_projected])
    missing = shapely.is_missing(projected)
    projected[missing] = metric(pieces[missing])
    piece_area = shapely.area(projected)
    gt = _prep.overlap_table(pieces, p_geoms, metric, piece_area, disjoint, children_inside=True)
    gap = np.bincount(gt.parent, weights=gt.area_m2, minlength=len(parents))

    pop = _prep.population(units)
    known = pop.notna().to_numpy()
    pop_values = pop.fillna(0).to_numpy(dtype=float)
    assigned = parent_of >= 0
    g = parent_of[assigned]
    n = len(parents)
    table = pd.DataFrame({
        "code": p_codes,
        "name": _prep.optional_column(parents, "name").to_numpy(object),
        "units_total": np.bincount(g, minlength=n),
        "units_with_lead": np.bincount(g, weights=led[assigned], minlength=n).astype(int),
        "area_m2": p_area,
        "covered_area_m2": np.clip(p_area - gap, 0.0, None),
        "population": _int_or_na(np.bincount(g, weights=pop_values[assigned], minlength=n),
                                 np.bincount(g, weights=known[assigned], minlength=n)),
        "population_covered": _int_or_na(np.bincount(g, weights=(pop_values * led)[assigned], minlength=n),
                                         np.bincount(g, weights=known[assigned], minlength=n)),
    })
    cp = circle_parent[circle_parent >= 0]
    has = circles["has_planner"].to_numpy(dtype=bool)[circle_parent >= 0]
    table["life_circles_total"] = np.bincount(cp, minlength=n)
    table["life_circles_with_planner"] = np.bincount(cp, weights=has, minlength=n).astype(int)
    table = _percentages(table)[SUMMARY_COLUMNS]
    totals = _totals(table, float(metric.area(np.array([territory], dtype=object))[0]), float(piece_area.sum()))
    circles = circles.assign(parent_code=np.append(p_codes, None)[circle_parent] if len(circles) else [])
    return CoverageSummary(kind, by, ts, metric.crs, table, totals, circles, invalid)


def _int_or_na(values: np.ndarray, counts: np.ndarray) -> pd.Series:
    out = pd.Series(np.round(values).astype("int64"), dtype="Int64")
    return out.mask(counts == 0)


def _pct(part, whole) -> np.ndarray:
    part = np.asarray(pd.Series(part).astype("Float64").to_numpy(dtype=float, na_value=np.nan))
    whole = np.asarray(pd.Series(whole).astype("Float64").to_numpy(dtype=float, na_value=np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(whole > 0, 100.0 * part / whole, np.nan)


def _percentages(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(
        units_with_lead_pct=_pct(table["units_with_lead"], table["units_total"]),
        area_covered_pct=_pct(table["covered_area_m2"], table["area_m2"]),
        population_covered_pct=_pct(table["population_covered"], table["population"]),
        life_circles_with_planner_pct=_pct(table["life_circles_with_planner"], table["life_circles_total"]),
    )


def _totals(table: pd.DataFrame | None, territory_m2: float = 0.0, gap_m2: float = 0.0) -> dict:
    """The whole layer's figures (areas from the parents' union, so overlapping parents count once)."""
    if table is None or table.empty:
        return {c: 0 for c in SUMMARY_COLUMNS if c not in ("code", "name")} | {"code": None, "name": None}
    population = table["population"]
    row = {
        "code": None, "name": None,
        "units_total": int(table["units_total"].sum()),
        "units_with_lead": int(table["units_with_lead"].sum()),
        "area_m2": territory_m2,
        "covered_area_m2": max(territory_m2 - gap_m2, 0.0),
        "population": int(population.sum()) if population.notna().any() else None,
        "population_covered": (int(table["population_covered"].sum())
                               if population.notna().any() else None),
        "life_circles_total": int(table["life_circles_total"].sum()),
        "life_circles_with_planner": int(table["life_circles_with_planner"].sum()),
    }
    pct = _percentages(pd.DataFrame([row]).astype({"population": "Float64", "population_covered": "Float64"}))
    row.update({c: (None if pd.isna(pct[c].iloc[0]) else float(pct[c].iloc[0]))
                for c in ("units_with_lead_pct", "area_covered_pct", "population_covered_pct",
                          "life_circles_with_planner_pct")})
    return {c: row[c] for c in SUMMARY_COLUMNS}
