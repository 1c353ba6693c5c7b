"""The annual evaluation (年度考核): a planner's year and the city's year, computed from the store as of the
year's dates (``zeren report planner|city`` and ``GET /reports/...``).

Every figure is the service's: the doors only render it (HTML by :mod:`zeren.maps.report`, PDF from the same
HTML, or JSON). The year runs from 1 January (start-inclusive) to 1 January of the next year (end-exclusive),
as every validity window does; "at the end of the year" means on 31 December.

* territory: the zones the planner holds on 31 December (appointments and editions in force then), their area,
  population and the life circles reached through them;
* projects: those where the planner is lead or consulted, alive during the year, with the days each workflow
  stage took (the stage open at the year's end counts to 31 December and is marked open);
* feedback: the cases received during the year and routed to the planner (lead or consultant); answered =
  replied before the year's end; response time = hours from receipt to reply; rating = the residents' rating of
  those replies (a rating belongs to its reply, whenever it was given);
* discipline gaps: the zones (teams included) short of a required discipline on 31 December;
* city percentile: where the planner's figure stands among every planner of the store (mid-rank: the share
  of planners below, plus half of those equal), NaN figures left out.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from zeren.api.jsonable import plain, records
from zeren.api.service.teams import discipline_gaps, teams
from zeren.api.service.workspace import Workspace
from zeren.geo import coverage
from zeren.geo.appointments import leads_as_of
from zeren.geo.crs import metric_crs, project_geometries
from zeren.geo.kinds import PROJECT_STATUSES
from zeren.geo.validity import windows_overlap
from zeren.layers.errors import InputFileError, ValidationError, ZerenError

FIRST_YEAR, LAST_YEAR = 1949, 2200

# figure -> (Chinese, English, better: "high" | "low")
FIGURES: dict[str, tuple[str, str, str]] = {
    "zones_lead": ("负责单元数", "zones as lead", "high"),
    "lead_area_km2": ("负责面积（平方公里）", "area led (km²)", "high"),
    "lead_population": ("负责人口", "population led", "high"),
    "life_circles": ("覆盖生活圈", "life circles reached", "high"),
    "projects": ("参与项目", "projects (lead or consulted)", "high"),
    "stage_moves": ("年内推进环节", "workflow steps taken in the year", "high"),
    "consultations": ("提供咨询", "consultations given", "high"),
    "feedback_received": ("收到留言", "feedback received", "high"),
    "feedback_answered": ("已答复留言", "feedback answered", "high"),
    "answer_rate": ("答复率", "answer rate", "high"),
    "median_response_hours": ("答复时长中位数（小时）", "median response time (hours)", "low"),
    "mean_rating": ("平均评分", "mean rating", "high"),
    "discipline_gaps": ("专业缺口单元", "zones short of a discipline", "low"),
}


@dataclass(frozen=True)
class Year:
    year: int

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 1, 1)

    @property
    def last(self) -> dt.date:
        return dt.date(self.year, 12, 31)

    @property
    def stop(self) -> dt.date:
        return dt.date(self.year + 1, 1, 1)

    @property
    def stop_ts(self) -> pd.Timestamp:
        return pd.Timestamp(self.stop, tz="UTC")


def check_year(year) -> Year:
    try:
        value = int(year)
        if isinstance(year, bool) or str(year).strip() != str(value):
            raise ValueError
    except (TypeError, ValueError):
        raise ValidationError(f"year: {str(year)[:20]!r} is not a year; write it as four digits, e.g. 2025") from None
    if not FIRST_YEAR <= value <= LAST_YEAR:
        raise ValidationError(f"year: {value} is out of range; give a year from {FIRST_YEAR} to {LAST_YEAR}")
    return Year(value)


def _utc(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601", errors="coerce")


# -- the pieces every report shares -----------------------------------------------------------------
def _in_force(ws: Workspace, day: dt.date) -> bool:
    return bool(ws.catalogue.index.active(day).any())


def _zones(ws: Workspace, day: dt.date):
    """Zones in force on ``day``; a zone without a population of its own (a district, typically) gets the sum
    of its children's (the zones whose parent it is), so a district lead's residents are counted."""
    zones = ws.catalogue.zone_frame(day) if _in_force(ws, day) else ws.catalogue.zone_frame(day).iloc[:0]
    own = pd.to_numeric(zones["population"], errors="coerce")
    children = own.groupby(zones["parent_code"].astype(str)).sum(min_count=1)
    filled = own.where(own.notna(), zones["code"].astype(str).map(children))
    return zones.assign(population=filled.astype("Float64").round().astype("Int64"))


def _lead_population(ws: Workspace, y: Year) -> pd.Series:
    """Residents of the zones each planner leads on the year's last day (see :func:`_zones`)."""
    zones = _zones(ws, y.last)
    leads = leads_as_of(ws.catalogue.appointments, y.last)
    keyed = pd.DataFrame({"zone_kind": zones["kind"].to_numpy(object), "zone_code": zones["code"].astype(str)
                          .to_numpy(object), "population": zones["population"].to_numpy()})
    joined = leads.assign(zone_code=leads["zone_code"].astype(str)).merge(keyed, on=["zone_kind", "zone_code"])
    return pd.to_numeric(joined["population"], errors="coerce").groupby(joined["planner_id"].astype(str)).sum()


