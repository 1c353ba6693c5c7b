"""The find-my-planner page (``GET /embed/find``) as the real server serves it on the demo city, in headless
Chromium that can reach nothing but loopback: at phone width a resident taps a point and reads the planner
card (the same as ``/lookup``), leaves a message and reads its reference; the planner sees it with their token
and replies; the resident reads the reply by reference. Typed GCJ-02 coordinates, a GCJ-02 basemap (clicks
converted back to WGS84), the message to the parent window inside a real cross-origin ``<iframe>``, and
``ZEREN_FRAME_ANCESTORS``."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.maps.browser import require_playwright

require_playwright()

from tests.api._live import serving  # noqa: E402
from tests.maps.browser import serve_directory  # noqa: E402
from tests.maps.test_served_browser import browser_page  # noqa: E402
from zeren.api.auth import TokenEntry, hash_token  # noqa: E402
from tests.conftest import demo_copy  # noqa: E402
from zeren.geo.crs import wgs84_to_gcj02  # noqa: E402

PLANNER = "zrn_embed-planner-P006-0123456789abcdefghijklmnopqr"
ADMIN = "zrn_embed-admin-0123456789abcdefghijklmnopqrstuvwxyz"
TOKENS = (TokenEntry(hash_token(PLANNER), "planner", planner_id="P006"),
          TokenEntry(hash_token(ADMIN), "admin", name="embed-test"))
KUANZHAI = (104.0530, 30.6695)
PHONE = (360, 720)
XSS = '<img src=x onerror=alert(1)><script>alert(2)</script>'


@pytest.fixture(scope="module")
def demo_store(chromium_path, demo_path, tmp_path_factory) -> Path:
    return demo_copy(demo_path, tmp_path_factory, "embed")


@pytest.fixture(scope="module")
def parent_site(tmp_path_factory):
    """A portal on another origin (another loopback port) that frames the page and records its messages."""
    root = tmp_path_factory.mktemp("portal")
    with serve_directory(root) as base:
        yield root, base


@pytest.fixture(scope="module")
def server(demo_store, parent_site):
    _, portal = parent_site
    with serving(demo_store, tokens=TOKENS,
                 env={"ZEREN_FRAME_ANCESTORS": f"'self' {portal}", "ZEREN_FEEDBACK_RATE_LIMIT": "50"}) as srv:
        yield srv


CENTRE_JS = """([lon, lat]) => {
  const m = Zeren.maps[0];
  const p0 = m.zerenGcj02 ? Zeren.wgs84ToGcj02(lon, lat) : [lon, lat];
  m.setView([p0[1], p0[0]], 15, {animate: false});
  m.panBy([0, 150], {animate: false});  // above the card
}"""
CLICK_JS = """([lon, lat]) => {
  const m = Zeren.maps[0];
  const p0 = m.zerenGcj02 ? Zeren.wgs84ToGcj02(lon, lat) : [lon, lat];
  const p = m.latLngToContainerPoint([p0[1], p0[0]]);
  const r = m.getContainer().getBoundingClientRect();
  return [r.left + p.x, r.top + p.y];
}"""


def open_find(page, url: str) -> None:
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    page.wait_for_function("() => document.body.getAttribute('data-zeren-find') === 'ready'")
    page.wait_for_function("() => document.querySelectorAll('#zf-category option').length > 0")
    page.wait_for_function(  # the zone outlines, loaded by URL
        "() => Object.values(Zeren.layers).every(l => !l.zerenLoading || l.getLayers().length > 0)")
    page.wait_for_timeout(300)


def tap(page, lon: float, lat: float) -> str:
    page.evaluate(CENTRE_JS, [lon, lat])
    page.wait_for_timeout(300)
    x, y = page.evaluate(CLICK_JS, [lon, lat])
    page.mouse.click(x, y)
    page.wait_for_selector("#zf-card[data-state=answered]")
    return page.inner_text("#zf-card")


def test_tap_read_the_card_leave_a_message_and_read_the_reply(chromium_path, server):
    answer = httpx.get(f"{server.url}/lookup", params={"lon": KUANZHAI[0], "lat": KUANZHAI[1]}).json()
    lead = answer["lead"]["planner"]
    with browser_page(chromium_path, viewport=PHONE) as (page, visit):
        page.add_init_script("window.__messages = []; window.addEventListener('message', "
                             "e => window.__messages.push(e.data));")
        open_find(page, f"{server.url}/embed/find")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE[0]  # no sideways scroll
        card = tap(page, *KUANZHAI)
        page.screenshot(path=str(Path(server.log.name).with_name("embed-card.png")))
        assert lead["name"] in card and lead["public_contact"] in card
        assert answer["lead"]["zone"]["name"] in card
        assert "街道/乡镇「" in card and "的责任规划师" in card  # why: the lookup's reason
        for c in answer["consultations"]:
            assert c["planner"]["name"] in card  # consultations in the historic area
        assert "+86" not in card  # never the private contact
        page.wait_for_selector("#zf-team[data-teams]")
        teams = httpx.get(f"{server.url}/teams", params={"planner_id": lead["id"]}).json()
        assert teams and teams[0]["name"] in page.inner_text("#zf-team")
        messages = page.evaluate("() => window.__messages")
        planner_msgs = [m for m in messages if isinstance(m, dict) and m.get("type") == "zeren:planner"]
        assert planner_msgs and planner_msgs[-1]["planner"]["id"] == lead["id"]
        assert planner_msgs[-1]["lon"] == pytest.approx(KUANZHAI[0], abs=1e-3)
        # leave a message
        page.click("#zf-message")
        page.select_option("#zf-category", "heritage")
        page.fill("#zf-text", f"院墙开裂 {XSS}")
        page.fill("#zf-contact-in", "13900000000")
        page.click("#zf-send")
        page.wait_for_selector("#zf-ref")
        ref = page.inner_text("#zf-ref")
        assert page.query_selector("#zf-receipt img") is None
    visit.assert_clean()
    assert ref.startswith("FB-")
    public = httpx.get(f"{server.url}/feedback/{ref}").json()
    assert public["status"] == "received" and public["text"] == f"院墙开裂 {XSS}"
    assert "contact" not in public and public["routed_to"][0] == lead["id"]
    # the planner sees it with their token, accepts and replies; the resident reads the reply by reference
    auth = {"Authorization": f"Bearer {PLANNER}"}
    listed = httpx.get(f"{server.url}/feedback", headers=auth, params={"status": "received", "limit": 1000}).json()
    mine = next(f for f in listed["features"] if f["id"] == ref)
    assert mine["properties"]["contact"] == "13900000000"
    assert httpx.post(f"{server.url}/feedback/{ref}/status", json={"status": "accepted"}, headers=auth).is_success
    reply = "已联系街道修缮 / repairs arranged"
    assert httpx.post(f"{server.url}/feedback/{ref}/status", json={"status": "replied", "reply": reply},
                      headers=auth).is_success
    followed = httpx.get(f"{server.url}/feedback/{ref}").json()
    assert followed["status"] == "replied" and followed["reply"] == reply and followed["response_hours"] >= 0


def test_typed_gcj02_coordinates_give_the_same_card(chromium_path, server):
    lon, lat = (float(v) for v in wgs84_to_gcj02(*KUANZHAI))
    answer = httpx.get(f"{server.url}/lookup", params={"lon": KUANZHAI[0], "lat": KUANZHAI[1]}).json()
    with browser_page(chromium_path, viewport=PHONE) as (page, visit):
        open_find(page, f"{server.url}/embed/find")
        page.fill("#zf-coords", f"{lon:.6f}，{lat:.6f}")
        page.select_option("#zf-crs", "gcj02")
        page.click("#zf-go")
        page.wait_for_selector("#zf-card[data-state=answered]")
        card = page.inner_text("#zf-card")
        site = page.evaluate("() => ZerenFind.state.site")
        page.fill("#zf-coords", "not a place")
        page.click("#zf-go")
        bad = page.inner_text("#zf-error")
    visit.assert_clean()
    assert answer["lead"]["planner"]["name"] in card
    assert site["lon"] == pytest.approx(KUANZHAI[0], abs=1e-5) and site["lat"] == pytest.approx(KUANZHAI[1], abs=1e-5)
    assert "经度,纬度" in bad


def test_the_page_opens_on_a_given_point_and_the_sea_is_refused(chromium_path, server):
    answer = httpx.get(f"{server.url}/lookup", params={"lon": KUANZHAI[0], "lat": KUANZHAI[1]}).json()
    with browser_page(chromium_path, viewport=PHONE) as (page, visit):
        open_find(page, f"{server.url}/embed/find?lon={KUANZHAI[0]}&lat={KUANZHAI[1]}")
        page.wait_for_selector("#zf-card[data-state=answered]")
        assert page.inner_text("#zf-name") == answer["lead"]["planner"]["name"]
        # the East China Sea: the page's own message form is refused with a reason (sent as the form sends it)
        refused = page.evaluate("""async () => {
          const r = await fetch('/feedback', {method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({lon: 123.0, lat: 30.5, crs: 'wgs84', category: 'other', text: '海上'})});
          return [r.status, (await r.json()).detail];
        }""")
    assert refused[0] == 422 and "sea" in refused[1]
    assert [e for e in visit.console_errors if "422" not in e] == []  # the refused POST is the only error


def test_inside_a_cross_origin_iframe_the_parent_gets_the_planner(chromium_path, server, parent_site):
    root, portal = parent_site
    (root / "portal.html").write_text(
        "<!DOCTYPE html><meta charset=utf-8><title>portal</title><script>window.got = [];"
        "addEventListener('message', e => { if (e.data && e.data.type) got.push({origin: e.origin, data: e.data}); });"
        f"</script><iframe id=f src=\"{server.url}/embed/find?lon={KUANZHAI[0]}&lat={KUANZHAI[1]}\" "
        "width=360 height=640></iframe>", encoding="utf-8")
    headers = httpx.get(f"{server.url}/embed/find").headers
    assert headers["content-security-policy"] == f"frame-ancestors 'self' {portal}"
    with browser_page(chromium_path) as (page, visit):
        page.goto(f"{portal}/portal.html", wait_until="load")
        page.wait_for_function("() => window.got.some(m => m.data.type === 'zeren:planner')", timeout=30_000)
        got = page.evaluate("() => window.got")
    visit.assert_clean()
    message = next(m for m in got if m["data"]["type"] == "zeren:planner")
    assert message["origin"] == server.url and message["data"]["planner"]["id"] == "P006"


def test_a_site_not_listed_cannot_frame_the_page(chromium_path, server, tmp_path):
    (tmp_path / "other.html").write_text(
        f"<!DOCTYPE html><meta charset=utf-8><iframe id=f src=\"{server.url}/embed/find\"></iframe>", encoding="utf-8")
    with serve_directory(tmp_path) as other:
        with browser_page(chromium_path) as (page, _):
            page.goto(f"{other}/other.html", wait_until="load")
            page.wait_for_timeout(1500)
            states = [f.evaluate("() => document.body ? document.body.getAttribute('data-zeren-find') : null")
                      for f in page.frames[1:]]
    assert "ready" not in states  # the page never ran inside the unlisted site


@pytest.fixture(scope="module")
def amap_server(demo_store):
    with serving(demo_store, tokens=TOKENS, log_name="amap.log", env={"ZEREN_BASEMAP": "amap"}) as srv:
        yield srv


def test_on_gcj02_tiles_a_tap_is_converted_back_to_wgs84(chromium_path, amap_server):
    answer = httpx.get(f"{amap_server.url}/lookup", params={"lon": KUANZHAI[0], "lat": KUANZHAI[1]}).json()
    with browser_page(chromium_path, viewport=PHONE) as (page, visit):
        open_find(page, f"{amap_server.url}/embed/find")
        assert page.evaluate("() => Zeren.maps[0].zerenGcj02") is True
        card = tap(page, *KUANZHAI)  # tapped where the GCJ-02 tiles draw Kuanzhai
        site = page.evaluate("() => ZerenFind.state.site")
    # the tiles themselves cannot load here (no network): only they may fail
    assert all("autonavi" in u for u in visit.blocked + visit.failed)
    assert visit.page_errors == []
    assert answer["lead"]["planner"]["name"] in card
    assert site["lon"] == pytest.approx(KUANZHAI[0], abs=2e-5) and site["lat"] == pytest.approx(KUANZHAI[1], abs=2e-5)
