"""GET /tiles/{kind}/{z}/{x}/{y}.mvt and /tiles/{kind}.json on the demo city: properties from the store's
appointments on the date, ETag/304, bad input, and the same tiles from the PostGIS store."""
from __future__ import annotations

import datetime as dt

import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from zeren.geo.tiles import tiles_covering
from zeren.layers.catalogue import Catalogue
from zeren.layers.store import open_store
from tests.api.conftest import make_settings

MVT = "application/vnd.mapbox-vector-tile"
CENTRE = (104.0530, 30.6695)


def tile_at(lon, lat, z):
    xs, ys = tiles_covering((lon, lat, lon, lat), z)
    return z, xs[0], ys[0]


def features(response, kind):
    assert response.status_code == 200 and response.headers["content-type"] == MVT
    if not response.content:
        return []
    return mapbox_vector_tile.decode(response.content, default_options={"y_coord_down": True})[kind]["features"]


@pytest.fixture(scope="module")
def catalogue(demo_path):
    store = open_store(demo_path)
    yield Catalogue(store)
    store.close()


def expected_props(catalogue, kind, code, day):
    resp = catalogue.responsibility(day)
    index = resp.index
    (pos,) = np.flatnonzero((index.kind == kind) & (index.code == code) & resp.zone_active)
    planner = resp.lead_planner[pos]
    out = {"code": code, "name": index.zone_refs[pos]["name"], "has_lead": planner is not None, "kind": kind}
    if planner is not None:
        out["lead_planner_id"] = planner
    return out


@pytest.mark.parametrize("kind,z", [("subdistrict", 12), ("subdistrict", 9), ("district", 10), ("life_circle", 13)])
def test_tile_properties_are_the_zones_leads_today(client, catalogue, kind, z):
    r = client.get("/tiles/{}/{}/{}/{}.mvt".format(kind, *tile_at(*CENTRE, z)))
    found = features(r, kind)
    assert found
    for f in found:
        assert f["properties"] == expected_props(catalogue, kind, f["properties"]["code"], None)


def a_lead_that_starts_after_a_day_without(catalogue):
    """(zone code, start) of a subdistrict lead appointment whose zone had no lead the day before (from the store)."""
    appts = catalogue.appointments
    leads = appts[(appts["role"] == "lead") & (appts["zone_kind"] == "subdistrict")]
    for row in leads.sort_values("start").itertuples():
        start = row.start.date()
        before = catalogue.responsibility(start - dt.timedelta(days=1))
        index = before.index
        pos = np.flatnonzero((index.kind == "subdistrict") & (index.code == str(row.zone_code)) & before.zone_active)
        if len(pos) and before.lead_planner[pos[0]] is None and before.zone_active.any():
            return str(row.zone_code), start, pos[0]
    pytest.fail("the demo store has no lead appointment starting after a day without a lead")


def test_a_date_before_the_appointment_has_no_lead(client, catalogue):
    code, start, pos = a_lead_that_starts_after_a_day_without(catalogue)
    point = shapely.point_on_surface(catalogue.index.zones.geometry.iloc[pos])
    url = "/tiles/subdistrict/{}/{}/{}.mvt".format(*tile_at(point.x, point.y, 13))
    answers = {}
    for day in (start - dt.timedelta(days=1), start):
        found = {f["properties"]["code"]: f["properties"] for f in features(client.get(url, params={
            "as_of": day.isoformat()}), "subdistrict")}
        assert found[code] == expected_props(catalogue, "subdistrict", code, day)
        answers[day] = found[code]["has_lead"]
    assert answers == {start - dt.timedelta(days=1): False, start: True}


def test_etag_and_not_modified(client):
    url = "/tiles/subdistrict/{}/{}/{}.mvt".format(*tile_at(*CENTRE, 11))
    first = client.get(url)
    assert first.headers["cache-control"] == "public, max-age=60, must-revalidate"
    etag = first.headers["etag"]
    assert etag.startswith('"') and client.get(url).headers["etag"] == etag
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.content and again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    other = client.get("/tiles/district/{}/{}/{}.mvt".format(*tile_at(*CENTRE, 11)))
    assert other.headers["etag"] != etag


