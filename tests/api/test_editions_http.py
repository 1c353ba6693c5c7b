"""Boundary editions over HTTP: the scoped import (admin), the list, the diff, carry-over and the diff map,
through the same use cases as the command line (their answers are the CLI's --json)."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from zeren.layers.store import open_store
from tests.api.conftest import AUTH, AUTH_PLANNER, make_settings
from tests.layers._support import cli, store_state
from tests.service._scenario import DISTRICT, GONE, MERGED, qingyang_2025

GEOJSON = {"Content-Type": "application/geo+json"}
PARAMS = {"kind": "subdistrict", "edition": 2025, "within": DISTRICT}


@pytest.fixture
def setup(store_copy, tmp_path):
    path = qingyang_2025(store_copy, tmp_path)
    with TestClient(create_app(make_settings(store_copy))) as client:
        yield client, store_copy, path.read_bytes()


def test_import_needs_an_admin(setup):
    client, store, body = setup
    before = store_state(store)
    assert client.post("/zones/import", params=PARAMS, content=body, headers=GEOJSON).status_code == 401
    assert client.post("/zones/import", params=PARAMS, content=body,
                       headers={**GEOJSON, **AUTH_PLANNER}).status_code == 403
    assert store_state(store) == before


def test_dry_run_over_http_is_the_cli_s_plan(setup, capsys, tmp_path):
    client, store, body = setup
    before = store_state(store)
    r = client.post("/zones/import", params={**PARAMS, "dry_run": True}, content=body, headers={**GEOJSON, **AUTH})
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["dry_run"] and not plan["written"] and plan["summary"]["retired"] == 3
    assert store_state(store) == before
    path = tmp_path / "qingyang_2025.geojson"
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
              "--dry-run", "--json", "--store", store)
    cli_plan = json.loads(run.out)
    for key in ("added", "changed", "unchanged", "retired", "summary", "scope", "within"):
        assert plan[key] == cli_plan[key], key


def test_import_diff_carry_over_then_lookup(setup):
    client, store, body = setup
    s = open_store(store)
    point = s.zones(kind="subdistrict", as_of="2024-06-01").set_index("code").geometry["510105002"].representative_point()
    s.close()
    old_lead = client.get("/lookup", params={"lon": point.x, "lat": point.y, "as_of": "2025-06-01"}).json()["lead"]
    r = client.post("/zones/import", params=PARAMS, content=body, headers={**GEOJSON, **AUTH})
    assert r.status_code == 200 and r.json()["written"], r.text
    # the importing server answers from the new edition at once
    now = client.get("/lookup", params={"lon": point.x, "lat": point.y, "as_of": "2025-06-01"}).json()["lead"]
    assert now["zone"]["code"] == DISTRICT
    history = client.get("/zones/subdistrict/510105002", params={"as_of": "2025-06-01"}).json()["properties"]
    assert history["in_force"] is False and history["history"] == [
        {"edition": 2024, "valid_from": "2024-01-01", "valid_to": "2025-01-01"}]
    editions = client.get("/editions", params={"kind": "subdistrict"}).json()["editions"]
    assert [e["edition"] for e in editions] == [2024, 2025]
    diff = client.get("/editions/diff", params={"kind": "subdistrict", "from": 2024, "to": 2025}).json()
    assert {z["code"] for z in diff["zones"] if z["status"] == "removed"} == set(GONE)
    dangling = {a["zone_code"]: a["successor_code"] for a in diff["dangling_appointments"] if a["role"] == "lead"}
    assert dangling["510105002"] == MERGED
    assert client.post("/editions/carry-over", params={"kind": "subdistrict", "to": 2025, "apply": True}).status_code == 401
    proposed = client.post("/editions/carry-over", params={"kind": "subdistrict", "to": 2025}, headers=AUTH).json()
    assert not proposed["applied"] and proposed["created"] == []
    applied = client.post("/editions/carry-over", params={"kind": "subdistrict", "to": 2025, "apply": True},
                          headers=AUTH).json()
    assert applied["applied"] and len(applied["created"]) == 3
    back = client.get("/lookup", params={"lon": point.x, "lat": point.y, "as_of": "2025-06-01"}).json()["lead"]
    assert back["planner"]["id"] == old_lead["planner"]["id"] and back["zone"]["code"] == MERGED
    page = client.get("/maps/editions/diff", params={"kind": "subdistrict", "from": 2024, "to": 2025})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"] and MERGED in page.text
    audit = client.get("/audit", params={"entity": "zones"}, headers=AUTH).json()["entries"]
    assert any(e["action"] == "import" and e["actor"] == "admin:tester" for e in audit)


@pytest.mark.parametrize("params, headers, status, words", [
    ({**PARAMS, "within": "999999"}, GEOJSON, 422, "--within 999999"),
    ({**PARAMS, "edition": 2023, "within": None}, GEOJSON, 409, "older than editions already stored"),
    (PARAMS, {"Content-Type": "text/plain"}, 422, "Content-Type"),
    ({**PARAMS, "code_field": "XZQDM"}, GEOJSON, 422, "no field 'XZQDM'"),
])
def test_bad_imports_are_clear_4xx_and_write_nothing(setup, params, headers, status, words):
    client, store, body = setup
    if params.get("edition") == 2023:  # an older edition than one stored for these zones
        assert client.post("/zones/import", params=PARAMS, content=body, headers={**GEOJSON, **AUTH}).status_code == 200
    before = store_state(store)
    r = client.post("/zones/import", params={k: v for k, v in params.items() if v is not None}, content=body,
                    headers={**headers, **AUTH})
    assert r.status_code == status and words in r.json()["detail"] + " ".join(r.json()["problems"]), r.text
    assert "zeren-upload-" not in r.text  # the server's temporary folder is never shown
    assert store_state(store) == before


@pytest.mark.parametrize("params, status", [
    ({"kind": "subdistrict", "from": 2020, "to": 2024}, 404),
    ({"kind": "subdistrict", "from": 2024, "to": 2024}, 422),
    ({"kind": "street", "from": 2024, "to": 2025}, 422),
])
def test_bad_diffs(setup, params, status):
    client, _, _ = setup
    assert client.get("/editions/diff", params=params).status_code == status
