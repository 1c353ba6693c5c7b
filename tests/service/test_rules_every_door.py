"""One rule, every door: the appointment and planner rules hold for the CSV import, the HTTP API and the demo
builder alike, and the assignment columns are protected the same way by `zeren assign` and `POST /assign`."""
from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from zeren.layers.errors import ConflictError
from zeren.layers.store import open_store
from tests.api.conftest import AUTH, make_settings
from tests.layers._support import cli, store_state

APPOINTMENTS = ["planner_id", "zone_kind", "zone_code", "role", "start", "end"]
PLANNERS = ["id", "name", "organization", "disciplines", "public_contact", "private_contact"]


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def an_uncovered_subdistrict(store) -> str:
    """A demo subdistrict in force today without any lead (the demo leaves gaps)."""
    s = open_store(store)
    try:
        zones = s.zones(kind="subdistrict", as_of="2025-06-01")
        appts = s.appointments()
    finally:
        s.close()
    led = set(appts.loc[(appts["zone_kind"] == "subdistrict") & (appts["role"] == "lead"), "zone_code"])
    return sorted(set(zones["code"]) - led)[0]


def a_led_subdistrict(store) -> tuple[str, str, int]:
    s = open_store(store)
    try:
        appts = s.appointments()
    finally:
        s.close()
    leads = appts[(appts["zone_kind"] == "subdistrict") & (appts["role"] == "lead") & appts["end"].isna()
                  & (appts["start"] == pd.Timestamp("2024-01-01"))]
    row = leads.sort_values("zone_code").iloc[0]
    return row["zone_code"], row["planner_id"], int(row["id"])


# -- re-importing the same files changes nothing ------------------------------------------------------------
def test_reimporting_appointments_adds_nothing_the_second_time(capsys, demo_store, tmp_path):
    code = an_uncovered_subdistrict(demo_store)
    path = write_csv(tmp_path / "a.csv", APPOINTMENTS, [["P010", "subdistrict", code, "lead", "2025-01-01", ""],
                                                        ["P011", "subdistrict", code, "member", "2025-01-01", ""]])
    first = cli(capsys, "import-appointments", path, "--store", demo_store)
    assert first.rc == 0 and "2 added, 0 already present" in first.out, first.text
    before = store_state(demo_store)
    second = cli(capsys, "import-appointments", path, "--store", demo_store)
    assert second.rc == 0 and "0 added, 2 already present" in second.out, second.text
    assert store_state(demo_store) == before  # no duplicate, no log, no audit row
    s = open_store(demo_store)
    zone = s.zones(kind="subdistrict", as_of="2025-06-01").set_index("code").geometry[code]
    s.close()
    p = zone.representative_point()
    got = json.loads(cli(capsys, "lookup", "--lon", p.x, "--lat", p.y, "--as-of", "2025-06-01", "--json",
                         "--store", demo_store).out)
    listed = [(q["planner"]["id"], q["role"]) for q in got["planners"] if q["zone"]["code"] == code]
    assert sorted(listed) == [("P010", "lead"), ("P011", "member")]  # each once
    overlaps = cli(capsys, "overlaps", "--kind", "subdistrict", "--as-of", "2025-06-01",
                   "--out", tmp_path / "o.geojson", "--store", demo_store)
    assert "P010 " not in overlaps.out.split("conflicting lead appointments")[1]


def test_reimporting_planners_changes_nothing_and_says_so(capsys, demo_store, tmp_path):
    rows = [["Q101", "测试甲", "某院", "planning;heritage", "q101@example.org", "+86-1"],
            ["Q102", "测试乙", "", "landscape", "", ""]]
    path = write_csv(tmp_path / "p.csv", PLANNERS, rows)
    assert "2 added" in cli(capsys, "import-planners", path, "--store", demo_store).out
    before = store_state(demo_store)
    again = cli(capsys, "import-planners", path, "--store", demo_store)
    assert again.rc == 0 and "0 added, 0 updated, 2 unchanged" in again.out and "nothing to write" in again.out
    assert store_state(demo_store) == before
    rows[1][2] = "新院"
    write_csv(path, PLANNERS, rows)
    changed = cli(capsys, "import-planners", path, "--store", demo_store)
    assert "0 added, 1 updated, 1 unchanged" in changed.out


# -- a clashing lead is refused by every door ---------------------------------------------------------------
def test_a_clashing_lead_is_refused_from_a_csv(capsys, demo_store, tmp_path):
    code, lead, appointment_id = a_led_subdistrict(demo_store)
    path = write_csv(tmp_path / "a.csv", APPOINTMENTS, [["P050", "subdistrict", code, "member", "2025-01-01", ""],
                                                        ["P051", "subdistrict", code, "lead", "2025-03-01", ""]])
    before = store_state(demo_store)
    run = cli(capsys, "import-appointments", path, "--store", demo_store)
    assert run.rc == 2, run.text
    assert f"already has lead {lead} (appointment {appointment_id}" in run.err and "row 3" in run.err
    assert str(path) in run.err
    assert store_state(demo_store) == before  # the good row 2 was not written either


def test_a_clashing_lead_is_refused_by_the_api(demo_store):
    code, lead, appointment_id = a_led_subdistrict(demo_store)
    with TestClient(create_app(make_settings(demo_store))) as client:
        r = client.post("/appointments", headers=AUTH, json={"planner_id": "P051", "zone_kind": "subdistrict",
                                                             "zone_code": code, "role": "lead", "start": "2025-03-01"})
        assert r.status_code == 409, r.text
        assert f"already has lead {lead} (appointment {appointment_id}" in r.json()["detail"]
        # the same appointment twice: created once, then answered as already present
        body = {"planner_id": "P051", "zone_kind": "subdistrict", "zone_code": code, "role": "member",
                "start": "2025-03-01"}
        first, second = (client.post("/appointments", headers=AUTH, json=body) for _ in range(2))
        assert (first.status_code, second.status_code) == (201, 200)
        assert second.json()["id"] == first.json()["id"] and second.json()["already_present"] is True


