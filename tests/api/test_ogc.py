"""OGC API - Features: the JSON documents, paging, and GDAL's OAPIF driver against a live server."""
from __future__ import annotations

import pyogrio
import pytest

from tests.api._live import LiveServer
from tests.api.conftest import TOKENS


def test_landing_conformance_collections(client, demo_counts):
    landing = client.get("/ogc").json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels
    conf = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    ids = [c["id"] for c in client.get("/ogc/collections").json()["collections"]]
    kinds = [k for k in ("community", "village", "subdistrict", "district", "life_circle", "historic_area", "key_area",
                         "renewal_area") if k in demo_counts]
    assert sorted(ids) == sorted(kinds + ["zone_leads", "projects"])
    one = client.get("/ogc/collections/district").json()
    assert one["extent"]["spatial"]["bbox"][0][0] == pytest.approx(102.98, abs=0.1)
    assert any(link["rel"] == "items" for link in one["links"])


def test_items_paging_and_filters(client, demo_counts):
    r = client.get("/ogc/collections/subdistrict/items", params={"limit": 50})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    page = r.json()
    assert page["numberMatched"] == 241 and page["numberReturned"] == 50 and page["timeStamp"].endswith("Z")
    ids = []
    url = "/ogc/collections/subdistrict/items?limit=50"
    while url:
        page = client.get(url).json()
        ids += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(ids) == len(set(ids)) == 241
    box = client.get("/ogc/collections/historic_area/items", params={"bbox": "104.05,30.665,104.055,30.67"}).json()
    assert [f["id"] for f in box["features"]] == ["HA-001"]
    assert client.get("/ogc/collections/district/items", params={"datetime": "2023-01-01"}).json()["numberMatched"] == 0
    assert client.get("/ogc/collections/district/items",
                      params={"datetime": "2023-01-01/.."}).json()["numberMatched"] == 20
    assert client.get("/ogc/collections/district/items",
                      params={"datetime": "2025-01-01T00:00:00Z"}).json()["numberMatched"] == 20
    big = client.get("/ogc/collections/zone_leads/items", params={"limit": 100000}).json()
    assert big["numberReturned"] == demo_counts["all"]  # clamped to the cap (1,000), not an error
    lead = client.get("/ogc/collections/zone_leads/items/subdistrict.510105002").json()
    assert lead["properties"]["lead_planner_id"] == "P006"
    assert "private_contact" not in str(lead)
    project = client.get("/ogc/collections/projects/items/1").json()
    assert project["id"] == 1 and project["properties"]["status"] in ("survey", "assessment")


@pytest.mark.parametrize("params", [{"bbox": "1,2"}, {"bbox": "x,1,2,3"}, {"datetime": "yesterday"},
                                    {"datetime": "2025-02-01/2024-01-01"}, {"limit": 0}, {"offset": -3}])
def test_invalid_parameters_are_400_or_422(client, params):
    r = client.get("/ogc/collections/district/items", params=params)
    assert r.status_code in (400, 422), r.text


def test_gdal_reads_every_collection_from_a_live_server(demo_path, demo_counts):
    with LiveServer(demo_path, tokens=TOKENS) as server:
        url = f"OAPIF:{server.url}/ogc"
        layers = {name for name, _ in pyogrio.list_layers(url)}
        expected = {k: v for k, v in demo_counts.items() if k != "all"}
        expected["zone_leads"] = demo_counts["all"]
        assert layers == set(expected)
        for name in sorted(layers):
            frame = pyogrio.read_dataframe(url, layer=name)
            assert len(frame) == expected[name], name
            assert frame.crs.to_epsg() == 4326
            minx, miny, maxx, maxy = frame.total_bounds
            assert 102 < minx < maxx < 106 and 29 < miny < maxy < 32, name  # lon/lat, not swapped
        leads = pyogrio.read_dataframe(url, layer="zone_leads")
        assert {"code", "lead_planner_id", "lead_planner_name"} <= set(leads.columns)
        assert "private_contact" not in " ".join(leads.columns)
