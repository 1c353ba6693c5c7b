"""The annual evaluation (年度考核): a planner's year, a team's year and the city's year, computed from the store
as of the year's dates (``zeren report planner|team|city`` and ``GET /reports/...``).

Every figure is the service's: the doors only render it (HTML by :mod:`zeren.maps.report`, PDF from the same
HTML, or JSON). The year runs from 1 January (start-inclusive) to 1 January of the next year (end-exclusive),
as every validity window does; "at the end of the year" means on 31 December.

A planner's and a team's figures are one function of a :class:`Subject` (a set of people and the appointments
that make its territory; a team's territory is :data:`TEAM_TERRITORY`):

* territory: the zones its appointments hold on 31 December (appointments and editions in force then), their
  area, population and the life circles reached through them (a circle's own lead, or the subdistrict it
  reaches a planner through);
* projects: those one of its people leads or is consulted on, alive during the year, with the days each
  workflow stage took (the stage open at the year's end counts to 31 December and is marked open);
  consultations given: those of them created during the year on which one of its people was consulted;
* feedback: the cases received during the year and routed to one of its people (lead or consultant);
  answered = replied before the year's end; response time = hours from receipt to reply; rating = the
  residents' rating of those replies (a rating belongs to its reply, whenever it was given);
* discipline gaps: the zones (teams included) short of a required discipline on 31 December among whose
  people one of its people is;
* city percentile: where the figure stands among every planner (or every team) of the store (mid-rank: the
  share below, plus half of those equal), NaN figures left out.
"""
from __future__ import annotations

import datetime as dt
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from zeren.api.jsonable import plain, records
from zeren.api.service.budget import DeadlineExceeded, Unavailable
from zeren.api.service.teams import discipline_gaps, teams
from zeren.api.service.workspace import Workspace
from zeren.geo import coverage
from zeren.geo.appointments import active_appointments, leads_as_of
from zeren.geo.crs import metric_crs, project_geometries
from zeren.geo.kinds import LIFE_CIRCLE, PROJECT_STATUSES, TEAM_ROLES
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


def _workload(ws: Workspace, y: Year) -> coverage.WorkloadResult:
    catalogue = ws.catalogue
    projects = ws.store.projects()
    return coverage.planner_workload(catalogue.index.zones, catalogue.appointments, projects, catalogue.planners,
                                     as_of=y.last)


def _life_circles(ws: Workspace, y: Year) -> pd.DataFrame:
    """Every life circle in force on the year's last day and how it reaches a planner: ``via`` its own lead
    or the subdistrict it shares most area with (``base_code``), when that one has a lead."""
    if not _in_force(ws, y.last):
        return pd.DataFrame({"code": pd.Series(dtype=object), "via": pd.Series(dtype=object),
                             "base_code": pd.Series(dtype=object)})
    return coverage.life_circle_planners(ws.catalogue.index.zones, ws.catalogue.appointments, as_of=y.last)


def _ancestors(code: str, parents: dict) -> frozenset:
    """The codes of the zones that hold ``code`` (its parent, the parent's parent...)."""
    out, seen = [], {code}
    parent = parents.get(code)
    while parent is not None and not pd.isna(parent) and str(parent) not in seen:
        out.append(str(parent))
        seen.add(str(parent))
        parent = parents.get(str(parent))
    return frozenset(out)


