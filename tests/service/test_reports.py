"""The annual evaluation use case on the real demo city: every figure as of the year's dates, and three (and
more) of them recomputed independently from the raw store tables with pandas (sqlite3, not the store's
reader, not the service), for a planner and for a team."""
from __future__ import annotations

import datetime as dt
import html
import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from zeren.api.service import reports
from zeren.api.service.actors import Actor
from zeren.api.service.demo import GAP_CLOSED, GAP_OPENED, HANDOVER_DATE
from zeren.api.service.feedback import advance_feedback, submit_feedback
from zeren.api.service.teams import save_team
from zeren.api.service.workspace import Workspace
from zeren.layers.errors import NotFoundError, ValidationError

YEAR = 2025
END, STOP = pd.Timestamp("2025-12-31"), pd.Timestamp("2026-01-01", tz="UTC")


@pytest.fixture(scope="module")
def ws(demo_template):
    w = Workspace.open(str(demo_template))
    yield w
    w.close()


@pytest.fixture(scope="module")
def raw(demo_template) -> dict[str, pd.DataFrame]:
    """The store's tables as SQLite holds them."""
    con = sqlite3.connect(f"file:{demo_template}?mode=ro", uri=True)
    try:
        return {t: pd.read_sql(f"SELECT * FROM {t}", con) for t in
                ("zones", "appointments", "feedback", "projects", "project_events", "teams", "team_members",
                 "appointment_teams")}
    finally:
        con.close()


@pytest.fixture(scope="module")
def figures(ws):
    return reports.planner_figures(ws, YEAR)[0].set_index("planner_id")


def _raw_year_cases(raw) -> pd.DataFrame:
    f = raw["feedback"].copy()
    f["received"] = pd.to_datetime(f["created_at"], utc=True)
    f["replied"] = pd.to_datetime(f["replied_at"], utc=True)
    f = f[(f["received"] >= pd.Timestamp("2025-01-01", tz="UTC")) & (f["received"] < STOP)]
    f["routed"] = f["routed_to"].map(json.loads)
    return f


def _busiest_planner(raw) -> str:
    cases = _raw_year_cases(raw)
    return cases["routed"].explode().value_counts().sort_index().idxmax()


# -- independent recomputations -------------------------------------------------------------------
def test_feedback_received_answered_and_median_match_the_raw_table(ws, raw, figures):
    pid = _busiest_planner(raw)
    cases = _raw_year_cases(raw)
    mine = cases[cases["routed"].map(lambda ids: pid in ids)]
    answered = mine[mine["replied"].notna() & (mine["replied"] < STOP)]
    hours = (answered["replied"] - answered["received"]).dt.total_seconds() / 3600
    row = figures.loc[pid]
    assert row["feedback_received"] == len(mine) > 0
    assert row["feedback_answered"] == len(answered)
    assert row["median_response_hours"] == pytest.approx(float(np.median(hours)))
    assert row["mean_rating"] == pytest.approx(answered["rating"].dropna().mean())


def test_zones_led_at_the_year_end_match_the_raw_appointments(raw, figures):
    a, z = raw["appointments"], raw["zones"]
    start, end = pd.to_datetime(a["start_date"]), pd.to_datetime(a["end_date"])
    live = a[(a["role"] == "lead") & (start <= END) & (end.isna() | (end > END))]
    zs, ze = pd.to_datetime(z["valid_from"]), pd.to_datetime(z["valid_to"])
    in_force = z[(zs <= END) & (ze.isna() | (ze > END))]
    keys = set(zip(in_force["kind"], in_force["code"].astype(str)))
    live = live[[k in keys for k in zip(live["zone_kind"], live["zone_code"].astype(str))]]
    expected = live.drop_duplicates(["planner_id", "zone_kind", "zone_code"]).groupby("planner_id").size()
    got = figures["zones_lead"]
    assert got[got > 0].sort_index().to_dict() == expected.sort_index().to_dict()


def test_gaps_closed_and_opened_match_the_raw_tables(ws, raw):
    a, z = raw["appointments"], raw["zones"]
    subs = z[z["kind"] == "subdistrict"]["code"].astype(str)
    start, end = pd.to_datetime(a["start_date"]), pd.to_datetime(a["end_date"])

    def led_on(day):
        day = pd.Timestamp(day)
        live = a[(a["role"] == "lead") & (a["zone_kind"] == "subdistrict") & (start <= day)
                 & (end.isna() | (end > day))]
        return set(live["zone_code"].astype(str))

    without_start = set(subs) - led_on("2025-01-01")
    without_end = set(subs) - led_on(END)
    city = reports.city_report(ws, YEAR)
    assert {g["code"] for g in city["gaps_closed"]} == without_start - without_end
    assert {g["code"] for g in city["gaps_opened"]} == without_end - without_start
    assert city["gaps_at_start"] == len(without_start) and city["gaps_at_end"] == len(without_end)
    assert GAP_CLOSED[0] in without_start - without_end and GAP_OPENED[0] in without_end - without_start


