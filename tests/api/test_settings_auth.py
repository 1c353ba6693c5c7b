"""Settings from the environment, token files, the token CLI, CORS and CSP."""
from __future__ import annotations

import hmac
import json

import pytest
from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from zeren.api.auth import (TokenConfigError, TokenEntry, TokenRegistry, hash_token, parse_token_entries,
                      read_tokens_file)
from zeren.api.cli.main import main as cli_main
from zeren.api.settings import Settings, SettingsError
from tests.api.conftest import ADMIN, make_settings


def test_settings_from_env_round_trip():
    env = {"ZEREN_STORE": "x.gpkg", "ZEREN_MAX_BODY_BYTES": "1_000_000", "ZEREN_MAX_FEATURES": "50",
           "ZEREN_MAX_PAGE_SIZE": "200", "ZEREN_CORS_ORIGINS": "https://a.example, https://b.example",
           "ZEREN_FRAME_ANCESTORS": "'self' https://portal.example.gov.cn", "ZEREN_PUBLIC_URL": "https://z.example",
           "ZEREN_RELOAD_SECONDS": "5", "ZEREN_TOKENS": f"{hash_token('t1')}:admin::ops"}
    s = Settings.from_env(env)
    assert (s.store, s.max_body_bytes, s.max_features, s.max_page_size) == ("x.gpkg", 1_000_000, 50, 200)
    assert s.default_page_size == 100 and s.cors_origins == ("https://a.example", "https://b.example")
    assert s.csp == "frame-ancestors 'self' https://portal.example.gov.cn"
    back = Settings.from_env(s.to_env())
    assert back == s
    assert Settings.from_env({}).store == "zeren.gpkg"
    for bad in ({"ZEREN_MAX_BODY_BYTES": "lots"}, {"ZEREN_MAX_PAGE_SIZE": "0"}, {"ZEREN_PUBLIC_URL": "z.example"},
                {"ZEREN_FRAME_ANCESTORS": "a;b"}):
        with pytest.raises(SettingsError):
            Settings.from_env(bad)


def test_token_entries_from_env_json_and_csv(tmp_path):
    h1, h2 = hash_token("one"), hash_token("two")
    entries = parse_token_entries(f"{h1}:admin, {h2}:planner:P006:xu")
    assert entries == [TokenEntry(h1, "admin"), TokenEntry(h2, "planner", "P006", "xu")]
    assert parse_token_entries(json.dumps([{"sha256": h1, "role": "admin"}])) == [TokenEntry(h1, "admin")]
    js = tmp_path / "tokens.json"
    js.write_text(json.dumps({"tokens": [{"sha256": h1, "role": "admin", "name": "ops"}]}))
    assert read_tokens_file(js) == [TokenEntry(h1, "admin", name="ops")]
    csv = tmp_path / "tokens.csv"
    csv.write_text(f"sha256,role,planner_id,name\n{h1},admin,,ops\n{h2},planner,P006,\n")
    assert read_tokens_file(csv) == [TokenEntry(h1, "admin", name="ops"), TokenEntry(h2, "planner", "P006")]
    for bad in ("plain-token:admin", f"{h1}:root", f"{h1}:planner", f"{h1}:admin:P006", "x"):
        with pytest.raises(TokenConfigError):
            parse_token_entries(bad)
    with pytest.raises(TokenConfigError):
        TokenRegistry([TokenEntry(h1, "admin"), TokenEntry(h1, "admin")])
    bad_file = tmp_path / "bad.csv"
    bad_file.write_text("token,role\nabc,admin\n")
    with pytest.raises(TokenConfigError, match="header"):
        read_tokens_file(bad_file)


def test_registry_compares_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr("zeren.api.auth.hmac.compare_digest", lambda a, b: calls.append(1) or real(a, b))
    reg = TokenRegistry([TokenEntry(hash_token(f"t{i}"), "admin") for i in range(5)])
    assert reg.authenticate("t0").role == "admin"
    assert len(calls) == 5  # every entry compared, no early exit on the first match
    assert reg.authenticate("nope") is None and reg.authenticate("") is None