def _held(ws: Workspace, y: Year) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The appointments in force on the year's last day joined to the zones in force then (an appointment
    whose zone has no edition that day holds nothing), each with its zone's name, area (km², measured in one
    metric CRS for the whole city: ``shape``), population (see :func:`_zones`) and the codes of the zones that
    hold it (``ancestors``); and those zones (WGS84) for the maps."""
    zones = _zones(ws, y.last)
    shapes = np.empty(len(zones), dtype=object)
    if len(zones):
        metric = metric_crs(tuple(zones.total_bounds))
        shapes = shapely.make_valid(project_geometries(zones.geometry.to_numpy(), "EPSG:4326", metric))
    area = shapely.area(shapes) / 1e6 if len(zones) else np.zeros(0)
    zones = zones.assign(zone_kind=zones["kind"].astype(str), zone_code=zones["code"].astype(str), area_km2=area)
    parents = dict(zip(zones["zone_code"], zones["parent_code"]))
    active = active_appointments(ws.catalogue.appointments, y.last)
    held = pd.DataFrame({"id": active["id"].astype("int64").to_numpy(),
                         "planner_id": active["planner_id"].astype(str).to_numpy(object),
                         "zone_kind": active["zone_kind"].astype(str).to_numpy(object),
                         "zone_code": active["zone_code"].astype(str).to_numpy(object),
                         "role": active["role"].astype(str).to_numpy(object)})
    keyed = pd.DataFrame({"zone_kind": zones["zone_kind"].to_numpy(object),
                          "zone_code": zones["zone_code"].to_numpy(object), "name": zones["name"].to_numpy(object),
                          "area_km2": np.asarray(area, dtype=float), "population": zones["population"].array,
                          "shape": shapes, "ancestors": [_ancestors(c, parents) for c in zones["zone_code"]]})
    return held.merge(keyed, on=["zone_kind", "zone_code"], how="inner"), zones


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



def _gaps(ws: Workspace, y: Year) -> dict | None:
    if not _in_force(ws, y.last):
        return None
    return discipline_gaps(ws, y.last)



# -- whose year: a planner or a team (one set of people and appointments; every figure goes through it) --
TEAM_TERRITORY = ("团队片区：当年生效且注明本团队的任命所涉单元，另加团队负责人本人受任命的单元（标注“负责人任命”）",
                  ("the team's territory: the zones whose appointments in force during the year name the team, plus "
                   "the zones where the team's lead is appointed (marked \"lead's appointment\")"))


@dataclass(frozen=True)
class Subject:
    """Whose year a report tells, as the people it speaks for and the appointments that make its territory.

    * a planner: ``people`` = the planner, ``appointments`` = their own;
    * a team: ``people`` = its lead and members, ``appointments`` = those naming the team (``named``) plus
      every appointment of its lead planner (see :data:`TEAM_TERRITORY`).

    Every figure of :data:`FIGURES` is one function of a subject (:func:`_figures_of`): the zones come from
    its appointments in force on 31 December; projects, consultations and feedback from its people (a
    project any of them leads or is consulted on, a case routed to any of them); a discipline gap counts when
    one of its people is among the short zone's people (team members included, as the discipline check has it).
    """

    kind: str
    id: str
    name: str
    people: frozenset
    appointments: frozenset
    named: frozenset = frozenset()


def _appointments_by_planner(ws: Workspace) -> dict[str, frozenset]:
    appts = ws.catalogue.appointments
    return {str(pid): frozenset(int(a) for a in ids) for pid, ids in
            appts.groupby(appts["planner_id"].astype(str))["id"]}


def planner_subjects(ws: Workspace) -> list[Subject]:
    """Every planner of the store as a subject (sorted by id)."""
    own = _appointments_by_planner(ws)
    planners = ws.catalogue.planners
    return [Subject("planner", pid, name, frozenset({pid}), own.get(pid, frozenset()))
            for pid, name in sorted(zip(planners["id"].astype(str), planners["name"]))]


def team_subjects(ws: Workspace, records: list[dict] | None = None) -> list[Subject]:
    """Every team of the store (or of ``records``, as :func:`zeren.api.service.teams.teams` gives them) as a
    subject (sorted by id)."""
    own = _appointments_by_planner(ws)
    out = []
    for t in teams(ws) if records is None else records:
        lead = t["lead_planner_id"]
        named = frozenset(int(a) for a in t["appointments"])
        people = frozenset({str(m["planner_id"]) for m in t["members"]} | ({str(lead)} if lead else set()))
        out.append(Subject("team", str(t["id"]), t["name"], people, named | own.get(str(lead), frozenset()), named))
    return sorted(out, key=lambda s: s.id)


def _year_parts(ws: Workspace, y: Year) -> dict:
    """What every subject's figures are read from, computed once for the year."""
    held, zones = _held(ws, y)
    return {"year": y, "held": held, "zones": zones, "circles": _life_circles(ws, y),
            "cases": _year_feedback(ws, y), "projects": _project_stages(ws, y), "gaps": _gaps(ws, y)}


