"""Map pages: offline assets only, escaped names, small pages, gap-free simplification, GCJ-02, layers."""
from __future__ import annotations


import re
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from zeren import maps
from zeren.geo.crs import wgs84_to_gcj02
from zeren.maps import MapSettings, coverage_map, gap_map, life_circle_layer, planner_map, site_map
from zeren.maps.assets import PAGE_CSS, PAGE_JS, STATIC_DIR, asset_files, asset_roots, copy_assets, page_asset_urls, write_standalone
from zeren.maps.display import (encode_columns, decode_columns, pack_polygons, script_json, simplify_for_display,
                          unpack_polygons, zones_geojson)
from zeren.maps.palette import PLANNER_PALETTE, adjacency_pairs, planner_colours, preferred_index, score_colour
from zeren.maps.synthetic import synthetic_planners_and_leads, synthetic_zones

from tests.maps.conftest import XSS
from tests.maps.helpers import layer_geoms, layer_rows, layer_specs, page_calls

PREFIX = "/static/maps/"


def render(m) -> str:
    return m.get_root().render()


# --- builders used by several tests ----------------------------------------------------------------

@pytest.fixture(scope="module")
def coverage_html(subdistricts, districts, planners_leads, overlays, gaps_frame):
    planners, leads = planners_leads
    m = coverage_map(subdistricts, leads, planners, overlays=overlays, gaps=gaps_frame,
                     overlaps=gaps_frame.iloc[[0]].assign(code_a="510104001", code_b="510104002"),
                     districts=districts,
                     settings=MapSettings(approval_number="GS(2024)1234号", attribution="成都市规划和自然资源局"))
    return render(m)


def _answer(zone_row, lead=True, nearest=False):
    ref = {"kind": "subdistrict", "code": zone_row["code"], "name": zone_row["name"], "name_en": None}
    planner = {"id": "P1", "name": XSS, "organization": "成都市规划设计研究院", "public_contact": "028-1234",
               "private_contact": "PRIVATE-13800000000"}
    return {
        "covered": lead,
        "lead": {"planner": planner, "zone": ref} if lead else None,
        "planners": [],
        "consultations": [{"planner": {"id": "P2", "name": "李四", "organization": "历史院",
                                       "public_contact": "li@example.org"},
                           "zone": {"kind": "historic_area", "code": "H001", "name": "宽窄巷子历史文化街区",
                                    "name_en": "Kuanzhai Alley"}}] if lead else [],
        "zones": [dict(ref, share=1.0), {"kind": "historic_area", "code": "H001", "name": "宽窄巷子历史文化街区",
                                         "name_en": "Kuanzhai Alley", "share": 1.0}] if lead else [],
        "nearest": {"zone": ref, "planner": planner, "distance_m": 12345.6} if nearest else None,
    }


@pytest.fixture(scope="module")
def site_zones(subdistricts, overlays):
    return gpd.GeoDataFrame(pd.concat([subdistricts[["kind", "code", "name", "geometry"]],
                                       overlays[["kind", "code", "name", "name_en", "geometry"]]],
                                      ignore_index=True), geometry="geometry", crs=4326)


@pytest.fixture(scope="module")
def projects(subdistricts, planners_leads):
    planners, leads = planners_leads
    pid = planners["id"].iloc[0]
    c = subdistricts.geometry.iloc[0].representative_point()
    geoms = [shapely.Point(c.x + dx, c.y + dy) for dx, dy in [(0, 0), (0.01, 0), (0, 0.01), (-0.01, 0)]]
    geoms.append(shapely.Point(c.x, c.y - 0.012).buffer(0.004))
    geoms.append(shapely.Point(c.x + 0.02, c.y))
    return gpd.GeoDataFrame({
        "id": [1, 2, 3, 4, 5, 6], "name": [XSS, "社区花园", "口袋公园", "老旧小区改造", "街道更新", "别人的项目"],
        "type": ["public_space"] * 6, "scale": ["small"] * 6, "description": [""] * 6,
        "status": ["survey", "assessment", "consultation", "implementation", "feedback", "survey"],
        "created_at": pd.to_datetime(["2024-03-01"] * 6),
        "lead_planner_id": [pid, pid, pid, pid, "OTHER", "OTHER"],
        "lead_zone_kind": ["subdistrict"] * 6, "lead_zone_code": ["x"] * 6,
        "consultation_planner_ids": [[], [], [], [], [pid], []],
    }, geometry=geoms, crs=4326)


