"""Planner workload as of a date, and how evenly it is spread over the lead planners."""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from zeren.geo.appointments import active_appointments
from zeren.geo.coverage import _prep
from zeren.geo.validity import active_mask

# weight name -> column of WorkloadResult.planners it is read from
WEIGHTS: dict[str, str] = {"area": "lead_area_km2", "population": "lead_population", "zones": "zones_lead",
                           "projects": "projects_open"}
WORKLOAD_COLUMNS = ["planner_id", "name", "zones_lead", "zones_member", "zones_consultant", "lead_area_km2",
                    "lead_population", "projects_open", "projects_total"]


@dataclass(frozen=True)
class Imbalance:
    """How unevenly one weight is spread over the lead planners (those with at least one lead zone).

    ``max_to_median`` is inf when the median is 0 and the maximum is not; ``gini`` is 0 for a perfectly
    even spread and tends to 1 when one planner carries everything; both NaN without lead planners.
    ``most_loaded`` / ``least_loaded``: planner ids, heaviest / lightest first (ties by id).
    """

    weight: str
    column: str
    planners: int
    total: float
    max: float
    median: float
    max_to_median: float
    gini: float
    most_loaded: tuple[str, ...]
    least_loaded: tuple[str, ...]


@dataclass(frozen=True)
class WorkloadResult:
    """Per planner as of a date (``planners``, sorted by planner_id): zones_lead / zones_member /
    zones_consultant (zones held in each role), lead_area_km2 and lead_population (summed over the lead
    zones valid on the date; population NA when none is known), projects_open / projects_total (as lead
    or consulted; open = status other than "feedback"). ``unmatched``: active appointments whose zone has
    no edition valid on the date (they count as zones held, with no area)."""

    as_of: pd.Timestamp
    metric_crs: CRS | None
    planners: pd.DataFrame
    imbalance: Imbalance
    unmatched: pd.DataFrame
    message: str = ""