def _workload(ws: Workspace, y: Year) -> coverage.WorkloadResult:
    catalogue = ws.catalogue
    projects = ws.store.projects()
    return coverage.planner_workload(catalogue.index.zones, catalogue.appointments, projects, catalogue.planners,
                                     as_of=y.last)


def _life_circles(ws: Workspace, y: Year) -> pd.Series:
    """Life circles reached per planner on the year's last day (own lead or through their subdistrict)."""
    if not _in_force(ws, y.last):
        return pd.Series(dtype="int64")
    circles = coverage.life_circle_planners(ws.catalogue.index.zones, ws.catalogue.appointments, as_of=y.last)
    reached = circles[circles["has_planner"].astype(bool)]
    return reached.groupby(reached["planner_id"].astype(str)).size()


def _year_feedback(ws: Workspace, y: Year) -> pd.DataFrame:
    """The cases received during the year: routed_to, zone_codes, received / replied / rated times (UTC), with
    ``answered`` (replied before the year's end), ``response_hours`` and ``rating`` (of those replies)."""
    cases = ws.store.find_feedback(since=y.start, until=y.last)
    frame = pd.DataFrame(cases.drop(columns="geometry"))
    received = _utc(frame["created_at"])
    replied = _utc(frame["replied_at"])
    answered = (replied.notna() & (replied < y.stop_ts)).to_numpy(dtype=bool)
    hours = ((replied - received).dt.total_seconds() / 3600).where(answered)
    rating = pd.to_numeric(frame["rating"], errors="coerce").where(answered)  # the rating of a reply of the year
    return pd.DataFrame({"ref": frame["ref"], "category": frame["category"], "text": frame["text"],
                         "routed_to": frame["routed_to"], "zone_codes": frame["zone_codes"],
                         "received_at": received, "answered": answered, "response_hours": hours.astype(float),
                         "rating": rating.astype(float), "synthetic": frame["synthetic"]})


def _feedback_per_planner(cases: pd.DataFrame) -> pd.DataFrame:
    exploded = cases.explode("routed_to").dropna(subset=["routed_to"])
    exploded = exploded.assign(planner_id=exploded["routed_to"].astype(str))
    g = exploded.groupby("planner_id")
    out = pd.DataFrame({"feedback_received": g.size(), "feedback_answered": g["answered"].sum(),
                        "median_response_hours": g["response_hours"].median(), "mean_rating": g["rating"].mean()})
    out["answer_rate"] = out["feedback_answered"] / out["feedback_received"]
    return out


