"""Map rough edges of issue 11: the life-circle check page credits OpenStreetMap and lets overlapping circles
be told apart (edge 8); a page without a basemap draws the store's own boundaries as a reference map (edge 13).
Checked in the page's data and in headless Chromium."""
from __future__ import annotations

import pytest
import shapely

from tests.api.conftest import make_settings
from tests.layers._support import cli
from tests.lifecircle.conftest import HELSINKI
from tests.maps.browser import evaluate, require_playwright
from tests.maps.helpers import layer_geoms, layer_rows, layer_specs, page_calls

CENTRES = "code,name,lon,lat\nC1,Kamppi,24.9316,60.1687\nC2,Kluuvi,24.9460,60.1710\nC3,Punavuori,24.9400,60.1620\n"


def _check_page(capsys, tmp_path):
    (tmp_path / "centres.csv").write_text(CENTRES, encoding="utf-8")
    circles = tmp_path / "circles.gpkg"
    assert cli(capsys, "life-circles", "generate", tmp_path / "centres.csv", "--crs", "wgs84", "--minutes", "15",
               "--out", circles).rc == 0
    page = tmp_path / "check.html"
    run = cli(capsys, "life-circles", "check", circles, "--pois", HELSINKI, "--out", tmp_path / "check.gpkg",
              "--map", page)
    assert run.rc == 0, run.text
    return page


# -- 8. the life-circle check map -------------------------------------------------------------------
def test_life_circle_check_map_credits_openstreetmap(capsys, tmp_path):
    html = _check_page(capsys, tmp_path).read_text("utf-8")
    (setup,) = page_calls(html, "init")
    assert "OpenStreetMap" in setup["attribution"] and "ODbL" in setup["attribution"]


def test_overlapping_life_circles_keep_their_shapes_outlines_and_names(capsys, tmp_path):
    html = _check_page(capsys, tmp_path).read_text("utf-8")
    spec = layer_specs(html)["life-circles"]
    geoms, rows = layer_geoms(spec), layer_rows(spec)
    assert len(geoms) == 3
    # drawn as they are: the three 1 km circles overlap pairwise (display cleaning would have cut them apart)
    overlaps = [(i, j) for i in range(3) for j in range(i + 1, 3) if shapely.intersection(geoms[i], geoms[j]).area > 0]
    assert len(overlaps) == 3
    for i, j in overlaps:  # each circle its own outline colour
        assert rows[i]["_s"]["color"] != rows[j]["_s"]["color"]
    assert spec["style"]["fillOpacity"] <= 0.25
    assert sorted(f["properties"]["_text"] for f in spec["labels"]["features"]) == ["Kamppi", "Kluuvi", "Punavuori"]


def test_life_circle_check_map_in_the_browser(capsys, tmp_path, chromium_path):
    require_playwright()
    page = _check_page(capsys, tmp_path)
    got = evaluate(page.as_uri(), chromium_path, """() => ({
        labels: Array.from(document.querySelectorAll('.zeren-map-label')).map(e => e.textContent).sort(),
        attribution: document.querySelector('.leaflet-control-attribution').textContent,
        strokes: Array.from(document.querySelectorAll('path.leaflet-interactive')).map(p => p.getAttribute('stroke')),
    })""")
    assert got["labels"] == ["Kamppi", "Kluuvi", "Punavuori"]
    assert "OpenStreetMap" in got["attribution"] and "ODbL" in got["attribution"]
    assert len(set(got["strokes"])) == 3


# -- 13. a page without a basemap still orients its reader -----------------------------------------
@pytest.fixture(scope="module")
def demo_path(tmp_path_factory):
    from zeren.api.service.demo import build_demo

    path = tmp_path_factory.mktemp("reference") / "demo.gpkg"
    build_demo(path).close()
    return path


def _page(client, url):
    r = client.get(url)
    assert r.status_code == 200, r.text
    return r.text


def test_pages_without_a_basemap_draw_the_store_districts_as_reference(demo_path):
    from fastapi.testclient import TestClient
    from zeren.api.http.app import create_app
    from zeren.layers.store import open_store

    store = open_store(str(demo_path))
    try:
        zones = store.zones(as_of=None)
    finally:
        store.close()
    districts = set(zones.loc[zones["kind"] == "district", "name"])
    with TestClient(create_app(make_settings(demo_path))) as c:
        for url in ("/maps/coverage", "/maps/site?lon=104.0530&lat=30.6695", "/maps/planner/P006"):
            specs = layer_specs(_page(c, url))
            ref = specs["reference"]
            assert ref["pane"][1] < 400 and ref["interactive"] is False  # under the zones, never in the way
            names = {f["properties"]["_text"] for f in ref["labels"]["features"]}
            assert districts <= names  # every district named; subdistrict names wait for a closer zoom
            fine = [f for f in ref["labels"]["features"] if f["properties"].get("_minzoom")]
            assert fine and specs["reference-fine"]["follows"] == "reference"
    with TestClient(create_app(make_settings(demo_path, basemap="osm"))) as c:  # tiles: no reference drawn
        assert "reference" not in layer_specs(_page(c, "/maps/coverage"))


def test_reference_map_in_the_browser(capsys, demo_path, tmp_path, chromium_path):
    require_playwright()
    page = tmp_path / "site.html"  # the CLI's page: opens offline, no tiles
    assert cli(capsys, "map", "site", "--lon", "104.0530", "--lat", "30.6695", "--out", page,
               "--store", demo_path).rc == 0
    got = evaluate(page.as_uri(), chromium_path, """() => {
        const map = Zeren.maps[0];
        const labels = () => Array.from(document.querySelectorAll('.zeren-map-label'))
            .filter(e => e.style.opacity !== '0').map(e => e.textContent);
        const zoomed = labels();
        map.setZoom(9, {animate: false});
        return {zoomed: zoomed, far: labels(),
                pane: getComputedStyle(map.getPane('zerenReference')).zIndex,
                overlay: getComputedStyle(map.getPane('overlayPane')).zIndex};
    }""")
    assert "青羊区第2街道" in got["zoomed"]  # the subdistrict names show close up
    assert "青羊区第2街道" not in got["far"] and "青羊区" in got["far"]  # only the districts far out
    assert int(got["pane"]) < int(got["overlay"])