def test_feedback_per_district_matches_the_raw_table(ws, raw):
    cases = _raw_year_cases(raw)
    city = reports.city_report(ws, YEAR)
    codes = {d["code"] for d in city["districts"]}
    counted = pd.Series([next((c for c in json.loads(zc) if c in codes), None) for zc in cases["zone_codes"]])
    expected = counted.dropna().value_counts().to_dict()
    got = {d["code"]: d["feedback"] for d in city["districts"] if d["feedback"]}
    assert got == expected
    for d in city["districts"]:
        if d["feedback"]:
            assert d["feedback_per_10k"] == pytest.approx(d["feedback"] / d["population"] * 10_000, abs=1e-3)


def test_stage_days_match_the_raw_project_events(ws, raw):
    events = raw["project_events"].assign(at=lambda e: pd.to_datetime(e["at"], utc=True))
    projects = reports.planner_figures(ws, YEAR)[1]["projects"]
    assert projects, "the demo has projects in 2025"
    for p in projects:
        mine = events[events["project_id"] == p["id"]].sort_values("fid")
        mine = mine[mine["at"] < STOP]
        times = mine["at"].tolist()
        for i, stage in enumerate(p["stages"]):
            assert stage["status"] == mine["status"].iloc[i]
            until = times[i + 1] if i + 1 < len(times) else (times[i] if stage["status"] == "feedback" else STOP)
            assert stage["days"] == pytest.approx((until - times[i]).total_seconds() / 86400, abs=0.06)
        assert p["stages"][-1]["open"] == (p["status_at_end"] != "feedback")


# -- as of the year's dates -------------------------------------------------------------------------
def test_a_lead_who_handed_over_mid_year_keeps_the_appointment_but_not_the_zone(ws):
    appts = ws.catalogue.appointments
    ended = appts[(appts["end"] == pd.Timestamp(HANDOVER_DATE)) & (appts["role"] == "lead")].iloc[0]
    report = reports.planner_report(ws, ended["planner_id"], YEAR)
    code = str(ended["zone_code"])
    assert code in {a["code"] for a in report["appointments"]}
    assert code not in {z["code"] for z in report["zones"]}
    successor = appts[(appts["zone_code"] == code) & (appts["start"] == pd.Timestamp(HANDOVER_DATE))].iloc[0]
    assert code in {z["code"] for z in reports.planner_report(ws, successor["planner_id"], YEAR)["zones"]}


def test_a_reply_after_the_year_does_not_count_as_answered(demo_store):
    w = Workspace.open(demo_store)
    try:
        zone = w.catalogue.zone_frame("2025-12-30", "subdistrict").iloc[0]
        point = zone.geometry.representative_point()
        before = reports.planner_figures(w, YEAR)[0].set_index("planner_id")
        case = submit_feedback(w, category="traffic", text="年末留言 / late in the year", lon=point.x, lat=point.y,
                               at=dt.datetime(2025, 12, 30, 10, tzinfo=dt.timezone.utc))
        pid = case["routed_to"][0]
        admin = Actor("tester")
        advance_feedback(w, case["ref"], "accepted", actor=admin, at=dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc))
        advance_feedback(w, case["ref"], "replied", actor=admin, reply="已处理 / handled",
                         at=dt.datetime(2026, 1, 3, tzinfo=dt.timezone.utc))
        after = reports.planner_figures(w, YEAR)[0].set_index("planner_id")
        assert after.loc[pid, "feedback_received"] == before.loc[pid, "feedback_received"] + 1
        assert after.loc[pid, "feedback_answered"] == before.loc[pid, "feedback_answered"]
        nxt = reports.planner_figures(w, YEAR + 1)[0].set_index("planner_id")
        assert nxt.loc[pid, "feedback_received"] == 0  # received in 2025: not 2026's case
    finally:
        w.close()


def test_discipline_gaps_name_the_demo_key_areas_and_their_people(ws, figures):
    city = reports.city_report(ws, YEAR)
    short = {z["code"] for z in city["discipline"]["short"]}
    assert {"KA-001", "KA-002"} <= short
    gaps = reports.planner_figures(ws, YEAR)[1]["gaps"]
    people = {p for z in gaps["short"] for p in z["people"]}
    assert people and all(figures.loc[p, "discipline_gaps"] >= 1 for p in people)
    assert (figures.drop(index=list(people))["discipline_gaps"] == 0).all()


