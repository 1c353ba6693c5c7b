"""Issue 13 item 4 and issue 10 (POST /assign uses the shared encoder): batches run in worker processes.

The server process only moves bytes; a worker parses, assigns against its own index (refreshed when the
server's change marks move), and encodes with ``geo.answer``'s vectorised encoder. Answers are the same as
the in-process path's and as the Python-list columns of ``zeren assign``; past the deadline the worker is
terminated and replaced; a full queue answers 503 at once."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import threading
import time

import httpx
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from tests.api._live import LiveServer
from tests.api.conftest import AUTH, TOKENS, make_settings
from tests.api.test_hardening import CENTRE, feature, star
from zeren.api.http.app import create_app
from zeren.api.settings import DEFAULT_MAX_FEATURE_VERTICES
from zeren.geo.answer import ASSIGNMENT_COLUMNS, assignment_columns
from zeren.layers.catalogue import Catalogue
from zeren.layers.store import open_store

SQUARE = {"type": "Polygon", "coordinates": [[[104.0515, 30.6685], [104.0545, 30.6685], [104.0545, 30.6705],
                                              [104.0515, 30.6705], [104.0515, 30.6685]]]}
BOW_TIE = {"type": "Polygon", "coordinates": [[[104.05, 30.66], [104.06, 30.67], [104.06, 30.66], [104.05, 30.67],
                                               [104.05, 30.66]]]}
LINE = {"type": "LineString", "coordinates": [[104.04, 30.66], [104.08, 30.67]]}


def _mixed_batch(demo_path, n_points: int = 400) -> dict:
    """Random points over the demo city (covered, uncovered, on borders by chance) with unicode, nested and
    big-integer properties, a polygon, a line, a bow tie (repaired), and features that cannot be assigned."""
    store = open_store(demo_path)
    minx, miny, maxx, maxy = store.zones(as_of=dt.date.today()).total_bounds
    store.close()
    rng = np.random.default_rng(5)
    xs = rng.uniform(minx - 0.05, maxx + 0.05, n_points)
    ys = rng.uniform(miny - 0.05, maxy + 0.05, n_points)
    features = [{"type": "Feature", "id": f"p{i}", "properties": {"名": f"点{i}", "n": i, "nested": {"a": [1, None]}},
                 "geometry": {"type": "Point", "coordinates": [round(float(x), 6), round(float(y), 6)]}}
                for i, (x, y) in enumerate(zip(xs, ys))]
    features += [feature(SQUARE, name="院落"), feature(LINE, name="路"), feature(BOW_TIE, name="蝶"),
                 {"type": "Feature", "id": 10**20, "properties": None, "geometry": None},
                 {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [200, 30]}},
                 {"type": "Nope"}]
    return {"type": "FeatureCollection", "features": features}


def _reference(demo_path, body: dict, answer: dict) -> None:
    """Every assigned feature's added properties equal what ``zeren assign``'s Python-list columns say (the
    encoding ``POST /assign`` used before it shared the vectorised JSON encoder)."""
    good = [i for i, f in enumerate(answer["features"]) if "error" not in f["properties"]]
    geoms = np.array([shapely.geometry.shape(answer["features"][i]["geometry"]) for i in good], dtype=object)
    catalogue = Catalogue(open_store(demo_path))
    expected = assignment_columns(catalogue.assign(geoms), lists="python").to_dict("records")
    assert len(good) > 300
    for i, exp in zip(good, expected):
        got = answer["features"][i]["properties"]
        for c in ASSIGNMENT_COLUMNS:
            want = exp[c]
            if isinstance(want, float) and want != want:
                want = None
            assert got[c] == want, (i, c, got[c], want)
        own = body["features"][i].get("properties") or {}
        assert {k: got[k] for k in own} == own


def test_answers_are_identical_to_the_in_process_path_and_to_the_python_columns(demo_path):
    body = _mixed_batch(demo_path)
    raw = json.dumps(body, ensure_ascii=False).encode()
    answers = {}
    for in_process in (False, True):
        with TestClient(create_app(make_settings(demo_path, batch_in_process=in_process))) as c:
            r = c.post("/assign", content=raw, headers={"content-type": "application/json"})
            assert r.status_code == 200, r.text
            answers[in_process] = r.json()
            if not in_process:
                assert c.app.state.zeren.batch_pool.pids(), "the pool path did not run in a worker process"
    assert answers[False] == answers[True]
    out = answers[False]
    assert out["errors"] == 3 and out["assigned"] == len(body["features"]) - 3
    assert out["features"][-3]["id"] == 10**20 and "no geometry" in out["features"][-3]["properties"]["error"]
    assert out["features"][-4]["properties"]["repaired"] is True
    assert any(f["properties"].get("covered") for f in out["features"])
    assert any(f["properties"].get("covered") is False for f in out["features"])
    _reference(demo_path, body, out)


def test_large_answers_come_gzipped_from_the_worker(client):
    body = {"type": "FeatureCollection", "features": [feature({"type": "Point", "coordinates": list(CENTRE)}, i=i)
                                                       for i in range(200)]}
    plain = client.post("/assign", json=body, headers={"accept-encoding": "identity"})
    zipped = client.post("/assign", json=body, headers={"accept-encoding": "gzip"})
    assert plain.status_code == zipped.status_code == 200
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip" and "accept-encoding" in zipped.headers["vary"].lower()
    assert zipped.json() == plain.json()  # httpx decodes gzip
    assert len(gzip.compress(plain.content)) < len(plain.content)


def _warm(c, body) -> None:
    """The first batch starts the fork server and a worker (seconds on a busy machine, maybe past a short
    deadline): retry until a worker has answered."""
    t0 = time.monotonic()
    while (r := c.post("/assign", json=body)).status_code != 200:
        assert r.status_code == 503 and time.monotonic() - t0 < 60, r.text
        time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a terminated child not yet reaped is a zombie: not working
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_batch_past_the_deadline_gets_503_and_its_worker_is_terminated_and_replaced(demo_path):
    heavy = {"type": "FeatureCollection",  # within the budget, many seconds of work
             "features": [feature(star(DEFAULT_MAX_FEATURE_VERTICES - 1))] * 8}
    light = feature({"type": "Point", "coordinates": list(CENTRE)})
    with TestClient(create_app(make_settings(demo_path, request_timeout=3.0, batch_workers=1))) as c:
        pool = c.app.state.zeren.batch_pool
        _warm(c, light)  # the worker is up and its index loaded
        (first,) = pool.pids()
        t0 = time.perf_counter()
        r = c.post("/assign", json=heavy)
        elapsed = time.perf_counter() - t0
        assert r.status_code == 503, r.text[:300]
        assert r.headers["retry-after"] == "5" and r.json()["error"] == "DeadlineExceeded"
        assert "3 s" in r.json()["detail"]
        assert elapsed < 9, elapsed
        stopped = time.monotonic() + 1.0
        while _alive(first) and time.monotonic() < stopped:
            time.sleep(0.05)
        assert not _alive(first), "the worker that was past its deadline is still running"
        assert pool.replaced >= 1
        _warm(c, light)  # a new worker takes the next batch
        (second,) = pool.pids()
        assert second != first


def test_a_full_queue_answers_503_at_once_and_lookups_keep_flowing(demo_path):
    heavy = {"type": "FeatureCollection", "features": [feature(star(DEFAULT_MAX_FEATURE_VERTICES - 1))] * 4}
    light = feature({"type": "Point", "coordinates": list(CENTRE)})
    with TestClient(create_app(make_settings(demo_path, request_timeout=4.0, batch_workers=1, batch_queue=0))) as c:
        _warm(c, light)
        answers = {}
        busy = threading.Thread(target=lambda: answers.setdefault("heavy", c.post("/assign", json=heavy)))
        busy.start()
        time.sleep(0.5)  # the heavy batch holds the only worker
        t0 = time.perf_counter()
        r = c.post("/assign", json=light)
        took = time.perf_counter() - t0
        assert r.status_code == 503 and r.json()["error"] == "ServerBusy", r.text
        assert r.headers["retry-after"] == "5" and "busy" in r.json()["detail"]
        assert took < 1.0, took
        lookups = []
        for _ in range(20):
            t0 = time.perf_counter()
            assert c.get("/lookup", params={"lon": CENTRE[0], "lat": CENTRE[1]}).status_code == 200
            lookups.append(time.perf_counter() - t0)
        assert sorted(lookups)[10] < 0.1, lookups
        busy.join(30)
        assert answers["heavy"].status_code == 503  # past its deadline (4 s)
        assert c.post("/assign", json=light).status_code == 200


def _member_case(store_url):
    """A subdistrict with a lead, a point inside it, and two planners not appointed there."""
    store = open_store(store_url)
    try:
        today = dt.date.today()
        zones = store.zones(kind="subdistrict", as_of=today)
        appts = store.appointments()
        leads = appts[(appts["role"] == "lead") & (appts["zone_kind"] == "subdistrict") & appts["end"].isna()]
        row = leads.iloc[0]
        zone = zones[zones["code"] == row["zone_code"]].iloc[0]
        there = set(appts.loc[appts["zone_code"] == row["zone_code"], "planner_id"])
        others = [p for p in store.planners()["id"] if p not in there][:2]
        point = zone.geometry.representative_point()
        return row["zone_code"], (point.x, point.y), others
    finally:
        store.close()


def _planners_at(server, lonlat) -> set:
    r = httpx.post(f"{server.url}/assign", json=feature({"type": "Point", "coordinates": list(lonlat)}), timeout=30)
    assert r.status_code == 200, r.text
    return {p["planner_id"] for p in r.json()["features"][0]["properties"]["planners"]}


def _writes_are_seen_by_the_workers(store_url):
    code, lonlat, (other, third) = _member_case(store_url)
    with LiveServer(store_url, tokens=TOKENS, env={"ZEREN_RELOAD_SECONDS": "0.3", "ZEREN_BATCH_WORKERS": "1"}) as srv:
        assert other not in _planners_at(srv, lonlat)  # the worker has loaded its index: now stale-able
        # 1. a write through the server: the next batch sees it
        r = httpx.post(f"{srv.url}/appointments", headers=AUTH, timeout=30,
                       json={"planner_id": other, "zone_kind": "subdistrict", "zone_code": code, "role": "member",
                             "start": dt.date.today().isoformat()})
        assert r.status_code == 201, r.text
        assert other in _planners_at(srv, lonlat)
        # 2. a write by another process (the CLI's use case on the same store): seen once the server reloads
        assert third not in _planners_at(srv, lonlat)
        from zeren.api.service import appointments
        from zeren.api.service.actors import Actor
        from zeren.api.service.workspace import Workspace

        ws = Workspace.open(store_url)
        try:
            appointments.create_appointment(ws, {"planner_id": third, "zone_kind": "subdistrict", "zone_code": code,
                                                 "role": "member", "start": dt.date.today().isoformat()},
                                            actor=Actor("test"))
        finally:
            ws.close()
        deadline = time.monotonic() + 10
        while third not in _planners_at(srv, lonlat):
            assert time.monotonic() < deadline, "the batch worker never saw the new appointment"
            time.sleep(0.1)


def test_a_write_then_a_batch_sees_it_geopackage(store_copy):
    _writes_are_seen_by_the_workers(store_copy)


def test_a_write_then_a_batch_sees_it_postgis(pg_url_clean, demo_path):
    from tests.api.test_postgis import copy_demo

    copy_demo(demo_path, pg_url_clean)
    _writes_are_seen_by_the_workers(pg_url_clean)


def test_batch_settings_from_the_environment():
    from zeren.api.settings import Settings, SettingsError

    s = Settings.from_env({"ZEREN_BATCH_WORKERS": "3", "ZEREN_BATCH_QUEUE": "0", "ZEREN_BATCH_IN_PROCESS": "1"})
    assert (s.batch_workers, s.batch_queue, s.batch_in_process) == (3, 0, True)
    assert Settings.from_env(s.to_env()) == s
    assert Settings().batch_workers == max(1, (os.cpu_count() or 2) - 1)
    with pytest.raises(SettingsError, match="ZEREN_BATCH_QUEUE"):
        Settings.from_env({"ZEREN_BATCH_QUEUE": "-1"})
    with pytest.raises(SettingsError, match="ZEREN_BATCH_IN_PROCESS"):
        Settings.from_env({"ZEREN_BATCH_IN_PROCESS": "maybe"})


def test_life_circle_generation_runs_in_a_worker_with_the_same_answer(demo_path):
    centres = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": f"C{i}", "name": f"中心{i}"},
         "geometry": {"type": "Point", "coordinates": [CENTRE[0] + i / 500, CENTRE[1]]}} for i in range(30)]}
    body = {"centres": centres, "minutes": [5, 15]}
    answers = {}
    for in_process in (False, True):
        with TestClient(create_app(make_settings(demo_path, batch_in_process=in_process))) as c:
            r = c.post("/life-circles/generate", json=body)
            assert r.status_code == 200, r.text
            answers[in_process] = r.json()
            if not in_process:
                assert c.app.state.zeren.batch_pool.pids()
                bad = c.post("/life-circles/generate", params={"crs": "EPSG:99999"}, json=body)
                assert bad.status_code == 422 and "99999" in bad.json()["detail"]  # the worker's error, answered
    assert answers[False] == answers[True] and len(answers[False]["features"]) == 60
