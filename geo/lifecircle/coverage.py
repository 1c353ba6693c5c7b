"""Who is the lead planner (责任规划师) of each life circle?

A circle's own appointment (zone kind ``life_circle`` with the circle's code) wins; otherwise the lead of
the base zone under it with the largest overlap, taking the most specific base kind that has a lead
(``geo.kinds.BASE_KINDS`` order: community, village, subdistrict, district). Areas are measured in a
metric CRS.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from zeren.geo.kinds import BASE_KINDS, KIND_LABELS, LIFE_CIRCLE
from zeren.geo.lifecircle._crs import bounds_wgs84, metric_crs, require_crs
from zeren.geo.lifecircle.errors import LifeCircleError
from zeren.geo.validity import active_mask

PLANNER_COLUMNS = ["code", "planner_id", "via", "via_zh", "zone_kind", "zone_code", "share", "covered"]
OWN = ("本生活圈任命", "own appointment")
NONE = ("无责任规划师覆盖", "no planner covers it")


def _empty_result() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in PLANNER_COLUMNS})


def circle_planners(circles: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, leads: pd.DataFrame, *,
                    as_of=None) -> pd.DataFrame:
    """One row per circle: ``code, planner_id, via, via_zh, zone_kind, zone_code, share, covered``.

    ``leads`` is ``geo.appointments.leads_as_of(...)`` (zone_kind, zone_code, planner_id). ``share`` is the
    part of the circle's area inside the zone that gave the lead (1.0 for its own appointment, 0 when no
    planner covers it). With ``as_of`` the zones are first narrowed to the editions valid that day.
    Circles no planner covers have ``covered == False`` (see ``uncovered_circles``).
    """
    for frame, what in ((circles, "circles"), (zones, "zones")):
        if not isinstance(frame, gpd.GeoDataFrame):
            raise LifeCircleError(f"{what} must be a GeoDataFrame")
    require_crs(circles, "生活圈 circles")
    missing = [c for c in ("zone_kind", "zone_code", "planner_id") if c not in leads.columns]
    if missing or "code" not in circles.columns or not {"kind", "code"} <= set(zones.columns):
        raise LifeCircleError("circle_planners needs circles[code], zones[kind, code] and "
                              "leads[zone_kind, zone_code, planner_id]")
    if len(circles) == 0:
        return _empty_result()
    codes = circles["code"].astype(str).to_numpy()
    lead = leads.assign(zone_code=leads["zone_code"].astype(str))

    out = pd.DataFrame({"code": codes, "planner_id": None, "via": NONE[1], "via_zh": NONE[0],
                        "zone_kind": None, "zone_code": None, "share": 0.0, "covered": False})
    own = lead[lead["zone_kind"] == LIFE_CIRCLE].drop_duplicates("zone_code").set_index("zone_code")["planner_id"]
    has_own = np.isin(codes, own.index.to_numpy())
    out.loc[has_own, "planner_id"] = own.reindex(codes[has_own]).to_numpy()
    out.loc[has_own, ["via", "via_zh", "zone_kind", "share", "covered"]] = [OWN[1], OWN[0], LIFE_CIRCLE, 1.0, True]
    out.loc[has_own, "zone_code"] = codes[has_own]

    rest = np.flatnonzero(~has_own)
    base = zones[zones["kind"].isin(BASE_KINDS)]
    if as_of is not None and {"valid_from", "valid_to"} <= set(base.columns):
        base = base[active_mask(base["valid_from"], base["valid_to"], as_of)]
    if len(rest) and len(base):
        base = base.assign(code=base["code"].astype(str)).merge(
            lead[["zone_kind", "zone_code", "planner_id"]], left_on=["kind", "code"],
            right_on=["zone_kind", "zone_code"], how="inner")
    if len(rest) == 0 or len(base) == 0:
        return out
    require_crs(base, "分区 zones")
    crs = metric_crs(bounds_wgs84(circles.geometry))
    circ = np.asarray(circles.geometry.to_crs(crs).values, dtype=object)[rest]
    zone_geom = np.asarray(gpd.GeoSeries(base.geometry.values, crs=zones.crs).to_crs(crs).values, dtype=object)
    ci, zi = shapely.STRtree(zone_geom).query(circ, predicate="intersects")
    if len(ci) == 0:
        return out
    area = shapely.area(shapely.intersection(circ[ci], zone_geom[zi]))
    circle_area = shapely.area(circ)
    level = base["kind"].map({k: i for i, k in enumerate(BASE_KINDS)}).to_numpy()[zi]
    zcode = base["code"].to_numpy()[zi]
    cand = pd.DataFrame({"ci": ci, "zi": zi, "area": area, "level": level, "zcode": zcode})
    cand = cand[cand["area"] > 0]
    # Most specific kind first, then the largest overlap, then the zone code (deterministic).
    cand = cand.sort_values(["ci", "level", "area", "zcode"], ascending=[True, True, False, True], kind="stable")
    best = cand.drop_duplicates("ci")
    rows = rest[best["ci"].to_numpy()]
    picked = base.iloc[best["zi"].to_numpy()]
    kinds = picked["kind"].to_numpy()
    out.loc[rows, "planner_id"] = picked["planner_id"].to_numpy()
    out.loc[rows, "zone_kind"] = kinds
    out.loc[rows, "zone_code"] = picked["code"].to_numpy()
    out.loc[rows, "via"] = [f"base zone {k} {c}" for k, c in zip(kinds, picked["code"])]
    out.loc[rows, "via_zh"] = [f"基础分区 {KIND_LABELS[k][0]} {c}" for k, c in zip(kinds, picked["code"])]
    with np.errstate(invalid="ignore", divide="ignore"):
        out.loc[rows, "share"] = np.round(best["area"].to_numpy() / circle_area[best["ci"].to_numpy()], 4)
    out.loc[rows, "covered"] = True
    out["share"] = out["share"].astype(float)
    out["covered"] = out["covered"].astype(bool)
    return out


def uncovered_circles(planners: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``circle_planners(...)`` that no planner covers."""
    return planners[~planners["covered"].astype(bool)].reset_index(drop=True)


__all__ = ["circle_planners", "uncovered_circles"]