def all_pages(subdistricts, districts, planners_leads, overlays, gaps_frame, site_zones, projects, settings):
    planners, leads = planners_leads
    zone = subdistricts.iloc[120]
    site = zone.geometry.representative_point()
    lc = gpd.GeoDataFrame({"code": ["L1", "L2"], "name": ["生活圈一", XSS], "score": [0.2, 0.9]},
                          geometry=[site.buffer(0.02), site.buffer(0.01)], crs=4326)
    cov = coverage_map(subdistricts, leads, planners, overlays=overlays, gaps=gaps_frame, districts=districts,
                       settings=settings)
    maps.add_layer(cov, life_circle_layer(lc, settings=settings))
    pid = planners["id"].iloc[0]
    mine = subdistricts[subdistricts["code"].isin(leads.loc[leads["planner_id"] == pid, "zone_code"])]
    return {
        "coverage": cov,
        "gap": gap_map(gaps_frame, subdistricts.iloc[:3], districts=districts, settings=settings),
        "site": site_map(site, _answer(zone), site_zones, site_name=XSS, settings=settings),
        "site_uncovered": site_map((103.2, 30.2), _answer(zone, lead=False, nearest=True), site_zones,
                                   settings=settings),
        "planner": planner_map(planners.iloc[0], mine, projects, settings=settings),
    }


@pytest.fixture(scope="module")
def pages(subdistricts, districts, planners_leads, overlays, gaps_frame, site_zones, projects):
    built = all_pages(subdistricts, districts, planners_leads, overlays, gaps_frame, site_zones, projects,
                      MapSettings(approval_number="GS(2024)1234号"))
    return {name: render(m) for name, m in built.items()}


# --- offline: no CDN ---------------------------------------------------------------------------------

def test_pages_reference_only_assets_under_the_prefix(pages):
    for name, html in pages.items():
        urls = page_asset_urls(html)
        scripts = [u for u in urls if u.endswith(".js")]
        assert scripts == [PREFIX + n for n in PAGE_JS], name
        assert [u for u in urls if u.endswith(".css")] == [PREFIX + n for n in PAGE_CSS], name
        assert all(u.startswith(PREFIX) or u.startswith("data:") for u in urls), (name, urls)
        # with no basemap nothing at all points off the machine
        assert not re.search(r"https?://", html), (name, re.findall(r"https?://[^\s\"']+", html)[:5])
        for cdn in ("jsdelivr", "cdnjs", "jquery", "bootstrap", "fontawesome", "awesome-markers", "unpkg"):
            assert cdn not in html.lower(), (name, cdn)


def test_asset_prefix_is_configurable(subdistricts, planners_leads):
    planners, leads = planners_leads
    html = render(coverage_map(subdistricts, leads, planners, settings=MapSettings(asset_url_prefix="/zeren/a")))
    urls = [u for u in page_asset_urls(html) if not u.startswith("data:")]
    assert urls == ["/zeren/a/" + n for n in PAGE_JS] + ["/zeren/a/" + n for n in PAGE_CSS]


@pytest.mark.parametrize("basemap,host", [("osm", "tile.openstreetmap.org"), ("amap", "autonavi.com"),
                                          ("tencent", "map.gtimg.com"), ("tianditu", "tianditu.gov.cn")])