# -- percentiles --------------------------------------------------------------------------------------
@pytest.mark.parametrize("values, value, expected", [
    pytest.param([1, 2, 3, 4], 4, 87.5, id="top"),
    pytest.param([1, 2, 3, 4], 1, 12.5, id="bottom"),
    pytest.param([5, 5, 5, 5], 5, 50.0, id="all-equal"),
    pytest.param([1, np.nan, 3], 3, 75.0, id="nan-left-out"),
    pytest.param([1, 2], np.nan, None, id="nan-value"),
])
def test_percentile_is_mid_rank(values, value, expected):
    assert reports.percentile(pd.Series(values, dtype=float), value) == expected


def test_the_planner_report_gives_each_figure_its_city_percentile(ws, raw, figures):
    pid = _busiest_planner(raw)
    report = reports.planner_report(ws, pid, YEAR)
    by_key = {f["key"]: f for f in report["figures"]}
    assert set(by_key) == set(reports.FIGURES)
    received = by_key["feedback_received"]
    column = figures["feedback_received"]
    assert received["value"] == column[pid] == column.max()
    assert received["city_percentile"] == pytest.approx(
        100 * ((column < column[pid]).sum() + 0.5 * (column == column[pid]).sum()) / len(column), abs=0.05)
    assert report["planners_compared"] == len(figures)


# -- empty years and bad input ----------------------------------------------------------------------
def test_a_year_with_no_data_is_an_empty_report_that_says_so(ws):
    city = reports.city_report(ws, 1999)
    assert city["empty"] and "1999" in city["message"] and "无数据" in city["message"]
    assert city["coverage_start"] is None and city["feedback"]["received"] == 0
    planner = reports.planner_report(ws, "P006", 1999)
    assert planner["empty"] and "no data for 1999" in planner["message"]
    assert "无数据" in reports.report_html(ws, planner) and "无数据" in reports.report_html(ws, city)


@pytest.mark.parametrize("year", ["20x5", "2025.0", "", None, True, 1800, 3000])
def test_a_bad_year_is_refused_with_what_to_write(ws, year):
    with pytest.raises(ValidationError, match="year"):
        reports.planner_report(ws, "P006", year)


def test_an_unknown_planner_is_not_found(ws):
    with pytest.raises(NotFoundError, match="no planner"):
        reports.planner_report(ws, "P999", YEAR)


def test_population_led_matches_the_raw_tables_with_districts_summed_from_their_subdistricts(raw, figures):
    a, z = raw["appointments"], raw["zones"]
    zs, ze = pd.to_datetime(z["valid_from"]), pd.to_datetime(z["valid_to"])
    z = z[(zs <= END) & (ze.isna() | (ze > END))].copy()
    children = z.groupby(z["parent_code"].astype(str))["population"].sum(min_count=1)
    z["people"] = z["population"].where(z["population"].notna(), z["code"].astype(str).map(children))
    start, end = pd.to_datetime(a["start_date"]), pd.to_datetime(a["end_date"])
    live = a[(a["role"] == "lead") & (start <= END) & (end.isna() | (end > END))]
    live = live.sort_values(["zone_kind", "zone_code", "planner_id"]).drop_duplicates(["zone_kind", "zone_code"])
    joined = live.merge(z.rename(columns={"kind": "zone_kind", "code": "zone_code"}), on=["zone_kind", "zone_code"])
    expected = joined.groupby("planner_id")["people"].sum()
    expected = expected[expected > 0].astype("int64").sort_index()
    got = figures["lead_population"]
    assert got[got > 0].sort_index().to_dict() == expected.to_dict()
    district_leads = live[live["zone_kind"] == "district"]["planner_id"]
    assert len(district_leads) and (got[district_leads] > 0).all()  # districts have no population of their own


# -- a team's year --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def team_table(ws):
    return reports.team_figures(ws, YEAR)[0].set_index("team_id")


def _raw_team(raw, tid: str) -> tuple[set, set]:
    """(the team's people: lead and members; the ids of its territory's appointments: those naming the team
    and its lead's own), from the raw tables."""
    lead = raw["teams"].set_index("id").loc[tid, "lead_planner_id"]
    people = set(raw["team_members"].loc[raw["team_members"]["team_id"] == tid, "planner_id"]) | {lead}
    a = raw["appointments"]
    named = set(raw["appointment_teams"].loc[raw["appointment_teams"]["team_id"] == tid, "appointment_id"])
    return people, named | set(a.loc[a["planner_id"] == lead, "fid"])