def _held_by(s: Subject, held: pd.DataFrame) -> pd.DataFrame:
    return held[held["id"].isin(list(s.appointments)).to_numpy(dtype=bool)]


def _projects_of(s: Subject, projects: list[dict]) -> list[dict]:
    return [p for p in projects if p["lead_planner_id"] in s.people or s.people & set(p["consulted"])]


def _consultations(s: Subject, projects: list[dict]) -> list[dict]:
    """The projects its people were consulted on that were created during the year (consultations given)."""
    return [p for p in projects if s.people & set(p["consulted"]) and p["created_in_year"]]


def _cases_of(s: Subject, cases: pd.DataFrame) -> pd.DataFrame:
    return cases[np.array([bool(s.people & set(r)) for r in cases["routed_to"]], dtype=bool)]


def _gaps_of(s: Subject, gaps: dict | None) -> list[dict]:
    return [z for z in (gaps or {}).get("short", []) if s.people & set(z["people"])]


def _figures_of(s: Subject, parts: dict) -> dict:
    """Every figure of :data:`FIGURES` (and the zones held per role) for one subject."""
    held = _held_by(s, parts["held"])
    roles = held.drop_duplicates(["zone_kind", "zone_code", "role"])["role"].value_counts()
    lead = held[(held["role"] == "lead").to_numpy(dtype=bool)].drop_duplicates(["zone_kind", "zone_code"])
    circles = parts["circles"]
    own = set(lead.loc[lead["zone_kind"] == LIFE_CIRCLE, "zone_code"])
    through = set(lead.loc[lead["zone_kind"] == "subdistrict", "zone_code"])
    reached = (((circles["via"] == "own_lead") & circles["code"].astype(str).isin(own))
               | ((circles["via"] == "base_zone") & circles["base_code"].astype(str).isin(through)))
    projects = _projects_of(s, parts["projects"])
    cases = _cases_of(s, parts["cases"])
    received, answered = len(cases), int(cases["answered"].sum())
    return {
        "zones_lead": len(lead), "zones_member": int(roles.get("member", 0)),
        "zones_consultant": int(roles.get("consultant", 0)),
        "lead_area_km2": round(float(shapely.area(shapely.union_all(lead["shape"].to_numpy()))) / 1e6, 3)
        if len(lead) else 0.0,
        "lead_population": _residents(lead),
        "life_circles": int(reached.sum()),
        "projects": len(projects), "stage_moves": sum(st["moved_in_year"] for p in projects for st in p["stages"]),
        "consultations": len(_consultations(s, projects)),
        "feedback_received": received, "feedback_answered": answered,
        "median_response_hours": float(cases["response_hours"].median()) if received else float("nan"),
        "mean_rating": float(cases["rating"].mean()) if received else float("nan"),
        "answer_rate": answered / received if received else float("nan"),
        "discipline_gaps": len(_gaps_of(s, parts["gaps"])),
    }


def _residents(lead: pd.DataFrame) -> int:
    """The residents of the lead zones, each counted once: a zone held inside another of the lead zones (a
    subdistrict of a led district) is already in that one's population."""
    codes = set(lead["zone_code"])
    outer = np.array([not (a & codes) for a in lead["ancestors"]], dtype=bool)
    return int(pd.to_numeric(lead["population"][outer], errors="coerce").fillna(0).sum())


def _figure_table(subjects: list[Subject], parts: dict, key: str) -> pd.DataFrame:
    rows = [{key: s.id, "name": s.name, **_figures_of(s, parts)} for s in subjects]
    table = pd.DataFrame(rows, columns=[key, "name", "zones_lead", "zones_member", "zones_consultant",
                                        "lead_area_km2", "lead_population", "life_circles", "projects", "stage_moves",
                                        "consultations", "feedback_received", "feedback_answered",
                                        "median_response_hours", "mean_rating", "answer_rate", "discipline_gaps"])
    for col in table.columns[2:]:
        kind = float if col in ("lead_area_km2", "median_response_hours", "mean_rating", "answer_rate") else "int64"
        table[col] = table[col].astype(kind)
    return table


