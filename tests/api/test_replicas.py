"""Two ``zeren serve`` processes on one PostGIS store, as replicas behind a reverse proxy run: a write through
one (an ended appointment, a new appointment, a new boundary edition) is in the other's answers within 2 s,
and the other never answers from a half-written state."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time

import httpx
import pytest
import shapely

from tests.api._live import LiveServer
from tests.api.conftest import AUTH, TOKENS
from tests.api.test_postgis import copy_demo
from zeren.api.settings import Settings
from zeren.layers.store import open_store

DEFAULT_RELOAD = str(Settings.__dataclass_fields__["reload_seconds"].default)  # the replicas' own default
WITHIN_S = 2.0


@pytest.fixture
def replicas(pg_url_clean, demo_path):
    copy_demo(demo_path, pg_url_clean)
    env = {"ZEREN_RELOAD_SECONDS": DEFAULT_RELOAD}
    a = LiveServer(pg_url_clean, tokens=TOKENS, env=env)
    b = LiveServer(pg_url_clean, tokens=TOKENS, env=env)
    try:
        a.wait_ready(), b.wait_ready()
        yield pg_url_clean, a, b
    finally:
        a.stop(), b.stop()


def _lookup(server, lon, lat) -> dict:
    r = httpx.get(f"{server.url}/lookup", params={"lon": lon, "lat": lat}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _lead(answer) -> tuple | None:
    lead = answer.get("lead")
    return (lead["planner"]["id"], lead["zone"]["code"]) if lead else None


def _until(check, within: float = WITHIN_S + 3):
    """Seconds until ``check()`` is true (polled every 20 ms); fails after ``within``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        if check():
            return time.monotonic() - t0
        time.sleep(0.02)
    pytest.fail(f"not seen by the other replica within {within} s")


def test_a_write_through_one_replica_is_in_the_others_answers_within_2_s(replicas):
    url, a, b = replicas
    store = open_store(url)
    zones = store.zones(kind="subdistrict", as_of=dt.date.today())
    appts = store.appointments()
    today = dt.date.today().isoformat()
    leads = appts[(appts["role"] == "lead") & (appts["zone_kind"] == "subdistrict") & appts["end"].isna()]
    row = leads.iloc[0]
    zone = zones[zones["code"] == row["zone_code"]].iloc[0]
    point = zone.geometry.representative_point()
    lon, lat = point.x, point.y
    store.close()
    assert _lead(_lookup(b, lon, lat)) == (row["planner_id"], row["zone_code"])

    with httpx.Client(base_url=a.url, headers=AUTH, timeout=30) as client:
        # 1. the lead's appointment ends today: the other replica falls back to the next level
        r = client.post(f"/appointments/{int(row['id'])}/end", json={"end": today})
        assert r.status_code == 200, r.text
        took = _until(lambda: _lead(_lookup(b, lon, lat)) != (row["planner_id"], row["zone_code"]))
        assert took <= WITHIN_S, took

        # 2. a new lead from today: the other replica names them
        other = next(p for p in httpx.get(f"{a.url}/planners", params={"limit": 1000}).json()["planners"]
                     if p["id"] != row["planner_id"])["id"]
        r = client.post("/appointments", json={"planner_id": other, "zone_kind": "subdistrict",
                                               "zone_code": row["zone_code"], "role": "lead", "start": today})
        assert r.status_code == 201, r.text
        took = _until(lambda: _lead(_lookup(b, lon, lat)) == (other, row["zone_code"]))
        assert took <= WITHIN_S, took

        # 3. a new edition of the zone's boundary, under a new code, from today: the other replica sees the new
        # zone, and while the import runs it answers with the old edition or the new one, never a mix
        before = {z["code"] for z in _lookup(b, lon, lat)["zones"] if z["kind"] == "subdistrict"}
        new_code = f"{row['zone_code']}9"
        feature = {"type": "Feature", "properties": {"code": new_code, "name": "新街道", "parent_code": zone["parent_code"]},
                   "geometry": json.loads(shapely.to_geojson(zone.geometry))}
        seen, stop = [], threading.Event()

        def watch():
            while not stop.is_set():
                seen.append(frozenset(z["code"] for z in _lookup(b, lon, lat)["zones"] if z["kind"] == "subdistrict"))

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            r = client.post("/zones/import", params={"kind": "subdistrict", "edition": dt.date.today().year,
                                                     "valid_from": today, "within": zone["parent_code"]},
                            content=json.dumps({"type": "FeatureCollection", "features": [feature]}),
                            headers={"Content-Type": "application/geo+json"})
            assert r.status_code in (200, 201), r.text
            took = _until(lambda: new_code in {z["code"] for z in _lookup(b, lon, lat)["zones"]})
            assert took <= WITHIN_S, took
        finally:
            stop.set()
            watcher.join()
        after = frozenset({new_code})
        assert set(seen) <= {frozenset(before), after}, set(seen) - {frozenset(before), after}
        assert seen[-1] == after