def test_basemaps_add_only_tile_urls(subdistricts, planners_leads, basemap, host):
    planners, leads = planners_leads
    s = MapSettings(basemap=basemap, tianditu_key="KEY&<x>" if basemap == "tianditu" else None)
    html = render(coverage_map(subdistricts.iloc[:20], leads, planners, settings=s))
    assert all(u.startswith(PREFIX) or u.startswith("data:") for u in page_asset_urls(html))
    hosts = {re.sub(r"^https?://", "", u).split("/")[0] for u in re.findall(r"https?://[^\s\"'<>]+", html)}
    assert hosts and all(host in h or h.endswith("openstreetmap.org") for h in hosts), hosts
    if basemap == "tianditu":
        assert "tk=KEY%26%3Cx%3E" in html


def test_assets_are_served_from_the_installed_packages(tmp_path):
    files = asset_files()
    assert set(PAGE_JS) | set(PAGE_CSS) <= set(files)
    roots = asset_roots()
    for name, path in files.items():  # every URL name is found under its root, in place (no shared copy)
        sub, _, rest = name.partition("/") if name.startswith("leaflet/") else ("", "", name)
        assert (roots[sub] / rest).resolve() == path.resolve()
    assert roots[""] == STATIC_DIR and (roots["leaflet"] / "leaflet.js").is_file()  # the packages' own folders
    root = copy_assets(tmp_path / "copy")
    for name, path in files.items():
        assert (root / name).read_bytes() == path.read_bytes()
    assert "Leaflet 1.9.3" in (root / "leaflet/leaflet.js").read_text()[:300]


def test_write_standalone_inline_and_relative(tmp_path, subdistricts, planners_leads):
    planners, leads = planners_leads
    m = coverage_map(subdistricts, leads, planners)
    inline = write_standalone(m, tmp_path / "inline.html").read_text()
    assert page_asset_urls(inline) == ["data:,"]
    assert "Leaflet 1.9.3" in inline and "global.Zeren = Z" in inline
    assert "data:image/png;base64," in inline  # the layer-control icon
    # the only absolute URLs left are Leaflet's SVG namespace, its attribution link and a CSS comment
    urls = set(re.findall(r"https?://[^\s\"')]+", inline))
    assert urls <= {"http://www.w3.org/2000/svg", "https://leafletjs.com",
                    "https://bugzilla.mozilla.org/show_bug.cgi?id=888319"}, urls
    rel = write_standalone(m, tmp_path / "out dir" / "cov.html", assets="relative")
    urls = [u for u in page_asset_urls(rel.read_text()) if not u.startswith("data:")]
    assert urls == [f"cov_files/{n}" for n in PAGE_JS + PAGE_CSS]
    for n in PAGE_JS + PAGE_CSS:
        assert (rel.parent / "cov_files" / n).is_file()
    # the map itself still renders with the server prefix afterwards
    assert PREFIX + PAGE_JS[0] in page_asset_urls(render(m))


# --- safety ---------------------------------------------------------------------------------------

def test_names_are_escaped_and_private_contacts_absent(pages, coverage_html):
    for name, html in {**pages, "coverage_full": coverage_html}.items():
        assert "<img" not in html and "<script>alert" not in html, name
        assert "PRIVATE-13800000000" not in html, name
        assert "private_contact" not in html, name
    specs = layer_specs(coverage_html)
    names = {(r.get("planner") or {}).get("name") for r in layer_rows(specs["zones"])}
    assert XSS in names  # the data is kept, as text


