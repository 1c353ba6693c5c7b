"""POST /assign: a FeatureCollection in, the `zeren assign` columns out; bad features do not fail the batch."""
from __future__ import annotations

import json

import numpy as np
import pytest
import shapely

from zeren.geo.answer import assignment_columns
from zeren.layers.catalogue import Catalogue
from zeren.layers.store import open_store

POINT = {"type": "Point", "coordinates": [104.0530, 30.6695]}
SQUARE = {"type": "Polygon", "coordinates": [[[104.0515, 30.6685], [104.0545, 30.6685], [104.0545, 30.6705],
                                              [104.0515, 30.6705], [104.0515, 30.6685]]]}
COLUMNS = {"covered", "lead_planner_id", "lead_zone_kind", "lead_zone_code", "split", "planners", "consultations",
           "zones", "nearest_zone_code", "nearest_planner_id", "nearest_distance_m"}


def feature(geometry, **props):
    return {"type": "Feature", "properties": props, "geometry": geometry}


def fc(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def test_points_lines_polygons(client, demo_path):
    line = {"type": "LineString", "coordinates": [[104.04, 30.66], [104.08, 30.67]]}
    body = fc(feature(POINT, name="a"), feature(SQUARE, name="b"), feature(line, name="c"),
              {"type": "Feature", "id": 7, "properties": None,
               "geometry": {"type": "Point", "coordinates": [104.9, 30.88]}})
    r = client.post("/assign", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    out = r.json()
    assert out["type"] == "FeatureCollection" and out["assigned"] == 4 and out["errors"] == 0
    feats = out["features"]
    for f in feats:
        assert COLUMNS <= set(f["properties"])
    assert feats[0]["properties"]["name"] == "a" and feats[0]["properties"]["covered"] is True
    assert feats[3]["id"] == 7 and feats[3]["properties"]["covered"] is False
    assert feats[3]["properties"]["nearest_planner_id"]
    assert "crs" not in out
    # same columns as the CLI's
    cat = Catalogue(open_store(demo_path))
    geoms = np.array([shapely.geometry.shape(f["geometry"]) for f in body["features"]], dtype=object)
    expected = assignment_columns(cat.assign(geoms)).to_dict("records")
    for got, exp in zip(feats, expected):
        for c in ("covered", "lead_planner_id", "lead_zone_code", "split", "nearest_zone_code"):
            assert got["properties"][c] == (exp[c] if exp[c] == exp[c] else None), c
        assert sorted(json.dumps(z, sort_keys=True) for z in got["properties"]["zones"]) == \
            sorted(json.dumps(z, sort_keys=True) for z in exp["zones"])


def test_a_single_feature(client):
    r = client.post("/assign", json=feature(POINT))
    assert r.status_code == 200 and r.json()["features"][0]["properties"]["covered"] is True


def test_bad_features_get_their_own_error(client):
    body = fc(
        feature(POINT, n=0),
        feature(None, n=1),
        feature({"type": "Point", "coordinates": [30.6695, 104.0530]}, n=2),  # swapped
        feature({"type": "Polygon", "coordinates": [[[104.05, 30.66], [104.06, 30.66], [104.06, 30.67]]]}, n=3),
        feature({"type": "Polygon", "coordinates": [[[104.05, 30.66], [104.06, 30.66], [104.06, 30.67],
                                                     [104.05, 30.67]]]}, n=4),  # not closed
        feature({"type": "Polygon", "coordinates": []}, n=5),  # empty
        feature({"type": "Point", "coordinates": ["104", 30]}, n=6),  # a string for a number
        feature({"type": "Circle", "coordinates": [104, 30]}, n=7),
        {"type": "Feature", "properties": "x", "geometry": POINT},  # 8
        "not a feature",  # 9
        feature({"type": "Point", "coordinates": [500, 30]}, n=10),
        feature({"type": "GeometryCollection", "geometries": []}, n=11),
        feature({"type": "MultiPoint", "coordinates": []}, n=12),
        feature({"type": "LineString", "coordinates": [[104.05, 30.66]]}, n=13),
        feature({"type": "Point", "coordinates": [104.05, 30.66, 12.5]}, n=14),  # 3D: height ignored
    )
    r = client.post("/assign", json=body)
    assert r.status_code == 200, r.text
    feats = r.json()["features"]
    ok = {0, 14}
    for i, f in enumerate(feats):
        if i in ok:
            assert "error" not in f["properties"], f
            assert f["properties"]["covered"] is True
        else:
            assert f["properties"]["error"].startswith(f"feature {i}"), f
            assert f["geometry"] is None
    errors = [f["properties"].get("error", "") for f in feats]
    assert "swap" in errors[2]
    assert "4 positions" in errors[3]
    assert "not closed" in errors[4]
    assert "empty" in errors[5]
    assert "out of range" in errors[10]
    assert r.json()["errors"] == len(feats) - 2


def test_bow_tie_is_repaired(client):
    bow = {"type": "Polygon", "coordinates": [[[104.05, 30.66], [104.06, 30.67], [104.06, 30.66], [104.05, 30.67],
                                               [104.05, 30.66]]]}
    r = client.post("/assign", json=fc(feature(bow)))
    props = r.json()["features"][0]["properties"]
    assert r.status_code == 200 and props.get("repaired") is True and "error" not in props
    assert r.json()["features"][0]["geometry"]["type"] == "MultiPolygon"


def test_crs_and_as_of(client):
    from zeren.geo.crs import wgs84_to_gcj02

    x, y = wgs84_to_gcj02(np.array([104.0530]), np.array([30.6695]))
    r = client.post("/assign", params={"crs": "gcj02", "as_of": "2025-06-30"},
                    json=fc(feature({"type": "Point", "coordinates": [float(x[0]), float(y[0])]})))
    assert r.status_code == 200
    out = r.json()
    assert out["as_of"] == "2025-06-30"
    assert out["features"][0]["geometry"]["coordinates"] == pytest.approx([104.0530, 30.6695], abs=1e-6)
    assert client.post("/assign", params={"crs": "nope"}, json=fc(feature(POINT))).status_code == 422
    assert client.post("/assign", params={"as_of": "June"}, json=fc(feature(POINT))).status_code == 422


@pytest.mark.parametrize("content, status, needle", [
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "empty"),
    (b'{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
     b'"geometry": {"type": "Point", "coordinates": [NaN, 30]}}]}', 400, "NaN"),
    (b'{"type": "Feature", "geometry": {"type": "Point", "coordinates": [Infinity, 30]}}', 400, "Infinity"),
    (b"\xff\xfe\x00", 400, "UTF-8"),
    (b"[1, 2, 3]", 422, "Feature"),
    (b'"hello"', 422, "Feature"),
    (b'{"type": "Topology"}', 422, "Feature"),
    (b'{"type": "Point", "coordinates": [104, 30]}', 422, "wrap it in a Feature"),
    (b'{"type": "FeatureCollection", "features": {}}', 422, "features"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "nested"),
])
def test_unreadable_bodies(client, content, status, needle):
    r = client.post("/assign", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert needle.lower() in r.json()["detail"].lower()


def test_ten_thousand_points_in_one_request(client):
    """The feature cap's worth of points in one body (its speed is measured by benchmarks/bench_api.py)."""
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(103.9, 104.2, 10_000), rng.uniform(30.5, 30.8, 10_000)
    body = json.dumps(fc(*[feature({"type": "Point", "coordinates": [float(x), float(y)]}, i=i)
                           for i, (x, y) in enumerate(zip(lon, lat))])).encode()
    r = client.post("/assign", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    out = r.json()
    assert out["assigned"] == 10_000 and len(out["features"]) == 10_000
    assert [f["properties"]["i"] for f in out["features"][:3]] == [0, 1, 2]  # in input order


def test_too_many_features_is_413(client):
    body = fc(*[feature(POINT)] * 10_001)
    r = client.post("/assign", json=body)
    assert r.status_code == 413 and "10,000" in r.json()["detail"]


def test_huge_bodies_are_413(client):
    big = b'{"type": "FeatureCollection", "features": [' + b" " * (21 * 1024 * 1024) + b"]}"
    r = client.post("/assign", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413

    def chunks():  # streamed, no Content-Length: counted as it arrives
        yield b'{"type": "FeatureCollection", "features": ['
        for _ in range(22):
            yield b" " * (1024 * 1024)
        yield b"]}"

    r = client.post("/assign", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "cap" in r.json()["detail"]


def test_a_legacy_crs_member_must_agree(client):
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 32648, always_xy=True).transform(104.0530, 30.6695)
    body = fc(feature({"type": "Point", "coordinates": [x, y]}))
    body["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32648"}}
    r = client.post("/assign", json=body)
    assert r.status_code == 422 and "crs query parameter" in r.json()["detail"]
    r = client.post("/assign", params={"crs": "EPSG:32648"}, json=body)
    assert r.status_code == 200 and r.json()["features"][0]["properties"]["covered"] is True
    body["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    assert client.post("/assign", json=fc(feature(POINT)) | {"crs": body["crs"]}).status_code == 200