def _project_stages(ws: Workspace, y: Year) -> list[dict]:
    """Projects alive during the year (created before its end, not finished before its start), each with its
    stages: entered, left (or None while open at the year's end) and the days spent within reach of the year."""
    projects = ws.store.projects()
    out = []
    for p in projects.drop(columns="geometry").to_dict("records"):
        events = ws.store.project_events(int(p["id"]))
        at = _utc(events["at"])
        keep = (at < y.stop_ts).to_numpy(dtype=bool)
        events, at = events[keep].reset_index(drop=True), at[keep].reset_index(drop=True)
        if events.empty:
            continue  # created after the year
        moves = events["status"].ne(events["status"].shift()).to_numpy(dtype=bool)
        stages = []
        entered = at[moves].tolist()
        statuses = events["status"][moves].tolist()
        for i, (status, when) in enumerate(zip(statuses, entered)):
            left = entered[i + 1] if i + 1 < len(entered) else None
            finished = status == PROJECT_STATUSES[-1]
            end = left if left is not None else (when if finished else y.stop_ts)
            stages.append({"status": status, "entered": when.isoformat(), "left": None if left is None else
                           left.isoformat(), "open": left is None and not finished,
                           "days": round((end - when).total_seconds() / 86400, 1),
                           "moved_in_year": bool(when >= pd.Timestamp(y.start, tz="UTC"))})
        if statuses[-1] == PROJECT_STATUSES[-1] and entered[-1] < pd.Timestamp(y.start, tz="UTC"):
            continue  # finished before the year began
        out.append({"id": int(p["id"]), "name": p["name"], "type": p["type"], "status_at_end": statuses[-1],
                    "lead_planner_id": p["lead_planner_id"], "consulted": list(p["consultation_planner_ids"]),
                    "created_at": entered[0].isoformat(), "stages": stages,
                    "created_in_year": bool(entered[0] >= pd.Timestamp(y.start, tz="UTC"))})
    return out


def _projects_per_planner(projects: list[dict]) -> pd.DataFrame:
    rows = []
    for p in projects:
        moves = sum(s["moved_in_year"] for s in p["stages"])
        people = {p["lead_planner_id"], *p["consulted"]} - {None}
        for pid in people:
            rows.append({"planner_id": str(pid), "projects": 1, "stage_moves": moves,
                         "consultations": int(pid in p["consulted"] and p["created_in_year"])})
    if not rows:
        return pd.DataFrame(columns=["projects", "stage_moves", "consultations"], dtype="int64")
    return pd.DataFrame(rows).groupby("planner_id").sum()


def _gaps(ws: Workspace, y: Year) -> dict | None:
    if not _in_force(ws, y.last):
        return None
    return discipline_gaps(ws, y.last)


def _gaps_per_planner(gaps: dict | None) -> pd.Series:
    counts: dict[str, int] = {}
    for zone in (gaps or {}).get("short", []):
        for pid in zone["people"]:
            counts[pid] = counts.get(pid, 0) + 1
    return pd.Series(counts, dtype="int64")


def planner_figures(ws: Workspace, year) -> tuple[pd.DataFrame, dict]:
    """One row per planner of the store (sorted by id) with every figure of :data:`FIGURES` for the year, and
    the parts they came from (workload, projects, feedback cases, discipline gaps) for the reports to reuse."""
    y = check_year(year)
    planners = ws.catalogue.planners
    work = _workload(ws, y).planners.set_index("planner_id")
    cases = _year_feedback(ws, y)
    projects = _project_stages(ws, y)
    gaps = _gaps(ws, y)
    table = pd.DataFrame(index=pd.Index(sorted(planners["id"].astype(str)), name="planner_id"))
    table["name"] = planners.set_index(planners["id"].astype(str))["name"].reindex(table.index)
    table = table.join(work[["zones_lead", "zones_member", "zones_consultant", "lead_area_km2"]])
    table["lead_population"] = _lead_population(ws, y).reindex(table.index)
    table["life_circles"] = _life_circles(ws, y).reindex(table.index)
    table = table.join(_projects_per_planner(projects)).join(_feedback_per_planner(cases))
    table["discipline_gaps"] = _gaps_per_planner(gaps).reindex(table.index)
    for col in ("zones_lead", "zones_member", "zones_consultant", "life_circles", "projects", "stage_moves",
                "consultations", "feedback_received", "feedback_answered", "discipline_gaps"):
        table[col] = pd.to_numeric(table[col], errors="coerce").fillna(0).astype("int64")
    table["lead_area_km2"] = table["lead_area_km2"].astype(float).fillna(0.0).round(3)
    table["lead_population"] = pd.to_numeric(table["lead_population"], errors="coerce").fillna(0).astype("int64")
    for col in ("answer_rate", "median_response_hours", "mean_rating"):
        table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    return table.reset_index(), {"year": y, "cases": cases, "projects": projects, "gaps": gaps}


