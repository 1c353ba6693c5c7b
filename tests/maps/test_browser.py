"""The map pages in headless Chromium, served with their assets from 127.0.0.1 only."""
from __future__ import annotations

import json

import pytest

from zeren.maps import MapSettings, copy_assets, coverage_map, gap_map, planner_map, site_map, zones_geojson
from zeren.maps.synthetic import synthetic_planners_and_leads, synthetic_zones
from tests.maps.conftest import XSS

from tests.maps.browser import require_playwright  # noqa: E402

require_playwright()

from tests.maps.browser import evaluate, inspect_page, serve_directory  # noqa: E402


@pytest.fixture(scope="module")
def site_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("maps-site")
    copy_assets(root / "static" / "maps")
    return root


def _write(root, name, m):
    (root / name).write_text(m.get_root().render(), encoding="utf-8")
    return name


def _clean(report):
    assert report.page_errors == [], report.page_errors
    assert report.console_errors == [], report.console_errors
    assert report.outside_requests() == [], report.outside_requests()
    assert report.failed_requests == [], report.failed_requests
    assert report.dialogs == [], f"script ran from data: {report.dialogs}"


def test_coverage_map_in_browser(chromium_path, site_root, artifacts, subdistricts, districts, planners_leads,
                                 overlays, gaps_frame):
    planners, leads = planners_leads
    m = coverage_map(subdistricts, leads, planners, overlays=overlays, gaps=gaps_frame, districts=districts,
                     settings=MapSettings(approval_number="GS(2024)1234号", attribution=XSS))
    page = _write(site_root, "coverage.html", m)
    # a zone led by the planner whose name is the XSS probe
    xss_id = planners.loc[planners["name"] == XSS, "id"].iloc[0]
    code = leads.loc[leads["planner_id"] == xss_id, "zone_code"].iloc[0]
    zone = subdistricts.loc[subdistricts["code"] == code].iloc[0]
    pt = zone.geometry.representative_point()
    with serve_directory(site_root) as base:
        report = inspect_page(f"{base}/{page}", chromium_path, hover_lonlat=(pt.x, pt.y),
                              screenshot=artifacts / "maps-coverage.png",
                              read=(".zeren-notice", ".leaflet-control-attribution", ".leaflet-control-layers"))
    _clean(report)
    assert report.layer_counts["zones"] == len(subdistricts)
    assert report.layer_counts["districts"] == len(districts)
    assert report.layer_counts["overlay-historic_area"] == 1 and report.layer_counts["gaps"] == 2
    assert report.polygon_count >= len(subdistricts) + len(districts)
    assert report.tooltip_text is not None
    assert zone["name"] in report.tooltip_text and XSS in report.tooltip_text  # shown as text
    assert "公开联系方式 / Public contact" in report.tooltip_text
    assert "PRIVATE" not in report.tooltip_text
    assert report.legend_text.startswith("街道/乡镇") and "无责任规划师 / no lead planner" in report.legend_text
    assert report.texts[".zeren-notice"] == "审图号：GS(2024)1234号"
    assert XSS in report.texts[".leaflet-control-attribution"]
    assert "区县界 / district boundaries" in report.texts[".leaflet-control-layers"]
    # the click comes back in WGS84 (a pixel or two off at city zoom)
    assert report.last_click["lon"] == pytest.approx(pt.x, abs=5e-3)
    assert report.last_click["lat"] == pytest.approx(pt.y, abs=5e-3)
    assert report.screenshot.stat().st_size > 20_000


