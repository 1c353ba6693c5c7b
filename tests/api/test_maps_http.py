"""``/maps/*`` on the demo city: standalone HTML pages for an <iframe>, their assets, their large layers,
who may embed them, escaping, and the settings that shape them."""
from __future__ import annotations

import gzip
import html
import re
from pathlib import Path
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from zeren.api.http.routers.maps import embed_snippet
from zeren.api.settings import Settings, SettingsError
from zeren.maps.assets import page_asset_urls
from tests.api.conftest import AUTH, make_settings

REPO = Path(__file__).resolve().parents[2]
XSS = "<img src=x onerror=alert(1)>"
PAGES = ["/maps", "/maps/coverage", "/maps/coverage?within=510105", "/maps/coverage?kind=district",
         "/maps/gaps", "/maps/gaps?within=510121&as_of=2025-06-30", "/maps/site?lon=104.0530&lat=30.6695",
         "/maps/site?lon=104.0720&lat=30.6600&crs=gcj02&as_of=2025-06-30", "/maps/planner/P006",
         "/maps/project/1"]
README_SNIPPET = ('<iframe src="https://HOST/maps/site?lon=104.0530&lat=30.6695" width="100%" height="480" '
                  'style="border:0" loading="lazy" title="责任规划师地图"></iframe>')


def _css_urls(css: str) -> list[str]:
    return [u for u in re.findall(r"""url\(\s*["']?([^"')]+)["']?\s*\)""", css)
            if not u.startswith(("data:", "#"))]  # inline images, IE's behavior:url(#default#VML)


@pytest.mark.parametrize("url", PAGES)
def test_pages_answer_html_with_local_assets_only(client, url):
    r = client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "x-frame-options" not in r.headers  # the CSP decides who may embed the page
    page = r.text
    assert page.lstrip().lower().startswith("<!doctype html>")
    for ref in page_asset_urls(page):
        if ref.startswith("data:"):  # the empty favicon: no request at all
            continue
        assert ref.startswith("/static/maps/"), f"{url} references {ref}"
    for attr in re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", page, re.IGNORECASE):
        assert not attr.lower().startswith(("http:", "https:", "//")), f"{url} points outside: {attr}"


def test_every_asset_a_page_references_answers(client):
    seen: set[str] = set()
    for url in PAGES:
        for ref in page_asset_urls(client.get(url).text):
            if ref.startswith("data:") or ref in seen:
                continue
            seen.add(ref)
            r = client.get(ref)
            assert r.status_code == 200, ref
            assert r.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript",
                                                               "text/css"), ref
            if ref.endswith(".css"):  # and what the CSS pulls in (Leaflet's control images)
                for inner in _css_urls(r.text):
                    target = urljoin(ref, inner)
                    assert target.startswith("/static/maps/"), target
                    got = client.get(target)
                    assert got.status_code == 200 and got.headers["content-type"] == "image/png", target
    assert {"/static/maps/leaflet/leaflet.js", "/static/maps/zeren-maps.js", "/static/maps/leaflet/leaflet.css",
            "/static/maps/zeren-maps.css"} <= seen


def test_coverage_page_draws_every_subdistrict_in_force(client):
    from tests.maps.helpers import layer_rows, layer_specs

    page = client.get("/maps/coverage", params={"as_of": "2025-06-30"}).text
    specs = layer_specs(page)
    rows = layer_rows(specs["zones"])
    zones = client.get("/zones", params={"kind": "subdistrict", "as_of": "2025-06-30", "limit": 1000}).json()
    assert len(rows) == zones["numberMatched"] == 241
    assert {r["code"] for r in rows} == {f["properties"]["code"] for f in zones["features"]}
    assert "districts" in specs