def percentile(values: pd.Series, value) -> float | None:
    """Mid-rank percentile of ``value`` among ``values`` (0-100; NaN values left out; None for a NaN value)."""
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    if value is None or pd.isna(value) or len(v) == 0:
        return None
    return round(100.0 * (np.sum(v < value) + 0.5 * np.sum(v == value)) / len(v), 1)


# -- the planner's year -----------------------------------------------------------------------------
def _territory(ws: Workspace, planner_id: str, y: Year) -> tuple:
    """(zones held on the last day, appointments overlapping the year, the zones' WGS84 frame)."""
    appts = ws.catalogue.appointments
    mine = appts[appts["planner_id"].astype(str) == planner_id]
    overlap = windows_overlap(mine["start"], mine["end"], pd.Series([pd.Timestamp(y.start)]),
                              pd.Series([pd.Timestamp(y.stop)]))
    year_appts = mine[overlap]
    zones = _zones(ws, y.last)
    held = year_appts[(year_appts["start"] <= pd.Timestamp(y.last))
                      & (year_appts["end"].isna() | (year_appts["end"] > pd.Timestamp(y.last)))]
    keyed = zones.assign(zone_kind=zones["kind"], zone_code=zones["code"].astype(str))
    drawn = keyed.merge(held[["zone_kind", "zone_code", "role"]], on=["zone_kind", "zone_code"], how="inner")
    metric = metric_crs(tuple(drawn.total_bounds)) if len(drawn) else None
    area = (shapely.area(project_geometries(drawn.geometry.to_numpy(), "EPSG:4326", metric)) / 1e6 if len(drawn)
            else np.zeros(0))
    held_rows = [{"kind": r["zone_kind"], "code": r["zone_code"], "name": r["name"], "role": r["role"],
                  "area_km2": round(float(a), 3),
                  "population": None if pd.isna(r["population"]) else int(r["population"])}
                 for r, a in zip(drawn.to_dict("records"), area)]
    appt_rows = [{"kind": r["zone_kind"], "code": r["zone_code"], "role": r["role"], "start": r["start"],
                  "end": r["end"]} for r in year_appts.to_dict("records")]
    return held_rows, plain(appt_rows), drawn


def planner_report(ws: Workspace, planner_id: str, year) -> dict:
    """The planner's year: territory, projects by stage, consultations, feedback, discipline gaps, and each
    figure's city percentile. ``empty`` (with a message) when the planner had nothing in the year."""
    y = check_year(year)
    planner = ws.store.planner(str(planner_id))  # NotFoundError for an unknown id
    pid = str(planner["id"])
    table, parts = planner_figures(ws, y.year)
    row = table.set_index("planner_id").loc[pid]
    held, appointments, drawn = _territory(ws, pid, y)
    projects = [p for p in parts["projects"] if p["lead_planner_id"] == pid or pid in p["consulted"]]
    cases = parts["cases"]
    mine = cases[[pid in r for r in cases["routed_to"]]]
    gaps = [z for z in (parts["gaps"] or {}).get("short", []) if pid in z["people"]]
    figures = []
    for key, (zh, en, better) in FIGURES.items():
        value = plain(row[key])
        figures.append({"key": key, "label": zh, "label_en": en, "better": better, "value": value,
                        "city_percentile": percentile(table[key], row[key]),
                        "city_median": plain(pd.to_numeric(table[key], errors="coerce").median())})
    empty = not appointments and not projects and mine.empty
    city_population = float(np.nansum(_districts(ws, y.last)["population"].to_numpy(float)))  # the residents
    return {
        "kind": "planner", "year": y.year, "start": y.start.isoformat(), "end": y.last.isoformat(),
        "planner": {k: planner.get(k) for k in ("id", "name", "organization", "disciplines", "public_contact")},
        "teams": _teams_of(ws, pid),
        "empty": bool(empty),
        "message": (f"{y.year} 年无数据：该规划师当年没有任命、项目或留言 / no data for {y.year}: the planner held no "
                    f"appointment and had no project or feedback that year") if empty else None,
        "facts": {"zones_held": len(held), "zones_lead": int(row["zones_lead"]),
                  "area_km2": round(sum(z["area_km2"] for z in held if z["role"] == "lead"), 3),
                  "population": int(row["lead_population"]), "life_circles": int(row["life_circles"]),
                  "share_of_city_population_led": (round(int(row["lead_population"]) / city_population, 4)
                                                    if city_population else None)},
        "zones": held, "appointments": appointments,
        "projects": projects,
        "consultations": [p for p in projects if pid in p["consulted"]],
        "feedback": {"received": int(row["feedback_received"]), "answered": int(row["feedback_answered"]),
                     "answer_rate": plain(row["answer_rate"]),
                     "median_response_hours": plain(row["median_response_hours"]),
                     "mean_rating": plain(row["mean_rating"]),
                     "cases": [{"ref": c["ref"], "category": c["category"], "text": c["text"][:200],
                                "received_at": c["received_at"].isoformat(), "answered": bool(c["answered"]),
                                "response_hours": plain(c["response_hours"]), "synthetic": bool(c["synthetic"])}
                               for c in mine.tail(12).to_dict("records")]},
        "discipline_gaps": gaps,
        "figures": figures,
        "planners_compared": int(len(table)),
        "geometry": drawn,  # for the map; dropped from JSON by report_json
    }