def test_a_clashing_lead_stops_the_demo_builder(tmp_path, monkeypatch):
    from zeren.api.service import demo

    real = demo.demo_people

    def with_a_second_lead(districts, subdistricts, circles):
        planners, appointments = real(districts, subdistricts, circles)
        first = next(a for a in appointments if a[1] == "subdistrict" and a[3] == "lead" and a[5] is None)
        return planners, appointments + [("P001", "subdistrict", first[2], "lead", demo.EDITION_START, None)]

    monkeypatch.setattr(demo, "demo_people", with_a_second_lead)
    with pytest.raises(ConflictError, match="already has lead"):
        demo.build_demo(tmp_path / "demo.gpkg")
    assert not open_store(tmp_path / "demo.gpkg").appointments().shape[0]  # nothing of the people was written


# -- input properties that clash with the added columns -----------------------------------------------------
def test_assign_refuses_clashing_columns_at_both_doors(capsys, demo_store, tmp_path):
    path = tmp_path / "sites.csv"
    path.write_text("name,lon,lat,covered,lead_planner_id\n甲,104.05,30.66,x,y\n", encoding="utf-8")
    run = cli(capsys, "assign", path, "--crs", "wgs84", "--out", tmp_path / "out.csv", "--store", demo_store)
    assert run.rc == 2 and "covered, lead_planner_id" in run.err and not (tmp_path / "out.csv").exists()
    with TestClient(create_app(make_settings(demo_store))) as client:
        body = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": "甲", "covered": "x", "lead_planner_id": "y"},
             "geometry": {"type": "Point", "coordinates": [104.05, 30.66]}}]}
        r = client.post("/assign", json=body)
        assert r.status_code == 422 and "covered, lead_planner_id" in r.json()["detail"], r.text


# -- the nearest zone offered to a site outside every zone: the same rule for a lookup and a batch ----------
def test_a_far_site_is_offered_no_nearest_zone_at_any_door(capsys, demo_store, tmp_path):
    """A site outside every zone is offered the nearest zone with a planner only within 50 km (a planner
    farther away is a sign the site is elsewhere): the lookup (CLI and HTTP), ``zeren assign`` and
    ``POST /assign`` apply the one rule, and agree on the zone and distance they do offer."""
    from zeren.geo.answer import MAX_SUGGESTION_M
    from zeren.layers.catalogue import Catalogue

    s = open_store(demo_store)
    try:
        catalogue = Catalogue(s)
        minx, miny, maxx, maxy = catalogue.index.bounds
        mid = (miny + maxy) / 2
        sites = {"near": (maxx + 0.1, mid), "far": (maxx + 1.0, mid)}
        looked = {k: catalogue.lookup(x, y, "wgs84", "2025-06-01") for k, (x, y) in sites.items()}
    finally:
        s.close()
    near, far = looked["near"], looked["far"]
    assert near["outside_service_area"] and far["outside_service_area"]
    assert near["nearest"] is not None and near["nearest"]["distance_m"] <= MAX_SUGGESTION_M
    assert far["nearest"] is None and "none is suggested" in far["notice"]
    for k, (x, y) in sites.items():  # the CLI's lookup says the same
        got = json.loads(cli(capsys, "lookup", "--lon", x, "--lat", y, "--as-of", "2025-06-01", "--json",
                             "--store", demo_store).out)
        assert got["nearest"] == looked[k]["nearest"] and got["notice"] == looked[k]["notice"]
    path = write_csv(tmp_path / "sites.csv", ["name", "lon", "lat"], [[k, x, y] for k, (x, y) in sites.items()])
    run = cli(capsys, "assign", path, "--crs", "wgs84", "--as-of", "2025-06-01", "--out", tmp_path / "out.csv",
              "--store", demo_store)
    assert run.rc == 0, run.text
    rows = {r["name"]: r for r in csv.DictReader(open(tmp_path / "out.csv", encoding="utf-8"))}
    with TestClient(create_app(make_settings(demo_store))) as client:
        body = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": k}, "geometry": {"type": "Point", "coordinates": [x, y]}}
            for k, (x, y) in sites.items()]}
        r = client.post("/assign", params={"as_of": "2025-06-01"}, json=body)
        assert r.status_code == 200, r.text
        http = {f["properties"]["name"]: f["properties"] for f in r.json()["features"]}
        for k in sites:  # and GET /lookup
            g = client.get("/lookup", params={"lon": sites[k][0], "lat": sites[k][1], "as_of": "2025-06-01"})
            assert g.json()["nearest"] == looked[k]["nearest"]
    offered = near["nearest"]
    assert rows["near"]["nearest_zone_code"] == offered["zone"]["code"]
    assert float(rows["near"]["nearest_distance_m"]) == offered["distance_m"]
    assert http["near"]["nearest_zone_code"] == offered["zone"]["code"]
    assert http["near"]["nearest_distance_m"] == offered["distance_m"]
    assert rows["far"]["nearest_zone_code"] == rows["far"]["nearest_planner_id"] == ""
    assert rows["far"]["nearest_distance_m"] == ""
    assert http["far"]["nearest_zone_code"] is None and http["far"]["nearest_distance_m"] is None
    assert rows["far"]["covered"] == "False" and http["far"]["covered"] is False
