"""A subset of the API tests against a PostGIS store (the demo city copied into a fresh database)."""
from __future__ import annotations

import datetime as dt

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from zeren.layers.catalogue import Catalogue
from zeren.geo.kinds import PROJECT_STATUSES
from zeren.layers.store import open_store
from tests.api._live import LiveServer
from tests.api.conftest import AUTH, AUTH_PLANNER, TOKENS, make_settings


def copy_demo(src_path, url) -> None:
    """The demo store copied into PostGIS through the use cases (as an administrator would move a city)."""
    from zeren.api.service import appointments, boundaries, planners, projects
    from zeren.api.service.actors import Actor
    from zeren.api.service.workspace import Workspace

    who = Actor("copy")
    src, dst = open_store(src_path), Workspace(open_store(url, create=True))
    zones = src.zones()
    for (kind, edition), group in zones.groupby(["kind", "edition"]):
        boundaries.import_frame(dst, group.drop(columns="kind"), kind=kind, edition=int(edition),
                                valid_from=group["valid_from"].min().date(), source="copy", actor=who)
    planners.save_planners(dst, src.planners(), actor=who)
    appts = src.appointments().drop(columns="id")
    appointments.add_appointments(dst, appts, actor=who)
    for row in src.projects().to_dict("records"):
        pid = dst.store.create_project(name=row["name"], geometry=row["geometry"], type=row["type"],
                                       scale=row["scale"], description=row["description"],
                                       as_of=dt.date.fromisoformat(str(row["as_of"])[:10]),
                                       assignment=row["assignment"], actor="copy")
        for status in PROJECT_STATUSES[1:PROJECT_STATUSES.index(row["status"]) + 1]:
            projects.advance_project(dst, pid, status, actor=who)
    src.close()
    dst.close()


@pytest.fixture
def pg_store(pg_url_clean, demo_path):
    copy_demo(demo_path, pg_url_clean)
    return pg_url_clean


def test_reads_and_writes_on_postgis(pg_store, demo_path):
    with TestClient(create_app(make_settings(pg_store))) as c:
        assert c.get("/health").json()["engine"] == "postgis"
        gpkg = Catalogue(open_store(demo_path))
        rng = np.random.default_rng(5)
        for x, y in zip(rng.uniform(103.9, 104.3, 40), rng.uniform(30.5, 30.8, 40)):
            assert c.get("/lookup", params={"lon": x, "lat": y}).json() == gpkg.lookup(x, y)
        assert c.get("/zones", params={"kind": "district"}).json()["numberMatched"] == 20
        assert c.get("/ogc/collections/projects/items").json()["numberMatched"] == 6
        # writes, auth, audit
        audit0 = c.get("/audit", headers=AUTH).json()["numberMatched"]
        assert c.post("/planners", json={"id": "P900", "name": "x"}).status_code == 401
        assert c.post("/planners", json={"id": "P900", "name": "x"}, headers=AUTH_PLANNER).status_code == 403
        assert c.get("/audit", headers=AUTH).json()["numberMatched"] == audit0
        assert c.post("/planners", json={"id": "P900", "name": "x", "disciplines": ["law"]},
                      headers=AUTH).status_code == 201
        assert c.post("/planners", json={"id": "P900", "name": "x"}, headers=AUTH).status_code == 409
        r = c.post("/appointments", json={"planner_id": "P900", "zone_kind": "subdistrict", "zone_code": "510105002",
                                          "role": "lead", "start": "2025-01-01"}, headers=AUTH)
        assert r.status_code == 409
        r = c.post("/appointments", json={"planner_id": "P900", "zone_kind": "subdistrict", "zone_code": "510105002",
                                          "role": "member", "start": "2025-01-01"}, headers=AUTH)
        assert r.status_code == 201
        assert c.patch(f"/appointments/{r.json()['id']}", json={"end": "2026-01-01"}, headers=AUTH).status_code == 200
        r = c.post("/projects", json={"name": "p", "geometry": {"type": "Point", "coordinates": [104.053, 30.6695]}},
                   headers=AUTH)
        assert r.status_code == 201 and r.json()["properties"]["lead_planner_id"] == "P006"
        pid = r.json()["id"]
        assert c.post(f"/projects/{pid}/status", json={"status": "assessment"}, headers=AUTH_PLANNER).status_code == 200
        assert c.post(f"/projects/{pid}/status", json={"status": "assessment"}, headers=AUTH).status_code == 409
        assert c.get("/projects", params={"planner_id": "P006"}).json()["numberMatched"] >= 2
        assert c.get("/audit", headers=AUTH).json()["numberMatched"] == audit0 + 5


def test_concurrent_writers_on_postgis(pg_store):
    from concurrent.futures import ThreadPoolExecutor

    with LiveServer(pg_store, workers=2, tokens=TOKENS) as server:
        def post(i):
            body = {"planner_id": f"P{1 + i % 60:03d}", "zone_kind": "district", "zone_code": "510104",
                    "role": "member", "start": "2025-01-01"}
            return httpx.post(f"{server.url}/appointments", json=body, headers=AUTH, timeout=60).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(post, range(40))) == [201] * 40
    store = open_store(pg_store)
    frame, total = store.find_audit(entity="appointment", actor="admin:tester", limit=1000)
    assert total == 40
    assert (store.appointments()["zone_code"] == "510104").sum() == 1 + 40
    store.close()