def gini(values) -> float:
    """Gini coefficient of non-negative values (0: all equal; NaN when there are none)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return float("nan")
    total = x.sum()
    if total <= 0:
        return 0.0
    return float(2.0 * np.sum(np.arange(1, n + 1) * x) / (n * total) - (n + 1) / n)


def planner_workload(zones: gpd.GeoDataFrame, appointments: pd.DataFrame, projects: pd.DataFrame | None = None,
                     planners: pd.DataFrame | None = None, *, as_of=None, weight: str = "area",
                     kinds=None, top: int = 3, crs=None) -> WorkloadResult:
    """Workload per planner on ``as_of`` and the city-wide imbalance of ``weight`` (area, population,
    zones or projects). ``kinds`` limits the zones counted (default: every kind); ``projects`` created
    after ``as_of`` are left out; ``planners`` adds names and the planners who hold nothing."""
    if weight not in WEIGHTS:
        raise _prep.GeoInputError(f"unknown weight {weight!r}; use one of: {', '.join(WEIGHTS)}")
    ts = _prep.as_of_timestamp(as_of)
    zones = _prep.check_zones(zones)
    appointments = _prep.check_appointments(appointments)
    if kinds is not None:
        kinds = tuple(_prep.check_kind(k) for k in ([kinds] if isinstance(kinds, str) else kinds))

    active = active_appointments(appointments, ts)
    if kinds is not None:
        active = active[active["zone_kind"].isin(kinds).to_numpy(dtype=bool)]
    held = pd.DataFrame({
        "planner_id": active["planner_id"].astype(str).to_numpy(object),
        "zone_kind": active["zone_kind"].astype(str).to_numpy(object),
        "zone_code": active["zone_code"].astype(str).to_numpy(object),
        "role": active["role"].astype(str).to_numpy(object),
    }).drop_duplicates()
    counts = pd.crosstab(held["planner_id"], held["role"]).reindex(columns=["lead", "member", "consultant"],
                                                                  fill_value=0)
    counts.columns = ["zones_lead", "zones_member", "zones_consultant"]

    leads = held[held["role"] == "lead"]
    metric = _prep.metric_for(zones, crs) if len(zones) else None
    measured, unmatched = _lead_measures(zones, leads, ts, metric)
    grouped = measured.groupby("planner_id")
    per_planner = pd.DataFrame({"lead_area_km2": grouped["area_km2"].sum(),
                                "lead_population": grouped["population"].sum(min_count=1)})

    involved = _projects_per_planner(projects, ts)
    ids = set(held["planner_id"]) | set(involved.index)
    if planners is not None and "id" in planners.columns:
        ids |= set(planners["id"].astype(str))
    frame = pd.DataFrame(index=pd.Index(sorted(ids), name="planner_id", dtype=object))
    frame = frame.join(counts).join(per_planner).join(involved)
    for col in ("zones_lead", "zones_member", "zones_consultant", "projects_open", "projects_total"):
        frame[col] = frame[col].fillna(0).astype("int64") if col in frame else 0
    frame["lead_area_km2"] = frame["lead_area_km2"].astype(float).fillna(0.0)
    frame["lead_population"] = pd.to_numeric(frame["lead_population"], errors="coerce").round().astype("Int64")
    names = (planners.assign(id=planners["id"].astype(str)).drop_duplicates("id").set_index("id")["name"]
             if planners is not None and {"id", "name"} <= set(planners.columns) else pd.Series(dtype=object))
    frame["name"] = names.reindex(frame.index).to_numpy(object)
    frame = frame.reset_index()[WORKLOAD_COLUMNS]
    frame["planner_id"] = frame["planner_id"].astype(object)
    if weight == "population" and len(leads) and frame["lead_population"].isna().all():
        raise _prep.GeoInputError(
            f"--weight population: no zone held by a lead planner on {_prep.day(ts)} has a population, so there is "
            f"nothing to weigh by; import the boundaries with --population-field FIELD (the field that holds the "
            f"population), or weigh by area, zones or projects")
    return WorkloadResult(ts, None if metric is None else metric.crs, frame,
                          imbalance(frame, weight, top), unmatched,
                          "" if len(frame) else f"nothing to cover: no planner holds a zone on {_prep.day(ts)}")


def imbalance(frame: pd.DataFrame, weight: str = "area", top: int = 3) -> Imbalance:
    """The spread of ``weight`` over the planners of a workload frame who lead at least one zone."""
    if weight not in WEIGHTS:
        raise _prep.GeoInputError(f"unknown weight {weight!r}; use one of: {', '.join(WEIGHTS)}")
    column = WEIGHTS[weight]
    leads = frame[frame["zones_lead"] > 0]
    values = pd.to_numeric(leads[column], errors="coerce").astype(float).fillna(0.0).to_numpy()
    ids = leads["planner_id"].astype(str).to_numpy(object)
    if len(values) == 0:
        nan = float("nan")
        return Imbalance(weight, column, 0, 0.0, nan, nan, nan, nan, (), ())
    high = np.lexsort((ids, -values))
    low = np.lexsort((ids, values))
    vmax, median = float(values.max()), float(np.median(values))
    ratio = vmax / median if median > 0 else (float("inf") if vmax > 0 else float("nan"))
    return Imbalance(weight, column, int(len(values)), float(values.sum()), vmax, median, ratio, gini(values),
                     tuple(ids[high[:top]]), tuple(ids[low[:top]]))


def _lead_measures(zones, leads: pd.DataFrame, ts, metric) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(planner_id, area_km2, population) per lead zone valid on ``ts``, and the leads whose zone is not."""
    wanted = zones[zones["kind"].isin(leads["zone_kind"].unique()).to_numpy(dtype=bool)]
    wanted = wanted[active_mask(wanted["valid_from"], wanted["valid_to"], ts)]
    keys = ["kind", "code", "edition"] if "edition" in wanted.columns else ["kind", "code"]
    wanted = wanted.assign(code=wanted["code"].astype(str)).sort_values(keys, kind="stable")
    wanted = wanted.drop_duplicates(["kind", "code"], keep="last")
    slim = pd.DataFrame({"zone_kind": wanted["kind"].astype(str).to_numpy(object),
                         "zone_code": wanted["code"].to_numpy(object),
                         "population": _prep.population(wanted).array,
                         "geometry": _prep.geometry_array(wanted)})
    joined = leads.merge(slim, on=["zone_kind", "zone_code"], how="left", indicator=True)
    found = (joined["_merge"] == "both").to_numpy()
    geoms = joined["geometry"].to_numpy(object)
    area = np.zeros(len(joined))
    ok = found & ~shapely.is_missing(geoms)
    if ok.any():
        fixed, _ = _prep.repair(geoms[ok], "", np.zeros(ok.sum(), dtype=object))
        area[ok] = metric.area(fixed) / 1e6
    measured = pd.DataFrame({"planner_id": joined["planner_id"].to_numpy(object), "area_km2": area,
                             "population": joined["population"].astype("Int64").array})
    unmatched = joined.loc[~found, ["planner_id", "zone_kind", "zone_code"]].sort_values(
        ["planner_id", "zone_kind", "zone_code"], ignore_index=True)
    return measured, unmatched


def _projects_per_planner(projects: pd.DataFrame | None, ts: pd.Timestamp) -> pd.DataFrame:
    """projects_open / projects_total per planner id: lead or consulted, created by the end of ``ts``."""
    empty = pd.DataFrame({"projects_open": pd.Series(dtype="int64"), "projects_total": pd.Series(dtype="int64")},
                         index=pd.Index([], name="planner_id", dtype=object))
    if projects is None or len(projects) == 0:
        return empty
    _prep.check_columns(projects, ("status",), "projects")
    if "created_at" in projects.columns:
        created = pd.to_datetime(projects["created_at"], errors="coerce", utc=True, format="ISO8601")
        created = created.dt.tz_convert(None)
        projects = projects[(created.isna() | (created < ts + pd.Timedelta(days=1))).to_numpy(dtype=bool)]
    ids = projects["id"] if "id" in projects.columns else pd.Series(np.arange(len(projects)), index=projects.index)
    base = pd.DataFrame({"project": ids.to_numpy(), "open": (projects["status"] != "feedback").to_numpy(dtype=bool)})
    lead = base.assign(planner_id=_prep.optional_column(projects, "lead_planner_id").to_numpy(object))
    consulted = base.assign(planner_id=_prep.optional_column(projects, "consultation_planner_ids").to_numpy(object))
    consulted = consulted.explode("planner_id")
    both = pd.concat([lead, consulted], ignore_index=True)
    both = both[both["planner_id"].notna()]
    both = both.assign(planner_id=both["planner_id"].astype(str)).drop_duplicates(["planner_id", "project"])
    if both.empty:
        return empty
    out = both.groupby("planner_id").agg(projects_open=("open", "sum"), projects_total=("project", "size"))
    out.index = out.index.astype(object)
    return out.astype("int64")
