"""Shared fixtures for services the tests need: a PostGIS server and headless Chromium.

PostGIS: `.ci/postgis.sh install && .ci/postgis.sh start DIR` prints a URL; export it as
ZEREN_TEST_PG_URL. Chromium: `.ci/chromium.sh install`. Without them the tests that need them are
skipped (pytest's -ra lists why), except when ZEREN_REQUIRE_POSTGIS=1 / ZEREN_REQUIRE_BROWSER=1 (set by
.ci/run): then they fail, so CI can never pass by skipping them.

Fixtures:
- pg_url (session): the server URL as given (its database has PostGIS). Share it read-only.
- pg_url_clean (function): URL of a FRESH database with PostGIS, created for the test and dropped after.
- chromium_path (session): path of the Chromium executable.

Tests using these fixtures get the `postgis` / `browser` markers automatically (`-m "not postgis"`).
"""

from __future__ import annotations

import os
import secrets
import shutil
from urllib.parse import urlsplit, urlunsplit

import pytest

# ``zeren assign`` keeps the zone index's batch structures between runs (layers.index_cache, default
# ~/.cache/zeren/index): the suite keeps them in a folder of its own, removed at the end, never the user's
_OWN_INDEX_CACHE = None
if "ZEREN_INDEX_CACHE" not in os.environ:
    import tempfile

    _OWN_INDEX_CACHE = os.environ["ZEREN_INDEX_CACHE"] = tempfile.mkdtemp(prefix="zeren-test-index-cache-")


def pytest_sessionfinish(session, exitstatus):
    if _OWN_INDEX_CACHE:
        shutil.rmtree(_OWN_INDEX_CACHE, ignore_errors=True)

PG_URL_ENV = "ZEREN_TEST_PG_URL"
REQUIRE_POSTGIS_ENV = "ZEREN_REQUIRE_POSTGIS"
REQUIRE_BROWSER_ENV = "ZEREN_REQUIRE_BROWSER"
CHROMIUM_ENV = "ZEREN_CHROMIUM"  # optional explicit path of the browser executable

PG_SKIP_MESSAGE = (
    "PostGIS tests need ZEREN_TEST_PG_URL (run .ci/postgis.sh install && "
    ".ci/postgis.sh start DIR) — skipped, not passed"
)
BROWSER_SKIP_MESSAGE = (
    "browser tests need headless Chromium (run .ci/chromium.sh install) — skipped, not passed"
)

_PG_FIXTURES = {"pg_url", "pg_url_clean", "_pg_template"}
_BROWSER_FIXTURES = {"chromium_path"}


def _required(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}


def _unavailable(require_var: str, message: str):
    """Skip the test, or fail it when `require_var` says the service is required (CI)."""
    if _required(require_var):
        reason = message.split(" — skipped, not passed")[0]
        pytest.fail(f"{require_var}=1 (CI) but the service is missing: {reason}", pytrace=False)
    pytest.skip(message)


def _pg_fail(message: str):
    pytest.fail(message, pytrace=False)


def _with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database (user, host, port and query kept)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        _pg_fail(f"{PG_URL_ENV} must be a postgresql:// URL, got {url!r}")
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def _connect(url: str, **kwargs):
    import psycopg

    return psycopg.connect(url, connect_timeout=10, **kwargs)


def _drop_database(admin_url: str, dbname: str) -> None:
    import psycopg
    from psycopg import sql

    with _connect(admin_url, autocommit=True) as conn:
        try:  # PostgreSQL >= 13 ends other sessions still connected to it
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        except psycopg.errors.SyntaxError:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,)
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _PG_FIXTURES:
            item.add_marker(pytest.mark.postgis)
        if names & _BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of the PostGIS test server's database (ZEREN_TEST_PG_URL), checked to be reachable."""
    url = os.environ.get(PG_URL_ENV, "").strip()
    if not url:
        _unavailable(REQUIRE_POSTGIS_ENV, PG_SKIP_MESSAGE)
    _with_database(url, "x")  # validates the URL form
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a project dependency
        _pg_fail(f'{PG_URL_ENV} is set but psycopg is not importable ({exc}); pip install "psycopg[binary]"')
    try:
        with _connect(url) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        _pg_fail(f"{PG_URL_ENV}={url} is set but the server is not usable: {exc}".strip())
    try:
        with _connect(url) as conn:
            conn.execute("SELECT PostGIS_Version()")
    except psycopg.Error as exc:
        _pg_fail(f"{PG_URL_ENV}={url}: the database has no PostGIS (CREATE EXTENSION postgis): {exc}".strip())
    return url


@pytest.fixture(scope="session")
def _pg_template(pg_url):
    """A template database with PostGIS, made once per session (per xdist worker), dropped at the end.

    Copying it is much faster than running CREATE EXTENSION postgis in every fresh database."""
    from psycopg import sql

    name = f"zeren_tpl_{secrets.token_hex(6)}"
    with _connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with _connect(_with_database(pg_url, name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        yield name
    finally:
        _drop_database(pg_url, name)


def _copy_of(pg_url: str, template: str, prefix: str = "zeren_t_") -> str:
    """Create database `<prefix><random>` from `template` (CREATE DATABASE ... TEMPLATE); returns its name."""
    from psycopg import sql

    name = f"{prefix}{secrets.token_hex(6)}"
    with _connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return name


@pytest.fixture
def pg_url_clean(pg_url, _pg_template) -> str:
    """URL of a fresh database `zeren_t_<random>` with PostGIS, dropped after the test."""
    name = _copy_of(pg_url, _pg_template)
    try:
        yield _with_database(pg_url, name)
    finally:
        _drop_database(pg_url, name)


@pytest.fixture(scope="session")
def _pg_demo_template(pg_url, _pg_template):
    """The demo city built once per session into a database used as a template (dropped at the end): building
    it takes seconds, copying it (CREATE DATABASE ... TEMPLATE) a fraction of one."""
    from zeren.api.service.demo import build_demo

    name = _copy_of(pg_url, _pg_template, "zeren_demo_tpl_")
    try:
        build_demo(_with_database(pg_url, name)).close()  # no connection may stay open on a template
        yield name
    finally:
        _drop_database(pg_url, name)


@pytest.fixture
def pg_demo_url(pg_url, _pg_demo_template) -> str:
    """URL of a fresh copy of the demo city in PostGIS (`zeren_t_<random>`), dropped after the test."""
    name = _copy_of(pg_url, _pg_demo_template)
    try:
        yield _with_database(pg_url, name)
    finally:
        _drop_database(pg_url, name)


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory):
    """The demo city in a GeoPackage, built once per session: read it, or copy it (`demo_copy`) to write."""
    from zeren.api.service.demo import build_demo

    path = tmp_path_factory.mktemp("demo") / "demo.gpkg"
    build_demo(path).close()
    return path


def demo_copy(demo_path, tmp_path_factory, folder: str):
    """A copy of the session's demo GeoPackage in a new temporary `folder`, for a module that writes to it."""
    path = tmp_path_factory.mktemp(folder) / "demo.gpkg"
    shutil.copy(demo_path, path)
    return path


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of the headless Chromium executable (ZEREN_CHROMIUM, else chromium / chromium-browser on PATH)."""
    explicit = os.environ.get(CHROMIUM_ENV, "").strip()
    if explicit:
        path = shutil.which(explicit)
        if not path:
            _unavailable(REQUIRE_BROWSER_ENV, f"{CHROMIUM_ENV}={explicit} is not an executable")
        return path
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _unavailable(REQUIRE_BROWSER_ENV, BROWSER_SKIP_MESSAGE)
    return path
