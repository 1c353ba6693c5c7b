"""Concurrent writers lose nothing and corrupt nothing: threads against one worker, two uvicorn workers on one
GeoPackage, and a server killed with kill -9 in the middle of writing."""
from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.api._live import LiveServer
from tests.api.conftest import ADMIN, TOKENS

H = {"Authorization": f"Bearer {ADMIN}"}
ACTOR = "admin:tester"


def subdistricts(path, n):
    with sqlite3.connect(path) as con:
        return [r[0] for r in con.execute("SELECT code FROM zones WHERE kind = 'subdistrict' ORDER BY code LIMIT ?",
                                          (n,))]


def scalar(path, sql, params=()):
    with sqlite3.connect(path) as con:
        return con.execute(sql, params).fetchone()[0]


def appointment(code, i):
    return {"planner_id": f"P{1 + i % 60:03d}", "zone_kind": "subdistrict", "zone_code": code, "role": "consultant",
            "start": f"2025-{1 + i % 12:02d}-01"}


def run_writers(url, jobs, threads=8):
    """jobs: (method, path, json) tuples; returns the status codes in order."""
    local = threading.local()

    def one(job):
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, headers=H, timeout=60)
        method, path, body = job
        return client.request(method, path, json=body).status_code

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, jobs))


@pytest.mark.parametrize("workers", [1, 2])
def test_concurrent_writers_lose_nothing(store_copy, workers):
    codes = subdistricts(store_copy, 40)
    audit0 = scalar(store_copy, "SELECT count(*) FROM audit")
    appts0 = scalar(store_copy, "SELECT count(*) FROM appointments")
    events0 = scalar(store_copy, "SELECT count(*) FROM project_events")
    n = 60
    with LiveServer(store_copy, workers=workers, tokens=TOKENS).wait_ready() as server:
        jobs = [("POST", "/appointments", appointment(codes[i % len(codes)], i)) for i in range(n)]
        jobs += [("POST", f"/projects/{1 + i % 6}/notes", {"note": f"note {i}"}) for i in range(n)]
        jobs = [j for pair in zip(jobs[:n], jobs[n:]) for j in pair]  # interleave the two kinds
        statuses = run_writers(server.url, jobs)
        assert statuses.count(201) == 2 * n, statuses
        # status changes raced from many threads, three racers per project, each walking the steps in
        # order: each step happens exactly once (200), the losers get 409, every project ends at feedback
        steps = ["assessment", "consultation", "implementation", "feedback"]

        def walk(project):
            with httpx.Client(base_url=server.url, headers=H, timeout=60) as client:
                return [client.post(f"/projects/{project}/status", json={"status": s}).status_code for s in steps]

        with ThreadPoolExecutor(8) as pool:
            statuses = [c for codes_ in pool.map(walk, [p for p in range(1, 7) for _ in range(3)]) for c in codes_]
        assert set(statuses) <= {200, 409}
        ok = statuses.count(200)
        # every worker sees the new appointments (the one that wrote at once, the other within its reload)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            seen = {httpx.get(f"{server.url}/appointments", params={"limit": 1}).json()["numberMatched"]
                    for _ in range(6)}
            if seen == {appts0 + n}:
                break
            time.sleep(0.2)
        assert seen == {appts0 + n}
    assert scalar(store_copy, "SELECT count(*) FROM appointments") == appts0 + n
    assert scalar(store_copy, "SELECT count(*) FROM audit") == audit0 + 2 * n + ok
    status_events = scalar(store_copy, "SELECT count(*) FROM project_events WHERE note IS NULL")
    with sqlite3.connect(store_copy) as con:
        for pid, status in con.execute("SELECT fid, status FROM projects"):
            assert status == "feedback", pid
            moves = [r[0] for r in con.execute("SELECT status FROM project_events WHERE project_id = ? AND "
                                               "(note IS NULL OR note IN ('created', 'demo')) ORDER BY fid", (pid,))]
            assert moves == ["survey", "assessment", "consultation", "implementation", "feedback"], (pid, moves)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert scalar(store_copy, "SELECT count(*) FROM project_events") == events0 + n + ok
    assert status_events == ok


def test_killed_mid_write_restarts_consistent(store_copy, tmp_path):
    codes = subdistricts(store_copy, 40)
    appts0 = scalar(store_copy, "SELECT count(*) FROM appointments")
    server = LiveServer(store_copy, tokens=TOKENS).wait_ready()
    stop = threading.Event()
    sent = []

    def writer(k):
        with httpx.Client(base_url=server.url, headers=H, timeout=10) as client:
            i = 0
            while not stop.is_set() and i < 2000:
                try:
                    client.post("/appointments", json=appointment(codes[(k * 7 + i) % len(codes)], i))
                    client.post(f"/projects/{1 + i % 6}/notes", json={"note": f"{k}-{i}"})
                    sent.append(1)
                except httpx.HTTPError:
                    return  # the server is gone
                i += 1

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30  # (a loaded machine: wait for writes to flow, not a fixed time)
        while len(sent) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        server.kill()  # kill -9, mid-stream: some transaction is almost surely open
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert sent, "no write got through before the kill"
    # the file is a sound database, and every change is whole: each appointment or note has its audit row
    with sqlite3.connect(store_copy) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        made = con.execute("SELECT count(*) FROM appointments").fetchone()[0] - appts0
        audited = con.execute("SELECT count(*) FROM audit WHERE actor = ? AND entity = 'appointment' AND "
                              "action = 'create'", (ACTOR,)).fetchone()[0]
        notes = con.execute("SELECT count(*) FROM project_events WHERE actor = ?", (ACTOR,)).fetchone()[0]
        noted = con.execute("SELECT count(*) FROM audit WHERE actor = ? AND action = 'note'", (ACTOR,)).fetchone()[0]
    assert made == audited > 0 and notes == noted
    # and it serves and writes again
    with LiveServer(store_copy, tokens=TOKENS) as again:
        assert httpx.get(f"{again.url}/appointments", params={"limit": 1}).json()["numberMatched"] == appts0 + made
        r = httpx.post(f"{again.url}/appointments", json=appointment(codes[0], 3), headers=H)
        assert r.status_code == 201
    assert scalar(store_copy, "SELECT count(*) FROM appointments") == appts0 + made + 1
