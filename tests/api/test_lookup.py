"""GET /lookup: the answer of `zeren lookup --json`, fast, and never a 500 on bad input."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from zeren.api.service.lookup import lookup
from zeren.api.service.workspace import Workspace
from zeren.geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from zeren.layers.catalogue import Catalogue
from zeren.layers.store import open_store
from tests.api.conftest import AUTH

KUANZHAI = {"lon": 104.0530, "lat": 30.6695}


@pytest.fixture(scope="module")
def catalogue(demo_path):
    return Catalogue(open_store(demo_path))


def test_demo_point_answer(client):
    r = client.get("/lookup", params=KUANZHAI)
    assert r.status_code == 200
    body = r.json()
    assert body["covered"] is True
    assert body["lead"]["zone"]["kind"] == "subdistrict"
    assert body["lead"]["planner"]["id"]
    assert any(c["zone"]["code"] == "HA-001" for c in body["consultations"])  # the historic area obliges it
    assert {z["kind"] for z in body["zones"]} >= {"district", "subdistrict", "historic_area"}
    assert body["site"]["lon"] == pytest.approx(104.053) and body["site"]["given"] == [104.053, 30.6695]
    assert "private_contact" not in body["lead"]["planner"]
    assert body["as_of"] == dt.date.today().isoformat()


def test_same_answer_as_the_catalogue_on_many_points(catalogue):
    """The fast formatter gives exactly Catalogue.lookup's dict: covered and uncovered points, dates, CRSs."""
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = catalogue.index.bounds
    lon = rng.uniform(minx - 0.2, maxx + 0.2, 600)
    lat = rng.uniform(miny - 0.2, maxy + 0.2, 600)
    lon[:200] = rng.uniform(103.95, 104.15, 200)  # the dense centre, with overlays
    lat[:200] = rng.uniform(30.60, 30.72, 200)
    dates = [None, dt.date(2025, 6, 30), dt.date(2025, 7, 1), dt.date(2023, 12, 31)]
    uncovered = 0
    ws = Workspace(catalogue.store, catalogue=catalogue)

    def answer(_, *args, **kwargs):
        return lookup(ws, *args, **kwargs)

    for i, (x, y) in enumerate(zip(lon, lat)):
        as_of, private = dates[i % 4], i % 3 == 0
        expected = catalogue.lookup(x, y, "wgs84", as_of, include_private=private)
        assert answer(catalogue, x, y, "wgs84", as_of, include_private=private) == expected
        uncovered += not expected["covered"]
    assert 20 < uncovered < 500  # both paths were exercised
    for crs, conv in (("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)):
        gx, gy = conv(lon[:30], lat[:30])
        for x, y in zip(gx.tolist(), gy.tolist()):
            assert answer(catalogue, x, y, crs) == catalogue.lookup(x, y, crs)


def test_endpoint_matches_catalogue(client, catalogue):
    for params in (KUANZHAI, {"lon": 104.0657, "lat": 30.6570, "as_of": "2025-06-30"},
                   {"lon": 104.0720, "lat": 30.6600, "crs": "gcj02"}, {"lon": 104.90, "lat": 30.88},
                   {"lon": 104.0, "lat": 30.7, "crs": "EPSG:4490"}):
        r = client.get("/lookup", params=params)
        assert r.status_code == 200, r.text
        as_of = dt.date.fromisoformat(params["as_of"]) if "as_of" in params else None
        assert r.json() == catalogue.lookup(params["lon"], params["lat"], params.get("crs", "wgs84"), as_of)


def test_uncovered_point_gets_the_nearest(client):
    body = client.get("/lookup", params={"lon": 104.90, "lat": 30.88}).json()
    assert body["covered"] is False and body["lead"] is None
    assert body["nearest"]["planner"]["id"] and body["nearest"]["distance_m"] > 0


def test_projected_crs(client, catalogue):
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 32648, always_xy=True).transform(104.0530, 30.6695)
    r = client.get("/lookup", params={"lon": x, "lat": y, "crs": "EPSG:32648"})
    assert r.status_code == 200, r.text
    assert r.json()["lead"] == catalogue.lookup(104.0530, 30.6695)["lead"]


def test_private_contacts_only_for_admins(client):
    body = client.get("/lookup", params=KUANZHAI, headers=AUTH).json()
    assert body["lead"]["planner"]["private_contact"].startswith("+86")
    public = client.get("/lookup", params=KUANZHAI).json()
    assert "private_contact" not in public["lead"]["planner"]
    assert "+86" not in client.get("/lookup", params=KUANZHAI).text


@pytest.mark.parametrize("params, needle", [
    ({"lon": 30.6695, "lat": 104.0530}, "swap"),
    ({"lon": 200, "lat": 30}, "out of range"),
    ({"lon": 104, "lat": -95}, "latitude"),
    ({"lon": "nan", "lat": 30}, "finite"),
    ({"lon": "inf", "lat": 30}, "finite"),
    ({"lon": "1e999", "lat": 30}, "finite"),
    ({"lon": "abc", "lat": 30}, "lon"),
    ({"lon": "", "lat": 30}, "lon"),
    ({"lat": 30}, "lon"),
    ({"lon": 104.05, "lat": 30.66, "crs": "EPSG:999999"}, "unknown CRS"),
    ({"lon": 104.05, "lat": 30.66, "crs": "mars"}, "unknown CRS"),
    ({"lon": 104.05, "lat": 30.66, "crs": "EPSG:5773"}, "CRS"),  # a vertical CRS
    ({"lon": 104.05, "lat": 30.66, "as_of": "yesterday"}, "YYYY-MM-DD"),
    ({"lon": 104.05, "lat": 30.66, "as_of": "2025-02-30"}, "YYYY-MM-DD"),
    ({"lon": 104.05, "lat": 30.66, "as_of": "0001-01-01"}, "out of range"),
    ({"lon": 104.05, "lat": 30.66, "as_of": "20250101"}, "YYYY-MM-DD"),
])
def test_bad_input_is_422_with_a_reason(client, params, needle):
    r = client.get("/lookup", params=params)
    assert r.status_code == 422, r.text
    body = r.json()
    assert needle.lower() in (body["detail"] + " ".join(body["problems"])).lower(), body
    assert set(body) == {"detail", "error", "problems"}


def test_wrong_token_is_401_even_on_a_public_read(client):
    r = client.get("/lookup", params=KUANZHAI, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = client.get("/lookup", params=KUANZHAI, headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert r.status_code == 401


def test_security_headers(client):
    r = client.get("/lookup", params=KUANZHAI)
    assert r.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert r.headers["x-content-type-options"] == "nosniff"