def test_script_json_cannot_close_the_script():
    text = script_json({"a": "</script><script>alert(1)</script>", "b": "\u2028&"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text


def test_page_title_escaped(subdistricts, planners_leads):
    planners, leads = planners_leads
    html = render(coverage_map(subdistricts.iloc[:10], leads, planners, title=XSS))
    assert "<title>&lt;img src=x onerror=alert(1)&gt;</title>" in html


# --- size and speed -----------------------------------------------------------------------------------

def test_demo_coverage_page_is_small(subdistricts, districts, planners_leads):
    """Its size; its speed is measured by benchmarks/bench_maps.py."""
    planners, leads = planners_leads
    html = render(coverage_map(subdistricts, leads, planners, districts=districts))
    size = len(html.encode("utf-8"))
    assert size < 1_500_000, size
    specs = layer_specs(html)
    assert len(layer_rows(specs["zones"])) == len(subdistricts)


def test_large_layer_loads_by_url_and_page_stays_small():
    zones = synthetic_zones(30_000)
    planners, leads = synthetic_planners_and_leads(zones)
    s = MapSettings(geojson_url="/api/zones.geojson?kind={kind}&as_of=2024-06-01")
    html = render(coverage_map(zones, leads, planners, settings=s))
    assert len(html.encode()) < 5_000_000
    spec = layer_specs(html)["zones"]
    assert spec["url"] == "/api/zones.geojson?kind=community&as_of=2024-06-01"
    assert spec["count"] == len(zones) and "packed" not in spec
    rows = layer_rows(spec)
    assert {"code", "planner", "_s"} <= set(rows[0]) and "name" not in rows[0]


@pytest.mark.timeout(300)
def test_large_layer_inlined_without_url_stays_under_5mb():
    zones = synthetic_zones(30_000)
    planners, leads = synthetic_planners_and_leads(zones)
    html = render(coverage_map(zones, leads, planners))
    assert len(html.encode()) < 5_000_000
    assert len(layer_specs(html)["zones"]["packed"]["f"]) == len(zones)


# --- simplification -----------------------------------------------------------------------------------

def _holes(geom) -> int:
    return sum(len(p.interiors) for p in getattr(geom, "geoms", [geom]))


@pytest.mark.parametrize("source", ["chengdu", "synthetic"])
def test_display_simplification_keeps_neighbours_gap_free(source, subdistricts):
    if source == "chengdu":
        geoms = np.asarray(subdistricts.geometry.values, dtype=object)
    else:
        geoms = np.asarray(synthetic_zones(2000).geometry.values, dtype=object)
    simplified = simplify_for_display(geoms, 5.0)
    assert shapely.coverage_is_valid(simplified)
    # what the page draws: rounded to 6 decimals by the packing
    drawn = np.asarray(unpack_polygons(pack_polygons(simplified, 6)), dtype=object)
    raw_union = shapely.union_all(geoms)
    for out in (simplified, drawn):
        union = shapely.union_all(out)
        assert abs(union.area - raw_union.area) / raw_union.area < 1e-3
        # no new holes (slivers) between neighbours; hairline slivers of the raw data are closed
        assert _holes(union) <= _holes(raw_union), "simplification opened holes (slivers) between neighbours"
        # neighbours neither overlap nor part: summed areas equal the union's
        assert abs(shapely.area(out).sum() - union.area) / union.area < 1e-6
    if source == "synthetic":  # (cleaning the demo layer adds the shared nodes it lacked)
        assert shapely.get_num_coordinates(simplified).sum() < shapely.get_num_coordinates(geoms).sum()


def test_pack_roundtrip_and_columns():
    geoms = np.array([shapely.box(104, 30, 104.1, 30.1),
                      shapely.MultiPolygon([shapely.box(104.2, 30, 104.3, 30.1),
                                            shapely.box(104.4, 30, 104.5, 30.1).difference(
                                                shapely.box(104.42, 30.02, 104.44, 30.04))])], dtype=object)
    back = unpack_polygons(pack_polygons(geoms, 6))
    for a, b in zip(geoms, back):
        assert a.equals(b)
    cols = {"a": ["x", "x"], "b": [{"n": 1}, {"n": 1}], "c": [1, 2], "d": [None, "y"]}
    assert decode_columns(encode_columns(cols, 2), 2) == [{"a": "x", "b": {"n": 1}, "c": 1, "d": None},
                                                           {"a": "x", "b": {"n": 1}, "c": 2, "d": "y"}]


def test_zones_geojson_for_the_api(subdistricts):
    fc = zones_geojson(subdistricts)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(subdistricts)
    props = fc["features"][0]["properties"]
    assert set(props) == {"kind", "code", "name", "name_en"}


# --- GCJ-02 -----------------------------------------------------------------------------------------

def test_amap_pages_are_shifted_to_gcj02(subdistricts, planners_leads):
    planners, leads = planners_leads
    sub = subdistricts.iloc[:30]
    plain = layer_specs(render(coverage_map(sub, leads, planners)))["zones"]
    shifted_html = render(coverage_map(sub, leads, planners, settings=MapSettings(basemap="amap")))
    assert page_calls(shifted_html, "init")[0]["gcj02"] is True
    shifted = layer_specs(shifted_html)["zones"]
    by_code_plain = dict(zip([r["code"] for r in layer_rows(plain)], layer_geoms(plain)))
    by_code_shift = dict(zip([r["code"] for r in layer_rows(shifted)], layer_geoms(shifted)))
    for code, g in by_code_plain.items():
        a = shapely.get_coordinates(g)[0]
        b = shapely.get_coordinates(by_code_shift[code])[0]
        dx = (b[0] - a[0]) * 111_320 * np.cos(np.radians(a[1]))
        dy = (b[1] - a[1]) * 110_540
        assert 300 <= np.hypot(dx, dy) <= 600, (code, np.hypot(dx, dy))
        ex, ey = wgs84_to_gcj02(a[0], a[1])
        assert abs(b[0] - ex) < 2e-6 and abs(b[1] - ey) < 2e-6


def test_url_layers_ask_the_page_to_shift(planners_leads):
    zones = synthetic_zones(200)
    planners, leads = synthetic_planners_and_leads(zones)
    s = MapSettings(basemap="amap", geojson_url="/api/zones.geojson?kind={kind}", max_inline_features=100)
    spec = layer_specs(render(coverage_map(zones, leads, planners, settings=s)))["zones"]
    assert spec["gcj02"] is True and spec["url"].endswith("kind=community")


# --- layers of each map ---------------------------------------------------------------------------------

def test_coverage_map_layers(coverage_html, subdistricts, planners_leads):
    planners, leads = planners_leads
    specs = layer_specs(coverage_html)
    assert {"zones", "territories", "gaps", "overlaps", "overlay-historic_area", "overlay-key_area",
            "districts"} <= set(specs)
    rows = layer_rows(specs["zones"])
    led = set(leads["zone_code"])
    for r in rows:
        if r["code"] in led:
            assert r["planner"]["name"] and r["_s"]["fillColor"] in PLANNER_PALETTE
            assert set(r["planner"]) == {"name", "org", "contact"}
        else:
            assert r["planner"] is None and r["_s"]["fillColor"] == "hatch:red"
    legend = page_calls(coverage_html, "legend")[0]
    assert legend["title"].startswith("街道")  # Chinese first
    labels = " ".join(i["label"] for i in legend["items"])
    assert "无责任规划师 / no lead planner" in labels and "重叠 / overlap" in labels
    assert "历史文化街区 / historic conservation area" in labels
    init = page_calls(coverage_html, "init")[0]
    assert init["approval"] == "审图号：GS(2024)1234号" and init["attribution"] == "成都市规划和自然资源局"
    assert "L.control.layers" in coverage_html
    gap_rows = layer_rows(specs["gaps"])
    assert [r["area"] for r in gap_rows] == ["1.20 km²", "3,400 m²"]


def test_gap_map_layers(pages, subdistricts, gaps_frame, districts):
    specs = layer_specs(pages["gap"])
    assert {"units-without-planner", "gaps", "districts"} <= set(specs)
    rows = layer_rows(specs["units-without-planner"])
    assert len(rows) == 3 and all(r["area"].endswith("km²") for r in rows)
    # a geo.coverage result works too, with its totals in the legend
    result = SimpleNamespace(gaps=gaps_frame.assign(reason=["unit_without_planner", "sliver"]),
                             units_without_planner=subdistricts.iloc[:2], units_total=241, units_with_lead=239,
                             gap_area_m2=5.0e6, covered_pct=99.1)
    html = render(gap_map(result, districts=districts))
    specs = layer_specs(html)
    assert len(layer_rows(specs["gaps"])) == 1  # the unit's own gap piece is drawn as the unit
    notes = " ".join(page_calls(html, "legend")[0]["notes"])
    assert "99.1%" in notes and "241" in notes


def test_site_map_layers(pages):
    specs = layer_specs(pages["site"])
    assert {"site", "site-zones"} <= set(specs)
    rels = {r["code"]: r["role"] for r in layer_rows(specs["site-zones"])}
    assert rels["H001"].startswith("须征询")
    assert any(v and v.startswith("责任规划师所在单元") for v in rels.values())
    legend = page_calls(pages["site"], "legend")[0]
    assert any(XSS in line for line in legend["lines"])  # as text, escaped in the page
    uncovered = layer_specs(pages["site_uncovered"])
    assert "nearest-line" in uncovered
    line = layer_rows(uncovered["nearest-line"])[0]
    assert line["distance"] == "12.35 km"
    assert any("12.35 km" in line for line in page_calls(pages["site_uncovered"], "legend")[0]["lines"])


def test_planner_map_layers(pages):
    specs = layer_specs(pages["planner"])
    assert {"planner-zones", "projects"} <= set(specs)
    rows = layer_rows(specs["projects"])
    assert len(rows) == 5  # the other planner's project is left out
    assert {r["status"] for r in rows} == {"调研 / survey", "评估 / assessment", "咨询 / consultation",
                                          "实施 / implementation", "反馈 / feedback"}
    assert rows[4]["role"] == "征询 / consulted"
    legend = page_calls(pages["planner"], "legend")[0]
    assert legend["title"] == XSS
    assert [i["label"] for i in legend["items"]][-5:] == ["调研 / survey", "评估 / assessment",
                                                          "咨询 / consultation", "实施 / implementation",
                                                          "反馈 / feedback"]


def test_life_circle_layer_colours_by_score(pages):
    spec = layer_specs(pages["coverage"])["life-circles"]
    rows = layer_rows(spec)
    assert [r["score"] for r in rows] == ["0.20", "0.90"]
    assert rows[0]["_s"]["fillColor"] == score_colour(0.2)
    assert spec["legend"]["items"][0]["gradient"][0] == "#440154"
    # the control lists it: add_layer kept the layer control last
    assert pages["coverage"].rfind("L.control.layers") > pages["coverage"].rfind("Zeren.layer(")


# --- palette ---------------------------------------------------------------------------------------

def test_planner_colours_stable_and_neighbours_differ(subdistricts, planners_leads):
    planners, leads = planners_leads
    assert preferred_index("P00001") == preferred_index("P00001")
    lead = dict(zip(leads["zone_code"], leads["planner_id"]))
    codes = subdistricts["code"].tolist()
    pids = np.array([lead.get(c) for c in codes], dtype=object)
    has = np.array([p is not None for p in pids])
    geoms = np.asarray(subdistricts.geometry.values, dtype=object)
    pairs = adjacency_pairs(geoms[has], pids[has])
    colours = planner_colours(set(pids[has]), pairs)
    clashes = [(a, b) for a, b in pairs if colours[a] == colours[b]]
    assert not clashes
    # without neighbours every planner keeps its hash colour
    alone = planner_colours(["A", "B", "C"])
    assert alone == {p: PLANNER_PALETTE[preferred_index(p)] for p in "ABC"}


def test_settings_validation():
    with pytest.raises(ValueError):
        MapSettings(basemap="google")
    with pytest.raises(ValueError):
        MapSettings(basemap="tianditu")
    assert MapSettings(asset_url_prefix="/x").asset_url_prefix == "/x/"
    assert MapSettings(basemap="amap").gcj02 and not MapSettings(basemap="osm").gcj02
