"""Resident feedback over HTTP, on both stores (a copy of the demo GeoPackage, and the demo city copied into a
fresh PostGIS database): routing as ``/lookup`` / ``/assign`` answer, the workflow and who may take each step,
the public view by reference, ratings, the lists planners see, the map page, and every bad input of issue 12."""
from __future__ import annotations

import datetime as dt
import secrets
import shutil

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AUTH, AUTH_OTHER, AUTH_PLANNER, make_settings
from zeren.api.http.app import create_app
from zeren.geo.crs import wgs84_to_gcj02

KUANZHAI = (104.0530, 30.6695)  # in a subdistrict led by P006 and the historic area HA-001
FAST = {"anonymous_write_limit": 10_000}


@pytest.fixture(scope="module")
def pg_demo(request, tmp_path_factory):
    """The demo city copied into one fresh PostGIS database for this module (dropped after)."""
    from psycopg import sql

    from tests.api.test_postgis import copy_demo
    from tests.conftest import _connect, _drop_database, _with_database
    from zeren.api.service.demo import build_demo

    pg_url = request.getfixturevalue("pg_url")
    template = request.getfixturevalue("_pg_template")
    name = f"zeren_fb_{secrets.token_hex(5)}"
    with _connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    url = _with_database(pg_url, name)
    src = tmp_path_factory.mktemp("fbpg") / "demo.gpkg"
    build_demo(src).close()
    copy_demo(src, url)
    yield url
    _drop_database(pg_url, name)


@pytest.fixture(params=["gpkg", "postgis"])
def api(request, demo_path, tmp_path):
    """A client on a writable demo store of each kind."""
    if request.param == "gpkg":
        store = tmp_path / "store.gpkg"
        shutil.copy(demo_path, store)
    else:
        store = request.getfixturevalue("pg_demo")
    with TestClient(create_app(make_settings(store, **FAST))) as c:
        c.engine = request.param
        yield c


def post(c, **body):
    base = {"lon": KUANZHAI[0], "lat": KUANZHAI[1], "category": "heritage", "text": "院墙有裂缝 / a cracked wall"}
    base.update(body)
    return c.post("/feedback", json={k: v for k, v in base.items() if v is not None})


def expected_routing(lookup: dict) -> list[str]:
    lead = (lookup.get("lead") or {}).get("planner")
    ids = [lead["id"]] if lead else [lookup["nearest"]["planner"]["id"]]
    for c in lookup["consultations"]:
        if c["planner"]["id"] not in ids:
            ids.append(c["planner"]["id"])
    return ids


# -- filing and routing ---------------------------------------------------------------------------
def test_post_routes_to_the_lookup_answer(api):
    r = post(api, contact="13800000000")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["ref"].startswith(f"FB-{dt.date.today().year}-") and len(body["ref"]) == 14
    assert r.headers["location"] == f"/feedback/{body['ref']}"
    lookup = api.get("/lookup", params={"lon": KUANZHAI[0], "lat": KUANZHAI[1]}).json()
    assert body["routed_to"] == expected_routing(lookup)
    assert body["routed_to"][0] == lookup["lead"]["planner"]["id"]
    assert body["zone"]["code"] == lookup["lead"]["zone"]["code"]
    assert body["status"] == "received" and body["outside"] is False
    public = api.get(f"/feedback/{body['ref']}").json()
    assert public["status"] == "received" and "contact" not in public
    assert "13800000000" not in api.get(f"/feedback/{body['ref']}").text
    # the routed planner and an admin see the contact; another planner does not
    assert api.get(f"/feedback/{body['ref']}", headers=AUTH_PLANNER).json()["contact"] == "13800000000"
    assert api.get(f"/feedback/{body['ref']}", headers=AUTH).json()["contact"] == "13800000000"
    assert "contact" not in api.get(f"/feedback/{body['ref']}", headers=AUTH_OTHER).json()