def _teams_of(ws: Workspace, pid: str) -> list[dict]:
    return [{"id": t["id"], "name": t["name"], "role": next((m["role"] for m in t["members"]
                                                               if m["planner_id"] == pid), "lead")}
            for t in teams(ws, planner_id=pid)]


# -- the city's year --------------------------------------------------------------------------------
def _coverage_on(ws: Workspace, day: dt.date) -> dict | None:
    if not _in_force(ws, day):
        return None
    result = coverage.coverage_summary(ws.catalogue.index.zones, ws.catalogue.appointments, kind="subdistrict",
                                       by="district", as_of=day)
    t = result.totals
    return {"day": day.isoformat(), "units_total": plain(t.get("units_total")),
            "units_with_lead": plain(t.get("units_with_lead")),
            "units_with_lead_pct": plain(t.get("units_with_lead_pct")),
            "population": plain(t.get("population")), "population_covered": plain(t.get("population_covered")),
            "population_covered_pct": plain(t.get("population_covered_pct"))}


def _without_lead(ws: Workspace, day: dt.date) -> dict[str, str]:
    """Subdistricts in force on ``day`` without a lead: code -> name."""
    if not _in_force(ws, day):
        return {}
    units = ws.catalogue.zone_frame(day, "subdistrict")
    leads = leads_as_of(ws.catalogue.appointments, day)
    led = set(leads.loc[leads["zone_kind"] == "subdistrict", "zone_code"].astype(str))
    return {str(c): n for c, n in zip(units["code"], units["name"]) if str(c) not in led}


def _districts(ws: Workspace, day: dt.date) -> pd.DataFrame:
    """Districts in force on ``day`` with their population (their own, else their subdistricts' sum)."""
    zones = _zones(ws, day)
    districts = zones[zones["kind"] == "district"]
    return pd.DataFrame({"code": districts["code"].astype(str).to_numpy(object),
                         "name": districts["name"].to_numpy(object),
                         "population": pd.to_numeric(districts["population"], errors="coerce").to_numpy(float)}
                        ).sort_values("code", ignore_index=True)