def test_large_layer_loaded_by_url_in_browser(chromium_path, site_root, artifacts):
    zones = synthetic_zones(6000)
    planners, leads = synthetic_planners_and_leads(zones)
    (site_root / "api").mkdir(exist_ok=True)
    (site_root / "api" / "zones.geojson").write_text(json.dumps(zones_geojson(zones)), encoding="utf-8")
    s = MapSettings(geojson_url="/api/zones.geojson?kind={kind}")
    page = _write(site_root, "large.html", coverage_map(zones, leads, planners, settings=s))
    code = leads["zone_code"].iloc[len(leads) // 2]
    zone = zones.loc[zones["code"] == code].iloc[0]
    pt = zone.geometry.representative_point()
    with serve_directory(site_root) as base:
        report = inspect_page(f"{base}/{page}", chromium_path, hover_lonlat=(pt.x, pt.y), hover_zoom=15,
                              screenshot=artifacts / "maps-large-by-url.png")
    _clean(report)
    assert any(u.endswith("/api/zones.geojson?kind=community") for u in report.requests)
    assert report.layer_counts["zones"] == len(zones)
    assert zone["name"] in report.tooltip_text and zone["name_en"] in report.tooltip_text
    planner = planners.loc[planners["id"] == leads.loc[leads["zone_code"] == code, "planner_id"].iloc[0]]
    assert planner["name"].iloc[0] in report.tooltip_text


def test_other_maps_in_browser(chromium_path, site_root, artifacts, subdistricts, districts, planners_leads,
                               overlays, gaps_frame):
    from tests.maps.test_maps import _answer

    planners, leads = planners_leads
    zone = subdistricts.iloc[120]
    site = zone.geometry.representative_point()
    import geopandas as gpd
    import pandas as pd

    site_zones = gpd.GeoDataFrame(pd.concat([subdistricts[["kind", "code", "name", "geometry"]],
                                             overlays[["kind", "code", "name", "name_en", "geometry"]]],
                                            ignore_index=True), geometry="geometry", crs=4326)
    pid = planners["id"].iloc[0]
    mine = subdistricts[subdistricts["code"].isin(leads.loc[leads["planner_id"] == pid, "zone_code"])]
    pages = {
        "gap": (gap_map(gaps_frame, subdistricts.iloc[:3], districts=districts), {"units-without-planner": 3,
                                                                                    "gaps": 2}),
        "site": (site_map(site, _answer(zone), site_zones, site_name=XSS), {"site-zones": 2}),
        "site-uncovered": (site_map((103.2, 30.2), _answer(zone, lead=False, nearest=True), site_zones),
                           {"site-zones": 1, "nearest-line": 1}),
        "planner": (planner_map(planners.iloc[0], mine), {"planner-zones": len(mine)}),
    }
    with serve_directory(site_root) as base:
        for name, (m, expected) in pages.items():
            page = _write(site_root, f"{name}.html", m)
            report = inspect_page(f"{base}/{page}", chromium_path, screenshot=artifacts / f"maps-{name}.png")
            _clean(report)
            for layer, count in expected.items():
                assert report.layer_counts.get(layer) == count, (name, layer, report.layer_counts)
            if name == "site":
                assert XSS in report.legend_text


def test_page_gcj02_matches_python(chromium_path, site_root, subdistricts, planners_leads):
    from zeren.geo.crs import gcj02_to_wgs84, wgs84_to_gcj02

    planners, leads = planners_leads
    page = _write(site_root, "gcj.html", coverage_map(subdistricts.iloc[:5], leads, planners))
    pts = [[104.06, 30.66], [120.15, 30.28], [116.39, 39.91], [24.94, 60.17]]
    with serve_directory(site_root) as base:
        out = evaluate(f"{base}/{page}", chromium_path, """(pts) => pts.map(p => [
            Zeren.wgs84ToGcj02(p[0], p[1]),
            Zeren.gcj02ToWgs84(...Zeren.wgs84ToGcj02(p[0], p[1])),
            Zeren.toWgs84({zerenGcj02: true}, {lng: Zeren.wgs84ToGcj02(p[0], p[1])[0],
                                               lat: Zeren.wgs84ToGcj02(p[0], p[1])[1]})])""", pts)
    for (lon, lat), (fwd, back, click) in zip(pts, out):
        ex, ey = wgs84_to_gcj02(lon, lat)
        assert fwd == pytest.approx([float(ex), float(ey)], abs=1e-9)
        assert back == pytest.approx([lon, lat], abs=1e-8)
        assert [click["lon"], click["lat"]] == pytest.approx([lon, lat], abs=1e-8)
    rx, ry = gcj02_to_wgs84(*out[0][0])
    assert [float(rx), float(ry)] == pytest.approx(pts[0], abs=1e-8)
