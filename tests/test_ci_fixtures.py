"""Exercises the service fixtures of tests/conftest.py (PostGIS databases, headless Chromium)."""

from __future__ import annotations

import re
import subprocess
from urllib.parse import urlsplit

import pytest

from tests import conftest


@pytest.mark.parametrize("run", [1, 2])
def test_pg_url_clean_is_a_fresh_postgis_database(pg_url, pg_url_clean, run):
    import psycopg

    assert pg_url_clean.startswith(("postgresql://", "postgres://"))
    dbname = urlsplit(pg_url_clean).path.lstrip("/")
    assert re.fullmatch(r"zeren_t_[0-9a-f]+", dbname)
    assert dbname != urlsplit(pg_url).path.lstrip("/")
    with psycopg.connect(pg_url_clean) as conn:
        version = conn.execute("SELECT PostGIS_Version()").fetchone()[0]
        assert re.match(r"^\d+\.\d+", version), version
        assert conn.execute("SELECT current_database()").fetchone()[0] == dbname
        # Fresh: no user tables yet. Both parametrized runs create the same table, so a reused
        # database would make the second run fail here or on CREATE TABLE.
        n = conn.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'spatial_ref_sys'"
        ).fetchone()[0]
        assert n == 0
        conn.execute("CREATE TABLE probe (id int PRIMARY KEY, geom geometry(Point, 4326))")
        conn.execute("INSERT INTO probe VALUES (1, ST_SetSRID(ST_MakePoint(104.06, 30.67), 4326))")
        assert conn.execute("SELECT ST_AsText(geom) FROM probe").fetchone()[0] == "POINT(104.06 30.67)"


def test_drop_database_used_by_teardown_ends_open_sessions(pg_url, pg_url_clean):
    import psycopg

    dbname = urlsplit(pg_url_clean).path.lstrip("/")
    leaked = psycopg.connect(pg_url_clean)  # a connection a careless test forgot to close
    try:
        conftest._drop_database(pg_url, dbname)  # what pg_url_clean's teardown runs
    finally:
        leaked.close()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (dbname,)).fetchone()[0] == 0


def test_chromium_path_runs_headless(chromium_path, tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<!doctype html><meta charset="utf-8"><p id="x">责任规划师</p>', encoding="utf-8")
    out = subprocess.run(
        [
            chromium_path,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert '<p id="x">责任规划师</p>' in out.stdout


@pytest.mark.parametrize(
    ("require", "expected"),
    [(None, pytest.skip.Exception), ("0", pytest.skip.Exception), ("1", pytest.fail.Exception)],
)
def test_missing_service_skips_unless_required(monkeypatch, require, expected):
    if require is None:
        monkeypatch.delenv(conftest.REQUIRE_POSTGIS_ENV, raising=False)
    else:
        monkeypatch.setenv(conftest.REQUIRE_POSTGIS_ENV, require)
    with pytest.raises(expected) as info:
        conftest._unavailable(conftest.REQUIRE_POSTGIS_ENV, conftest.PG_SKIP_MESSAGE)
    assert "ZEREN_TEST_PG_URL" in str(info.value)
    assert ("skipped, not passed" in str(info.value)) == (expected is pytest.skip.Exception)


def test_with_database_keeps_server_and_query():
    url = "postgresql://postgres@127.0.0.1:54329/zeren_test?sslmode=disable"
    assert (
        conftest._with_database(url, "zeren_t_ab12")
        == "postgresql://postgres@127.0.0.1:54329/zeren_t_ab12?sslmode=disable"
    )
