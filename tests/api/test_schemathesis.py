"""Schemathesis over the whole OpenAPI, in process (ASGI), with EVERY check schemathesis has (not only "no 5xx"):
status codes, content types, headers and bodies as documented, invalid data refused, valid data accepted,
unsupported methods answered 405 with ``Allow``, auth enforced exactly where it is declared...

Run on the GeoPackage store and on the PostGIS store, each as an admin, as a planner and without any token.
Writes go to a copy of the demo city. Bounded: a few derandomized examples per operation, the coverage phase
(schemathesis' deterministic edge cases: missing, empty, out-of-range, wrong-type values) and a short fuzzing
phase; the stateful phase is left to the CLI (it needs links the API does not declare)."""
from __future__ import annotations

import os
import re
import secrets
import shutil

import pytest
import schemathesis
import schemathesis.specs.openapi.checks  # noqa: F401  (registers the OpenAPI checks)
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS
from schemathesis.specs.openapi.checks import positive_data_acceptance

from zeren.api.http.app import create_app
from tests.api.conftest import AUTH, AUTH_PLANNER, make_settings

# Rules no JSON Schema can state: they depend on the stored data (which EPSG codes PROJ knows, which zone codes
# and editions exist) or on two values together (lon with lat, min below max). A schema-valid request that breaks
# one gets a 4xx whose `detail` names the rule; only such an answer, on that operation, passes
# positive_data_acceptance. Each rule has its own tests (test_hardening, test_coverage_http, test_maps_http...).
_CRS = r"^(crs: )?unknown CRS"
_BBOX = r"^bbox: (minlat .* is above|minlon .* is east of|lon must be within)"
_WITHIN = r"^zone code .* not found in any layer"
_NO_EDITION = r"^as_of: no zone edition is in force on"
_LONLAT = r"^(latitude|longitude) .* is out of range"  # in lon/lat CRSs only: x/y in a projected one
_SITE = (_CRS, _LONLAT, _NO_EDITION)
_NUL = r"contains a NUL character"  # anywhere in a free-form GeoJSON body (foreign members, properties)
DATA_RULES: dict[str, tuple[str, ...]] = {
    "GET /lookup": _SITE, "GET /maps/site": _SITE, "GET /embed/find": (*_SITE, r"^give both lon and lat"),
    "POST /assign": (*_SITE, _NUL), "POST /projects": (*_SITE, _NUL, r"^geometry: "),  # GeoJSON not declared
    "POST /feedback": (*_SITE, r"^category: .* is not a feedback category"),  # categories are data (PUT)
    "GET /feedback": (r"^since .* is after until",), "GET /maps/feedback": (r"^since .* is after until",),
    "POST /life-circles/generate": (*_SITE, _NUL, r"^minutes: .*standard radius", r"^centres",
                                    r"centres cannot be used"),
    "POST /zones/import": (_CRS, r"^the uploaded file", r"^the body is empty"),
    "GET /zones": (_BBOX,), "GET /projects": (_BBOX,), "GET /ogc/collections/{collection_id}/items": (_BBOX,),
    "POST /appointments": (r"^field planner_id: no planner", r"^field zone_code: no \w+ with code"),
    "POST /feedback/{ref}/status": (r"^note: expected text", r"^to_zone"),  # a transfer's reason and target
    "GET /coverage/gaps": (_WITHIN,), "GET /maps/gaps": (_WITHIN, _NO_EDITION),
    "GET /maps/coverage": (_WITHIN, _NO_EDITION), "GET /coverage/summary": (r"^by: .* is not a parent kind",),
    # x and y are declared 0 to 2^22 - 1; that they run to 2^z - 1 at zoom z ties two parameters (no schema can)
    "GET /tiles/{kind}/{z}/{x}/{y}.mvt": (r"^[xy]: \d+ is outside \[0, \d+\) at zoom \d+", _NO_EDITION),
}


