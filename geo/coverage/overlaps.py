"""Collisions: same-kind zones that overlap (a broken tiling), and two leads on one zone at once."""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from zeren.geo.coverage import _prep
from zeren.geo.validity import active_mask, windows_overlap

OVERLAP_COLUMNS = {"code_a": "str", "name_a": "str", "code_b": "str", "name_b": "str", "area_m2": "float64",
                   "share_a_pct": "float64", "share_b_pct": "float64"}
CONFLICT_COLUMNS = ["zone_kind", "zone_code", "appointment_a", "planner_a", "start_a", "end_a",
                    "appointment_b", "planner_b", "start_b", "end_b", "overlap_start", "overlap_end"]


@dataclass(frozen=True)
class OverlapsResult:
    """Overlapping zones of one kind as of a date, and conflicting lead appointments.

    ``overlaps``: code_a < code_b, their names, area_m2 of the intersection, share_a_pct / share_b_pct
    (the intersection as a share of each zone), geometry (the intersection, EPSG:4326); only pairs over
    ``tolerance_m2``, sorted by code_a, code_b. ``conflicts``: see :func:`lead_conflicts`.
    ``method``: "coverage" when the layer verified as a clean coverage (no pair can overlap), "pairs"
    when candidate pairs were tested.
    """

    kind: str
    as_of: pd.Timestamp
    tolerance_m2: float
    metric_crs: CRS | None
    method: str
    zones_checked: int
    overlaps: gpd.GeoDataFrame
    conflicts: pd.DataFrame
    invalid: pd.DataFrame
    nothing_to_cover: bool = False
    message: str = ""


def find_overlaps(zones: gpd.GeoDataFrame, appointments: pd.DataFrame | None = None, *,
                  kind: str = "subdistrict", as_of=None, tolerance_m2: float = 1.0, crs=None) -> OverlapsResult:
    """Pairs of ``kind`` zones valid on ``as_of`` sharing more than ``tolerance_m2``, and the lead
    conflicts on zones of that kind in force on ``as_of``.

    Candidate pairs come from an STRtree; only pairs whose interiors meet (DE-9IM ``T********``) are
    intersected and measured. When the layer's coverage union verifies, no pair can overlap and the
    pair test is skipped.
    """
    _prep.check_kind(kind)
    if not tolerance_m2 >= 0:
        raise _prep.GeoInputError("tolerance_m2 must be a number >= 0")
    ts = _prep.as_of_timestamp(as_of)
    zones = _prep.check_zones(zones)
    appointments = _prep.check_appointments(appointments)
    conflicts = lead_conflicts(appointments, kind=kind, on=ts)
    units = _prep.active_layer(zones, kind, ts)
    codes = units["code"].astype(str).to_numpy(object)
    geoms, invalid = _prep.repair(_prep.geometry_array(units), kind, codes)
    if units.empty:
        return OverlapsResult(kind, ts, float(tolerance_m2), None, "empty", 0,
                              _prep.empty_geoframe(OVERLAP_COLUMNS), conflicts, invalid, True,
                              f"nothing to cover: no {kind!r} zones valid on {_prep.day(ts)}"
                              + _prep.kinds_hint(zones, ts))
    metric = _prep.metric_for(zones, crs)
    a, b, pieces, method = overlap_pairs(geoms, metric)
    area = shapely.area(pieces)
    keep = area > tolerance_m2
    a, b, pieces, area = a[keep], b[keep], metric.back(pieces[keep]), area[keep]
    own = np.zeros(len(geoms))
    involved = np.unique(np.concatenate([a, b]))
    own[involved] = metric.area(geoms[involved])
    names = _prep.optional_column(units, "name").to_numpy(object)
    frame = gpd.GeoDataFrame({
        "code_a": pd.Series(codes[a], dtype="str"), "name_a": pd.Series(names[a], dtype="str"),
        "code_b": pd.Series(codes[b], dtype="str"), "name_b": pd.Series(names[b], dtype="str"),
        "area_m2": area,
        "share_a_pct": 100.0 * area / np.where(own[a] > 0, own[a], np.nan),
        "share_b_pct": 100.0 * area / np.where(own[b] > 0, own[b], np.nan),
    }, geometry=gpd.GeoSeries(pieces, crs=_prep.WGS84), crs=_prep.WGS84)
    frame = frame.sort_values(["code_a", "code_b"], kind="stable", ignore_index=True)
    return OverlapsResult(kind, ts, float(tolerance_m2), metric.crs, method, int(len(units)), frame,
                          conflicts, invalid)