def city_report(ws: Workspace, year) -> dict:
    """The city's year: coverage at the start and the end, gaps closed and opened, workload imbalance (Gini),
    feedback per 10,000 residents per district, and a district ranking. ``empty`` when nothing was in force
    and nothing was received that year."""
    y = check_year(year)
    table, parts = planner_figures(ws, y.year)
    cases = parts["cases"]
    start, end = _coverage_on(ws, y.start), _coverage_on(ws, y.last)
    empty = start is None and end is None and cases.empty
    before, after = _without_lead(ws, y.start), _without_lead(ws, y.last)
    closed = [{"code": c, "name": n} for c, n in sorted(before.items()) if c not in after and _in_force(ws, y.last)]
    opened = [{"code": c, "name": n} for c, n in sorted(after.items()) if c not in before]
    work = _workload(ws, y).planners
    imbalance = {w: plain(coverage.imbalance(work, w).gini) for w in ("area", "population", "zones")}
    districts = _districts(ws, y.last)
    ranking = _district_ranking(districts, cases, parts["gaps"], ws, y)
    return {
        "kind": "city", "year": y.year, "start": y.start.isoformat(), "end": y.last.isoformat(),
        "empty": bool(empty),
        "message": (f"{y.year} 年无数据：当年没有生效的单元版本，也没有留言 / no data for {y.year}: no zone edition "
                    f"was in force and no feedback was received that year") if empty else None,
        "coverage_start": start, "coverage_end": end,
        "gaps_closed": closed, "gaps_opened": opened,
        "gaps_at_start": len(before), "gaps_at_end": len(after),
        "workload_gini": imbalance,
        "lead_planners": int((work["zones_lead"] > 0).sum()),
        "feedback": {"received": int(len(cases)), "answered": int(cases["answered"].sum()),
                     "median_response_hours": plain(cases["response_hours"].median()),
                     "mean_rating": plain(cases["rating"].mean()),
                     "synthetic": int(cases["synthetic"].sum())},
        "districts": ranking,
        "discipline": None if parts["gaps"] is None else {
            "zones_checked": parts["gaps"]["zones_checked"], "zones_staffed": parts["gaps"]["zones_staffed"],
            "share_staffed": parts["gaps"]["share_staffed"],
            "short": [{k: z[k] for k in ("kind", "code", "name", "missing_text")} for z in parts["gaps"]["short"]]},
        "planners": records(table.sort_values(["feedback_answered", "zones_lead", "planner_id"],
                                              ascending=[False, False, True]).head(15)),
        "planners_compared": int(len(table)),
    }


def _district_ranking(districts: pd.DataFrame, cases: pd.DataFrame, gaps: dict | None, ws: Workspace,
                      y: Year) -> list[dict]:
    """Per district: subdistricts with a lead, feedback received / per 10,000 residents / answered share /
    median response / mean rating, the share of zones fully staffed; ranked like the monthly street ranking
    (answer rate, then response time, then coverage)."""
    codes = set(districts["code"])
    district_of = [next((c for c in zc if c in codes), None) for zc in cases["zone_codes"]]
    cases = cases.assign(district=pd.Series(district_of, index=cases.index, dtype=object))
    staffed = {d["district_code"]: d["share_staffed"] for d in (gaps or {}).get("districts", [])}
    units = _zones(ws, y.last)
    units = units[units["kind"] == "subdistrict"]
    without = _without_lead(ws, y.last)
    parent = units["parent_code"].astype(str)
    n_units = parent.value_counts()
    n_led = parent[~units["code"].astype(str).isin(list(without))].value_counts()
    rows = []
    for d in districts.to_dict("records"):
        code = d["code"]
        mine = cases[(cases["district"] == code).to_numpy(dtype=bool)]
        total, led = int(n_units.get(code, 0)), int(n_led.get(code, 0))
        population = d["population"]
        rows.append({
            "code": code, "name": d["name"], "population": plain(population),
            "units": total, "units_with_lead": led,
            "units_with_lead_pct": round(100.0 * led / total, 1) if total else None,
            "feedback": int(len(mine)),
            "feedback_per_10k": (round(len(mine) / population * 10_000, 3)
                                 if population and not pd.isna(population) else None),
            "answer_rate": round(float(mine["answered"].mean()), 4) if len(mine) else None,
            "median_response_hours": plain(mine["response_hours"].median()) if len(mine) else None,
            "mean_rating": plain(mine["rating"].mean()) if len(mine) else None,
            "share_staffed": staffed.get(code),
        })

    def key(r):
        return (-(r["answer_rate"] if r["answer_rate"] is not None else -1),
                r["median_response_hours"] if r["median_response_hours"] is not None else float("inf"),
                -(r["units_with_lead_pct"] or 0), r["code"])
    for rank, r in enumerate(sorted(rows, key=key), start=1):
        r["rank"] = rank
    return sorted(rows, key=lambda r: r["rank"])


