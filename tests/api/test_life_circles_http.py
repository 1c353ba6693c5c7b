"""``POST /life-circles/generate`` and ``GET /life-circles/check`` on the demo city."""
from __future__ import annotations

import datetime as dt
import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from zeren.geo.coverage import life_circle_planners
from zeren.layers.facilities import CATEGORIES_CSV
from zeren.layers.store import open_store
from tests.api.conftest import make_settings

LON, LAT = 104.0530, 30.6695  # 宽窄巷子, 青羊区 (510105)
AS_OF = "2025-06-30"


def _centres(*points, codes=True) -> dict:
    features = []
    for i, (lon, lat) in enumerate(points):
        props = {"code": f"C{i}", "name": f"中心{i}"} if codes else {}
        features.append({"type": "Feature", "properties": props,
                         "geometry": {"type": "Point", "coordinates": [lon, lat]}})
    return {"type": "FeatureCollection", "features": features}


def _area_km2(geometry: dict) -> float:
    shape = gpd.GeoSeries([shapely.geometry.shape(geometry)], crs=4326)
    return float(shape.to_crs(shape.estimate_utm_crs()).area.iloc[0]) / 1e6


# -- generate ------------------------------------------------------------------------------------
def test_generate_uses_the_gb50180_radius_without_a_network(client):
    r = client.post("/life-circles/generate", json={"centres": _centres((LON, LAT), (104.0610, 30.6590))})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["provenance"]["method"] == "buffer" and body["provenance"]["standard"] == "GB 50180-2018"
    assert "ZEREN_NETWORK_FILE" in body["provenance"]["note"] and body["skipped"] == []
    assert [f["id"] for f in body["features"]] == ["C0", "C1"]
    for f in body["features"]:
        p = f["properties"]
        assert (p["kind"], p["method"], p["minutes"], p["radius_m"], p["standard"]) == \
            ("life_circle", "buffer", 15.0, 1000.0, "GB 50180-2018")
        assert p["name"].startswith("中心") and p["clip_kind"] is None
        assert _area_km2(f["geometry"]) == pytest.approx(math.pi, rel=0.01)  # a 1 km disc
        assert p["area_km2"] == pytest.approx(math.pi, rel=0.01)
    assert body["features"][0]["properties"]["centre_lon"] == pytest.approx(LON, abs=1e-7)


def test_generate_several_minutes_a_radius_and_a_clip(client):
    body = client.post("/life-circles/generate", json={"centres": _centres((LON, LAT)), "minutes": [5, 10, 15]}).json()
    assert sorted((f["properties"]["minutes"], f["properties"]["radius_m"]) for f in body["features"]) == \
        [(5.0, 300.0), (10.0, 500.0), (15.0, 1000.0)]
    assert {f["properties"]["code"] for f in body["features"]} == {"C0-5min", "C0-10min", "C0-15min"}

    body = client.post("/life-circles/generate", json={"centres": _centres((LON, LAT)), "radius_m": 750}).json()
    p = body["features"][0]["properties"]
    assert (p["radius_m"], p["standard"], body["provenance"]["radius_m"]) == (750.0, None, 750.0)

    # clipped to a subdistrict: what is left lies inside it
    zone = client.get("/lookup", params={"lon": LON, "lat": LAT, "as_of": AS_OF}).json()
    sub = next(z for z in zone["zones"] if z["kind"] == "subdistrict")
    r = client.post("/life-circles/generate", params={"as_of": AS_OF},
                    json={"centres": _centres((LON, LAT)), "clip": {"kind": "subdistrict", "code": sub["code"]}})
    assert r.status_code == 200, r.text
    f = r.json()["features"][0]
    assert (f["properties"]["clip_kind"], f["properties"]["clip_code"]) == ("subdistrict", sub["code"])
    zone_geom = shapely.geometry.shape(client.get(f"/zones/subdistrict/{sub['code']}").json()["geometry"])
    clipped = shapely.geometry.shape(f["geometry"])
    assert clipped.area < math.pi * 1e6 / (111_000 ** 2 * math.cos(math.radians(LAT)))
    assert shapely.area(shapely.difference(clipped, zone_geom)) < 1e-5 * clipped.area  # coordinates rounded
    assert r.json()["provenance"]["clip"] == {"kind": "subdistrict", "code": sub["code"]}