def test_a_tile_is_sent_gzip_compressed_once_and_the_same_tile_plain(client):
    import gzip

    url = "/tiles/subdistrict/{}/{}/{}.mvt".format(*tile_at(*CENTRE, 11))
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and len(plain.content) > 1024
    raw = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip" and raw.headers["vary"] == "Accept-Encoding"
    assert raw.content == plain.content  # httpx decoded it: the same tile
    assert raw.headers["etag"] != plain.headers["etag"]  # two sets of bytes, two strong ETags
    service = client.app.state.zeren.tiles
    key = service.key("subdistrict", *tile_at(*CENTRE, 11), None)
    cached = service.cached(key)
    assert gzip.decompress(cached.gzip) == cached.body == plain.content  # compressed once, kept with the tile
    for etag in (plain.headers["etag"], raw.headers["etag"]):  # either names the tile
        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    refused = client.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers and refused.content == plain.content


def test_tile_with_no_zone_is_an_empty_200(client):
    r = client.get("/tiles/subdistrict/5/0/0.mvt")  # the Pacific
    assert r.status_code == 200 and r.content == b"" and r.headers["etag"]


BAD = [("/tiles/subdistrict/23/0/0.mvt", "z"), ("/tiles/subdistrict/-1/0/0.mvt", "z"),
       ("/tiles/subdistrict/3/8/0.mvt", "x"), ("/tiles/subdistrict/3/0/8.mvt", "y"),
       ("/tiles/subdistrict/3/0/-2.mvt", "y"), ("/tiles/subdistrict/3/x/0.mvt", "x"),
       ("/tiles/parish/3/0/0.mvt", "kind"), ("/tiles/parish.json", "kind"),
       ("/tiles/subdistrict/3/0/0.mvt?as_of=2025-02-30", "as_of"),
       ("/tiles/subdistrict/3/0/0.mvt?as_of=1901-01-01", "as_of"), ("/tiles/subdistrict.json?as_of=soon", "as_of")]


@pytest.mark.parametrize("url,field", BAD)
def test_bad_tile_requests_name_the_parameter(client, url, field):
    r = client.get(url)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert f"{field}: " in detail or f"path.{field}: " in detail or f"query.{field}: " in detail
    if field == "kind":
        assert "subdistrict" in detail and "community" in detail  # which kinds exist


def test_tilejson(client, catalogue):
    r = client.get("/tiles/subdistrict.json", params={"as_of": "2025-06-30"})
    assert r.status_code == 200
    doc = r.json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == ["http://testserver/tiles/subdistrict/{z}/{x}/{y}.mvt?as_of=2025-06-30"]
    assert doc["minzoom"] == 0 and doc["maxzoom"] == 22
    frame = catalogue.zone_frame(dt.date(2025, 6, 30), "subdistrict")
    assert doc["bounds"] == pytest.approx(list(frame.total_bounds), abs=1e-6)
    (layer,) = doc["vector_layers"]
    assert layer["id"] == "subdistrict" and set(layer["fields"]) == {"code", "name", "lead_planner_id",
                                                                       "has_lead", "kind"}


