"""The server does what its OpenAPI says (issue 13, item 8), each disagreement the probe found as a test:
dates are YYYY-MM-DD only (no empty value, no ISO week or ordinal dates), out-of-range dates are called out of
range (OGC too), and a 405 carries ``Allow`` with every documented method of the path."""
from __future__ import annotations

import pytest

from tests.api.conftest import AUTH


@pytest.mark.parametrize("path", ["/zones", "/lookup?lon=104.053&lat=30.6695", "/editions", "/coverage/workload",
                                  "/planners/P006", "/appointments?limit=1"])
@pytest.mark.parametrize("value, says", [("", "empty"), ("2025-W26-1", "not a date"), ("2025-181", "not a date"),
                                         ("２０２５-06-30", "not a date"), ("2025-6-30", "not a date"),
                                         ("0001-01-01", "out of range")])
def test_dates_are_yyyy_mm_dd_only(client, path, value, says):
    name = "active_on" if path.startswith("/appointments") else "as_of"
    r = client.get(path + ("&" if "?" in path else "?") + f"{name}={value}")
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{name}: ") and says in r.json()["detail"]


def test_a_good_date_is_still_taken(client):
    assert client.get("/zones", params={"as_of": "2025-06-30", "limit": 1}).status_code == 200


@pytest.mark.parametrize("body", [{"end": ""}, {"end": "2026-W01-1"}])
def test_appointment_end_must_be_a_date(wclient, body):
    appointment = wclient.get("/appointments", params={"limit": 1}).json()["appointments"][0]["id"]
    r = wclient.patch(f"/appointments/{appointment}", json=body, headers=AUTH)
    assert r.status_code == 422 and r.json()["detail"].startswith("end: "), r.text


@pytest.mark.parametrize("value, says", [("0001-01-01", "out of range"), ("0001-01-01/..", "out of range"),
                                         ("2025-W26-1", "is not a date")])
def test_ogc_datetime_out_of_range_is_called_so(client, value, says):
    r = client.get("/ogc/collections/district/items", params={"datetime": value})
    assert r.status_code == 400 and says in r.json()["detail"], r.text


@pytest.mark.parametrize("method, path, allowed", [
    ("OPTIONS", "/lookup", "GET"), ("OPTIONS", "/feedback", "GET, POST"), ("DELETE", "/teams/T05", "GET, PUT"),
    ("PUT", "/zones", "GET"), ("DELETE", "/appointments/1", "GET, PATCH"),
    ("POST", "/maps/zones/district.geojson", "GET")])
def test_405_carries_allow_with_every_documented_method(client, method, path, allowed):
    r = client.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allowed
    assert r.json()["error"] == "MethodNotAllowed" and allowed in r.json()["detail"]
    documented = {m.upper() for m in client.get("/openapi.json").json()["paths"][_template(client, path)]}
    assert set(allowed.split(", ")) == documented


def _template(client, path: str) -> str:
    import re

    for template in client.get("/openapi.json").json()["paths"]:
        regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in re.split(r"(\{[^{}/]+\})", template))
        if re.fullmatch(regex, path):
            return template
    raise AssertionError(path)


@pytest.mark.parametrize("crs", ["mars", "\u0084", "+proj=longlat"])
def test_embed_refuses_a_bad_crs_even_without_a_point(client, crs):
    r = client.get("/embed/find", params={"crs": crs})
    assert r.status_code == 422 and "crs" in r.json()["detail"], r.text
    assert client.get("/embed/find", params={"crs": "gcj02"}).status_code == 200
