"""Teams and the disciplines zones need (``zeren coverage disciplines`` and ``GET /coverage/disciplines``).

A team (``team``: id, name, organisation, lead planner) has members, each with the discipline they bring and
a role (负责人 lead / 成员 member / 专家顾问 adviser); an appointment may name a team, whose members then count
among the zone's people. Discipline requirements are data per zone kind (defaults: a historic area needs
heritage and architecture; a village planning and land; a community planning and one of sociology / social
work; a key area urban design and transport). A zone is fully staffed when its appointed people on the day
(every role, and the members of the teams their appointments name) cover every requirement group.
"""
from __future__ import annotations

import re

import shapely

from zeren.api.service.actors import Actor
from zeren.api.service.workspace import Workspace
from zeren.geo.appointments import active_appointments
from zeren.geo.kinds import ALL_KINDS, DISCIPLINE_LABELS, TEAM_ROLES
from zeren.geo.validity import as_timestamp
from zeren.layers.errors import NotFoundError, ValidationError

_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def _check_discipline(value, where: str) -> str:
    if value not in DISCIPLINE_LABELS:
        raise ValidationError(f"{where}: {str(value)[:40]!r} is not a discipline; use one of "
                              f"{', '.join(DISCIPLINE_LABELS)}")
    return value


# -- teams ----------------------------------------------------------------------------------------
def save_team(ws: Workspace, record: dict, *, actor: Actor) -> tuple[dict, bool]:
    """Write a team whole: ``{id, name, organization, lead_planner_id, members: [{planner_id, discipline,
    role}], appointments: [appointment ids naming the team]}``; (the team, whether it is new)."""
    store = ws.store
    tid = str(record.get("id") or "")
    if not _ID.match(tid):
        raise ValidationError("id: 1 to 64 letters, digits, '.', '_' or '-'")
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name: empty; every team has a name")
    planners = set(ws.catalogue.planners["id"].astype(str))
    problems = []
    lead = record.get("lead_planner_id")
    if lead is not None and str(lead) not in planners:
        problems.append(f"lead_planner_id: no planner {str(lead)[:64]!r}")
    members = []
    for i, m in enumerate(record.get("members") or []):
        pid, role, discipline = str(m.get("planner_id")), m.get("role") or "member", m.get("discipline")
        if pid not in planners:
            problems.append(f"members[{i}].planner_id: no planner {pid[:64]!r}")
        if role not in TEAM_ROLES:
            problems.append(f"members[{i}].role: {str(role)[:40]!r}; use {', '.join(TEAM_ROLES)}")
        if discipline is not None and discipline not in DISCIPLINE_LABELS:
            problems.append(f"members[{i}].discipline: {str(discipline)[:40]!r} is not a discipline")
        members.append({"planner_id": pid, "role": role, "discipline": discipline})
    appointment_ids = set(int(a) for a in store.appointments()["id"])
    links = []
    for a in record.get("appointments") or []:
        if isinstance(a, bool) or not isinstance(a, int) or a not in appointment_ids:
            problems.append(f"appointments: no appointment {a!r}"[:120])
        else:
            links.append(a)
    if problems:
        raise ValidationError(f"team {tid}: {len(problems)} problem(s)", problems)
    clean = {"id": tid, "name": name.strip(), "organization": (record.get("organization") or None),
             "lead_planner_id": None if lead is None else str(lead), "members": members, "appointments": links}
    new = store.put_team(clean, actor=actor.name)
    return store.team(tid), new


def teams(ws: Workspace, planner_id: str | None = None) -> list[dict]:
    """Every team (or those ``planner_id`` leads or belongs to), with members and the appointments naming it."""
    out = [ws.store.team(t) for t in ws.store.teams()["id"]]
    if planner_id is not None:
        out = [t for t in out if t["lead_planner_id"] == planner_id
               or any(m["planner_id"] == planner_id for m in t["members"])]
    return out


# -- requirements ---------------------------------------------------------------------------------
def requirements(ws: Workspace) -> dict[str, list[list[str]]]:
    return ws.store.discipline_requirements()


def set_requirements(ws: Workspace, kind: str, groups, *, actor: Actor) -> dict[str, list[list[str]]]:
    """Replace what zones of ``kind`` need: a list of groups, each met by any one of its disciplines (an empty
    list: nothing required)."""
    if kind not in ALL_KINDS:
        raise NotFoundError(f"no zone kind {str(kind)[:40]!r}; kinds: {', '.join(ALL_KINDS)}")
    if not isinstance(groups, list) or not all(isinstance(g, list) and g for g in groups):
        raise ValidationError("groups: a list of non-empty lists of disciplines, e.g. [[\"heritage\"], "
                              "[\"sociology\", \"social_work\"]]")
    clean = [[_check_discipline(d, f"groups[{i}]") for d in g] for i, g in enumerate(groups)]
    ws.store.set_discipline_requirements(kind, clean, actor=actor.name)
    return requirements(ws)


# -- the report -----------------------------------------------------------------------------------
def _label(discipline: str) -> str:
    zh, en = DISCIPLINE_LABELS.get(discipline, (discipline, discipline))
    return f"{zh} {en}"