def test_generate_reads_other_crs(client):
    from zeren.geo.crs import parse_crs, to_wgs84_xy

    gx, gy = 104.0554, 30.6672  # a point copied from AMap (GCJ-02)
    body = client.post("/life-circles/generate", params={"crs": "gcj02"}, json={"centres": _centres((gx, gy))}).json()
    lon, lat = to_wgs84_xy(np.array([gx]), np.array([gy]), parse_crs("gcj02"))
    p = body["features"][0]["properties"]
    assert p["centre_lon"] == pytest.approx(float(lon[0]), abs=1e-6)
    assert p["centre_lat"] == pytest.approx(float(lat[0]), abs=1e-6)
    assert abs(p["centre_lon"] - gx) > 1e-3  # it was really shifted


def _grid_network(path, lon=LON, lat=LAT, half=0.02, step=0.001):
    """A street grid (every ~100 m) around the point, each street with a vertex at every crossing."""
    xs = np.round(np.arange(lon - half, lon + half + 1e-9, step), 6)
    ys = np.round(np.arange(lat - half, lat + half + 1e-9, step), 6)
    lines = [shapely.LineString([(x, y) for x in xs]) for y in ys] + [shapely.LineString([(x, y) for y in ys])
                                                                        for x in xs]
    gpd.GeoDataFrame({"highway": ["residential"] * len(lines)}, geometry=lines, crs=4326).to_file(path, driver="GeoJSON")
    return path


def test_generate_walks_a_configured_network(demo_path, tmp_path):
    network = _grid_network(tmp_path / "streets.geojson")
    with TestClient(create_app(make_settings(demo_path, network_file=str(network)))) as c:
        r = c.post("/life-circles/generate", json={"centres": _centres((LON, LAT), (105.5, 30.0)),
                                                   "speed_kmh": 4.0})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["provenance"]["method"] == "network"
        assert body["provenance"]["network_file"] == "streets.geojson"  # the name, not the server's folders
        assert str(tmp_path) not in r.text
        [f] = body["features"]
        p = f["properties"]
        assert (p["method"], p["walk_m"], p["standard"]) == ("network", pytest.approx(1000.0), None)
        # on a grid the walk reaches a diamond: about half the disc of the same radius
        assert 0.8 < _area_km2(f["geometry"]) < math.pi
        assert [s["code"] for s in body["skipped"]] == ["C1"]  # far outside the streets
        # an explicit radius is a straight-line circle even with a network
        body = c.post("/life-circles/generate", json={"centres": _centres((LON, LAT)), "radius_m": 500}).json()
        assert body["provenance"]["method"] == "buffer" and body["features"][0]["properties"]["radius_m"] == 500
        # every centre off the network: a clear 422
        r = c.post("/life-circles/generate", json={"centres": _centres((105.5, 30.0))})
        assert r.status_code == 422 and "no life circle" in r.json()["detail"]
        assert any("C0" in problem and "300 m" in problem for problem in r.json()["problems"])


