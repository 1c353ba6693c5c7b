"""Map pages over the inline limit, as the real server serves them: the zones are drawn from the vector tiles
(``/tiles/{kind}/{z}/{x}/{y}.mvt?as_of=``) by the vendored Leaflet.VectorGrid on canvas, with the colours of
the inline page, the red hatch where a zone has no lead, and a click popup naming the zone and its planner.
``zeren serve`` on the demo city with ``ZEREN_MAP_MAX_INLINE_FEATURES=10``; Chromium reaches loopback only."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import shapely

from tests.maps.browser import POINT_JS, require_playwright

require_playwright()

from tests.conftest import demo_copy  # noqa: E402
from zeren.layers.catalogue import Catalogue  # noqa: E402
from zeren.layers.store import open_store  # noqa: E402
from zeren.maps import palette  # noqa: E402
from tests.api._live import serving  # noqa: E402
from tests.maps.test_served_browser import _open_ground_point, browser_page, open_map  # noqa: E402

pytestmark = pytest.mark.browser

AS_OF = "2025-06-30"
NO_LEAD = (0xD7, 0x19, 0x1C)  # palette.NO_PLANNER, the hatch stripes

# the tile canvas under a page point: RGBA of the 12 x 12 pixels around it (the canvas is transparent where
# nothing is drawn, so a pixel holds the zone's own fill, not the reference map under it)
PIXELS_JS = """([x, y]) => {
  const c = document.elementsFromPoint(x, y).find(e => e.tagName === 'CANVAS' && e.classList.contains('leaflet-tile'));
  if (!c) { return null; }
  const r = c.getBoundingClientRect(), k = c.width / r.width;
  const d = c.getContext('2d').getImageData(Math.round((x - r.left) * k) - 6, Math.round((y - r.top) * k) - 6, 12, 12);
  return Array.from(d.data);
}"""
DRAWN_JS = "() => Zeren.layers.zones.zerenDrawn"
FIRST_TILE_JS = "() => Zeren.layers.zones && Zeren.layers.zones.zerenStats.firstTileMs > 0"


@pytest.fixture(scope="module")
def demo_store(chromium_path, demo_path, tmp_path_factory) -> Path:
    return demo_copy(demo_path, tmp_path_factory, "tiled")


@pytest.fixture(scope="module")
def server(demo_store):
    with serving(demo_store, env={"ZEREN_MAP_MAX_INLINE_FEATURES": "10"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def catalogue(demo_store):
    store = open_store(demo_store)
    try:
        yield Catalogue(store)
    finally:
        store.close()


def _leads(catalogue, kind="subdistrict") -> dict[str, str]:
    leads = catalogue.leads(AS_OF)
    leads = leads[leads["zone_kind"] == kind]
    return dict(zip(leads["zone_code"].astype(str), leads["planner_id"].astype(str)))


def _planner_name(catalogue, pid: str) -> str:
    planners = catalogue.planners
    return str(planners.loc[planners["id"] == pid, "name"].iloc[0])


def _rgba(pixels: list[int]) -> list[tuple[int, int, int, int]]:
    return [tuple(pixels[i:i + 4]) for i in range(0, len(pixels), 4)]


def _near(rgb, target, tol=12) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(rgb, target))


def _hex(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def _click(page, lon: float, lat: float, zoom: int = 13) -> str:
    """Centre the map on a point, click it, wait for the popup (and its planner look-up); the popup's text."""
    page.evaluate("([lon, lat, z]) => Zeren.maps[0].setView([lat, lon], z, {animate: false})", [lon, lat, zoom])
    page.wait_for_function(FIRST_TILE_JS)
    page.wait_for_timeout(1200)  # the tiles of the new view
    x, y = page.evaluate(POINT_JS, [lon, lat])
    page.mouse.click(x, y)
    page.wait_for_selector(".leaflet-popup-content", timeout=10_000)
    page.wait_for_function("() => !document.querySelector('.leaflet-popup-content').innerText.includes('正在查询')",
                           timeout=10_000)
    return page.inner_text(".leaflet-popup-content")


def _pixels(page, lon: float, lat: float) -> list[tuple[int, int, int, int]]:
    x, y = page.evaluate(POINT_JS, [lon, lat])
    pixels = page.evaluate(PIXELS_JS, [x, y])
    assert pixels is not None, "no tile canvas under the point"
    return _rgba(pixels)