def _districts_of(zones, districts) -> list:
    """The district code of each zone: its parent when that is a district, else the district holding its
    representative point (overlays, life circles)."""
    codes = set(districts["code"].astype(str))
    out = []
    tree = shapely.STRtree(districts.geometry.to_numpy()) if len(districts) else None
    points = zones.geometry.representative_point().to_numpy()
    for parent, point in zip(zones["parent_code"], points):
        if parent is not None and str(parent) in codes:
            out.append(str(parent))
            continue
        hit = tree.query(point, predicate="within") if tree is not None else []
        out.append(str(districts["code"].iloc[int(hit[0])]) if len(hit) else None)
    return out


def discipline_gaps(ws: Workspace, as_of=None) -> dict:
    """Every zone of a kind with requirements, in force on ``as_of``: its people (appointed planners and the
    members of the teams their appointments name), the disciplines they bring, and the requirement groups
    none of them meets; the zones short of a discipline, and the share fully staffed per district."""
    catalogue = ws.catalogue
    store = ws.store
    day = as_timestamp(as_of)
    needs = store.discipline_requirements()
    zones = catalogue.zone_frame(day)
    required = zones[zones["kind"].isin([k for k, g in needs.items() if g])].sort_values(["kind", "code"])
    districts = zones[zones["kind"] == "district"]
    held = active_appointments(catalogue.appointments, day)
    planners = catalogue.planners.set_index("id")
    links = store.appointment_teams()
    team_of = dict(zip(links["appointment_id"].astype(int), links["team_id"]))
    members = store.team_members()
    by_team: dict[str, list[dict]] = {}
    for m in members.to_dict("records"):
        by_team.setdefault(m["team_id"], []).append(m)
    names = dict(zip(districts["code"].astype(str), districts["name"]))
    district_codes = _districts_of(required, districts)
    rows = []
    for zone, district in zip(required.to_dict("records"), district_codes):
        mine = held[(held["zone_kind"] == zone["kind"]) & (held["zone_code"].astype(str) == str(zone["code"]))]
        people: dict[str, set] = {}
        teams_named = []
        for appt in mine.to_dict("records"):
            pid = str(appt["planner_id"])
            own = planners.loc[pid, "disciplines"] if pid in planners.index else []
            people.setdefault(pid, set()).update(own)
            team = team_of.get(int(appt["id"]))
            if team is not None and team not in teams_named:
                teams_named.append(team)
                for m in by_team.get(team, []):
                    mp = str(m["planner_id"])
                    extra = set(planners.loc[mp, "disciplines"]) if mp in planners.index else set()
                    if m.get("discipline"):
                        extra.add(m["discipline"])
                    people.setdefault(mp, set()).update(extra)
        present = sorted(set().union(*people.values())) if people else []
        missing = [g for g in needs[zone["kind"]] if not set(g) & set(present)]
        rows.append({
            "kind": zone["kind"], "code": str(zone["code"]), "name": zone["name"], "district_code": district,
            "district_name": names.get(district), "people": sorted(people), "teams": teams_named,
            "disciplines": present, "missing": missing, "staffed": not missing,
            "missing_text": "; ".join(" / ".join(_label(d) for d in g) for g in missing) or None,
        })
    per_district: dict = {}
    for r in rows:
        d = per_district.setdefault(r["district_code"], {"district_code": r["district_code"],
                                                         "district_name": r["district_name"], "zones": 0,
                                                         "staffed": 0})
        d["zones"] += 1
        d["staffed"] += int(r["staffed"])
    districts_out = []
    for d in sorted(per_district.values(), key=lambda v: str(v["district_code"])):
        d["share_staffed"] = round(d["staffed"] / d["zones"], 4) if d["zones"] else None
        districts_out.append(d)
    total = len(rows)
    staffed = sum(r["staffed"] for r in rows)
    return {"as_of": day.date().isoformat(), "requirements": needs, "zones_checked": total,
            "zones_staffed": staffed, "share_staffed": round(staffed / total, 4) if total else None,
            "short": [r for r in rows if not r["staffed"]], "districts": districts_out,
            "zones": rows}


def gaps_text(report: dict) -> str:
    lines = [f"专业配置 / discipline check ({report['as_of']}): {report['zones_staffed']} of "
             f"{report['zones_checked']} zones fully staffed"]
    if not report["short"]:
        lines.append("  每个单元的专业都已配齐 / every zone has the disciplines it needs")
    for r in report["short"]:
        lines.append(f"  {r['name']} ({r['kind']} {r['code']}, {r['district_name'] or '—'}): 缺 / missing "
                     f"{r['missing_text']}; people {', '.join(r['people']) or '—'}")
    lines.append("各区配齐比例 / share fully staffed per district:")
    for d in report["districts"]:
        share = "—" if d["share_staffed"] is None else f"{d['share_staffed']:.0%}"
        lines.append(f"  {d['district_name'] or d['district_code'] or '—'}: {d['staffed']}/{d['zones']} ({share})")
    return "\n".join(lines)


__all__ = ["save_team", "teams", "requirements", "set_requirements", "discipline_gaps", "gaps_text"]