def planner_figures(ws: Workspace, year) -> tuple[pd.DataFrame, dict]:
    """One row per planner of the store (sorted by id) with every figure of :data:`FIGURES` for the year, and
    the parts they came from (held appointments, projects, feedback cases, discipline gaps) for the reports."""
    y = check_year(year)
    parts = _year_parts(ws, y)
    return _figure_table(planner_subjects(ws), parts, "planner_id"), parts


def team_figures(ws: Workspace, year, records: list[dict] | None = None) -> tuple[pd.DataFrame, dict]:
    """One row per team of the store (sorted by id) with the same figures as :func:`planner_figures`, over
    each team's people and territory (:class:`Subject`)."""
    y = check_year(year)
    parts = _year_parts(ws, y)
    return _figure_table(team_subjects(ws, records), parts, "team_id"), parts


def percentile(values: pd.Series, value) -> float | None:
    """Mid-rank percentile of ``value`` among ``values`` (0-100; NaN values left out; None for a NaN value)."""
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    if value is None or pd.isna(value) or len(v) == 0:
        return None
    return round(100.0 * (np.sum(v < value) + 0.5 * np.sum(v == value)) / len(v), 1)



# -- a planner's or a team's year -------------------------------------------------------------------
_ROLE_RANK = {"lead": 0, "member": 1, "consultant": 2}


def _territory(ws: Workspace, s: Subject, parts: dict) -> tuple[list[dict], list[dict], pd.DataFrame]:
    """(the zones held on the last day, one row each with the strongest role held there, the appointments
    overlapping the year, the held zones' WGS84 frame with ``role`` for the map). A team's rows say who holds
    each zone and on what basis (``team``: an appointment naming the team; ``lead``: the lead's own)."""
    y = parts["year"]
    appts = ws.catalogue.appointments
    mine = appts[appts["id"].isin(list(s.appointments)).to_numpy(dtype=bool)]
    overlap = windows_overlap(mine["start"], mine["end"], pd.Series([pd.Timestamp(y.start)]),
                              pd.Series([pd.Timestamp(y.stop)]))
    year_appts = mine[overlap].sort_values(["zone_kind", "zone_code", "start", "id"], kind="stable")
    held_rows = []
    for (kind, code), g in _held_by(s, parts["held"]).groupby(["zone_kind", "zone_code"], sort=True):
        first = g.iloc[0]
        row = {"kind": kind, "code": code, "name": first["name"],
               "role": min(g["role"], key=lambda r: _ROLE_RANK.get(r, 3)),
               "area_km2": round(float(first["area_km2"]), 3),
               "population": None if pd.isna(first["population"]) else int(first["population"])}
        if s.kind == "team":
            row["planners"] = sorted(set(g["planner_id"]))
            row["basis"] = "team" if {int(a) for a in g["id"]} & s.named else "lead"
        held_rows.append(row)
    appt_rows = []
    for r in year_appts.to_dict("records"):
        row = {"kind": r["zone_kind"], "code": r["zone_code"], "role": r["role"], "start": r["start"],
               "end": r["end"]}
        if s.kind == "team":
            row["planner_id"] = str(r["planner_id"])
            row["basis"] = "team" if int(r["id"]) in s.named else "lead"
        appt_rows.append(row)
    zones = parts["zones"]
    roles = pd.DataFrame({"zone_kind": [z["kind"] for z in held_rows], "zone_code": [z["code"] for z in held_rows],
                          "role": [z["role"] for z in held_rows]}, dtype=object)
    drawn = zones.merge(roles, on=["zone_kind", "zone_code"], how="inner")
    return held_rows, plain(appt_rows), drawn


