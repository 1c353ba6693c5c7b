"""Audit and retries (issue 13, part 9), on both stores: every import is in /audit with its actor and what it
changed; the command line's actor carries the OS user; project actors are shown only where /audit would show
them; a POST retried with the same ``Idempotency-Key`` answers the first answer and writes nothing again."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess

import pytest
from fastapi.testclient import TestClient
from zeren.api.http.app import create_app
from zeren.api.service.demo import build_demo
from zeren.api.settings import command_environment
from zeren.layers.store import open_store

from tests.api.conftest import AUTH, AUTH_PLANNER, make_settings
from tests.layers._support import cli, zeren_command
from tests.service._scenario import DISTRICT, qingyang_2025

GEOJSON = {"Content-Type": "application/geo+json"}
PLANNER_HEADER = "id,name,organization,disciplines,public_contact,private_contact"
PARAMS = {"kind": "subdistrict", "edition": 2025, "within": DISTRICT}


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request, demo_path, tmp_path):
    """The demo city on a GeoPackage copy or in a fresh PostGIS database."""
    if request.param == "gpkg":
        dest = tmp_path / "store.gpkg"
        shutil.copy(demo_path, dest)
        return str(dest)
    url = request.getfixturevalue("pg_url_clean")
    build_demo(url).close()
    return url


@pytest.fixture
def client(store):
    with TestClient(create_app(make_settings(store))) as c:
        yield c


def audit_rows(client, **params) -> list[dict]:
    r = client.get("/audit", params={"limit": 1000, **params}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()["entries"]


def last_import_id(store) -> int:
    s = open_store(store)
    try:
        return int(s.import_log()["id"].max())
    finally:
        s.close()


# -- 1. imports are audited -------------------------------------------------------------------------
def _check_zone_import(entry: dict, plan: dict, import_id: int) -> None:
    d = entry["detail"]
    assert (entry["action"], entry["entity"], entry["entity_id"]) == ("import", "zones", "subdistrict/2025")
    assert (d["kind"], d["edition"], d["scope"], d["within"]) == ("subdistrict", 2025, "within", [DISTRICT])
    assert {k: d[k] for k in ("added", "changed", "unchanged", "retired")} == {
        k: plan["summary"][k] for k in ("added", "changed", "unchanged", "retired")}
    assert d["retired"] > 0 and d["added"] > 0
    assert d["import_id"] == plan["import_id"] == import_id


def test_cli_import_layer_is_in_the_audit_log(store, client, tmp_path, capsys):
    path = qingyang_2025(store, tmp_path)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
              "--json", "--actor", "alice", "--store", store)
    assert run.rc == 0, run.err
    plan = json.loads(run.out)
    mine = [e for e in audit_rows(client, action="import", entity="zones") if e["actor"].startswith("cli:alice")]
    assert len(mine) == 1, mine
    _check_zone_import(mine[0], plan, last_import_id(store))
    assert mine[0]["detail"]["source"] == str(path)


def test_http_zone_import_is_in_the_audit_log(store, client, tmp_path):
    body = qingyang_2025(store, tmp_path).read_bytes()
    r = client.post("/zones/import", params=PARAMS, content=body, headers={**GEOJSON, **AUTH})
    assert r.status_code == 200 and r.json()["written"], r.text
    mine = [e for e in audit_rows(client, action="import", entity="zones") if e["actor"] == "admin:tester"]
    assert len(mine) == 1, mine
    _check_zone_import(mine[0], r.json(), last_import_id(store))
    # a dry run writes nothing, so it leaves no audit row
    before = len(audit_rows(client))
    assert client.post("/zones/import", params={**PARAMS, "dry_run": True}, content=body,
                       headers={**GEOJSON, **AUTH}).status_code == 200
    assert len(audit_rows(client)) == before


def test_csv_imports_and_carry_over_have_an_import_row(store, client, tmp_path, capsys):
    planners = tmp_path / "planners.csv"
    planners.write_text(f"{PLANNER_HEADER}\n"
                        "Q901,欧阳明,,planning,,\nQ902,司马青,,law,,\n", encoding="utf-8")
    assert cli(capsys, "import-planners", planners, "--actor", "bob", "--store", store).rc == 0
    row = [e for e in audit_rows(client, action="import", entity="planners") if e["actor"].startswith("cli:bob")]
    assert len(row) == 1 and row[0]["detail"]["added"] == 2 and row[0]["detail"]["source"] == str(planners)
    assert row[0]["entity_id"] == str(row[0]["detail"]["import_id"]) == str(last_import_id(store))

    appts = tmp_path / "appointments.csv"
    appts.write_text("planner_id,zone_kind,zone_code,role,start,end\n"
                     "Q901,subdistrict,510104001,member,2025-01-01,\n", encoding="utf-8")
    assert cli(capsys, "import-appointments", appts, "--actor", "bob", "--store", store).rc == 0
    row = [e for e in audit_rows(client, action="import", entity="appointments") if e["actor"].startswith("cli:bob")]
    created = [e for e in audit_rows(client, action="create", entity="appointment")][-1]
    assert len(row) == 1 and row[0]["detail"]["appointment_ids"] == [int(created["entity_id"])]

    body = qingyang_2025(store, tmp_path).read_bytes()
    assert client.post("/zones/import", params=PARAMS, content=body, headers={**GEOJSON, **AUTH}).status_code == 200
    applied = client.post("/editions/carry-over", params={"kind": "subdistrict", "to": 2025, "apply": True},
                          headers=AUTH).json()
    assert applied["applied"] and applied["created"]
    row = audit_rows(client, action="carry-over")
    assert len(row) == 1 and row[0]["actor"] == "admin:tester" and row[0]["entity"] == "appointments"
    assert row[0]["detail"]["appointment_ids"] == applied["created"]


# -- 2. the command line's actor carries the OS account ---------------------------------------------
def _os_account() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def test_os_account_comes_from_the_user_id_not_from_variables():
    assert command_environment({"USER": "mallory", "LOGNAME": "mallory"}).os_user == _os_account()


def test_cli_actor_records_the_os_account_even_with_a_spoofed_user_variable(store, client, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "ZEREN_STORE"}, "USER": "mallory", "LOGNAME": "mallory"}
    for pid, argv, actor in (("Q911", ["--actor", "alice"], f"cli:alice (os: {_os_account()})"),
                             ("Q912", [], f"cli:{_os_account()}")):
        planners = tmp_path / f"{pid}.csv"
        planners.write_text(f"{PLANNER_HEADER}\n{pid},欧阳明,,law,,\n", encoding="utf-8")
        run = subprocess.run(zeren_command() + ["import-planners", str(planners), "--store", store, *argv],
                             check=False, capture_output=True, text=True, timeout=120, env=env)
        assert run.returncode == 0, run.stderr
        rows = audit_rows(client, action="import", entity="planners")
        assert rows[-1]["actor"] == actor, rows[-1]
        assert audit_rows(client, actor=actor, entity="planner"), "the record's own row names the same actor"


@pytest.mark.parametrize("name", ["x (os: root)", "bob\u202e", "a" * 101])
def test_an_actor_that_could_pose_as_the_os_account_exits_2(store, tmp_path, capsys, name):
    before = len(open_store(store).audit(limit=100_000))
    planners = tmp_path / "planners.csv"
    planners.write_text(f"{PLANNER_HEADER}\nQ921,欧阳明,,law,,\n", encoding="utf-8")
    run = cli(capsys, "import-planners", planners, "--actor", name, "--store", store)
    assert run.rc == 2 and "--actor" in run.err and "plain name" in run.err, run.err
    assert len(open_store(store).audit(limit=100_000)) == before


# -- 3. actors shown only where /audit would show them ----------------------------------------------
PROJECT = {"name": "审计测试项目", "geometry": {"type": "Point", "coordinates": [104.053, 30.6695]}}


def test_project_actors_are_names_for_admins_and_roles_for_everyone_else(store, client):
    r = client.post("/projects", json=PROJECT, headers=AUTH)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["properties"]["lead_planner_id"] == "P006"
    r = client.post(f"/projects/{pid}/status", json={"status": "assessment", "note": "n"}, headers=AUTH_PLANNER)
    assert r.status_code == 200, r.text
    names = {e["actor"] for e in audit_rows(client, entity="project", entity_id=str(pid))}
    assert names == {"admin:tester", "planner:P006"}
    admin = client.get(f"/projects/{pid}", headers=AUTH).json()["properties"]
    assert admin["created_by"] == "admin:tester"
    assert [e["actor"] for e in admin["events"]] == ["admin:tester", "planner:P006"]
    for headers in ({}, AUTH_PLANNER):
        answers = [client.get(f"/projects/{pid}", headers=headers),
                   client.get("/projects", params={"limit": 1000}, headers=headers),
                   client.get(f"/ogc/collections/projects/items/{pid}", headers=headers),
                   client.get("/ogc/collections/projects/items", params={"limit": 1000}, headers=headers)]
        # the planner's own answer to a write, too
        answers.append(client.post(f"/projects/{pid}/notes", json={"note": "m"}, headers=AUTH_PLANNER))
        for answer in answers:
            assert answer.status_code in (200, 201), answer.text
            assert not any(n in answer.text for n in names) and "tester" not in answer.text, answer.url
        props = answers[0].json()["properties"]
        assert props["created_by"] == "admin"
        assert [e["actor"] for e in props["events"]][:2] == ["admin", "planner"]
    # the demo's projects were made by the demo builder: a system actor
    demo = client.get("/projects/1").json()["properties"]
    assert demo["created_by"] == "system" and {e["actor"] for e in demo["events"]} <= {"system"}