# -- output -----------------------------------------------------------------------------------------
def report_text(report: dict) -> str:
    """A few lines for the terminal (the full report is the HTML / PDF / JSON file)."""
    if report["empty"]:
        return report["message"]
    if report["kind"] == "planner":
        p, f, fb = report["planner"], report["facts"], report["feedback"]
        median = "—" if fb["median_response_hours"] is None else f"{fb['median_response_hours']:.1f} h"
        lines = [f"{p['name']} ({p['id']}) {report['year']} 年度考核 / annual evaluation",
                 f"  单元 zones held {f['zones_held']} (lead {f['zones_lead']}), {f['area_km2']:.2f} km², "
                 f"人口 population {f['population']:,}, 生活圈 life circles {f['life_circles']}",
                 f"  项目 projects {len(report['projects'])}, 咨询 consultations {len(report['consultations'])}",
                 f"  留言 feedback {fb['received']} received, {fb['answered']} answered, median {median}",
                 f"  专业缺口 discipline gaps {len(report['discipline_gaps'])}"]
        return "\n".join(lines)
    s, e, fb = report["coverage_start"] or {}, report["coverage_end"] or {}, report["feedback"]
    return "\n".join([
        f"全市 {report['year']} 年度总结 / the city's year {report['year']}",
        f"  有责任规划师的街道 subdistricts with a lead: {s.get('units_with_lead')} -> {e.get('units_with_lead')} "
        f"of {e.get('units_total')}",
        f"  空缺 gaps closed {len(report['gaps_closed'])}, opened {len(report['gaps_opened'])}",
        f"  工作量 Gini (area) {report['workload_gini']['area']}",
        f"  留言 feedback {fb['received']} received, {fb['answered']} answered",
        "  排名 ranking: " + ", ".join(f"{d['rank']}. {d['name']}" for d in report["districts"][:5])])



def report_json(report: dict) -> dict:
    """The report as JSON (the territory frame left out: the zones are listed)."""
    return plain({k: v for k, v in report.items() if k != "geometry"})


def report_html(ws: Workspace, report: dict) -> str:
    """The printable page set (Chinese first, English second; every name escaped)."""
    from zeren.maps.report import city_html, planner_html

    if report["kind"] == "planner":
        context = _context(ws, report)
        return planner_html(report, territory=report.get("geometry"), context=context)
    return city_html(report)


FORMATS = ("html", "pdf", "json")


def output_format(out, fmt: str | None) -> str:
    """The format to write: ``fmt`` when given, else the output file's suffix (default html)."""
    if fmt is None:
        suffix = str(out or "").lower().rsplit(".", 1)[-1] if out and "." in str(out) else "html"
        fmt = {"htm": "html"}.get(suffix, suffix)
    if fmt not in FORMATS:
        raise ValidationError(f"format: {str(fmt)[:20]!r}; write the report as {', '.join(FORMATS)}")
    return fmt


def write_report(ws: Workspace, report: dict, out, fmt: str, *, chromium: str | None = None) -> Path:
    """Write the report to the file ``out`` as html, pdf (the same HTML printed by headless Chromium) or json."""
    import json

    from zeren.maps.report import PDFError, html_to_pdf

    path = Path(out)
    if not path.parent.exists():
        raise InputFileError(f"{path}: the folder {path.parent} does not exist")
    if fmt == "json":
        path.write_text(json.dumps(report_json(report), ensure_ascii=False, indent=2), encoding="utf-8")
    elif fmt == "html":
        path.write_text(report_html(ws, report), encoding="utf-8")
    else:
        try:
            html_to_pdf(report_html(ws, report), path, chromium=chromium)
        except PDFError as exc:
            raise ZerenError(str(exc)) from None
    return path


def _context(ws: Workspace, report: dict):
    """The districts in force at the year's end, drawn grey under the planner's zones."""
    day = dt.date.fromisoformat(report["end"])
    zones = _zones(ws, day)
    return zones[zones["kind"] == "district"]


__all__ = ["FIGURES", "FORMATS", "check_year", "planner_figures", "percentile", "planner_report", "city_report",
           "report_json", "report_html", "output_format", "write_report", "report_text"]
