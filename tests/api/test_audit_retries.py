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
    return request.getfixturevalue("pg_demo_url")


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


# -- 4. Idempotency-Key: a retried POST answers the first answer and writes nothing again -----------
APPOINTMENT = {"planner_id": "P001", "zone_kind": "historic_area", "zone_code": "HA-001", "role": "consultant",
               "start": "2031-03-01"}


def _count(store, what: str) -> int:
    s = open_store(store)
    try:
        return len(getattr(s, what)())
    finally:
        s.close()


def test_a_retried_appointment_with_the_same_key_is_created_once(store, client):
    before, audit_before = _count(store, "appointments"), len(audit_rows(client))
    headers = {**AUTH, "Idempotency-Key": "3b1f0f8e-appointment-1"}
    first = client.post("/appointments", json=APPOINTMENT, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = client.post("/appointments", json=APPOINTMENT, headers=headers)
    assert again.status_code == first.status_code and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers.get("location") == first.headers.get("location")
    assert _count(store, "appointments") == before + 1
    assert len(audit_rows(client)) == audit_before + 1
    # the same key with another body: refused, naming the key; nothing written
    other = client.post("/appointments", json={**APPOINTMENT, "start": "2031-04-01"}, headers=headers)
    assert other.status_code == 422 and "3b1f0f8e-appointment-1" in other.json()["detail"], other.text
    assert _count(store, "appointments") == before + 1
    # another key is another request; a key is the token's own: another token's same key is not replayed
    fresh = client.post("/appointments", json={**APPOINTMENT, "zone_code": "HA-002"},
                        headers={**AUTH, "Idempotency-Key": "3b1f0f8e-appointment-2"})
    assert fresh.status_code == 201 and fresh.json()["id"] != first.json()["id"]


def test_the_first_answer_is_kept_in_the_store(store, client, demo_path):
    """A retry reaching another server (a restart, another replica) still gets the first answer."""
    headers = {**AUTH, "Idempotency-Key": "project-kept-1"}
    first = client.post("/projects", json=PROJECT, headers=headers)
    assert first.status_code == 201, first.text
    projects = _count(store, "projects")
    with TestClient(create_app(make_settings(store))) as other:
        again = other.post("/projects", json=PROJECT, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert _count(store, "projects") == projects


def test_a_failed_request_keeps_no_answer(store, client):
    """A refused request wrote nothing, so its key is free again: the corrected request may use it."""
    headers = {**AUTH, "Idempotency-Key": "planner-after-fix"}
    bad = client.post("/planners", json={"id": "P950", "name": ""}, headers=headers)
    assert bad.status_code == 422
    good = client.post("/planners", json={"id": "P950", "name": "改正后"}, headers=headers)
    assert good.status_code == 201 and "idempotent-replayed" not in good.headers, good.text
    again = client.post("/planners", json={"id": "P950", "name": "改正后"}, headers=headers)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == good.content
    # without a key the same request is a new one: the id is taken
    assert client.post("/planners", json={"id": "P950", "name": "改正后"}, headers=AUTH).status_code == 409


def test_zone_import_retried_with_a_key_imports_once(store, client, tmp_path):
    body = qingyang_2025(store, tmp_path).read_bytes()
    headers = {**GEOJSON, **AUTH, "Idempotency-Key": "qingyang-2025"}
    first = client.post("/zones/import", params=PARAMS, content=body, headers=headers)
    assert first.status_code == 200 and first.json()["written"], first.text
    logged = len(open_store(store).import_log())
    again = client.post("/zones/import", params=PARAMS, content=body, headers=headers)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(open_store(store).import_log()) == logged
    other = client.post("/zones/import", params={**PARAMS, "dry_run": True}, content=body, headers=headers)
    assert other.status_code == 422 and "qingyang-2025" in other.json()["detail"]


@pytest.mark.parametrize("key", ["", "a" * 256, "键"])
def test_a_bad_key_is_a_422_naming_the_header(client, key):
    r = client.post("/planners", json={"id": "P960", "name": "x"},
                    headers={**AUTH, "Idempotency-Key": key.encode("utf-8")})
    assert r.status_code == 422 and "Idempotency-Key" in r.json()["detail"], r.text


def test_keys_need_a_valid_token_and_expire_after_a_day(store, client):
    r = client.post("/planners", json={"id": "P970", "name": "x"}, headers={"Idempotency-Key": "anon"})
    assert r.status_code == 401
    headers = {**AUTH, "Idempotency-Key": "old-key"}
    assert client.post("/planners", json={"id": "P970", "name": "x"}, headers=headers).status_code == 201
    s = open_store(store)
    with s.transaction() as con:  # the key was used two days ago
        s._exec(con, "UPDATE idempotency_keys SET created_at = ? WHERE key = ?", ("2000-01-01T00:00:00+00:00",
                                                                                 "old-key"))
    s.close()
    again = client.post("/planners", json={"id": "P970", "name": "x"}, headers=headers)
    assert again.status_code == 409 and "idempotent-replayed" not in again.headers  # a new request: id taken


def test_a_key_whose_request_has_no_answer_yet_is_a_409(store, client):
    """As after a server stopped between the claim and the answer: the outcome is unknown, so no second write."""
    headers = {**AUTH, "Idempotency-Key": "interrupted"}
    assert client.post("/planners", json={"id": "P980", "name": "x"}, headers=headers).status_code == 201
    s = open_store(store)
    with s.transaction() as con:
        s._exec(con, "UPDATE idempotency_keys SET status = NULL, response = NULL WHERE key = ?", ("interrupted",))
    s.close()
    r = client.post("/planners", json={"id": "P980", "name": "x"}, headers=headers)
    assert r.status_code == 409 and "interrupted" in r.json()["detail"] and r.headers["retry-after"], r.text


def test_a_store_of_schema_2_gets_the_keys_table_when_opened(store_copy):
    import sqlite3

    with sqlite3.connect(store_copy) as con:  # as an older Zeren left it
        con.execute("DROP TABLE idempotency_keys")
        con.execute("DELETE FROM gpkg_contents WHERE table_name = 'idempotency_keys'")
        con.execute("UPDATE zeren_meta SET value = '2' WHERE key = 'schema_version'")
    with TestClient(create_app(make_settings(store_copy))) as c:
        headers = {**AUTH, "Idempotency-Key": "after-upgrade"}
        first = c.post("/planners", json={"id": "P990", "name": "x"}, headers=headers)
        again = c.post("/planners", json={"id": "P990", "name": "x"}, headers=headers)
        assert first.status_code == again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert open_store(store_copy).meta("schema_version") == "3"