def test_index_lists_the_maps_bilingually_with_the_embed_snippet(client):
    r = client.get("/maps")
    assert r.status_code == 200
    page = r.text
    assert page.index("责任规划师地图") < page.index("Responsible-planner maps")
    assert page.index("嵌入地图") < page.index("Embedding the maps")
    for path in ("/maps/coverage", "/maps/gaps", "/maps/site", "/maps/planner/", "/maps/project/"):
        assert path in page
    snippet = html.unescape(re.search(r"<pre><code>(.*?)</code></pre>", page, re.S).group(1))
    assert snippet == embed_snippet("http://testserver")
    assert snippet == README_SNIPPET.replace("https://HOST", "http://testserver")
    # every link on the index answers
    for href in set(re.findall(r'href="(/maps[^"]*)"', page)):
        assert client.get(html.unescape(href)).status_code == 200, href
    assert "ZEREN_FRAME_ANCESTORS" in page and "&#x27;self&#x27;" in page


def test_readme_documents_the_snippet():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "Embedding the maps / 嵌入地图" in readme
    assert README_SNIPPET in readme


def test_embedding_from_another_origin_only_when_configured(demo_path, client):
    assert client.get("/maps/site?lon=104.0530&lat=30.6695").headers["content-security-policy"] == \
        "frame-ancestors 'self'"
    portal = "https://portal.example.gov.cn"
    env = {"ZEREN_STORE": str(demo_path), "ZEREN_FRAME_ANCESTORS": f"'self' {portal}", "ZEREN_RELOAD_SECONDS": "0"}
    with TestClient(create_app(Settings.from_env(env))) as c:
        for url in ("/maps/coverage", "/maps/site?lon=104.0530&lat=30.6695", "/static/maps/zeren-maps.js"):
            r = c.get(url)
            assert r.status_code == 200
            assert r.headers["content-security-policy"] == f"frame-ancestors 'self' {portal}"
    with TestClient(create_app(make_settings(demo_path, frame_ancestors=()))) as c:
        assert c.get("/maps/coverage").headers["content-security-policy"] == "frame-ancestors 'none'"


