"""The map pages as the real server serves them (``zeren serve`` in a subprocess on the demo city, 127.0.0.1),
opened in headless Chromium that can reach nothing but loopback: no console error, no request off the
machine, every subdistrict drawn, the lead planner's name in the tooltip, escaping, large layers loaded by URL,
and who may frame the pages."""
from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import shapely

from tests.maps.browser import require_playwright  # noqa: E402

require_playwright()

from zeren.api.auth import TokenEntry, hash_token  # noqa: E402
from zeren.layers.catalogue import Catalogue  # noqa: E402
from tests.conftest import demo_copy  # noqa: E402
from zeren.layers.store import open_store  # noqa: E402
from tests.api._live import LiveServer, serving  # noqa: E402
from tests.maps.browser import COUNT_JS, POINT_JS, CHROMIUM_ARGS, LOCAL_HOSTS, serve_directory  # noqa: E402

ADMIN = "zrn_served-browser-admin-0123456789abcdefghijklmnop"
XSS = "<img src=x onerror=alert(1)>"
# Chromium resolves no name but loopback, and the page's requests to anything else are aborted
LOOPBACK_ONLY = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
                 "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1;localhost"]


@pytest.fixture(scope="module")
def demo_store(chromium_path, demo_path, tmp_path_factory) -> Path:
    return demo_copy(demo_path, tmp_path_factory, "served")


@pytest.fixture(scope="module")
def server(demo_store):
    with serving(demo_store, tokens=(TokenEntry(hash_token(ADMIN), "admin", name="browser-test"),)) as srv:
        yield srv


@pytest.fixture
def catalogue(demo_store):
    """The store as it is now (read again for each test: the server may have written to it)."""
    store = open_store(demo_store)
    try:
        yield Catalogue(store)
    finally:
        store.close()


class Visit:
    """What happened while a page was open."""

    def __init__(self):
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []

    def outside(self) -> list[str]:
        return [u for u in self.requests
                if urlsplit(u).scheme not in ("data", "about", "blob") and urlsplit(u).hostname not in LOCAL_HOSTS]

    def assert_clean(self):
        assert self.page_errors == [], self.page_errors
        assert self.console_errors == [], self.console_errors
        assert self.outside() == [] and self.blocked == [], (self.outside(), self.blocked)
        assert self.failed == [], self.failed
        assert self.dialogs == [], f"script ran from data: {self.dialogs}"


@contextlib.contextmanager
def browser_page(chromium_path: str, viewport=(1280, 860)):
    """A headless page that can reach loopback only; yields (page, Visit)."""
    from playwright.sync_api import sync_playwright

    visit = Visit()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path), headless=True,
                                     args=CHROMIUM_ARGS + LOOPBACK_ONLY)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})

            def gate(route):
                url = route.request.url
                parts = urlsplit(url)
                if parts.scheme in ("data", "about", "blob") or parts.hostname in LOCAL_HOSTS:
                    return route.continue_()
                visit.blocked.append(url)
                return route.abort()

            page.route("**/*", gate)
            page.on("request", lambda req: visit.requests.append(req.url))
            page.on("requestfailed", lambda req: visit.failed.append(req.url))
            page.on("console", lambda msg: visit.console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: visit.page_errors.append(str(exc)))
            page.on("dialog", lambda dialog: (visit.dialogs.append(dialog.message), dialog.dismiss()))
            yield page, visit
        finally:
            browser.close()


def open_map(page, url: str, timeout_ms: int = 30_000) -> dict:
    """Open a map page, wait for Leaflet and for layers loaded by URL; the drawn paths per layer."""
    response = page.goto(url, wait_until="load", timeout=timeout_ms)
    assert response is not None and response.status == 200, url
    page.wait_for_function("() => window.Zeren && Zeren.maps.length > 0", timeout=timeout_ms)
    page.wait_for_function(
        "() => Object.values(Zeren.layers).every(l => !l.zerenLoading || l.getLayers().length > 0)",
        timeout=timeout_ms)
    page.wait_for_timeout(300)
    return page.evaluate(COUNT_JS)


def hover(page, lon: float, lat: float, zoom: int | None = None) -> str | None:
    """Hover a point (WGS84 = display coordinates without a GCJ-02 basemap); the tooltip's text."""
    if zoom is not None:
        page.evaluate("([lon, lat, z]) => { Zeren.maps[0].setView([lat, lon], z, {animate: false}); }",
                      [lon, lat, zoom])
        page.wait_for_timeout(300)
    x, y = page.evaluate(POINT_JS, [lon, lat])
    page.mouse.move(x - 3, y - 3)
    page.mouse.move(x, y)
    try:
        page.wait_for_selector(".leaflet-tooltip", timeout=5000)
    except Exception:  # noqa: BLE001 - no tooltip is a finding, reported by the caller's assert
        return None
    page.wait_for_timeout(250)  # the tooltip of the last zone entered
    return page.inner_text(".leaflet-tooltip")