def _raw_lead_zones(raw, ids: set) -> pd.DataFrame:
    """The distinct zones the appointments ``ids`` lead on 31 December, with the zone's row in force then."""
    a, z = raw["appointments"], raw["zones"]
    a = a[a["fid"].isin(ids)]
    start, end = pd.to_datetime(a["start_date"]), pd.to_datetime(a["end_date"])
    live = a[(a["role"] == "lead") & (start <= END) & (end.isna() | (end > END))]
    zs, ze = pd.to_datetime(z["valid_from"]), pd.to_datetime(z["valid_to"])
    z = z[(zs <= END) & (ze.isna() | (ze > END))].copy()
    children = z.groupby(z["parent_code"].astype(str))["population"].sum(min_count=1)
    z["people"] = z["population"].where(z["population"].notna(), z["code"].astype(str).map(children))
    keys = live[["zone_kind", "zone_code"]].drop_duplicates()
    return keys.merge(z.rename(columns={"kind": "zone_kind", "code": "zone_code"}), on=["zone_kind", "zone_code"])


def _busiest_team(raw) -> str:
    cases = _raw_year_cases(raw)
    people = {tid: _raw_team(raw, tid)[0] for tid in raw["teams"]["id"]}
    counts = {tid: sum(bool(p & set(r)) for r in cases["routed"]) for tid, p in people.items()}
    return max(sorted(counts), key=lambda t: counts[t])


def test_team_feedback_is_every_case_routed_to_one_of_its_people(raw, team_table):
    tid = _busiest_team(raw)
    people, _ = _raw_team(raw, tid)
    cases = _raw_year_cases(raw)
    mine = cases[cases["routed"].map(lambda ids: bool(people & set(ids)))]  # a case routed to two members: once
    answered = mine[mine["replied"].notna() & (mine["replied"] < STOP)]
    hours = (answered["replied"] - answered["received"]).dt.total_seconds() / 3600
    row = team_table.loc[tid]
    assert row["feedback_received"] == len(mine) > 0
    assert row["feedback_answered"] == len(answered)
    assert row["median_response_hours"] == pytest.approx(float(np.median(hours)))
    assert row["mean_rating"] == pytest.approx(answered["rating"].dropna().mean())


def test_team_zones_led_and_residents_match_the_raw_tables(raw, team_table):
    checked = 0
    for tid in raw["teams"]["id"]:
        zones = _raw_lead_zones(raw, _raw_team(raw, tid)[1])
        assert team_table.loc[tid, "zones_lead"] == len(zones), tid
        # residents once: a zone whose parent the team also leads is inside that one's population
        outer = zones[~zones["parent_code"].astype(str).isin(set(zones["zone_code"].astype(str)))]
        assert team_table.loc[tid, "lead_population"] == int(outer["people"].fillna(0).sum()), tid
        checked += len(zones) > 0
    assert checked >= 20  # the demo's district teams all lead zones


def test_team_stage_moves_and_projects_match_the_raw_project_events(raw, team_table):
    events = raw["project_events"].assign(at=lambda e: pd.to_datetime(e["at"], utc=True))
    projects = raw["projects"]
    moved_any = 0
    for tid in raw["teams"]["id"]:
        people, _ = _raw_team(raw, tid)
        consulted = projects["consultation_planner_ids"].map(lambda v: set(json.loads(v or "[]")))
        mine = projects[projects["lead_planner_id"].isin(people)
                        | consulted.map(lambda c, people=people: bool(c & people))]
        moves, alive = 0, 0
        for pid in mine["fid"]:
            e = events[(events["project_id"] == pid) & (events["at"] < STOP)].sort_values("fid")
            if e.empty or (e["status"].iloc[-1] == "feedback" and e["at"].iloc[-1] < pd.Timestamp("2025-01-01", tz="UTC")):
                continue  # created after the year, or finished before it
            alive += 1
            changed = e["status"].ne(e["status"].shift())
            moves += int(((e["at"] >= pd.Timestamp("2025-01-01", tz="UTC")) & (e["at"] < STOP) & changed).sum())
        assert team_table.loc[tid, "projects"] == alive, tid
        assert team_table.loc[tid, "stage_moves"] == moves, tid
        moved_any += moves > 0
    assert moved_any