def test_zones_layer_is_the_zones_in_force_gzipped(client):
    r = client.get("/maps/zones/subdistrict.geojson", params={"as_of": "2025-06-30"},
                   headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["content-encoding"] == "gzip"
    body = r.json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 241
    assert set(body["features"][0]["properties"]) == {"kind", "code", "name", "name_en"}
    assert {f["properties"]["kind"] for f in body["features"]} == {"subdistrict"}
    # what was sent is really smaller than the GeoJSON
    raw = client.get("/maps/zones/subdistrict.geojson", params={"as_of": "2025-06-30"},
                     headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and len(raw.content) > 3 * len(gzip.compress(raw.content))
    assert client.get("/maps/zones/district.geojson").json()["features"]
    r = client.get("/maps/zones/parish.geojson")
    assert r.status_code == 404 and "community" in r.json()["detail"]


def test_small_answers_are_not_compressed(client):
    r = client.get("/lookup?lon=104.0530&lat=30.6695", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and "content-encoding" not in r.headers


def test_large_layers_are_tiled_or_load_by_url(demo_path):
    """Over the inline limit the coverage layer is drawn from the vector tiles of the page's date; on a GCJ-02
    basemap (tiles are never shifted) it is loaded as GeoJSON by URL."""
    with TestClient(create_app(make_settings(demo_path, map_max_inline_features=100))) as c:
        page = c.get("/maps/coverage", params={"as_of": "2025-06-30"}).text
        urls = set(re.findall(r'"url":"([^"]+)"', page))
        assert urls == {"/tiles/subdistrict/{z}/{x}/{y}.mvt?as_of=2025-06-30"}
        assert '"details":"/zones/subdistrict/{code}/planners?as_of=2025-06-30"' in page
        assert '<script src="/static/maps/leaflet.vectorgrid.bundled.min.js">' in page
        today = c.get("/maps/coverage").text
        assert re.search(r'"url":"/tiles/subdistrict/\{z\}/\{x\}/\{y\}\.mvt\?as_of=\d{4}-\d\d-\d\d"', today)
    with TestClient(create_app(make_settings(demo_path, map_max_inline_features=100, basemap="amap"))) as c:
        page = c.get("/maps/coverage", params={"as_of": "2025-06-30"}).text
        urls = set(re.findall(r'"url":"([^"]+)"', page))
        assert urls == {"/maps/zones/subdistrict.geojson?as_of=2025-06-30"}
        assert "vectorgrid" not in page
        layer = c.get(urls.pop())
        assert layer.status_code == 200 and len(layer.json()["features"]) == 241


def test_planner_name_is_escaped_on_its_map(wclient):
    gaps = wclient.get("/coverage/gaps").json()
    code = gaps["units_without_planner"][0]["code"]
    r = wclient.post("/planners", headers=AUTH, json={
        "id": "PX1", "name": XSS, "organization": "<b>org</b>", "disciplines": ["planning"],
        "public_contact": "x@example.org", "private_contact": "PRIVATE-13800000000"})
    assert r.status_code == 201, r.text
    r = wclient.post("/appointments", headers=AUTH, json={
        "planner_id": "PX1", "zone_kind": "subdistrict", "zone_code": code, "role": "lead", "start": "2020-01-01"})
    assert r.status_code == 201, r.text
    for url in ("/maps/planner/PX1", "/maps/coverage", f"/maps/coverage?within={gaps['units_without_planner'][0]['district_code']}"):
        r = wclient.get(url)
        assert r.status_code == 200, r.text
        page = r.text
        assert XSS not in page and "<b>org</b>" not in page, url
        assert "PRIVATE-13800000000" not in page
        assert "\\u003cimg src=x onerror=alert(1)\\u003e" in page  # the name travels as escaped JSON text
    page = wclient.get("/maps/planner/PX1").text
    assert "<title>" + html.escape(f"规划师 / planner: {XSS}") in page
    # the planner now leads the unit: it is no longer a gap
    assert code not in {u["code"] for u in wclient.get("/coverage/gaps").json()["units_without_planner"]}


@pytest.mark.parametrize("url, status, words", [
    ("/maps/coverage?kind=parish", 422, "query.kind"),
    ("/maps/coverage?within=999999", 404, "999999"),
    ("/maps/coverage?kind=community", 404, "no community zones"),
    ("/maps/coverage?as_of=1950-01-01", 422, "no zone edition is in force on 1950-01-01"),
    ("/maps/coverage?as_of=yesterday", 422, "not a date"),
    ("/maps/gaps?within=999999", 422, "999999"),
    ("/maps/gaps?as_of=1950-01-01", 422, "no zone edition"),
    ("/maps/site?lon=200&lat=30", 422, "longitude"),
    ("/maps/site?lon=30.6695&lat=104.0530", 422, "swap"),
    ("/maps/site?lon=nan&lat=30", 422, "finite"),
    ("/maps/site?lon=104.05", 422, "query.lat"),
    ("/maps/site?lon=104.05&lat=30.66&crs=mars", 422, "unknown CRS"),
    ("/maps/site?lon=104.05&lat=30.66&as_of=1950-01-01", 422, "no zone edition"),
    ("/maps/planner/nobody", 404, "no planner 'nobody'"),
    ("/maps/planner/P006?as_of=2025-13-01", 422, "not a date"),
    ("/maps/project/999999", 404, "no project 999999"),
    ("/maps/project/0", 422, "project_id"),
    ("/maps/project/abc", 422, "project_id"),
    ("/maps/zones/subdistrict.geojson?as_of=1950-01-01", 422, "no zone edition"),
])
def test_bad_input_is_a_clear_4xx(client, url, status, words):
    r = client.get(url)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_map_settings_shape_the_pages(demo_path):
    settings = make_settings(demo_path, basemap="osm", approval_number="GS(2024)1234号",
                             map_attribution="© 示例测绘院 <script>")
    with TestClient(create_app(settings)) as c:
        page = c.get("/maps/coverage").text
    assert "tile.openstreetmap.org" in page
    assert "审图号：GS(2024)1234号" in page
    assert "© 示例测绘院 \\u003cscript\\u003e" in page and "示例测绘院 <script>" not in page
    with TestClient(create_app(make_settings(demo_path))) as c:  # the demo says what is fictional
        page = c.get("/maps/coverage").text
    assert "tile.openstreetmap.org" not in page and "规划师均为虚构" in page


def test_map_settings_from_the_environment(tmp_path):
    pois = tmp_path / "pois.geojson"
    pois.write_text('{"type": "FeatureCollection", "features": []}')
    env = {"ZEREN_BASEMAP": "tianditu", "ZEREN_TIANDITU_KEY": "abc123", "ZEREN_MAP_ATTRIBUTION": "© 测绘院",
           "ZEREN_APPROVAL_NUMBER": "GS(2024)1234号", "ZEREN_MAP_MAX_INLINE_FEATURES": "2_000",
           "ZEREN_POIS_FILE": str(pois)}
    s = Settings.from_env(env)
    assert (s.basemap, s.tianditu_key, s.map_attribution, s.approval_number, s.map_max_inline_features,
            s.pois_file, s.network_file) == ("tianditu", "abc123", "© 测绘院", "GS(2024)1234号", 2000, str(pois), None)
    m = s.map_settings(geojson_url="/x/{kind}")
    assert (m.basemap, m.tianditu_key, m.attribution, m.approval_number, m.asset_url_prefix,
            m.max_inline_features, m.geojson_url) == ("tianditu", "abc123", "© 测绘院", "GS(2024)1234号",
                                                      "/static/maps/", 2000, "/x/{kind}")
    assert Settings.from_env(s.to_env()) == s
    assert Settings.from_env({}).map_settings().basemap == "none"
    for bad, words in (({"ZEREN_BASEMAP": "google"}, "ZEREN_BASEMAP"),
                       ({"ZEREN_BASEMAP": "tianditu"}, "ZEREN_TIANDITU_KEY"),
                       ({"ZEREN_BASEMAP": "custom"}, "ZEREN_TILE_URL"),
                       ({"ZEREN_MAP_MAX_INLINE_FEATURES": "0"}, "ZEREN_MAP_MAX_INLINE_FEATURES"),
                       ({"ZEREN_MAP_MAX_INLINE_FEATURES": "many"}, "ZEREN_MAP_MAX_INLINE_FEATURES"),
                       ({"ZEREN_POIS_FILE": str(tmp_path / "missing.csv")}, "ZEREN_POIS_FILE"),
                       ({"ZEREN_NETWORK_FILE": str(tmp_path)}, "ZEREN_NETWORK_FILE")):
        with pytest.raises(SettingsError, match=words):
            Settings.from_env(bad)


def test_maps_are_documented(client):
    spec = client.get("/openapi.json").json()
    for path in ("/maps", "/maps/coverage", "/maps/gaps", "/maps/site", "/maps/planner/{planner_id}",
                 "/maps/project/{project_id}", "/maps/zones/{kind}.geojson"):
        op = spec["paths"][path]["get"]
        assert op["summary"] and op["tags"] == ["maps"], path
        for param in op.get("parameters", []):
            assert param.get("description") and "example" in param, (path, param["name"])
        if path != "/maps/zones/{kind}.geojson":
            assert "text/html" in op["responses"]["200"]["content"], path


def test_a_cached_map_page_follows_a_new_appointment(wclient):
    """Coverage pages are kept per catalogue generation: the same page again, until a write reloads it."""
    url = "/maps/coverage?as_of=2025-06-30"
    before = wclient.get(url).text
    assert wclient.get(url).text == before
    units = wclient.get("/coverage/gaps", params={"as_of": "2025-06-30"}).json()["units_without_planner"]
    n = len(units)
    assert f"{n} without a lead planner" in before
    r = wclient.post("/appointments", headers=AUTH, json={
        "planner_id": "P006", "zone_kind": "subdistrict", "zone_code": units[0]["code"], "role": "lead",
        "start": "2020-01-01"})
    assert r.status_code == 201, r.text
    after = wclient.get(url).text
    assert f"{n - 1} without a lead planner" in after and after != before