def _year_report(ws: Workspace, s: Subject, table: pd.DataFrame, parts: dict) -> dict:
    """What the planner's and the team's reports share: territory and facts, projects, consultations,
    feedback, discipline gaps and each figure's percentile among the subjects of ``table`` (all planners,
    or all teams). ``empty`` when the subject had no appointment, project or feedback in the year."""
    y = parts["year"]
    row = table.set_index(table.columns[0]).loc[s.id]
    held, appointments, drawn = _territory(ws, s, parts)
    projects = _projects_of(s, parts["projects"])
    mine = _cases_of(s, parts["cases"])
    figures = []
    for key, (zh, en, better) in FIGURES.items():
        figures.append({"key": key, "label": zh, "label_en": en, "better": better, "value": plain(row[key]),
                        "city_percentile": percentile(table[key], row[key]),
                        "city_median": plain(pd.to_numeric(table[key], errors="coerce").median())})
    city_population = float(np.nansum(_districts(ws, y.last)["population"].to_numpy(float)))  # the residents
    return {
        "year": y.year, "start": y.start.isoformat(), "end": y.last.isoformat(),
        "people": sorted(s.people),
        "empty": bool(not appointments and not projects and mine.empty),
        "facts": {"zones_held": len(held), "zones_lead": int(row["zones_lead"]),
                  "area_km2": float(row["lead_area_km2"]),
                  "population": int(row["lead_population"]), "life_circles": int(row["life_circles"]),
                  "share_of_city_population_led": (round(int(row["lead_population"]) / city_population, 4)
                                                    if city_population else None)},
        "zones": held, "appointments": appointments,
        "projects": projects,
        "consultations": _consultations(s, projects),
        "feedback": {"received": int(row["feedback_received"]), "answered": int(row["feedback_answered"]),
                     "answer_rate": plain(row["answer_rate"]),
                     "median_response_hours": plain(row["median_response_hours"]),
                     "mean_rating": plain(row["mean_rating"]),
                     "cases": [{"ref": c["ref"], "category": c["category"], "text": c["text"][:200],
                                "received_at": c["received_at"].isoformat(), "answered": bool(c["answered"]),
                                "response_hours": plain(c["response_hours"]), "synthetic": bool(c["synthetic"])}
                               for c in mine.tail(12).to_dict("records")]},
        "discipline_gaps": _gaps_of(s, parts["gaps"]),
        "figures": figures,
        "compared": len(table),
        "geometry": drawn,  # for the map; dropped from JSON by report_json
    }


def planner_report(ws: Workspace, planner_id: str, year) -> dict:
    """The planner's year: territory, projects by stage, consultations, feedback, discipline gaps, and each
    figure's city percentile among all planners. ``empty`` (with a message) when the planner had nothing in
    the year."""
    y = check_year(year)
    planner = ws.store.planner(str(planner_id))  # NotFoundError for an unknown id
    pid = str(planner["id"])
    table, parts = planner_figures(ws, y.year)
    subject = next(s for s in planner_subjects(ws) if s.id == pid)
    body = _year_report(ws, subject, table, parts)
    return {
        "kind": "planner", **body,
        "planner": {k: planner.get(k) for k in ("id", "name", "organization", "disciplines", "public_contact")},
        "teams": _teams_of(ws, pid),
        "message": (f"{y.year} 年无数据：该规划师当年没有任命、项目或留言 / no data for {y.year}: the planner held no "
                    f"appointment and had no project or feedback that year") if body["empty"] else None,
        "planners_compared": body["compared"],
    }