@pytest.mark.parametrize("body, status, words", [
    ({"centres": _centres((LON, LAT)), "minutes": 0}, 422, "minutes"),
    ({"centres": _centres((LON, LAT)), "minutes": -15}, 422, "minutes"),
    ({"centres": _centres((LON, LAT)), "minutes": 61}, 422, "minutes"),
    ({"centres": _centres((LON, LAT)), "minutes": [5, 10, 15, 20, 25, 30, 45]}, 422, "minutes"),
    ({"centres": _centres((LON, LAT)), "minutes": []}, 422, "minutes"),
    ({"centres": _centres((LON, LAT)), "minutes": 20}, 422, "no default radius"),
    ({"centres": _centres((LON, LAT)), "speed_kmh": 0}, 422, "speed_kmh"),
    ({"centres": _centres((LON, LAT)), "radius_m": -1}, 422, "radius_m"),
    ({"centres": _centres((LON, LAT)), "minutes": [5, 15], "radius_m": 400}, 422, "radii"),
    ({"centres": _centres((LON, LAT)), "colour": "red"}, 422, "colour"),
    ({"centres": _centres((LON, LAT)), "clip": {"kind": "district", "code": "999999"}}, 404, "999999"),
    ({"centres": _centres((LON, LAT)), "clip": {"kind": "parish", "code": "1"}}, 422, "clip.kind"),
    ({"centres": {"type": "FeatureCollection", "features": []}}, 422, "no features"),
    ({"centres": {"type": "Point", "coordinates": [LON, LAT]}}, 422, "FeatureCollection"),
    ({"centres": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
            [[104.0, 30.6], [104.1, 30.6], [104.1, 30.7], [104.0, 30.6]]]}}]}}, 422, "must be a Point"),
    ({"centres": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": None}]}}, 422, "must be a Point"),
    ({"centres": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [LON]}}]}}, 422,
     "position"),
    ({"centres": _centres((200.0, LAT))}, 422, "out of range"),
    ({"centres": _centres((LAT, LON))}, 422, "swap"),
    ({"centres": _centres((LON, LAT), (LON, LAT + 0.01), codes=False)}, 200, ""),
    ({"centres": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "A"}, "geometry": {"type": "Point", "coordinates": [LON, LAT]}},
        {"type": "Feature", "properties": {"code": "A"}, "geometry": {"type": "Point", "coordinates": [LON, 30.7]}}]}},
     422, "duplicate"),
    ({"centres": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "A"}, "geometry": {"type": "Point", "coordinates": [LON, LAT]}},
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [LON, 30.7]}}]}},
     422, "code"),
    ({"minutes": 15}, 422, "centres"),
    ([1, 2, 3], 422, "body"),
])
def test_generate_refuses_bad_input_clearly(client, body, status, words):
    r = client.post("/life-circles/generate", json=body)
    assert r.status_code == status, r.text
    if status != 200:
        assert words in r.text, r.text


