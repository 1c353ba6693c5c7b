"""Fixtures for the API tests: the demo store built once per session, apps on it (read-only) or on a copy
(tests that write), fixed test tokens, and a live uvicorn server in a subprocess."""
from __future__ import annotations

from datetime import date
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from zeren.api.auth import TokenEntry, hash_token
from zeren.api.settings import Settings

ADMIN = "zrn_test-admin-0123456789abcdefghijklmnopqrstuvwxyz"
PLANNER = "zrn_test-planner-P006-0123456789abcdefghijklmnopqrstu"  # lead of demo project 1 (宽窄巷子)
OTHER_PLANNER = "zrn_test-planner-P001-0123456789abcdefghijklmnopqrs"
TOKENS = (TokenEntry(hash_token(ADMIN), "admin", name="tester"),
          TokenEntry(hash_token(PLANNER), "planner", planner_id="P006"),
          TokenEntry(hash_token(OTHER_PLANNER), "planner", planner_id="P001"))
AUTH = {"Authorization": f"Bearer {ADMIN}"}
AUTH_PLANNER = {"Authorization": f"Bearer {PLANNER}"}
AUTH_OTHER = {"Authorization": f"Bearer {OTHER_PLANNER}"}


def make_settings(store, **changes) -> Settings:
    return Settings(store=str(store), extra_tokens=TOKENS, reload_seconds=0, **changes)


@pytest.fixture(scope="session")
def demo_counts(demo_path) -> dict[str, int]:
    """Zones in force today per kind, counted from the demo store itself (not hard-coded)."""
    from zeren.layers.store import open_store

    store = open_store(demo_path)
    try:
        counts = store.zones(as_of=date.today()).value_counts("kind").to_dict()
        counts["all"] = sum(counts.values())
        counts["projects"] = len(store.projects())
        return counts
    finally:
        store.close()


@pytest.fixture
def store_copy(demo_path, tmp_path) -> Path:
    dest = tmp_path / "store.gpkg"
    shutil.copy(demo_path, dest)
    return dest


@pytest.fixture(scope="session")
def client(demo_path):
    """A client on the demo store, for tests that only read (never write through it)."""
    with TestClient(create_app(make_settings(demo_path))) as c:
        yield c


@pytest.fixture
def wclient(store_copy):
    """A client on a fresh copy of the demo store, for tests that write."""
    with TestClient(create_app(make_settings(store_copy))) as c:
        c.store_path = store_copy
        yield c