def test_a_team_of_one_planner_has_that_planners_figures(demo_store):
    """One path for planners and teams: a team whose only person is P006 and that names no appointment
    holds P006's zones through its lead, so each of its figures is P006's."""
    w = Workspace.open(demo_store)
    try:
        save_team(w, {"id": "SOLO", "name": "单人团队 / one-planner team", "lead_planner_id": "P006",
                      "members": [{"planner_id": "P006", "role": "lead", "discipline": "planning"}]},
                  actor=Actor("tester"))
        planner = reports.planner_figures(w, YEAR)[0].set_index("planner_id").loc["P006"]
        team = reports.team_figures(w, YEAR)[0].set_index("team_id").loc["SOLO"]
        for key in reports.FIGURES:
            assert team[key] == pytest.approx(planner[key], nan_ok=True), key
        report = reports.team_report(w, "SOLO", YEAR)
        assert report["zones"] and {z["basis"] for z in report["zones"]} == {"lead"}  # the lead's, not named
        assert {a["basis"] for a in report["appointments"]} == {"lead"}
        page = reports.report_html(w, report)
        assert "负责人任命" in page and html.escape("lead's appointment") in page
    finally:
        w.close()


def test_the_team_report_lists_members_and_compares_with_every_team(ws, raw, team_table):
    tid = _busiest_team(raw)
    report = reports.team_report(ws, tid, YEAR)
    members = raw["team_members"][raw["team_members"]["team_id"] == tid]
    assert {m["planner_id"] for m in report["members"]} == set(members["planner_id"])
    assert report["members"][0]["role"] == "lead" and report["members"][0]["role_label"] == "负责人"
    assert {m["role_label"] for m in report["members"]} <= {"负责人", "成员", "专家顾问"}
    assert report["teams_compared"] == len(team_table) == len(raw["teams"])
    by_key = {f["key"]: f for f in report["figures"]}
    column = team_table["feedback_received"]
    assert by_key["feedback_received"]["city_percentile"] == pytest.approx(
        100 * ((column < column[tid]).sum() + 0.5 * (column == column[tid]).sum()) / len(column), abs=0.05)
    assert report["territory_rule"]["en"].startswith("the team's territory")
    assert report["feedback"]["received"] == team_table.loc[tid, "feedback_received"]


def test_discipline_gaps_of_a_team_count_its_members(ws, team_table):
    """The Tianfu Square key-area team is short of an urban designer: its gap counts; a team with no short
    zone has none."""
    gaps = reports.planner_figures(ws, YEAR)[1]["gaps"]
    ka = next(z for z in gaps["short"] if z["code"] == "KA-001")
    team = next(t for t in ka["teams"])
    assert team_table.loc[team, "discipline_gaps"] >= 1
    report = reports.team_report(ws, team, YEAR)
    assert "KA-001" in {z["code"] for z in report["discipline_gaps"]}
    assert (team_table["discipline_gaps"] == 0).any()


def test_an_unknown_team_is_not_found_and_an_empty_year_says_so(ws):
    with pytest.raises(NotFoundError, match="no team 'T999'"):
        reports.team_report(ws, "T999", YEAR)
    with pytest.raises(ValidationError, match="year"):
        reports.team_report(ws, "T14", "20x5")
    empty = reports.team_report(ws, "T14", 1999)
    assert empty["empty"] and "no data for 1999" in empty["message"] and "无数据" in empty["message"]
    page = reports.report_html(ws, empty)
    assert "无数据" in page and empty["members"][0]["name"] in page  # who the team is, even with no data


def test_a_demo_team_report_shows_real_figures_in_every_section(ws, team_table):
    """The demo city's teams make a full report: one team (found from the figures, not named here) has zones,
    residents, life circles, projects with their stages, answered feedback and a discipline gap."""
    full = team_table[(team_table["zones_lead"] > 0) & (team_table["lead_population"] > 0)
                      & (team_table["life_circles"] > 0) & (team_table["projects"] > 0)
                      & (team_table["feedback_answered"] > 0) & (team_table["discipline_gaps"] > 0)]
    assert len(full), "no demo team fills every section of its report"
    report = reports.team_report(ws, full.index[0], YEAR)
    assert not report["empty"] and report["zones"] and report["members"]
    assert report["feedback"]["median_response_hours"] > 0 and 1 <= report["feedback"]["mean_rating"] <= 5
    page = reports.report_html(ws, report)
    for p in report["projects"]:
        assert p["name"] in page and p["stages"]
    assert "天 days" in page and report["discipline_gaps"][0]["name"] in page
    assert all(f["city_percentile"] is not None for f in report["figures"] if f["value"] is not None)