def positive_data_acceptance_but_data_rules(ctx, response, case):
    """schemathesis' positive_data_acceptance, except a 4xx naming one of the operation's DATA_RULES."""
    rules = DATA_RULES.get(case.operation.label, ())
    if rules and response.status_code in (400, 422):
        body = response.json()
        if any(re.search(rule, body.get("detail", "")) for rule in rules):
            return None
        problems = body.get("problems") or []
        if problems and all(any(re.search(rule, p) for rule in rules) for p in problems):
            return None  # every problem listed is one of the rules
    return positive_data_acceptance(ctx, response, case)


# Every registered check: a check schemathesis adds later is run too (and a missing one is noticed).
ALL_CHECKS = [positive_data_acceptance_but_data_rules if c is positive_data_acceptance else c for c in CHECKS.get_all()]

# Phases, chosen to keep the file near two minutes: on the GeoPackage store as an admin (who reaches every
# route's logic) the examples and the coverage phase, schemathesis' deterministic edge cases (missing, empty,
# boundary and wrong-type values, undeclared methods: ~3,400 requests); everywhere else the examples and a few
# derandomized fuzzed cases per operation (what the auth checks and the store-specific text rules need).
# ZEREN_FUZZ_PHASES=examples,coverage,fuzzing runs all three everywhere (~10 minutes).
FAST = ["examples", "fuzzing"]
PHASES = {("gpkg", "admin"): ["examples", "coverage"], ("postgis", "admin"): FAST, ("gpkg", "planner"): FAST,
          ("gpkg", "anonymous"): FAST, ("postgis", "planner"): FAST, ("postgis", "anonymous"): FAST}
if os.environ.get("ZEREN_FUZZ_PHASES"):
    PHASES = dict.fromkeys(PHASES, os.environ["ZEREN_FUZZ_PHASES"].split(","))
CALLERS = {"admin": AUTH, "planner": AUTH_PLANNER, "anonymous": {}}


def test_every_schemathesis_check_is_run():
    names = {check.__name__ for check in CHECKS.get_all()}
    assert len(ALL_CHECKS) == len(CHECKS.get_all())
    assert {"not_a_server_error", "status_code_conformance", "content_type_conformance",
            "response_headers_conformance", "response_schema_conformance", "negative_data_rejection",
            "positive_data_acceptance", "missing_required_header", "unsupported_method", "allow_header_conformance",
            "use_after_free", "ensure_resource_availability", "ignored_auth"} <= names


@pytest.fixture(scope="module", params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def fuzz_store(request, demo_path, tmp_path_factory):
    """A copy of the demo city in a GeoPackage, or in a fresh PostGIS database (dropped at the end)."""
    if request.param == "gpkg":
        store = tmp_path_factory.mktemp("fuzz") / "fuzz.gpkg"
        shutil.copy(demo_path, store)
        yield str(store)
        return
    from psycopg import sql

    from tests.api.test_postgis import copy_demo
    from tests.conftest import _connect, _drop_database, _with_database

    pg_url, template = request.getfixturevalue("pg_url"), request.getfixturevalue("_pg_template")
    name = f"zeren_fuzz_{secrets.token_hex(6)}"
    with _connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                      sql.Identifier(template)))
    try:
        url = _with_database(pg_url, name)
        copy_demo(demo_path, url)
        yield url
    finally:
        from schemathesis.python.asgi import shutdown_lifespans

        shutdown_lifespans()  # the app's store connections, before the database goes
        _drop_database(pg_url, name)


@pytest.fixture(scope="module")
def fuzz_app(fuzz_store):
    app = create_app(make_settings(fuzz_store))
    app.state.fuzz_store_kind = "postgis" if fuzz_store.startswith("postgresql") else "gpkg"
    return app


@pytest.fixture(params=list(CALLERS))
def api_schema(fuzz_app, request):
    """The schema as one caller sees it: the caller's token (none for "anonymous") goes with every request."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    schema.config.phases.update(phases=PHASES[fuzz_app.state.fuzz_store_kind, request.param])
    # undeclared methods tried on every path: OPTIONS (Allow must match the schema) and DELETE (no route has it)
    schema.config.phases.coverage.unexpected_methods = {"options", "delete"}
    if CALLERS[request.param]:
        schema.config.update(headers=CALLERS[request.param])
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms(case):
    case.call_and_validate(headers=case.operation.schema.config.headers or None, checks=ALL_CHECKS)
