"""Issue 13, hardening: no anonymous request may cost minutes (a vertex budget checked before any geometry work,
batches in a bounded pool with a deadline). Each test reproduces one finding of the probe."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from zeren.api.settings import DEFAULT_MAX_FEATURE_VERTICES
from tests.api.conftest import AUTH, make_settings

CENTRE = (104.0530, 30.6695)  # 宽窄巷子, in the demo city


def star(n: int, cx: float = CENTRE[0], cy: float = CENTRE[1], r_out: float = 0.01, r_in: float = 0.005) -> dict:
    """A valid star-shaped polygon of ``n`` vertices (alternating radius): the probe's worst case, whose
    overlay with the zones costs more than linearly in ``n``."""
    ring = []
    for i in range(n):
        a, r = 2 * math.pi * i / n, (r_out if i % 2 == 0 else r_in)
        ring.append([round(cx + r * math.cos(a), 7), round(cy + r * math.sin(a), 7)])
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def feature(geometry, **props) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def test_star_of_40000_vertices_is_refused_and_names_limit_and_count(client):
    # How fast the refusal is (the 50 ms) is measured by benchmarks/bench_load.py, not here: a timed
    # assertion in a unit test fails on a loaded machine and proves nothing on an idle one.
    body = json.dumps(feature(star(40_000))).encode()  # 1 MB
    r = client.post("/assign", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert "40,001 vertices" in detail and f"{DEFAULT_MAX_FEATURE_VERTICES:,}" in detail
    assert "ZEREN_MAX_FEATURE_VERTICES" in detail


def test_star_within_budget_is_assigned(client):
    r = client.post("/assign", json=feature(star(200)))
    assert r.status_code == 200, r.text
    assert r.json()["features"][0]["properties"]["covered"] is True


def test_total_vertices_per_request(demo_path):
    # each feature within its own limit, together over the request's
    with TestClient(create_app(make_settings(demo_path, max_vertices=1_000, max_feature_vertices=500))) as c:
        fc = {"type": "FeatureCollection", "features": [feature(star(300)) for _ in range(4)]}
        r = c.post("/assign", json=fc)
        assert r.status_code == 413
        assert "1,204 vertices" in r.json()["detail"] and "1,000 per request" in r.json()["detail"]
        assert "ZEREN_MAX_VERTICES" in r.json()["detail"]
        fc["features"] = fc["features"][:3]
        assert c.post("/assign", json=fc).status_code == 200


@pytest.mark.parametrize("geometry", [
    {"type": "MultiPolygon", "coordinates": [star(300)["coordinates"], star(300, r_out=0.002)["coordinates"]]},
    {"type": "LineString", "coordinates": star(700)["coordinates"][0]},
    {"type": "MultiPoint", "coordinates": star(700)["coordinates"][0]},
], ids=["multipolygon", "linestring", "multipoint"])
def test_every_geometry_type_is_counted(demo_path, geometry):
    with TestClient(create_app(make_settings(demo_path, max_feature_vertices=600))) as c:
        r = c.post("/assign", json=feature(geometry))
        assert r.status_code == 413, r.text
        assert "feature 0 has" in r.json()["detail"]


def test_projects_have_the_same_budget(wclient):
    r = wclient.post("/projects", json={"name": "星", "geometry": star(40_000)}, headers=AUTH)
    assert r.status_code == 413, r.text
    assert "geometry has 40,001 vertices" in r.json()["detail"]
    r = wclient.post("/projects", json={"name": "星", "geometry": star(100)}, headers=AUTH)
    assert r.status_code == 201, r.text


def test_settings_from_environment():
    from zeren.api.settings import Settings, SettingsError

    s = Settings.from_env({"ZEREN_MAX_VERTICES": "5_000", "ZEREN_MAX_FEATURE_VERTICES": "200",
                           "ZEREN_REQUEST_TIMEOUT": "2.5", "ZEREN_BATCH_WORKERS": "1"})
    assert (s.max_vertices, s.max_feature_vertices, s.request_timeout, s.batch_workers) == (5000, 200, 2.5, 1)
    assert Settings.from_env(s.to_env()) .work_budget() == s.work_budget()
    with pytest.raises(SettingsError, match="ZEREN_REQUEST_TIMEOUT"):
        Settings.from_env({"ZEREN_REQUEST_TIMEOUT": "0"})


def test_cli_assign_shares_the_budget(tmp_path, demo_path):
    sites = tmp_path / "sites.geojson"
    sites.write_text(json.dumps({"type": "FeatureCollection", "features": [feature(star(2_000), name="星")]}))
    out = tmp_path / "out.geojson"
    cmd = [sys.executable, "-m", "zeren", "assign", str(sites), "--out", str(out), "--store", str(demo_path)]
    r = subprocess.run(cmd + ["--max-feature-vertices", "1000"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "2,001 vertices" in r.stderr and "--max-feature-vertices" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["features"][0]["properties"]["covered"] is True


# -- batches in a bounded pool, with a deadline -----------------------------------------------------
def test_a_batch_past_the_deadline_answers_503_with_retry_after_and_lookups_keep_flowing(demo_path):
    import threading

    heavy = feature(star(DEFAULT_MAX_FEATURE_VERTICES - 1))  # within the budget, seconds of work
    with TestClient(create_app(make_settings(demo_path, request_timeout=0.5, batch_workers=1))) as c:
        answers: dict = {}

        def post(name):
            t0 = time.perf_counter()
            answers[name] = (c.post("/assign", json=heavy), time.perf_counter() - t0)

        first = threading.Thread(target=post, args=("first",))
        first.start()
        time.sleep(0.1)
        lookups = []
        for _ in range(20):  # while the batch works, lookups answer at once
            t0 = time.perf_counter()
            assert c.get("/lookup", params={"lon": CENTRE[0], "lat": CENTRE[1]}).status_code == 200
            lookups.append(time.perf_counter() - t0)
        first.join(30)
        r, elapsed = answers["first"]
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        assert "0.5 s" in r.json()["detail"] and r.json()["error"] == "DeadlineExceeded"
        assert elapsed < 2.0, f"the 503 came after {elapsed:.1f} s"
        assert sorted(lookups)[len(lookups) // 2] < 0.1
        # the abandoned work still holds the only batch slot: the next batch waits, then gets 503 too
        post("second")
        assert answers["second"][0].status_code == 503


def test_the_deadline_is_checked_between_chunks(demo_path):
    import numpy as np
    import shapely

    from zeren.api.service.assign import assign_sites
    from zeren.api.service.budget import Deadline, DeadlineExceeded
    from zeren.api.service.lookup import input_crs
    from zeren.api.service.workspace import Workspace

    ws = Workspace.open(demo_path)
    try:
        points = np.array([shapely.Point(*CENTRE)] * 5, dtype=object)
        calls = []

        class CountingDeadline(Deadline):  # a real deadline that expires after two chunks
            def check(self):
                calls.append(1)
                if len(calls) > 2:
                    self.cancel()
                super().check()

        with pytest.raises(DeadlineExceeded):
            assign_sites(ws, points, input_crs("wgs84"), deadline=CountingDeadline(60), chunk=2)
        assert len(calls) == 3  # chunks 1 and 2 were assigned, the third was not started
        assert assign_sites(ws, points, input_crs("wgs84"), deadline=Deadline(60), chunk=2).good.all()
    finally:
        ws.close()


# -- CRS strings: ASCII codes only, definitions only on batch endpoints, never on the event loop -------------
POINT = {"type": "Point", "coordinates": list(CENTRE)}
UNICODE_DIGITS = ["²", "٣", "EPSG:²", "EPSG:४३२६", "１２３"]


@pytest.mark.parametrize("crs", UNICODE_DIGITS)
def test_unicode_digits_in_crs_are_422_everywhere(wclient, crs):
    c = wclient
    answers = {
        "/lookup": c.get("/lookup", params={"lon": CENTRE[0], "lat": CENTRE[1], "crs": crs}),
        "/maps/site": c.get("/maps/site", params={"lon": CENTRE[0], "lat": CENTRE[1], "crs": crs}),
        "/assign": c.post("/assign", params={"crs": crs}, json=feature(POINT)),
        "/projects": c.post("/projects", params={"crs": crs}, json={"name": "p", "geometry": POINT}, headers=AUTH),
    }
    for where, r in answers.items():
        assert r.status_code == 422, (where, r.status_code, r.text[:200])
    assert "CRS" in answers["/lookup"].json()["detail"]


@pytest.mark.parametrize("item", ["%C2%B2", "12345678901234567890123", "0", "4611686018427387905", "-1", "1.0"])
def test_odd_project_item_ids_are_404(client, item):
    r = client.get(f"/ogc/collections/projects/items/{item}")
    assert r.status_code == 404, r.text


def test_ascii_epsg_codes_still_work(client):
    wgs = client.get("/lookup", params={"lon": CENTRE[0], "lat": CENTRE[1]}).json()
    for crs in ("4490", "EPSG:4490", "epsg:4326", "cgcs2000", "gcj-02"):
        r = client.get("/lookup", params={"lon": CENTRE[0], "lat": CENTRE[1], "crs": crs})
        assert r.status_code == 200, (crs, r.text)
        if crs != "gcj-02":
            assert r.json()["lead"] == wgs["lead"]


PROJ = "+proj=longlat +ellps=WGS84 +towgs84=0,0,0,0,0,0,0 +lon_0=0.{} +no_defs"


def test_proj_definitions_are_refused_on_interactive_routes_and_taken_by_batches(client):
    r = client.get("/lookup", params={"lon": CENTRE[0], "lat": CENTRE[1], "crs": PROJ.format(1)})
    assert r.status_code == 422 and "POST /assign" in r.json()["detail"]
    r = client.get("/maps/site", params={"lon": CENTRE[0], "lat": CENTRE[1], "crs": PROJ.format(1)})
    assert r.status_code == 422
    r = client.post("/assign", params={"crs": "+proj=longlat +datum=WGS84 +no_defs"}, json=feature(POINT))
    assert r.status_code == 200 and r.json()["features"][0]["properties"]["covered"] is True


def test_new_crs_strings_do_not_stall_the_event_loop(client):
    """The probe: four clients sending new PROJ strings pushed /health from 3 ms to 1.5 s. Now refused at once,
    and new EPSG codes are parsed in a worker thread."""
    import threading

    stop = time.monotonic() + 2.0
    codes = iter(range(2000, 10000))

    def hammer():
        while time.monotonic() < stop:
            client.get("/lookup", params={"lon": 500000, "lat": 3400000, "crs": f"EPSG:{next(codes)}"})

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    health = []
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        assert client.get("/health").status_code == 200
        health.append(time.perf_counter() - t0)
        time.sleep(0.02)
    for t in threads:
        t.join()
    # 3 ms idle, 1.5 s before the fix; the bound leaves room for a loaded CI machine and still catches that
    assert sorted(health)[len(health) // 2] < 0.25, f"/health p50 {sorted(health)[len(health) // 2] * 1000:.0f} ms"


# -- text input: NUL and lone surrogates are 422 naming the field, on both stores ---------------------------
@pytest.fixture(params=["gpkg", "postgis"])
def any_store_client(request, store_copy):
    """A client that writes, on a copy of the demo city in a GeoPackage file or in a fresh PostGIS database."""
    if request.param == "gpkg":
        store = store_copy
    else:
        from tests.api.test_postgis import copy_demo

        store = request.getfixturevalue("pg_url_clean")
        copy_demo(store_copy, store)
    with TestClient(create_app(make_settings(store))) as c:
        yield c


def _post_raw(c, path, raw: str, **kw):
    return c.post(path, content=raw.encode(), headers={"content-type": "application/json", **kw.pop("headers", {})},
                  **kw)


BAD_TEXT_CASES = [  # (method, path, JSON text with the escape written as a client would, the field named)
    ("post", "/planners", '{"id": "P901", "name": "a\\u0000b"}', "body.name"),
    ("post", "/planners", '{"id": "P901", "name": "x", "organization": "\\ud800"}', "body.organization"),
    ("patch", "/planners/P001", '{"public_contact": "tel\\u0000"}', "body.public_contact"),
    ("post", "/projects", '{"name": "p\\u0000", "geometry": {"type": "Point", "coordinates": [104.053, 30.6695]}}',
     "body.name"),
    ("post", "/projects", '{"name": "p", "description": "\\udfff", "geometry": {"type": "Point", '
                          '"coordinates": [104.053, 30.6695]}}', "body.description"),
    ("post", "/projects/1/notes", '{"note": "\\u0000"}', "body.note"),
    ("post", "/assign", '{"type": "Feature", "properties": {"a": "\\ud800"}, "geometry": {"type": "Point", '
                        '"coordinates": [104.053, 30.6695]}}', "body.properties.a"),
    ("post", "/assign", '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
                        '"geometry": null}, {"type": "Feature", "properties": {"\\u0000k": 1}, "geometry": null}]}',
     "body.features.1.properties"),
]


def test_nul_and_lone_surrogates_are_422_naming_the_field(any_store_client):
    c = any_store_client
    for method, path, raw, field in BAD_TEXT_CASES:
        r = c.request(method.upper(), path, content=raw.encode(), headers={"content-type": "application/json", **AUTH})
        assert r.status_code == 422, (path, raw, r.status_code, r.text[:300])
        assert field in r.json()["detail"], (path, r.json()["detail"])
    for path in ("/projects?planner_id=a%00b", "/planners?q=%00", "/lookup?lon=104.05&lat=30.66&as_of=2025%0001",
                 "/zones?kind=district&q=x%00"):
        r = c.get(path)
        assert r.status_code == 422, (path, r.status_code, r.text[:200])
        assert "query." in r.json()["detail"] and "NUL" in r.json()["detail"]
    r = c.get("/ogc/collections/projects/items?bbox=%00")
    assert r.status_code == 400 and "query.bbox" in r.json()["detail"]
    r = c.get("/planners/a%00b")
    assert r.status_code == 422 and "path" in r.json()["detail"]
    # nothing was written, and paired surrogates (an emoji) and ordinary text are fine
    assert c.get("/planners/P901").status_code == 404
    r = _post_raw(c, "/planners", '{"id": "P902", "name": "\\u5f20\\u4e09 \\ud83d\\ude00"}', headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "张三 😀"


def test_postgis_store_refuses_nul_as_a_validation_error(pg_url_clean, store_copy):
    """Below the HTTP check (CLI imports, other callers): the PostGIS store says what is wrong, not a DataError."""
    import pandas as pd

    from tests.api.test_postgis import copy_demo
    from zeren.api.service import planners
    from zeren.api.service.actors import Actor
    from zeren.api.service.workspace import Workspace
    from zeren.layers.errors import ValidationError
    from zeren.layers.store import open_store

    copy_demo(store_copy, pg_url_clean)
    ws = Workspace(open_store(pg_url_clean))
    try:
        frame = pd.DataFrame([{"id": "P903", "name": "a\x00b"}])
        with pytest.raises(ValidationError, match="NUL"):
            planners.save_planners(ws, frame, actor=Actor("test"))
        assert "P903" not in set(ws.store.planners()["id"])
    finally:
        ws.close()


# -- map assets: never from a predictable shared folder -------------------------------------------------
def test_a_file_planted_in_the_old_shared_asset_folder_is_never_served(demo_path):
    """Zeren once copied the map assets to ``$TMPDIR/zeren-maps-assets-<digest of the files>`` and reused any
    folder of that name: another local user could plant a zeren-maps.js there. Plant one and look."""
    import hashlib
    import shutil
    import tempfile
    from pathlib import Path

    from zeren.maps.assets import asset_files, page_asset_urls

    files = asset_files()
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        digest.update(name.encode())
        digest.update(path.read_bytes())
    planted = Path(tempfile.gettempdir()) / f"zeren-maps-assets-{digest.hexdigest()[:16]}"
    made = not planted.exists()
    marker = "/* planted by another user */ alert(document.cookie);"
    try:
        for name in files:
            (planted / name).parent.mkdir(parents=True, exist_ok=True)
            (planted / name).write_text(marker)
        with TestClient(create_app(make_settings(demo_path))) as c:
            page = c.get("/maps/site", params={"lon": CENTRE[0], "lat": CENTRE[1]})
            assert page.status_code == 200
            urls = [u for u in page_asset_urls(page.text) if u.startswith("/static/maps/")]
            assert {u.removeprefix("/static/maps/") for u in urls} >= {"zeren-maps.js", "leaflet/leaflet.js"}
            for name, path in files.items():
                served = c.get(f"/static/maps/{name}")
                assert served.status_code == 200, name
                assert served.content == path.read_bytes(), name  # the installed package's file
                assert marker.encode() not in served.content
    finally:
        if made:
            shutil.rmtree(planted, ignore_errors=True)


# -- zeren serve: request line and headers capped ----------------------------------------------------------
def _raw_request(port: int, head: bytes, timeout: float = 10.0) -> bytes:
    """Send ``head`` on a fresh connection and read until the server closes or answers."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed while we were still sending: that is a refusal too
        chunks = []
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
                if b"\r\n\r\n" in b"".join(chunks) and b"content-length" in b"".join(chunks).lower():
                    head_end = b"".join(chunks).index(b"\r\n\r\n")
                    length = int(b"".join(chunks)[:head_end].lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    if len(b"".join(chunks)) >= head_end + 4 + length:
                        break
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


def test_zeren_serve_refuses_a_1_mib_header_quickly_and_stays_fast(demo_path, tmp_path):
    import threading

    import httpx

    from tests.api._live import LiveServer

    with LiveServer(demo_path) as server:
        ok = _raw_request(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 60_000 + b"\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200"), ok[:100]  # under the 64 KiB cap: served
        t0 = time.perf_counter()
        big = _raw_request(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (1 << 20) + b"\r\n\r\n")
        elapsed = time.perf_counter() - t0
        assert big == b"" or big.startswith(b"HTTP/1.1 431"), big[:100]
        if big:
            assert b"65,536-byte cap" in big
        assert elapsed < 2.0, f"refusing took {elapsed:.1f} s"
        # a client streaming a 100 MiB header does not stall the others
        def stream():
            import socket

            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
                try:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ")
                    for _ in range(1600):
                        s.sendall(b"a" * 65536)
                except OSError:
                    return

        streamer = threading.Thread(target=stream)
        streamer.start()
        health = []
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for _ in range(20):
                t0 = time.perf_counter()
                assert c.get("/health").status_code == 200
                health.append(time.perf_counter() - t0)
        streamer.join(30)
        assert not streamer.is_alive()
        assert max(health) < 0.5, f"/health max {max(health) * 1000:.0f} ms"
        # the cap is a setting
    with LiveServer(demo_path, env={"ZEREN_MAX_HEADER_BYTES": "2048"}) as server:
        r = _raw_request(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4000 + b"\r\n\r\n")
        assert r == b"" or r.startswith(b"HTTP/1.1 431"), r[:100]
        assert _raw_request(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")


# -- bidi spoofing: names are isolated wherever pages show them ---------------------------------------------
RLO = "\u202e"


def _lead_with_rlo(wclient) -> None:
    r = wclient.patch("/planners/P006", json={"name": f"evil{RLO}name\u2069{RLO}", "organization": "ORG-ABC",
                                              "public_contact": "tel-123"}, headers=AUTH)
    assert r.status_code == 200, r.text


def test_names_are_bidi_isolated_in_the_site_page(wclient):
    from zeren.maps.display import FSI, PDI

    _lead_with_rlo(wclient)
    page = wclient.get("/maps/site", params={"lon": CENTRE[0], "lat": CENTRE[1]})
    assert page.status_code == 200
    html = page.text
    # the legend line: the name isolated (its stray PDI dropped, so it cannot close the isolate early), then
    # the organisation and contact (plain text, left as it is)
    assert f"{FSI}evil{RLO}name{RLO}{PDI}（ORG-ABC，tel-123）" in html
    # wherever the name is in the page, it is inside an isolate
    for i in [i for i in range(len(html)) if html.startswith("evil", i)]:
        assert html[i - 1] == FSI, html[i - 20:i + 40]


def test_text_after_an_rlo_name_reads_left_to_right_in_the_browser(wclient, chromium_path, tmp_path):
    """In Chromium: the organisation shown after the name keeps its order (its first letter left of its last)."""
    from tests.maps.browser import require_playwright

    require_playwright()
    from tests.maps.browser import evaluate, serve_directory
    from zeren.maps import copy_assets

    _lead_with_rlo(wclient)
    (tmp_path / "site.html").write_text(
        wclient.get("/maps/site", params={"lon": CENTRE[0], "lat": CENTRE[1]}).text, encoding="utf-8")
    copy_assets(tmp_path / "static" / "maps")
    script = """(needle) => {
      const out = [];
      const walker = document.createTreeWalker(document.querySelector('.zeren-legend'), NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const i = n.data.indexOf(needle);
        if (i < 0) continue;
        const left = (k) => { const r = document.createRange(); r.setStart(n, k); r.setEnd(n, k + 1);
                              return r.getBoundingClientRect().left; };
        out.push([left(i), left(i + needle.length - 1), n.parentElement.closest('bdi') !== null]);
      }
      return out;
    }"""
    with serve_directory(tmp_path) as base:
        found = evaluate(f"{base}/site.html", chromium_path, script, "ORG-ABC")
    assert found, "the organisation is not in the legend"
    for first, last, in_bdi in found:
        assert in_bdi
        assert first < last, f"ORG-ABC is drawn right to left ({first} > {last}): the name's U+202E leaked"


# -- failed authentication is rate-limited per client ------------------------------------------------------
def test_too_many_bad_tokens_get_429_with_retry_after(demo_path):
    with TestClient(create_app(make_settings(demo_path, auth_failures_per_minute=5))) as c:
        bad = {"Authorization": "Bearer zrn_not-a-token"}
        answers = [c.get("/audit", headers=bad).status_code for _ in range(5)]
        assert answers == [401] * 5
        for path in ("/audit", "/lookup?lon=104.05&lat=30.66"):  # every route that reads a token
            r = c.get(path, headers=bad)
            assert r.status_code == 429, (path, r.text)
            assert 1 <= int(r.headers["retry-after"]) <= 60
            assert "too many invalid tokens" in r.json()["detail"]
        # a valid token is refused too while the address is blocked (no guessing through it), anonymous
        # reads are not affected
        assert c.get("/audit", headers=AUTH).status_code == 429
        assert c.get("/lookup", params={"lon": CENTRE[0], "lat": CENTRE[1]}).status_code == 200
    with TestClient(create_app(make_settings(demo_path, auth_failures_per_minute=0))) as c:  # 0: no limit
        assert {c.get("/audit", headers=bad).status_code for _ in range(30)} == {401}
        assert c.get("/audit", headers=AUTH).status_code == 200


def test_the_window_frees_after_a_minute():
    from zeren.api.http import deps

    limiter = deps.FailedAuthLimiter(3)
    for _ in range(3):
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") is not None
    assert limiter.retry_after("10.0.0.2") is None  # per client
    limiter._failures["10.0.0.1"] = [t - 61 for t in limiter._failures["10.0.0.1"]]  # a minute later
    assert limiter.retry_after("10.0.0.1") is None


def test_boundary_upload_has_the_request_vertex_budget(store_copy, tmp_path):
    """POST /zones/import (admin) counts the vertices of the file it read before planning the edition."""
    from tests.service._scenario import DISTRICT, qingyang_2025

    body = qingyang_2025(store_copy, tmp_path).read_bytes()
    zones = json.loads(body)["features"]
    total = sum(len(r) for f in zones for part in (f["geometry"]["coordinates"] if f["geometry"]["type"] ==
                "MultiPolygon" else [f["geometry"]["coordinates"]]) for r in part)
    params = {"kind": "subdistrict", "edition": 2025, "within": DISTRICT, "dry_run": True}
    headers = {"Content-Type": "application/geo+json", **AUTH}
    with TestClient(create_app(make_settings(store_copy, max_vertices=total - 1))) as c:
        r = c.post("/zones/import", params=params, content=body, headers=headers)
        assert r.status_code == 413, r.text
        assert "ZEREN_MAX_VERTICES" in r.json()["detail"]
    with TestClient(create_app(make_settings(store_copy, max_vertices=total))) as c:
        assert c.post("/zones/import", params=params, content=body, headers=headers).status_code == 200