def test_generate_refuses_unreadable_bodies_and_caps_centres(client, demo_path):
    for raw in (b"{", b'{"centres": NaN}', b"\xff\xfe", b""):
        r = client.post("/life-circles/generate", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code in (400, 422), (raw, r.text)
    with TestClient(create_app(make_settings(demo_path, max_features=3))) as c:
        r = c.post("/life-circles/generate", json={"centres": _centres(*[(LON, LAT + i / 1000) for i in range(4)])})
        assert r.status_code == 413 and "cap of 3" in r.json()["detail"]
        assert c.post("/life-circles/generate", json={"centres": _centres((LON, LAT))}).status_code == 200
    r = client.post("/life-circles/generate", params={"crs": "mars"}, json={"centres": _centres((LON, LAT))})
    assert r.status_code == 422 and "CRS" in r.json()["detail"]
    r = client.post("/life-circles/generate", params={"as_of": "soon"}, json={"centres": _centres((LON, LAT))})
    assert r.status_code == 422 and "not a date" in r.json()["detail"]


# -- check ---------------------------------------------------------------------------------------
def test_check_says_what_to_configure(client):
    r = client.get("/life-circles/check")
    assert r.status_code == 409
    assert "ZEREN_POIS_FILE" in r.json()["detail"]


@pytest.fixture(scope="module")
def pois_file(demo_path, tmp_path_factory):
    """Facilities: every required service at the centre of the first five stored life circles, nothing
    elsewhere; plus one POI of an unknown category and one without a category."""
    store = open_store(demo_path)
    try:
        circles = store.zones(kind="life_circle").sort_values("code").head(5)
    finally:
        store.close()
    cats = pd.read_csv(CATEGORIES_CSV, dtype=str)
    required = cats.loc[cats["required"].str.lower().isin(["yes", "1", "true"]), "category"].tolist()
    rows, geoms = [], []
    for geom in circles.geometry:
        c = geom.representative_point()
        for k, cat in enumerate(required):
            rows.append({"category": cat, "name": f"{cat}-{k}"})
            geoms.append(shapely.Point(c.x + 0.0001 * k, c.y))
    rows += [{"category": "spa", "name": "unknown"}, {"category": None, "name": "none"}]
    geoms += [shapely.Point(LON, LAT), shapely.Point(LON, LAT + 0.001)]
    path = tmp_path_factory.mktemp("pois") / "facilities.geojson"
    gpd.GeoDataFrame(rows, geometry=geoms, crs=4326).to_file(path, driver="GeoJSON")
    return path, list(circles["code"]), required


def test_check_reports_services_and_planners(demo_path, pois_file):
    path, full, required = pois_file
    with TestClient(create_app(make_settings(demo_path, pois_file=str(path)))) as c:
        r = c.get("/life-circles/check", params={"as_of": AS_OF})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/geo+json")
        body = r.json()
        store = open_store(demo_path)
        try:
            expected = life_circle_planners(store.zones(), store.appointments(), as_of=dt.date(2025, 6, 30))
            names = store.planners().set_index("id")["name"]
        finally:
            store.close()
    assert body["pois_file"] == "facilities.geojson" and str(path.parent) not in r.text
    features = {f["id"]: f["properties"] for f in body["features"]}
    assert len(features) == len(expected) == body["summary"]["n_circles"] == body["planners"]["circles"] == 35
    for code in full:
        assert features[code]["complete"] is True and features[code]["missing"] == ""
        assert all(features[code][f"n_{cat}"] >= 1 for cat in required)
    others = [k for k in features if k not in full]
    assert all(features[k]["complete"] is False and features[k]["n_missing"] == len(required) for k in others)
    assert body["summary"]["n_complete"] == 5
    assert body["summary"]["pois_unknown_category"] == 1 and body["summary"]["pois_without_category"] == 1
    assert body["summary"]["distance_method"] == "straight_line"
    for row in expected.itertuples():
        p = features[row.code]
        assert (p["has_planner"], p["via"], p["planner_id"]) == (bool(row.has_planner), row.via, row.planner_id)
        assert p["planner_name"] == (names[row.planner_id] if row.planner_id else None)
    assert {p["via"] for p in features.values()} >= {"own_lead", "base_zone"}
    assert body["planners"]["with_planner"] == int(expected["has_planner"].sum())
    assert [c["category"] for c in body["categories"]][:1] == ["school"]


def test_check_on_a_store_without_life_circles(store_copy, pois_file):
    from zeren.api.service.actors import Actor
    from zeren.api.service.boundaries import import_frame
    from zeren.api.service.workspace import Workspace

    ws = Workspace.open(store_copy)
    try:  # a new edition that retires every life circle
        empty = gpd.GeoDataFrame({"code": [], "name": []}, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
        import_frame(ws, empty, kind="life_circle", edition=2025, valid_from=dt.date(2025, 1, 1),
                     retire_missing=True, actor=Actor("test"))
    finally:
        ws.close()
    with TestClient(create_app(make_settings(store_copy, pois_file=str(pois_file[0])))) as c:
        r = c.get("/life-circles/check")
        assert r.status_code == 404, r.text
        assert "life_circle" in r.json()["detail"] and "import" in r.json()["detail"]


def test_check_with_an_unusable_pois_file(demo_path, tmp_path):
    bad = tmp_path / "secret-folder" / "pois.csv"
    bad.parent.mkdir()
    bad.write_text("lon,lat,kind\n104.05,30.66,school\n")
    with TestClient(create_app(make_settings(demo_path, pois_file=str(bad)))) as c:
        r = c.get("/life-circles/check")
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert "ZEREN_POIS_FILE" in detail and "pois.csv" in detail and "secret-folder" not in detail


def test_life_circles_are_documented(client):
    spec = client.get("/openapi.json").json()
    for path, method in (("/life-circles/generate", "post"), ("/life-circles/check", "get")):
        op = spec["paths"][path][method]
        assert op["summary"] and op["tags"] == ["life circles"]
        for param in op.get("parameters", []):
            assert param.get("description") and "example" in param, (path, param["name"])
    body = spec["paths"]["/life-circles/generate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/GenerateIn")
    example = spec["components"]["schemas"]["GenerateIn"]["examples"][0]
    r = client.post("/life-circles/generate", json=example)  # the documented example works on the demo
    assert r.status_code == 200 and len(r.json()["features"]) == 2
    json.dumps(example)
