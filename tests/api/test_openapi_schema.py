"""The OpenAPI document declares what the server does (issue 13, item 8): security only on writes and admin
reads, every error status a route answers with the error body, and the date, CRS, bbox and text rules. Each
declaration is checked against the server's real answer, not only read."""
from __future__ import annotations

import re

import pytest

from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from tests.api.conftest import AUTH, make_settings

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec(client) -> dict:
    return client.get("/openapi.json").json()


def _ops(spec):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method in METHODS:
                yield method, path, op


def _matches(pattern: str, value: str) -> bool:
    return re.search(pattern, value) is not None


def test_public_reads_declare_no_required_token(spec, client):
    """A GET that answers without a token declares no security or the optional ``[{}, bearer]``; it really
    answers 200 anonymously (checked on the routes without path parameters)."""
    for method, path, op in _ops(spec):
        if method != "get" or path == "/audit" or path == "/feedback":
            continue
        assert op.get("security") in (None, [{}, {"bearer": []}]), (path, op.get("security"))
    for path in ("/zones", "/planners", "/appointments", "/projects", "/editions", "/ogc/collections"):
        assert client.get(path, params={"limit": 1} if path != "/editions" and "ogc" not in path else None
                          ).status_code == 200, path


def test_writes_and_admin_reads_require_a_token(spec, client):
    required = [(m, p) for m, p, op in _ops(spec) if op.get("security") == [{"bearer": []}]]
    assert ("get", "/audit") in required and ("post", "/planners") in required
    for method, path, op in _ops(spec):
        if method != "get" and path not in ("/assign", "/life-circles/generate", "/feedback",
                                            "/feedback/{ref}/rating"):
            assert (method, path) in required, (method, path)
    # the declaration is what the server does: no token, 401 with WWW-Authenticate
    r = client.get("/audit")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = client.post("/planners", json={"id": "P990", "name": "x"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def test_every_token_route_documents_401_and_429_with_their_headers(spec):
    for method, path, op in _ops(spec):
        if "security" not in op:
            continue
        for status, header in (("401", "WWW-Authenticate"), ("429", "Retry-After")):
            answer = op["responses"][status]
            assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
            assert answer["headers"][header]["required"] is True, (method, path, status)


def test_error_answers_use_the_error_body(spec):
    for method, path, op in _ops(spec):
        for status, answer in op["responses"].items():
            if status[0] in "45" and "application/json" in answer.get("content", {}):
                assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
        if op.get("requestBody"):
            assert {"400", "413"} <= set(op["responses"]), (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert ("400" if path.startswith("/ogc") else "422") in op["responses"], (method, path)


def test_a_bad_token_on_a_public_read_is_401_as_declared(spec, client):
    assert "401" in spec["paths"]["/lookup"]["get"]["responses"]
    r = client.get("/lookup", params={"lon": 104.053, "lat": 30.6695},
                   headers={"Authorization": "Bearer zrn_not-a-token"})
    assert r.status_code == 401 and "www-authenticate" in r.headers


def _date_schemas(spec):
    def walk(node):
        if isinstance(node, dict):
            if node.get("format") == "date":
                yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)
    yield from walk(spec["paths"])
    for name in ("AppointmentIn", "AppointmentEnd"):
        yield from walk(spec["components"]["schemas"][name])


@pytest.mark.parametrize("value, valid", [("2025-06-30", True), ("1900-01-01", True), ("2199-12-31", True),
                                          ("", False), ("2025-W26-1", False), ("2025-181", False),
                                          ("0001-01-01", False), ("2200-01-01", False), ("2025-13-01", False)])
def test_date_pattern_is_what_the_server_takes(spec, client, value, valid):
    patterns = {s["pattern"] for s in _date_schemas(spec)}
    assert len(patterns) == 1, patterns
    assert _matches(patterns.pop(), value) == valid
    r = client.get("/zones", params={"as_of": value, "limit": 1})
    assert (r.status_code == 200) == valid, r.text


def _param(spec, path, method, name):
    """The parameter's string schema (the string branch of ``anyOf: [string, null]``)."""
    schema = next(p for p in spec["paths"][path][method]["parameters"] if p["name"] == name)["schema"]
    return next((s for s in schema.get("anyOf", []) if s.get("type") == "string"), schema)


@pytest.mark.parametrize("crs, taken", [("wgs84", True), ("GCJ02", True), ("EPSG:4490", True), ("4326", True),
                                        ("", True), ("+proj=longlat +datum=WGS84", False), ("mars", False),
                                        ("\u00b2", False)])
def test_crs_pattern_of_interactive_reads_is_what_lookup_takes(spec, client, crs, taken):
    schema = _param(spec, "/lookup", "get", "crs")
    assert _matches(schema["pattern"], crs) == taken
    r = client.get("/lookup", params={"lon": 104.053, "lat": 30.6695, "crs": crs})
    assert (r.status_code == 200) == taken, r.text


def test_batch_routes_declare_definitions_too(spec):
    schema = _param(spec, "/assign", "post", "crs")
    for crs in ("wgs84", "EPSG:4547", "+proj=longlat +datum=WGS84 +no_defs", 'GEOGCS["WGS 84",DATUM["x"]]'):
        assert _matches(schema["pattern"], crs), crs


@pytest.mark.parametrize("bbox, taken", [("104.0,30.6,104.1,30.7", True), ("", True), ("104,30,0,105,31,9", True),
                                         ("104,30,105", False), ("a,b,c,d", False)])
def test_bbox_pattern_is_what_zones_takes(spec, client, bbox, taken):
    assert _matches(_param(spec, "/zones", "get", "bbox")["pattern"], bbox) == taken
    assert (client.get("/zones", params={"bbox": bbox, "limit": 1}).status_code == 200) == taken


def test_text_fields_declare_no_nul_and_the_server_refuses_it(spec, wclient):
    planner = spec["components"]["schemas"]["PlannerIn"]["properties"]["name"]
    assert not _matches(planner["pattern"], "a\x00b") and _matches(planner["pattern"], "张三")
    r = wclient.post("/planners", json={"id": "P991", "name": "a\x00b"}, headers=AUTH)
    assert r.status_code == 422 and "name" in r.json()["detail"]


def test_rating_is_declared_1_to_5_and_4_0_is_a_whole_number(spec, store_copy):
    schema = spec["components"]["schemas"]["RatingIn"]["properties"]["rating"]
    assert (schema["minimum"], schema["maximum"]) == (1, 5)
    # six anonymous writes from one client: over the default per-client limit (tests/api/test_anonymous_writes.py)
    with TestClient(create_app(make_settings(store_copy, anonymous_write_limit=100))) as c:
        for value in (0, 6, "4", True, 4.5):
            assert c.post("/feedback/FB-2026-NOSUCH/rating", json={"rating": value}).status_code == 422, value
        assert c.post("/feedback/FB-2026-NOSUCH/rating", json={"rating": 4.0}).status_code == 404


def test_405_with_allow_is_declared_and_answered(spec, client):
    declared = spec["components"]["responses"]["MethodNotAllowed"]
    assert declared["headers"]["Allow"]["required"] is True and "405" in spec["info"]["description"]
    r = client.options("/planners")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