def team_report(ws: Workspace, team_id: str, year) -> dict:
    """The team's year: the same figures as the planner's over the team's people and territory
    (:class:`Subject`, :data:`TEAM_TERRITORY`), its members with discipline and role, and each figure's city
    percentile among all teams. ``empty`` (with a message) when the team had nothing in the year."""
    y = check_year(year)
    team = ws.store.team(str(team_id))  # NotFoundError ("no team ...") for an unknown id
    records = teams(ws)
    table, parts = team_figures(ws, y.year, records)
    subject = next(s for s in team_subjects(ws, records) if s.id == str(team["id"]))
    body = _year_report(ws, subject, table, parts)
    planners = ws.catalogue.planners.set_index(ws.catalogue.planners["id"].astype(str))
    lead = team["lead_planner_id"]
    return {
        "kind": "team", **body,
        "team": {"id": team["id"], "name": team["name"], "organization": team["organization"],
                 "lead_planner_id": lead,
                 "lead_name": planners["name"].get(str(lead)) if lead is not None else None},
        "members": _members(team, planners),
        "territory_rule": {"zh": TEAM_TERRITORY[0], "en": TEAM_TERRITORY[1]},
        "message": (f"{y.year} 年无数据：该团队当年没有任命、项目或留言 / no data for {y.year}: the team held no "
                    f"appointment and had no project or feedback that year") if body["empty"] else None,
        "teams_compared": body["compared"],
    }