def test_tokens_file_is_used_by_the_app(tmp_path, demo_path):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([{"sha256": hash_token("file-token"), "role": "admin", "name": "fromfile"}]))
    with TestClient(create_app(Settings(store=str(demo_path), tokens_file=str(path), reload_seconds=0))) as c:
        assert c.get("/audit", headers={"Authorization": "Bearer file-token"}).status_code == 200
        assert c.get("/audit", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 401
    path.write_text("{broken")
    with pytest.raises(TokenConfigError):
        create_app(Settings(store=str(demo_path), tokens_file=str(path)))


def test_token_cli(capsys):
    assert cli_main(["token", "new", "--role", "admin", "--name", "alice"]) == 0
    out = capsys.readouterr().out
    token = out.split("token: ", 1)[1].split()[0]
    line = [ln for ln in out.splitlines() if ln.strip().startswith("{")][0]
    entry = json.loads(line)
    assert entry == {"sha256": hash_token(token), "role": "admin", "name": "alice"}
    assert token not in out.replace(f"token: {token}", "").replace(f"Bearer {token}", "")  # only the hash stored
    assert cli_main(["token", "new", "--role", "planner"]) == 2
    assert "planner_id" in capsys.readouterr().err
    assert cli_main(["token", "new", "--role", "planner", "--planner-id", "P006"]) == 0


def test_cors_and_csp(demo_path):
    settings = make_settings(demo_path, cors_origins=("https://portal.example",),
                             frame_ancestors=("'self'", "https://portal.example"))
    with TestClient(create_app(settings)) as c:
        r = c.get("/health", headers={"Origin": "https://portal.example"})
        assert r.headers["access-control-allow-origin"] == "https://portal.example"
        assert r.headers["content-security-policy"] == "frame-ancestors 'self' https://portal.example"
        r = c.options("/planners", headers={"Origin": "https://portal.example", "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "authorization,content-type"})
        assert r.status_code == 200 and "POST" in r.headers["access-control-allow-methods"]
        r = c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_limits_are_configurable(demo_path):
    with TestClient(create_app(make_settings(demo_path, max_body_bytes=1000, max_features=3,
                                             max_page_size=10, default_page_size=5))) as c:
        point = {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [104.05, 30.66]}}
        assert c.post("/assign", json={"type": "FeatureCollection", "features": [point] * 4}).status_code == 413
        assert c.post("/assign", content=b" " * 2000, headers={"Content-Type": "application/json"}).status_code == 413
        assert c.get("/zones").json()["numberReturned"] == 5
        assert c.get("/zones", params={"limit": 50}).json()["numberReturned"] == 10


def test_missing_store_fails_the_start(tmp_path):
    from zeren.layers.errors import StoreError

    app = create_app(Settings(store=str(tmp_path / "none.gpkg")))
    with pytest.raises(StoreError):
        with TestClient(app):
            pass
    assert cli_main(["serve", "--store", str(tmp_path / "none.gpkg"), "--port", "1"]) == 2


def test_a_store_without_zones_still_answers(tmp_path):
    from zeren.layers.store import open_store

    open_store(tmp_path / "empty.gpkg", create=True).close()
    with TestClient(create_app(make_settings(tmp_path / "empty.gpkg"))) as c:
        body = c.get("/lookup", params={"lon": 104.05, "lat": 30.66}).json()
        assert body["covered"] is False and body["nearest"] is None
        point = {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [104.05, 30.66]}}
        out = c.post("/assign", json=point).json()
        assert out["features"][0]["properties"]["covered"] is False
        assert c.get("/zones").json()["numberMatched"] == 0
        assert [x["id"] for x in c.get("/ogc/collections").json()["collections"]] == ["zone_leads", "projects"]