def test_coverage_page_draws_tiles_with_colours_hatching_and_popups(chromium_path, server, catalogue, artifacts):
    zones = catalogue.zone_frame(AS_OF, "subdistrict")
    lead_of = _leads(catalogue)
    no_lead = zones[~zones["code"].isin(lead_of)]
    led = zones[zones["code"].isin(lead_of)]
    assert len(no_lead) and len(led) and len(zones) > 10
    hatched = no_lead.iloc[int(shapely.area(no_lead.geometry.to_numpy()).argmax())]
    coloured = led.iloc[int(shapely.area(led.geometry.to_numpy()).argmax())]
    with browser_page(chromium_path) as (page, visit):
        counts = open_map(page, f"{server.url}/maps/coverage?as_of={AS_OF}")
        page.wait_for_function(FIRST_TILE_JS, timeout=20_000)
        page.wait_for_timeout(1000)
        drawn = page.evaluate(DRAWN_JS)
        page.screenshot(path=str(artifacts / "coverage-tiled.png"))
        legend = page.inner_text(".zeren-legend")
        hatched_pt = _open_ground_point(catalogue, hatched.geometry, AS_OF)
        coloured_pt = _open_ground_point(catalogue, coloured.geometry, AS_OF)
        popup_led = _click(page, coloured_pt.x, coloured_pt.y)
        led_pixels = _pixels(page, coloured_pt.x, coloured_pt.y)
        page.keyboard.press("Escape")
        popup_none = _click(page, hatched_pt.x, hatched_pt.y)
        hatch_pixels = _pixels(page, hatched_pt.x, hatched_pt.y)
        page.screenshot(path=str(artifacts / "coverage-tiled-popup.png"))
    visit.assert_clean()  # no request left 127.0.0.1, no console error
    # the zones came from the tiles of the page's date, not from SVG paths or a GeoJSON layer
    tiles = [urlsplit(u) for u in visit.requests if urlsplit(u).path.startswith("/tiles/subdistrict/")]
    assert tiles and all(parse_qs(t.query) == {"as_of": [AS_OF]} for t in tiles)
    assert not any("/maps/zones/" in u for u in visit.requests)
    assert counts["layers"].get("zones", 0) == 0
    assert any(u.endswith("/static/maps/leaflet.vectorgrid.bundled.min.js") for u in visit.requests)
    # every subdistrict in view drawn; lead or no lead as in the store; hatch exactly where no lead
    assert set(drawn) <= set(zones["code"]) and len(drawn) >= 0.9 * len(zones)
    for code, d in drawn.items():
        assert d["has_lead"] == (code in lead_of), code
        if code in lead_of:
            assert d["lead"] == lead_of[code] and d["fill"] in palette.PLANNER_PALETTE, (code, d)
        else:
            assert d["fill"] == "hatch:red", (code, d)
    # the palette's colours: each planner's hash-preferred colour, changed only for a neighbouring planner (over
    # the zones' bounding boxes on a tiled page: a superset of the touching pairs)
    pids = zones["code"].map(lead_of)
    has = pids.notna().to_numpy()
    inline = palette.planner_colours(set(pids[has]), palette.adjacency_pairs(
        zones.geometry.to_numpy()[has], pids[has].to_numpy(), exact=False))
    assert {c: d["fill"] for c, d in drawn.items() if c in lead_of} == {c: inline[lead_of[c]] for c in drawn
                                                                       if c in lead_of}
    # the canvas: red stripes in the zone without a lead, the planner's colour and no red in the led one
    assert sum(_near(p[:3], NO_LEAD) and p[3] > 150 for p in hatch_pixels) >= 10, hatch_pixels
    target = _hex(drawn[coloured["code"]]["fill"])
    assert sum(_near(p[:3], target) and p[3] > 100 for p in led_pixels) >= 100, (target, led_pixels[:5])
    assert not any(_near(p[:3], NO_LEAD) for p in led_pixels)
    # popups: the zone's name and code; its lead planner (looked up) or "no lead planner"
    assert coloured["name"] in popup_led and coloured["code"] in popup_led
    assert _planner_name(catalogue, lead_of[coloured["code"]]) in popup_led, popup_led
    assert "PRIVATE" not in popup_led
    assert hatched["name"] in popup_none and "无责任规划师 / no lead planner" in popup_none, popup_none
    assert any(f"/zones/subdistrict/{coloured['code']}/planners" in u for u in visit.requests)
    # the same legend as the inline page, with a note that the zones come from tiles
    assert "无责任规划师 / no lead planner" in legend and f"{len(zones)} units" in legend
    assert "矢量瓦片" in legend and "vector tiles" in legend


