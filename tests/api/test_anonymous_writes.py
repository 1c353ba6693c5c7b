"""Issue 13: "a per-client rate limit on failed authentication and on anonymous writes (429 with Retry-After)".
Every route that writes without a token shares one limiter (``api.http.deps.limit_anonymous_write``),
configured by ``ZEREN_ANONYMOUS_WRITE_LIMIT`` / ``ZEREN_ANONYMOUS_WRITE_WINDOW``."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AUTH, make_settings
from tests.api.test_feedback import post
from zeren.api.http.app import create_app
from zeren.api.http.deps import RateLimiter
from zeren.api.settings import Settings, SettingsError

# POSTs that take no token and change nothing (they compute an answer): not writes, so not limited here; their
# cost is bounded by the work budget, the deadline and the batch pool instead
ANONYMOUS_READS = {("post", "/assign"), ("post", "/life-circles/generate")}
# what a flood of each anonymous write sends (a body that is valid or not: every attempt counts)
FLOODS = {("post", "/feedback"): lambda c: post(c),
          ("post", "/feedback/{ref}/rating"): lambda c: c.post("/feedback/FB-NOPE/rating", json={"rating": 5})}


def _anonymous_writes(app) -> set:
    ops = set()
    for path, methods in app.openapi()["paths"].items():
        for method, op in methods.items():
            if method in ("post", "put", "patch", "delete") and not op.get("security"):
                ops.add((method, path))
    return ops - ANONYMOUS_READS


def test_every_anonymous_write_is_limited_and_documents_its_429(demo_path):
    app = create_app(make_settings(demo_path))
    writes = _anonymous_writes(app)
    assert writes == set(FLOODS), "a new route writes without a token: give it dependencies=[AnonymousWrite]"
    for method, path in writes:
        assert "429" in app.openapi()["paths"][path][method]["responses"], (method, path)


@pytest.mark.parametrize("route", sorted(FLOODS))
def test_a_flood_on_each_anonymous_write_gets_429_with_retry_after(store_copy, route):
    with TestClient(create_app(make_settings(store_copy, anonymous_write_limit=3,
                                             anonymous_write_window_seconds=90))) as c:
        codes = [FLOODS[route](c).status_code for _ in range(5)]
        assert 429 not in codes[:3] and codes[3:] == [429, 429], codes
        r = FLOODS[route](c)
        assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 90
        assert r.json()["error"] == "TooManyRequests" and "try again in" in r.json()["detail"]
        # reads and writes with a token are not held back by it
        assert c.get("/planners").status_code == 200
        assert c.post("/planners", json={"id": "PX1", "name": "测试"}, headers=AUTH).status_code == 201


def test_the_routes_share_one_limit(store_copy):
    with TestClient(create_app(make_settings(store_copy, anonymous_write_limit=3))) as c:
        assert [post(c).status_code for _ in range(2)] == [201, 201]
        assert c.post("/feedback/FB-NOPE/rating", json={"rating": 5}).status_code == 404  # the third write
        assert post(c).status_code == 429
        assert c.post("/feedback/FB-NOPE/rating", json={"rating": 5}).status_code == 429


def test_the_limit_is_per_client_and_slides():
    limiter = RateLimiter(2, 0.3)
    assert [limiter.check("a"), limiter.check("a")] == [None, None]
    wait = limiter.check("a")
    assert wait is not None and 0 < wait <= 0.3
    assert limiter.check("b") is None  # another address has its own count
    import time

    time.sleep(0.35)
    assert limiter.check("a") is None


def test_the_limit_is_a_setting_with_the_older_names_still_read():
    s = Settings.from_env({"ZEREN_ANONYMOUS_WRITE_LIMIT": "7", "ZEREN_ANONYMOUS_WRITE_WINDOW": "30"})
    assert (s.anonymous_write_limit, s.anonymous_write_window_seconds) == (7, 30.0)
    assert Settings.from_env(s.to_env()) == s
    old = Settings.from_env({"ZEREN_FEEDBACK_RATE_LIMIT": "9", "ZEREN_FEEDBACK_RATE_WINDOW": "20"})
    assert (old.anonymous_write_limit, old.anonymous_write_window_seconds) == (9, 20.0)
    both = Settings.from_env({"ZEREN_FEEDBACK_RATE_LIMIT": "9", "ZEREN_ANONYMOUS_WRITE_LIMIT": "4"})
    assert both.anonymous_write_limit == 4
    for env in ({"ZEREN_ANONYMOUS_WRITE_LIMIT": "0"}, {"ZEREN_ANONYMOUS_WRITE_WINDOW": "0"},
                {"ZEREN_ANONYMOUS_WRITE_LIMIT": "many"}):
        with pytest.raises(SettingsError, match="ZEREN_ANONYMOUS_WRITE"):
            Settings.from_env(env)