def test_tiles_need_no_token_and_are_documented(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/tiles/{kind}/{z}/{x}/{y}.mvt"]["get"]
    params = {p["name"]: p["schema"] for p in op["parameters"]}
    assert params["z"]["minimum"] == 0 and params["z"]["maximum"] == 22
    assert params["x"]["minimum"] == 0 and "subdistrict" in params["kind"]["enum"]
    assert MVT in op["responses"]["200"]["content"]
    assert "security" not in op


def test_postgis_store_serves_the_same_tiles(pg_url_clean, demo_path, client):
    from tests.api.test_postgis import copy_demo

    copy_demo(demo_path, pg_url_clean)
    urls = ["/tiles/{}/{}/{}/{}.mvt".format(kind, *tile_at(*CENTRE, z))
            for kind, z in (("subdistrict", 12), ("district", 8), ("life_circle", 13))]
    with TestClient(create_app(make_settings(pg_url_clean))) as pg:
        assert pg.get("/health").json()["engine"] == "postgis"
        for url in urls:
            a, b = client.get(url), pg.get(url)
            assert features(a, url.split("/")[2]) == features(b, url.split("/")[2]) != []
    # PostGIS's own ST_AsMVT (the benchmark's baseline) finds the same zones with the same properties
    import psycopg

    from benchmarks.bench_tiles import BASELINE_SQL

    with psycopg.connect(pg_url_clean) as con:
        for url in urls:
            kind, z, x, y = url.removesuffix(".mvt").split("/")[2:]
            (body,) = con.execute(BASELINE_SQL, {"z": int(z), "x": int(x), "y": int(y), "day": dt.date.today(),
                                                 "kind": kind}).fetchone()
            theirs = mapbox_vector_tile.decode(bytes(body))[kind]["features"]
            ours = features(client.get(url), kind)
            assert sorted((f["properties"] for f in ours), key=lambda p: p["code"]) == \
                sorted((f["properties"] for f in theirs), key=lambda p: p["code"])


def test_a_new_appointment_shows_in_the_next_tile_not_a_cached_one(wclient):
    """The cache is keyed by the catalogue's generation: a write makes the tiles of the new state."""
    from tests.api.conftest import AUTH

    store = open_store(wclient.store_path)
    try:
        catalogue = Catalogue(store)
        resp = catalogue.responsibility(None)
        index = resp.index
        free = np.flatnonzero((index.kind == "subdistrict") & resp.zone_active & pd.isna(resp.lead_planner))
        assert len(free), "the demo store has no subdistrict without a lead today"
        pos = int(free[0])
        code = str(index.code[pos])
        point = shapely.point_on_surface(index.zones.geometry.iloc[pos])
    finally:
        store.close()
    url = "/tiles/subdistrict/{}/{}/{}.mvt".format(*tile_at(point.x, point.y, 13))

    def props():
        r = wclient.get(url)
        return r.headers["etag"], {f["properties"]["code"]: f["properties"] for f in features(r, "subdistrict")}[code]

    etag, before = props()
    assert before["has_lead"] is False and "lead_planner_id" not in before
    assert props()[0] == etag  # served again (from the cache), unchanged
    r = wclient.post("/appointments", json={"planner_id": "P001", "zone_kind": "subdistrict", "zone_code": code,
                                            "role": "lead", "start": "2024-01-01"}, headers=AUTH)
    assert r.status_code == 201, r.text
    new_etag, after = props()
    assert after["has_lead"] is True and after["lead_planner_id"] == "P001" and new_etag != etag


def test_tile_cache_stays_under_its_byte_budget():
    from zeren.api.service.tiles import Tile, TileCache

    cache = TileCache(max_bytes=10_000)
    for i in range(100):
        cache.put(("k", i), Tile.of(bytes(900)))
        assert cache.size <= 10_000
    assert len(cache) < 100 and cache.get(("k", 99)) is not None and cache.get(("k", 0)) is None
    cache.put(("big",), Tile.of(bytes(20_000)))  # larger than the whole budget: not kept
    assert cache.get(("big",)) is None and cache.size <= 10_000


def test_the_server_prepares_the_tile_layers_of_kinds_too_large_to_inline(demo_path):
    # a kind with more zones than ZEREN_MAP_MAX_INLINE_FEATURES has tiled map pages: its tile layer is built
    # at start-up, before the server answers (so a page opened as soon as /health answers draws at once), not
    # by the first visitor's tile request; a kind under the limit is not
    with TestClient(create_app(make_settings(demo_path, map_max_inline_features=20))) as c:
        index = c.app.state.zeren.workspace.catalogue.index
        kinds, counts = np.unique(np.asarray(index.kind, dtype=object).astype(str), return_counts=True)
        large = sorted(str(k) for k, n in zip(kinds, counts) if n > 20)
        small = sorted(str(k) for k, n in zip(kinds, counts) if n <= 20)
        assert large and small  # the demo has both (subdistricts; districts and overlays)
        assert index.tile_source.built() == large  # no waiting: ready when the app is
        assert c.get("/health").status_code == 200