def _text(page, selector: str) -> str | None:
    found = page.query_selector(selector)
    return found.inner_text() if found else None


def _lead_name(catalogue, kind: str, code: str, as_of=None) -> str | None:
    leads = catalogue.leads(as_of)
    pid = leads.loc[(leads["zone_kind"] == kind) & (leads["zone_code"] == code), "planner_id"]
    if pid.empty:
        return None
    planners = catalogue.planners
    return planners.loc[planners["id"] == pid.iloc[0], "name"].iloc[0]


def _open_ground_point(catalogue, zone_geom, as_of=None):
    """A point inside the zone and outside every overlay drawn above it."""
    frame = catalogue.zone_frame(as_of)
    overlays = frame[frame["kind"].isin(["historic_area", "key_area", "renewal_area"])].geometry.union_all()
    free = shapely.difference(zone_geom, overlays.buffer(0.002)) if overlays is not None else zone_geom
    return free.representative_point() if not free.is_empty else zone_geom.representative_point()


def test_coverage_page_served(chromium_path, server, catalogue, artifacts):
    subdistricts = catalogue.zone_frame(None, "subdistrict")
    districts = catalogue.zone_frame(None, "district")
    # a large subdistrict with a lead: its name and its lead's name must show on hover
    leads = catalogue.leads(None)
    led = subdistricts[subdistricts["code"].isin(leads.loc[leads["zone_kind"] == "subdistrict", "zone_code"])]
    zone = led.iloc[int(np.argmax(shapely.area(led.geometry.to_numpy())))]
    expected_name = _lead_name(catalogue, "subdistrict", zone["code"])
    assert expected_name
    pt = _open_ground_point(catalogue, zone.geometry)
    with browser_page(chromium_path) as (page, visit):
        counts = open_map(page, f"{server.url}/maps/coverage")
        tooltip = hover(page, pt.x, pt.y)
        page.wait_for_timeout(200)
        shot = artifacts / "coverage-served.png"
        page.screenshot(path=str(shot))
        legend = _text(page, ".zeren-legend")
        attribution = _text(page, ".leaflet-control-attribution")
    visit.assert_clean()
    assert len(subdistricts) == 241
    assert counts["layers"]["zones"] == len(subdistricts)
    assert counts["layers"]["districts"] == len(districts) == 20
    assert counts["polygons"] >= len(subdistricts) + len(districts)
    assert tooltip is not None and expected_name in tooltip and zone["name"] in tooltip, tooltip
    assert legend and legend.startswith("责任规划师覆盖") and f"{len(subdistricts)} units" in legend
    assert attribution and "虚构" in attribution  # the demo says its planners are fictional
    # only the server's own assets were loaded
    assets = {urlsplit(u).path for u in visit.requests if "/static/" in u}
    assert assets >= {"/static/maps/leaflet/leaflet.js", "/static/maps/zeren-maps.js",
                      "/static/maps/leaflet/leaflet.css", "/static/maps/zeren-maps.css"}
    assert all(p.startswith("/static/maps/") for p in assets)
    assert shot.stat().st_size > 20_000


def test_site_and_gaps_pages_served(chromium_path, server, catalogue, artifacts):
    from zeren.geo.coverage import coverage_gaps

    answer = catalogue.lookup(104.0530, 30.6695)
    lead = answer["lead"]["planner"]["name"]
    gaps = coverage_gaps(catalogue.index.zones, catalogue.appointments)
    bare = int((gaps.gaps["reason"] != "unit_without_planner").sum())
    units = gaps.units_without_planner
    unit = units.iloc[int(np.argmax(units["area_m2"].to_numpy()))]
    pt = unit.geometry.representative_point()
    with browser_page(chromium_path) as (page, visit):
        counts = open_map(page, f"{server.url}/maps/site?lon=104.0530&lat=30.6695")
        legend = _text(page, ".zeren-legend")
        page.screenshot(path=str(artifacts / "site-served.png"))
        site_counts = counts
        counts = open_map(page, f"{server.url}/maps/gaps")
        tooltip = hover(page, pt.x, pt.y)
        page.screenshot(path=str(artifacts / "gaps-served.png"))
    visit.assert_clean()
    assert site_counts["layers"]["site-zones"] == len(answer["zones"])
    assert legend and lead in legend
    assert counts["layers"]["units-without-planner"] == len(gaps.units_without_planner) > 0
    assert counts["layers"].get("gaps", 0) == bare
    assert counts["layers"]["districts"] == 20
    assert tooltip and unit["name"] in tooltip and "无责任规划师" in tooltip