def test_references_are_distinct(api):
    refs = {post(api).json()["ref"] for _ in range(5)}
    assert len(refs) == 5


@pytest.mark.parametrize("crs, convert", [
    pytest.param("gcj02", wgs84_to_gcj02, id="gcj02"),
    pytest.param("wgs84", lambda x, y: (x, y), id="wgs84"),
])
def test_crs_is_converted_like_lookup(api, crs, convert):
    lon, lat = (float(v) for v in convert(*KUANZHAI))
    body = post(api, lon=lon, lat=lat, crs=crs).json()
    lookup = api.get("/lookup", params={"lon": lon, "lat": lat, "crs": crs}).json()
    assert body["routed_to"] == expected_routing(lookup)


def test_polygon_is_routed_like_assign(api):
    ring = [[104.0515, 30.6685], [104.0545, 30.6685], [104.0545, 30.6705], [104.0515, 30.6705], [104.0515, 30.6685]]
    geometry = {"type": "Polygon", "coordinates": [ring]}
    r = api.post("/feedback", json={"geometry": geometry, "category": "public_space", "text": "这片广场 / this square"})
    assert r.status_code == 201, r.text
    assigned = api.post("/assign", json={"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": geometry, "properties": {}}]}).json()["features"][0]["properties"]
    assert r.json()["routed_to"][0] == assigned["lead_planner_id"]


def test_outside_every_zone_goes_to_the_nearest_planner(api):
    lon, lat = 104.9, 30.9  # east of the demo city, about 40 km from its edge
    lookup = api.get("/lookup", params={"lon": lon, "lat": lat}).json()
    assert lookup["zones"] == []
    body = post(api, lon=lon, lat=lat).json()
    assert body["outside"] is True
    assert body["routed_to"][0] == lookup["nearest"]["planner"]["id"]
    assert body["nearest_distance_m"] == pytest.approx(lookup["nearest"]["distance_m"], abs=1)
    assert body["zone"]["code"] == lookup["nearest"]["zone"]["code"]


BAD_PLACES = [
    pytest.param({"lon": 123.0, "lat": 30.5}, "sea", id="east-china-sea"),
    pytest.param({"lon": 139.69, "lat": 35.69}, "China", id="tokyo-outside-china"),
    pytest.param({"lon": -74.0, "lat": 40.7}, "China", id="new-york"),
    pytest.param({"lon": 30.6695, "lat": 104.053}, "swapped", id="lat-lon-swapped"),
    pytest.param({"lon": 200.0, "lat": 30.0}, "range", id="out-of-range"),
    pytest.param({"lon": None, "lat": 30.0}, "lon", id="no-lon"),
    pytest.param({"lon": None, "lat": None, "geometry": {"type": "Point", "coordinates": [123.0, 30.5]}}, "sea",
                 id="sea-geometry"),
]


@pytest.mark.parametrize("where, says", BAD_PLACES)
def test_places_that_cannot_be_served_are_422(api, where, says):
    r = post(api, **where)
    assert r.status_code == 422, r.text
    assert says in r.json()["detail"]


def test_both_point_and_geometry_is_422(api):
    r = post(api, geometry={"type": "Point", "coordinates": list(KUANZHAI)})
    assert r.status_code == 422 and "not both" in r.json()["detail"]


# -- the text -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, says", [
    pytest.param("", "empty", id="empty"),
    pytest.param("   \n\t ", "empty", id="blank"),
    pytest.param("字" * 2001, "2,000", id="2001-characters"),
    pytest.param("a\x00b", "NUL", id="nul"),
])
def test_bad_texts_are_422(api, text, says):
    r = post(api, text=text)
    assert r.status_code == 422 and says in r.json()["detail"]


def test_a_text_of_2000_characters_is_kept_whole(api):
    text = "长" * 2000
    ref = post(api, text=text).json()["ref"]
    assert api.get(f"/feedback/{ref}").json()["text"] == text