def overlap_pairs(geoms: np.ndarray, metric: _prep.Metric) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(index a, index b, polygonal intersection in the metric CRS, method) for every pair a < b of
    lon/lat geometries whose interiors meet; missing geometries are skipped."""
    geoms = np.asarray(geoms, dtype=object)
    none = (np.zeros(0, int), np.zeros(0, int), np.zeros(0, dtype=object))
    present = np.flatnonzero(~shapely.is_missing(geoms))
    if len(present) < 2:
        return (*none, "pairs")
    _, method = _prep.union_polygons(geoms[present], fallback=False)
    if method == "coverage_union":
        return (*none, "coverage")
    tree = shapely.STRtree(geoms[present])
    i, j = tree.query(geoms[present])
    keep = i < j
    i, j = present[i[keep]], present[j[keep]]
    meet = shapely.relate_pattern(geoms[i], geoms[j], "T********")
    i, j = i[meet], j[meet]
    involved, back = np.unique(np.concatenate([i, j]), return_inverse=True)
    projected = metric(geoms[involved])
    pieces = _prep.polygonal_part(shapely.intersection(projected[back[:len(i)]], projected[back[len(i):]]))
    solid = ~shapely.is_empty(pieces)
    return i[solid], j[solid], pieces[solid], "pairs"


def lead_conflicts(appointments: pd.DataFrame, *, kind: str | None = None, on=None) -> pd.DataFrame:
    """Pairs of lead appointments on one zone whose validity windows overlap (geo.validity.windows_overlap).

    ``on``: only conflicts in force that day (both appointments active); None: every conflict ever.
    Columns: zone_kind, zone_code, appointment_a < appointment_b (ids), planner_a/b, start_a/b, end_a/b,
    overlap_start, overlap_end (NaT = open); sorted by zone_kind, zone_code, appointment_a, appointment_b.
    """
    appointments = _prep.check_appointments(appointments)
    if kind is not None:
        _prep.check_kind(kind)
    leads = appointments[(appointments["role"] == "lead").to_numpy(dtype=bool)]
    if kind is not None:
        leads = leads[(leads["zone_kind"] == kind).to_numpy(dtype=bool)]
    if on is not None:
        leads = leads[active_mask(leads["start"], leads["end"], _prep.as_of_timestamp(on))]
    ids = leads["id"] if "id" in leads.columns else pd.Series(np.arange(len(leads)), index=leads.index)
    slim = pd.DataFrame({
        "zone_kind": leads["zone_kind"].astype(str).to_numpy(object),
        "zone_code": leads["zone_code"].astype(str).to_numpy(object),
        "appointment": ids.to_numpy(), "planner": leads["planner_id"].astype(str).to_numpy(object),
        # nanosecond resolution, as layers/CONTRACT.md says the frames hold
        "start": pd.to_datetime(leads["start"]).astype("datetime64[ns]").to_numpy(),
        "end": pd.to_datetime(leads["end"]).astype("datetime64[ns]").to_numpy(),
    })
    shared = slim[slim.duplicated(["zone_kind", "zone_code"], keep=False)]
    pairs = shared.merge(shared, on=["zone_kind", "zone_code"], suffixes=("_a", "_b"))
    pairs = pairs[(pairs["appointment_a"] < pairs["appointment_b"]).to_numpy(dtype=bool)]
    pairs = pairs[windows_overlap(pairs["start_a"], pairs["end_a"], pairs["start_b"], pairs["end_b"])]
    pairs = pairs.assign(
        overlap_start=pairs[["start_a", "start_b"]].max(axis=1),
        overlap_end=pairs[["end_a", "end_b"]].min(axis=1),  # NaT (open) loses to any date
    )
    out = pairs[CONFLICT_COLUMNS].sort_values(["zone_kind", "zone_code", "appointment_a", "appointment_b"],
                                              kind="stable", ignore_index=True)
    for col in ("start_a", "end_a", "start_b", "end_b", "overlap_start", "overlap_end"):
        out[col] = pd.to_datetime(out[col]).astype("datetime64[ns]")
    return out