def test_escaped_planner_name_served(chromium_path, server, catalogue, artifacts):
    auth = {"Authorization": f"Bearer {ADMIN}"}
    gaps = httpx.get(f"{server.url}/coverage/gaps", timeout=30).json()
    unit = gaps["units_without_planner"][0]
    r = httpx.post(f"{server.url}/planners", headers=auth, timeout=30, json={
        "id": "PXSS", "name": XSS, "organization": "测试", "public_contact": "xss@example.org",
        "private_contact": "PRIVATE-13800000000"})
    assert r.status_code == 201, r.text
    r = httpx.post(f"{server.url}/appointments", headers=auth, timeout=30, json={
        "planner_id": "PXSS", "zone_kind": "subdistrict", "zone_code": unit["code"], "role": "lead",
        "start": "2020-01-01"})
    assert r.status_code == 201, r.text
    geom = catalogue.zone_frame(None, "subdistrict")
    zone = geom.loc[geom["code"] == unit["code"]].iloc[0]
    pt = _open_ground_point(catalogue, zone.geometry)
    with browser_page(chromium_path) as (page, visit):
        open_map(page, f"{server.url}/maps/planner/PXSS")
        legend = _text(page, ".zeren-legend")
        title = page.title()
        page.screenshot(path=str(artifacts / "planner-xss-served.png"))
        open_map(page, f"{server.url}/maps/coverage")
        tooltip = hover(page, pt.x, pt.y, zoom=13)
        images = page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length")
    visit.assert_clean()  # no alert(1): the name never became markup
    assert images == 0
    assert legend and XSS in legend and "PRIVATE" not in legend
    assert XSS in title
    assert tooltip and XSS in tooltip and zone["name"] in tooltip and "PRIVATE" not in tooltip


def test_large_layer_by_url_and_framing_served(chromium_path, demo_store, tmp_path, artifacts):
    """A server that draws large zone layers from tiles, and may be framed by one other origin only."""
    parent_root = tmp_path / "portal"
    parent_root.mkdir()
    with serve_directory(parent_root) as portal:
        env = {"ZEREN_MAP_MAX_INLINE_FEATURES": "100", "ZEREN_FRAME_ANCESTORS": f"'self' {portal}"}
        with LiveServer(demo_store, env=env) as allowed, LiveServer(demo_store) as default:
            for srv in (allowed, default):
                (parent_root / f"embed-{srv.port}.html").write_text(
                    f'<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>'
                    f'<iframe src="{srv.url}/maps/site?lon=104.0530&lat=30.6695" width="100%" height="480" '
                    f'style="border:0" title="责任规划师地图"></iframe></body></html>', encoding="utf-8")
            today = dt.date.today().isoformat()
            with browser_page(chromium_path) as (page, visit):
                counts = open_map(page, f"{allowed.url}/maps/coverage")
                page.screenshot(path=str(artifacts / "coverage-by-url-served.png"))
            visit.assert_clean()
            # over the limit the zones come from the vector tiles of the page's date (tests/maps/test_tiled_pages.py)
            assert any(urlsplit(u).path.startswith("/tiles/subdistrict/") and f"as_of={today}" in u
                       for u in visit.requests), visit.requests
            assert counts["layers"].get("zones", 0) == 0  # no SVG path: the tiles are drawn on canvas

            framed = {}
            for srv in (allowed, default):
                with browser_page(chromium_path) as (page, visit):
                    page.goto(f"{portal}/embed-{srv.port}.html", wait_until="load")
                    page.wait_for_timeout(1500)
                    child = next((f for f in page.frames if f.url.startswith(srv.url)), None)
                    drawn = False
                    if child is not None:
                        try:
                            drawn = bool(child.evaluate("() => !!(window.Zeren && Zeren.maps.length)"))
                        except Exception:  # noqa: BLE001 - a blocked frame holds Chromium's error page
                            drawn = False
                    if srv is allowed:
                        page.screenshot(path=str(artifacts / "embedded-served.png"))
                framed[srv is allowed] = (drawn, visit.console_errors)
            assert framed[True][0] is True and framed[True][1] == []
            assert framed[False][0] is False
            assert any("frame-ancestors" in e for e in framed[False][1]), framed[False][1]