def _members(team: dict, planners: pd.DataFrame) -> list[dict]:
    """The team's people: its lead first (from ``lead_planner_id`` when the members do not list them), then
    members, then expert advisers, each with the discipline they bring and their own disciplines."""
    members = list(team["members"])
    lead = team["lead_planner_id"]
    if lead is not None and not any(m["planner_id"] == lead and m["role"] == "lead" for m in members):
        members.insert(0, {"planner_id": lead, "role": "lead", "discipline": None})
    order = {r: i for i, r in enumerate(TEAM_ROLES)}
    out = []
    for m in sorted(members, key=lambda m: (order.get(m["role"], len(order)), str(m["planner_id"]))):
        pid = str(m["planner_id"])
        known = pid in planners.index
        zh, en = TEAM_ROLES.get(m["role"], (m["role"], m["role"]))
        out.append({"planner_id": pid, "name": planners.at[pid, "name"] if known else None,
                    "organization": planners.at[pid, "organization"] if known else None,
                    "discipline": m["discipline"], "disciplines": list(planners.at[pid, "disciplines"]) if known
                    else [], "role": m["role"], "role_label": zh, "role_label_en": en})
    return out


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
        "feedback": {"received": len(cases), "answered": int(cases["answered"].sum()),
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
        "planners_compared": len(table),
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
            "feedback": len(mine),
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
    if report["kind"] in ("planner", "team"):
        f, fb = report["facts"], report["feedback"]
        median = "—" if fb["median_response_hours"] is None else f"{fb['median_response_hours']:.1f} h"
        who = report["planner"] if report["kind"] == "planner" else report["team"]
        lines = [f"{who['name']} ({who['id']}) {report['year']} 年度考核 / annual evaluation",
                 (f"  单元 zones held {f['zones_held']} (lead {f['zones_lead']}), {f['area_km2']:.2f} km², "
                  f"人口 population {f['population']:,}, 生活圈 life circles {f['life_circles']}"),
                 f"  项目 projects {len(report['projects'])}, 咨询 consultations {len(report['consultations'])}",
                 f"  留言 feedback {fb['received']} received, {fb['answered']} answered, median {median}",
                 f"  专业缺口 discipline gaps {len(report['discipline_gaps'])}"]
        if report["kind"] == "team":
            lines.insert(1, "  成员 members: " + ", ".join(f"{m['name'] or m['planner_id']} ({m['role_label']})"
                                                         for m in report["members"]))
        return "\n".join(lines)
    s, e, fb = report["coverage_start"] or {}, report["coverage_end"] or {}, report["feedback"]
    return "\n".join([
        f"全市 {report['year']} 年度总结 / the city's year {report['year']}",
        (f"  有责任规划师的街道 subdistricts with a lead: {s.get('units_with_lead')} -> {e.get('units_with_lead')} "
         f"of {e.get('units_total')}"),
        f"  空缺 gaps closed {len(report['gaps_closed'])}, opened {len(report['gaps_opened'])}",
        f"  工作量 Gini (area) {report['workload_gini']['area']}",
        f"  留言 feedback {fb['received']} received, {fb['answered']} answered",
        "  排名 ranking: " + ", ".join(f"{d['rank']}. {d['name']}" for d in report["districts"][:5])])


def report_json(report: dict) -> dict:
    """The report as JSON (the territory frame left out: the zones are listed)."""
    return plain({k: v for k, v in report.items() if k != "geometry"})


def report_html(ws: Workspace, report: dict) -> str:
    """The printable page set (Chinese first, English second; every name escaped)."""
    from zeren.maps.report import city_html, planner_html, team_html

    if report["kind"] == "planner":
        return planner_html(report, territory=report.get("geometry"), context=_context(ws, report))
    if report["kind"] == "team":
        return team_html(report, territory=report.get("geometry"), context=_context(ws, report))
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


class PDFUnavailable(Unavailable):
    """The report cannot be printed to PDF here: Chromium is missing or could not print (HTTP 503)."""


_PRINTER = threading.Lock()  # one PDF print at a time in this process: Chromium takes a core and ~200 MB


def report_pdf(ws: Workspace, report: dict, *, chromium: str | None = None, timeout: float = 120.0) -> bytes:
    """The report printed to PDF by headless Chromium from :func:`report_html` (the path ``write_report`` takes),
    one print at a time per process: a print waits for the one before it, and waiting and printing together
    take at most ``timeout`` seconds (:class:`DeadlineExceeded` after that). :class:`PDFUnavailable` when
    Chromium is not installed (``chromium``: its path, else the usual places) or fails."""
    import tempfile
    import time

    from zeren.maps.report import PDFError, find_chromium, html_to_pdf

    if find_chromium(chromium) is None:
        where = f"{chromium} does not exist" if chromium else "no chromium in /usr/bin or on PATH"
        raise PDFUnavailable(f"PDF output needs Chromium, which is not installed here ({where}): install it "
                             f"(apt-get install chromium) or set ZEREN_CHROMIUM to its path; format=html gives "
                             f"the same page set to print from a browser")
    page = report_html(ws, report)
    begun = time.monotonic()
    if not _PRINTER.acquire(timeout=max(0.0, timeout)):
        raise DeadlineExceeded(f"another report was being printed to PDF for the whole {timeout:g} s this request "
                               f"may wait; try again shortly")
    try:
        left = timeout - (time.monotonic() - begun)
        if left <= 0:
            raise DeadlineExceeded(f"the PDF could not start printing within {timeout:g} s; try again shortly")
        with tempfile.TemporaryDirectory(prefix="zeren-report-") as tmp:
            try:
                out = html_to_pdf(page, Path(tmp) / "report.pdf", chromium=chromium, timeout=left)
            except PDFError as exc:
                if isinstance(exc.__cause__, subprocess.TimeoutExpired):
                    raise DeadlineExceeded(f"the PDF did not finish printing within the {timeout:g} s limit; "
                                           f"try again shortly") from None
                raise PDFUnavailable(str(exc)) from None
            return out.read_bytes()
    finally:
        _PRINTER.release()


def report_filename(report: dict, suffix: str = "pdf") -> str:
    """A download name: ``zeren-report-<kind>[-<id>]-<year>.<suffix>`` (ids reduced to safe characters)."""
    who = {"planner": "planner", "team": "team"}.get(report["kind"])
    ident = re.sub(r"[^A-Za-z0-9_.-]", "_", str(report[who]["id"]))[:64] if who else None
    return "-".join(["zeren-report", report["kind"], *([ident] if ident else []), str(report["year"])]) + f".{suffix}"


def _context(ws: Workspace, report: dict):
    """The districts in force at the year's end, drawn grey under the planner's zones."""
    day = dt.date.fromisoformat(report["end"])
    zones = _zones(ws, day)
    return zones[zones["kind"] == "district"]


__all__ = ["FIGURES", "FORMATS", "TEAM_TERRITORY", "PDFUnavailable", "Subject", "check_year", "city_report",
           "output_format", "percentile", "planner_figures", "planner_report", "planner_subjects", "report_filename",
           "report_html", "report_json", "report_pdf", "report_text", "team_figures", "team_report", "team_subjects",
           "write_report"]