def test_tiled_coverage_page_in_a_phone_view(chromium_path, server, artifacts):
    """WeChat's in-app browser is about 360 px wide: the tiles draw, nothing scrolls sideways."""
    with browser_page(chromium_path, viewport=(360, 640)) as (page, visit):
        open_map(page, f"{server.url}/maps/coverage?as_of={AS_OF}")
        page.wait_for_function(FIRST_TILE_JS, timeout=20_000)
        stats = page.evaluate("() => Zeren.layers.zones.zerenStats")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        page.screenshot(path=str(artifacts / "coverage-tiled-360.png"))
    visit.assert_clean()
    assert stats["features"] > 0 and stats["tiles"] > 0
    assert width <= 360


def test_the_first_view_asks_only_for_the_tiles_of_its_zoom_compressed(chromium_path, server):
    """The page opens at its fitted zoom at once (no zoom animation from folium's zoom_start, during which the
    tile layer asked for the tiles of the zoom it was leaving), and the tiles come gzip-encoded."""
    with browser_page(chromium_path) as (page, visit):
        open_map(page, f"{server.url}/maps/coverage?as_of={AS_OF}")
        page.wait_for_function(FIRST_TILE_JS, timeout=20_000)
        page.wait_for_function("() => !Zeren.layers.zones.isLoading()", timeout=20_000)
        zoom = page.evaluate("() => Zeren.maps[0].getZoom()")
        sizes = page.evaluate("() => performance.getEntriesByType('resource').filter(e => e.name.includes('/tiles/'))"
                              ".map(e => [e.encodedBodySize, e.decodedBodySize])")
    visit.assert_clean()
    tiles = [urlsplit(u).path.split("/") for u in visit.requests if urlsplit(u).path.startswith("/tiles/")]
    assert tiles and {int(t[3]) for t in tiles} == {zoom}, (zoom, sorted({t[3] for t in tiles}))
    big = [(enc, dec) for enc, dec in sizes if dec > 2048]
    assert big and all(0 < enc < dec for enc, dec in big), big


def test_tiled_gaps_page_hatches_the_units_without_a_lead(chromium_path, server, catalogue, artifacts):
    zones = catalogue.zone_frame(AS_OF, "subdistrict")
    lead_of = _leads(catalogue)
    with browser_page(chromium_path) as (page, visit):
        open_map(page, f"{server.url}/maps/gaps?as_of={AS_OF}")
        page.wait_for_function(FIRST_TILE_JS, timeout=20_000)
        page.wait_for_timeout(1000)
        drawn = page.evaluate(DRAWN_JS)
        legend = page.inner_text(".zeren-legend")
        page.screenshot(path=str(artifacts / "gaps-tiled.png"))
    visit.assert_clean()
    assert len(drawn) >= 0.9 * len(zones)
    for code, d in drawn.items():
        assert (d["fill"] == "hatch:red") == (code not in lead_of), (code, d)
        if code in lead_of:
            assert d["fill"] == "#BBBBBB"  # the grey of the units with a planner
    n = int((~zones["code"].isin(lead_of)).sum())
    assert f"{n} units without a planner" in legend and "vector tiles" in legend


def test_tiled_planner_page_draws_only_the_planners_zones(chromium_path, server, catalogue, artifacts):
    from zeren.geo.appointments import active_appointments

    held = active_appointments(catalogue.appointments, AS_OF)
    counts = held.groupby("planner_id").size()
    pid = str(counts.idxmax())
    mine = held[held["planner_id"] == pid]
    assert len(mine) > 10  # over the server's inline limit
    kinds = sorted(set(mine["zone_kind"]))
    with browser_page(chromium_path) as (page, visit):
        open_map(page, f"{server.url}/maps/planner/{pid}?as_of={AS_OF}")
        layers = [f"planner-zones-{k}" for k in kinds]
        page.wait_for_function("(ids) => ids.every(i => Zeren.layers[i] && Zeren.layers[i].zerenStats.tiles > 0)",
                               arg=layers, timeout=20_000)
        page.wait_for_timeout(1000)
        drawn = page.evaluate("(ids) => ids.map(i => Zeren.layers[i].zerenDrawn)", layers)
        page.screenshot(path=str(artifacts / "planner-tiled.png"))
    visit.assert_clean()
    for kind, seen in zip(kinds, drawn):
        expected = set(mine.loc[mine["zone_kind"] == kind, "zone_code"].astype(str))
        assert set(seen) == expected, kind
        for code, d in seen.items():
            role = mine.loc[(mine["zone_kind"] == kind) & (mine["zone_code"] == code), "role"].iloc[0]
            assert d["fill"] == ("#0077BB" if role == "lead" else "#88CCEE"), (code, d)
