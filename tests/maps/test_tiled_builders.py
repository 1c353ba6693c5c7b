"""The page side of tiled zone layers, without a browser: when a layer is drawn from vector tiles, what its spec
holds, the plugin the page loads, the zoom below which it draws nothing, and the faster planner adjacency."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import shapely

from zeren.maps import MapSettings, coverage_map, tiled_layer, write_standalone
from zeren.maps.assets import STATIC_DIR, TILES_JS, asset_files, page_asset_urls
from zeren.maps.builders import tile_min_zoom
from zeren.maps.palette import adjacency_pairs

TILES = "/tiles/{kind}/{z}/{x}/{y}.mvt?as_of=2025-06-30"


def _spec(html: str, layer_id: str) -> dict | None:
    for m in re.finditer(r"Zeren\.layer\([^,]+, ", html):
        spec, _ = json.JSONDecoder().raw_decode(html, m.end())
        if spec.get("id") == layer_id:
            return spec
    return None


@pytest.mark.parametrize("settings, n, tiled", [
    (MapSettings(zone_tiles_url=TILES, max_inline_features=10), 11, True),
    (MapSettings(zone_tiles_url=TILES, max_inline_features=10), 10, False),  # at the limit: inline
    (MapSettings(max_inline_features=10, geojson_url="/z/{kind}"), 11, False),  # no tiles to draw from
    (MapSettings(zone_tiles_url=TILES, max_inline_features=10, basemap="amap"), 11, False),  # GCJ-02 tiles
])
def test_when_a_layer_is_tiled(settings, n, tiled):
    assert tiled_layer(settings, n) is tiled


def test_coverage_map_over_the_limit_draws_from_tiles(subdistricts, planners_leads):
    planners, leads = planners_leads
    settings = MapSettings(zone_tiles_url=TILES, max_inline_features=10, geojson_url="/z/{kind}")
    html = coverage_map(subdistricts, leads, planners, kind="subdistrict", settings=settings).get_root().render()
    zones = _spec(html, "zones")
    assert zones is not None and "packed" not in zones and "url" not in zones
    tiles = zones["tiles"]
    assert tiles["url"] == "/tiles/subdistrict/{z}/{x}/{y}.mvt?as_of=2025-06-30"
    assert tiles["layer"] == "subdistrict" and tiles["details"] == "/zones/subdistrict/{code}/planners"
    # every planner that leads a zone has its colour; zones without one are hatched red
    led = set(leads.loc[leads["zone_code"].isin(subdistricts["code"]), "planner_id"].astype(str))
    assert set(zones["tileStyle"]["colours"]) == led
    assert zones["tileStyle"]["noLead"]["fillColor"] == "hatch:red"
    assert [n for n, name in enumerate(page_asset_urls(html)) if TILES_JS in name]  # the plugin, local
    assert page_asset_urls(html).index("/static/maps/" + TILES_JS) < page_asset_urls(html).index(
        "/static/maps/zeren-maps.js")
    assert "矢量瓦片" in html and "territories" not in html
    inline = coverage_map(subdistricts, leads, planners, kind="subdistrict",
                          settings=MapSettings(zone_tiles_url=TILES)).get_root().render()
    assert "tiles" not in (_spec(inline, "zones") or {}) and TILES_JS not in inline


def test_a_standalone_tiled_page_carries_the_plugin(subdistricts, planners_leads, tmp_path):
    planners, leads = planners_leads
    m = coverage_map(subdistricts, leads, planners, kind="subdistrict",
                     settings=MapSettings(zone_tiles_url=TILES, max_inline_features=10))
    out = write_standalone(m, tmp_path / "page.html").read_text(encoding="utf-8")
    assert "L.vectorGrid" in out or "vectorGrid" in out
    assert not [u for u in page_asset_urls(out) if not u.startswith("data:")]


def test_the_plugin_is_vendored_with_its_licence_and_provenance():
    files = asset_files()
    assert files[TILES_JS].stat().st_size > 40_000
    licence = (STATIC_DIR / "leaflet.vectorgrid.LICENSE.txt").read_text(encoding="utf-8")
    assert "BEER-WARE" in licence and "pbf" in licence and "Mapbox" in licence
    provenance = (STATIC_DIR / "leaflet.vectorgrid.PROVENANCE.md").read_text(encoding="utf-8")
    import hashlib
    assert hashlib.sha256(files[TILES_JS].read_bytes()).hexdigest() in provenance
    assert "sha512-" in provenance and "1.3.0" in provenance


@pytest.mark.parametrize("size_deg, zoom", [(0.0256, 8), (0.1, 6), (1.0, 3), (10.0, 0)])
def test_tile_min_zoom_is_where_the_median_zone_is_four_pixels(size_deg, zoom):
    geoms = np.array([shapely.box(100 + i * size_deg, 30, 100 + (i + 1) * size_deg, 30 + size_deg)
                      for i in range(5)], dtype=object)
    assert tile_min_zoom(geoms) == zoom
    px = size_deg * 256 * 2 ** zoom / 360
    assert px >= 4 and (zoom == 0 or px / 2 < 4)


def test_bounding_box_adjacency_is_a_superset_of_touching(subdistricts, planners_leads):
    _, leads = planners_leads
    lead_of = dict(zip(leads["zone_code"].astype(str), leads["planner_id"].astype(str)))
    groups = np.array([lead_of.get(c) for c in subdistricts["code"].astype(str)], dtype=object)
    geoms = subdistricts.geometry.to_numpy()
    exact, boxes = adjacency_pairs(geoms, groups), adjacency_pairs(geoms, groups, exact=False)
    assert exact and exact <= boxes
    # the exact pairs are the touching ones, each (smaller, larger), no None
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    naive = {tuple(sorted((groups[a], groups[b]))) for a, b in zip(left, right)
             if groups[a] is not None and groups[b] is not None and groups[a] != groups[b]}
    assert exact == naive
