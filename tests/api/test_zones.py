"""Zones, planners and appointments: the public reads."""
from __future__ import annotations

import pytest

from tests.api.conftest import AUTH


def test_zone_list_pages(client):
    r = client.get("/zones", params={"kind": "subdistrict", "limit": 100})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    page = r.json()
    assert page["type"] == "FeatureCollection" and "crs" not in page
    assert page["numberMatched"] == 241 and page["numberReturned"] == 100
    nxt = [link["href"] for link in page["links"] if link["rel"] == "next"][0]
    assert "offset=100" in nxt and "kind=subdistrict" in nxt
    seen = [f["id"] for f in page["features"]]
    while nxt:
        page = client.get(nxt).json()
        seen += [f["id"] for f in page["features"]]
        nxt = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == 241
    feature = page["features"][0]
    assert feature["geometry"]["type"] == "MultiPolygon"
    lon, lat = feature["geometry"]["coordinates"][0][0][0]
    assert 102 < lon < 106 and 29 < lat < 32  # lon/lat order


def test_zone_filters(client):
    only = client.get("/zones", params={"code": "510105002"}).json()
    assert [f["id"] for f in only["features"]] == ["subdistrict/510105002"]
    box = client.get("/zones", params={"bbox": "104.05,30.665,104.055,30.67", "kind": "historic_area"}).json()
    assert [f["properties"]["code"] for f in box["features"]] == ["HA-001"]
    before = client.get("/zones", params={"as_of": "2023-06-01"}).json()
    assert before["numberMatched"] == 0  # the 2024 edition was not in force yet


@pytest.mark.parametrize("params", [
    {"kind": "planet"}, {"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"bbox": "104,31,105,30"}, {"bbox": "0,0,200,10"},
    {"limit": 0}, {"limit": "many"}, {"offset": -1}, {"as_of": "2025-13-01"}, {"bbox": "nan,0,1,1"},
])
def test_zone_list_bad_parameters(client, params):
    r = client.get("/zones", params=params)
    assert r.status_code == 422, r.text


def test_page_size_is_capped(client, demo_counts):
    r = client.get("/zones", params={"limit": 5000})
    assert r.status_code == 200
    assert r.json()["numberReturned"] == demo_counts["all"] < 1000  # every zone, under the 1,000 cap
    r = client.get("/planners", params={"limit": 100_000})
    assert r.status_code == 200 and r.json()["limit"] == 1000


def test_zone_detail(client):
    r = client.get("/zones/subdistrict/510105002")
    assert r.status_code == 200
    props = r.json()["properties"]
    assert props["in_force"] is True and props["editions"] == [2024]
    assert props["parents"] == [{"kind": "district", "code": "510105", "name": "青羊区", "name_en": None}]
    assert {o["code"] for o in props["overlays"]} >= {"HA-001"}
    assert any(a["role"] == "lead" and a["active"] for a in props["appointments"])
    district = client.get("/zones/district/510105").json()["properties"]
    assert "510105002" in {c["code"] for c in district["children"]}


def test_zone_planners(client):
    body = client.get("/zones/subdistrict/510105002/planners").json()
    assert body["lead"]["id"] == "P006"
    assert "private_contact" not in body["lead"]
    assert all("private_contact" not in a["planner"] for a in body["appointments"])
    admin = client.get("/zones/subdistrict/510105002/planners", headers=AUTH).json()
    assert admin["lead"]["private_contact"].startswith("+86")
    history = client.get("/zones/subdistrict/510105002/planners", params={"history": True}).json()
    assert len(history["appointments"]) >= len(body["appointments"])


@pytest.mark.parametrize("url", ["/zones/planet/1", "/zones/district/nope", "/zones/district/nope/planners",
                                 "/planners/nobody", "/appointments/999999", "/projects/999999",
                                 "/ogc/collections/nope", "/ogc/collections/district/items/nope"])
def test_unknown_things_are_404(client, url):
    r = client.get(url)
    assert r.status_code == 404 and r.json()["error"] in ("NotFoundError",)


def test_planners_and_appointments(client):
    page = client.get("/planners", params={"discipline": "heritage"}).json()
    assert page["numberMatched"] > 0 and all("heritage" in p["disciplines"] for p in page["planners"])
    assert all("private_contact" not in p for p in page["planners"])
    admin = client.get("/planners", params={"q": "P006"}, headers=AUTH).json()
    assert admin["planners"][0]["private_contact"].startswith("+86")
    detail = client.get("/planners/P006").json()
    assert any(a["zone_code"] == "510105002" for a in detail["appointments"])
    appts = client.get("/appointments", params={"zone_kind": "subdistrict", "zone_code": "510105002",
                                                "active_on": "2025-01-01"}).json()
    assert appts["numberMatched"] >= 1 and all(a["active"] for a in appts["appointments"])
    one = client.get(f"/appointments/{appts['appointments'][0]['id']}").json()
    assert one["zone_code"] == "510105002"


def test_health_and_root(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/").json()["links"]["docs"].endswith("/docs")


def test_openapi_documents_everything(client):
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), f"{method} {path} has no summary"
            for param in op.get("parameters", []):
                if param["in"] in ("query", "path"):
                    assert param.get("description"), f"{method} {path}: {param['name']} has no description"
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"].lower() == "bearer"
    lookup = spec["paths"]["/lookup"]["get"]["parameters"]
    assert {p["name"]: p.get("example", p.get("examples")) for p in lookup}["lon"] in (104.053, [104.053])
