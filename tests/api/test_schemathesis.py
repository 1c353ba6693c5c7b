"""Schemathesis over the whole OpenAPI, in process (ASGI): no 5xx, responses match their documented schemas,
content types and status codes. Writes go to a copy of the demo store, with an admin token."""
from __future__ import annotations

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from zeren.api.http.app import create_app
from tests.api.conftest import AUTH, make_settings

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance]


@pytest.fixture(scope="module")
def api_schema(demo_path, tmp_path_factory):
    store = tmp_path_factory.mktemp("fuzz") / "fuzz.gpkg"
    shutil.copy(demo_path, store)
    app = create_app(make_settings(store))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms(case):
    case.call_and_validate(headers=AUTH, checks=CHECKS)