def test_html_in_the_text_is_stored_as_text(api):
    text = '<script>alert("x")</script><img src=x onerror=alert(1)> 围墙'
    ref = post(api, text=text).json()["ref"]
    assert api.get(f"/feedback/{ref}").json()["text"] == text
    page = api.get("/maps/feedback")
    assert page.status_code == 200 and "<script>alert" not in page.text and "onerror=alert" not in page.text


# -- categories -----------------------------------------------------------------------------------
def test_unknown_category_is_422_and_names_the_list(api):
    r = post(api, category="ufo")
    assert r.status_code == 422
    assert "public_space" in r.json()["detail"] and "heritage" in r.json()["detail"]


def test_category_label_is_accepted(api):
    assert post(api, category="交通").json()["category"] == "traffic"


def test_categories_are_editable_by_an_admin(api):
    codes = [c["code"] for c in api.get("/feedback/categories").json()]
    assert codes == ["public_space", "traffic", "heritage", "facilities", "environment", "other"]
    assert api.put("/feedback/categories/noise", json={"name": "噪声", "name_en": "noise"},
                   headers=AUTH_PLANNER).status_code == 403
    assert api.put("/feedback/categories/noise", json={"name": "噪声"}).status_code == 401
    r = api.put("/feedback/categories/noise", json={"name": "噪声", "name_en": "noise"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["active"] is True
    assert post(api, category="noise").status_code == 201
    api.put("/feedback/categories/noise", json={"name": "噪声", "active": False}, headers=AUTH)
    assert post(api, category="noise").status_code == 422
    assert "noise" not in [c["code"] for c in api.get("/feedback/categories").json()]


# -- the workflow ---------------------------------------------------------------------------------
def step(c, ref, headers, **body):
    return c.post(f"/feedback/{ref}/status", json=body, headers=headers)


def test_the_planner_answers_and_the_resident_reads_the_reply(api):
    ref = post(api, text="<b>路灯</b>坏了").json()["ref"]
    assert step(api, ref, AUTH_PLANNER, status="accepted").status_code == 200
    reply = "已报修，<i>一周内</i>修好 / repairs ordered"
    r = step(api, ref, AUTH_PLANNER, status="replied", reply=reply)
    assert r.status_code == 200, r.text
    public = api.get(f"/feedback/{ref}").json()
    assert public["status"] == "replied" and public["reply"] == reply
    received = dt.datetime.fromisoformat(public["received_at"])
    replied = dt.datetime.fromisoformat(public["replied_at"])
    assert public["response_hours"] == pytest.approx((replied - received).total_seconds() / 3600, abs=0.01)
    assert [e["status"] for e in public["events"]] == ["received", "accepted", "replied"]
    assert all("actor" not in e for e in public["events"])
    assert step(api, ref, AUTH_PLANNER, status="closed").json()["status"] == "closed"


OUT_OF_ORDER = [
    pytest.param([], "replied", id="received-to-replied"),
    pytest.param([], "closed", id="received-to-closed"),
    pytest.param(["accepted"], "accepted", id="accepted-twice"),
    pytest.param(["accepted"], "closed", id="accepted-to-closed"),
    pytest.param(["accepted", "replied"], "accepted", id="replied-to-accepted"),
    pytest.param(["accepted", "replied", "closed"], "accepted", id="closed-to-accepted"),
]


@pytest.mark.parametrize("before, then", OUT_OF_ORDER)
def test_a_step_out_of_order_is_409(api, before, then):
    ref = post(api).json()["ref"]
    for s in before:
        extra = {"reply": "好的"} if s == "replied" else {}
        assert step(api, ref, AUTH, status=s, **extra).status_code == 200
    extra = {"reply": "好的"} if then == "replied" else {}
    r = step(api, ref, AUTH, status=then, **extra)
    assert r.status_code == 409, r.text
    assert "next step" in r.json()["detail"]


def test_another_planners_case_is_403(api):
    ref = post(api).json()["ref"]
    r = step(api, ref, AUTH_OTHER, status="accepted")
    assert r.status_code == 403 and "P001" in r.json()["detail"]
    assert step(api, ref, {}, status="accepted").status_code == 401
    assert api.get(f"/feedback/{ref}").json()["status"] == "received"


def test_reply_needs_a_text_and_unknown_steps_are_422(api):
    ref = post(api).json()["ref"]
    step(api, ref, AUTH_PLANNER, status="accepted")
    assert step(api, ref, AUTH_PLANNER, status="replied").status_code == 422
    assert step(api, ref, AUTH_PLANNER, status="replied", reply="  ").status_code == 422
    assert step(api, ref, AUTH_PLANNER, status="received").status_code == 422
    assert step(api, ref, AUTH_PLANNER, status="done").status_code == 422


def test_transfer_to_another_zones_planner(api):
    ref = post(api).json()["ref"]
    assert step(api, ref, AUTH_PLANNER, status="transferred", to_planner="P001").status_code == 422  # no reason
    r = step(api, ref, AUTH_PLANNER, status="transferred", to_planner="P001", note="属于相邻街道 / next subdistrict")
    assert r.status_code == 200, r.text
    assert r.json()["routed_to"] == ["P001"]
    assert step(api, ref, AUTH_PLANNER, status="accepted").status_code == 403  # no longer P006's case
    assert step(api, ref, AUTH_OTHER, status="replied", reply="x").status_code == 409  # accept first
    assert step(api, ref, AUTH_OTHER, status="accepted").status_code == 200
    assert step(api, ref, AUTH_OTHER, status="transferred", to_planner="P999", note="x").status_code == 404
    # to a zone: its lead as of today
    lookup = api.get("/lookup", params={"lon": KUANZHAI[0], "lat": KUANZHAI[1]}).json()
    district = next(z for z in lookup["zones"] if z["kind"] == "district")
    district_lead = next(p["planner"]["id"] for p in lookup["planners"]
                         if p["zone"]["code"] == district["code"] and p["role"] == "lead")
    r = step(api, ref, AUTH_OTHER, status="transferred", to_zone={"kind": "district", "code": district["code"]},
             note="区级事项")
    assert r.status_code == 200 and r.json()["routed_to"] == [district_lead]


# -- ratings --------------------------------------------------------------------------------------
def test_rating_once_and_only_after_a_reply(api):
    ref = post(api).json()["ref"]
    r = api.post(f"/feedback/{ref}/rating", json={"rating": 5})
    assert r.status_code == 409 and "no reply" in r.json()["detail"]
    step(api, ref, AUTH_PLANNER, status="accepted")
    step(api, ref, AUTH_PLANNER, status="replied", reply="已处理")
    assert api.post(f"/feedback/{ref}/rating", json={"rating": 4}).json()["rating"] == 4
    r = api.post(f"/feedback/{ref}/rating", json={"rating": 5})
    assert r.status_code == 409 and "already rated" in r.json()["detail"]
    assert api.get(f"/feedback/{ref}").json()["rating"] == 4


@pytest.mark.parametrize("rating", [0, 6, -1, 2.5, "5", True, None])
def test_bad_ratings_are_422(api, rating):
    ref = post(api).json()["ref"]
    assert api.post(f"/feedback/{ref}/rating", json={"rating": rating}).status_code == 422


def test_unknown_reference_is_404(api):
    assert api.get("/feedback/FB-2020-ZZZZZZ").status_code == 404
    assert api.post("/feedback/FB-2020-ZZZZZZ/rating", json={"rating": 3}).status_code == 404


# -- lists ----------------------------------------------------------------------------------------
def test_a_planner_lists_their_own_cases_an_admin_all(api):
    mine = post(api).json()["ref"]
    theirs = post(api, lon=104.9, lat=30.9).json()
    assert "P006" not in theirs["routed_to"]
    own = api.get("/feedback", headers=AUTH_PLANNER, params={"limit": 1000}).json()
    assert own["numberMatched"] >= 1
    assert all("P006" in f["properties"]["routed_to"] for f in own["features"])
    refs = {f["id"] for f in own["features"]}
    assert mine in refs and theirs["ref"] not in refs
    every = api.get("/feedback", headers=AUTH, params={"limit": 1000}).json()
    assert {mine, theirs["ref"]} <= {f["id"] for f in every["features"]}
    assert every["numberMatched"] > own["numberMatched"]
    assert api.get("/feedback").status_code == 401


def test_list_filters(api):
    ref = post(api, category="environment").json()["ref"]
    zone = api.get(f"/feedback/{ref}").json()["zone"]["code"]
    today = dt.date.today().isoformat()
    for params in ({"category": "environment"}, {"status": "received"}, {"zone": zone},
                   {"since": today, "until": today}):
        got = api.get("/feedback", headers=AUTH, params={**params, "limit": 1000}).json()
        assert ref in {f["id"] for f in got["features"]}, params
        for f in got["features"]:
            props = f["properties"]
            if "category" in params:
                assert props["category"] == "environment"
            if "status" in params:
                assert props["status"] == "received"
    got = api.get("/feedback", headers=AUTH, params={"until": "2020-01-01"}).json()
    assert ref not in {f["id"] for f in got["features"]}
    assert api.get("/feedback", headers=AUTH, params={"status": "lost"}).status_code == 422
    assert api.get("/feedback", headers=AUTH, params={"since": "2026-02-30"}).status_code == 422
    assert api.get("/feedback", headers=AUTH, params={"since": "2025-06-01", "until": "2025-01-01"}).status_code == 422


def test_feedback_map_page(api):
    ref = post(api).json()["ref"]
    page = api.get("/maps/feedback")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert ref in page.text and "/static/maps/leaflet/leaflet.js" in page.text
    zone = api.get(f"/feedback/{ref}").json()["zone"]["code"]
    assert ref in api.get("/maps/feedback", params={"zone": zone}).text
    assert api.get("/maps/feedback", params={"zone": "nowhere"}).status_code == 404


# -- the rate limit -------------------------------------------------------------------------------
def test_a_flood_from_one_client_gets_429(store_copy):
    with TestClient(create_app(make_settings(store_copy, anonymous_write_limit=3,
                                             anonymous_write_window_seconds=120))) as c:
        codes = [post(c).status_code for _ in range(5)]
        assert codes == [201, 201, 201, 429, 429]
        r = post(c)
        assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 120
        assert "try again" in r.json()["detail"]
        assert c.get("/lookup", params={"lon": KUANZHAI[0], "lat": KUANZHAI[1]}).status_code == 200


def test_the_rate_limit_is_a_setting():
    from zeren.api.settings import Settings, SettingsError

    s = Settings.from_env({"ZEREN_FEEDBACK_RATE_LIMIT": "7", "ZEREN_FEEDBACK_RATE_WINDOW": "30"})
    assert (s.anonymous_write_limit, s.anonymous_write_window_seconds) == (7, 30.0)
    assert Settings.from_env(s.to_env()).anonymous_write_limit == 7
    with pytest.raises(SettingsError):
        Settings.from_env({"ZEREN_FEEDBACK_RATE_LIMIT": "0"})


def test_size_caps_on_contact_and_outline(api):
    assert post(api, contact="x" * 201).status_code == 422
    import math

    ring = [[104.053 + 0.002 * math.cos(2 * math.pi * i / 6000), 30.6695 + 0.002 * math.sin(2 * math.pi * i / 6000)]
            for i in range(6000)]
    ring.append(ring[0])
    r = api.post("/feedback", json={"geometry": {"type": "Polygon", "coordinates": [ring]}, "category": "other",
                                    "text": "x"})
    assert r.status_code == 422 and "5,000 positions" in r.json()["detail"]
