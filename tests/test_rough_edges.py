"""The rough edges a newcomer met (issue 11), each reproduced on the demo city as they saw it, through the
command line and the HTTP API (both doors answer from the same use case)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from zeren.api.cli.main import main as cli_main
from zeren.api.http.app import create_app
from zeren.api.service.demo import build_demo
from zeren.layers.store import open_store

from tests.api.conftest import make_settings
from tests.layers._support import cli

BEIJING = (116.40, 39.90)


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory):
    """The demo city, built once for this module; never written to (copy it with ``demo_store``)."""
    path = tmp_path_factory.mktemp("edges") / "demo.gpkg"
    build_demo(path).close()
    path.chmod(0o444)
    return path


@pytest.fixture
def demo_store(demo_template, tmp_path):
    path = tmp_path / "store.gpkg"
    shutil.copyfile(demo_template, path)
    path.chmod(0o644)
    return path


@pytest.fixture(scope="module")
def demo_frames(demo_template):
    store = open_store(str(demo_template))
    try:
        return {"zones": store.zones(), "planners": store.planners(), "appointments": store.appointments()}
    finally:
        store.close()


@pytest.fixture(scope="module")
def http(demo_template):
    with TestClient(create_app(make_settings(demo_template))) as c:
        yield c


def lookup_both(capsys, http, store, lon, lat, *extra) -> dict:
    """The CLI's --json answer, checked equal to GET /lookup's."""
    run = cli(capsys, "lookup", "--lon", lon, "--lat", lat, "--json", "--store", store, *extra)
    assert run.rc == 0, run.text
    answer = json.loads(run.out)
    params = {"lon": lon, "lat": lat}
    if extra:
        params["as_of"] = extra[1]
    r = http.get("/lookup", params=params)
    assert r.status_code == 200, r.text
    assert r.json() == answer
    return answer


# -- 1. /lookup far outside every zone, and before every edition ----------------------------------
def test_lookup_far_outside_every_zone_is_flagged_and_offers_no_distant_planner(capsys, http, demo_template,
                                                                                demo_frames):
    answer = lookup_both(capsys, http, demo_template, *BEIJING)
    assert answer["covered"] is False and answer["zones"] == []
    assert answer["outside_service_area"] is True
    zones = demo_frames["zones"]
    assert answer["service_area_distance_m"] > 1_000_000  # Beijing is ~1,500 km from Chengdu
    assert answer["nearest"] is None  # no planner 1,474 km away offered as a suggestion
    assert "outside the service area" in answer["notice"] and "服务范围之外" in answer["notice"]
    assert len(zones)
    text = cli(capsys, "lookup", "--lon", BEIJING[0], "--lat", BEIJING[1], "--store", demo_template).out
    assert "outside the service area" in text and "nearest zone with a planner:" not in text


def _just_outside(frames) -> tuple[float, float]:
    """A point ~500 m east of the demo city's easternmost vertex: outside every zone, close to one."""
    zones = frames["zones"]
    coords = shapely.get_coordinates(zones.geometry.to_numpy())
    east = coords[np.argmax(coords[:, 0])]
    point = shapely.Point(east[0] + 0.005, east[1])
    assert not zones.geometry.covers(point).any()
    return point.x, point.y


def test_lookup_just_outside_the_service_area_still_suggests_the_nearest(capsys, http, demo_template, demo_frames):
    lon, lat = _just_outside(demo_frames)
    answer = lookup_both(capsys, http, demo_template, lon, lat)
    assert answer["outside_service_area"] is True
    assert 0 < answer["service_area_distance_m"] < 1_000
    assert answer["nearest"] is not None and answer["nearest"]["distance_m"] >= answer["service_area_distance_m"]


def test_lookup_inside_the_city_is_not_outside_the_service_area(capsys, http, demo_template):
    answer = lookup_both(capsys, http, demo_template, 104.0530, 30.6695)
    assert answer["covered"] is True
    assert answer["outside_service_area"] is False and answer["service_area_distance_m"] == 0
    assert answer["notice"] is None


def test_lookup_before_every_edition_says_why(capsys, http, demo_template, demo_frames):
    earliest = pd.Timestamp(demo_frames["zones"]["valid_from"].min()).date()
    answer = lookup_both(capsys, http, demo_template, 104.0530, 30.6695, "--as-of", "1990-01-01")
    assert answer["covered"] is False and answer["zones"] == [] and answer["nearest"] is None
    assert "no boundary edition is in force on 1990-01-01" in answer["notice"]
    assert f"the earliest starts {earliest.isoformat()}" in answer["notice"]
    text = cli(capsys, "lookup", "--lon", 104.0530, "--lat", 30.6695, "--as-of", "1990-01-01",
               "--store", demo_template).out
    assert "the earliest starts" in text


# -- 2. gaps: floating-point noise is not a finding -----------------------------------------------
def test_gaps_on_the_demo_city_report_no_noise_slivers(capsys, http, demo_template, tmp_path):
    """The newcomer saw "slivers under 1000 m²: 111 (6.62e-05 m² ...)": overlay noise between subdistricts
    dissolved from the same lines."""
    run = cli(capsys, "gaps", "--out", tmp_path / "gaps.gpkg", "--store", demo_template)
    assert run.rc == 0, run.text
    assert "slivers under" not in run.out
    body = http.get("/coverage/gaps").json()
    assert body["totals"]["small_slivers"] == 0 and body["totals"]["small_slivers_area_m2"] == 0


def _two_units(gap_deg: float):
    """Two 1 km-ish squares in Chengdu, ``gap_deg`` apart, in a district that spans both and the gap (drawn
    through the squares' corners, as a district dissolved from its subdistricts is)."""
    import geopandas as gpd

    from tests.coverage.conftest import lead_appointments, zones_frame

    x0, y0, w = 104.0, 30.6, 0.01
    left = shapely.box(x0, y0, x0 + w, y0 + w)
    right = shapely.box(x0 + w + gap_deg, y0, x0 + 2 * w + gap_deg, y0 + w)
    xs = [x0, x0 + w, x0 + w + gap_deg, x0 + 2 * w + gap_deg]
    district = shapely.Polygon([(x, y0) for x in xs] + [(x, y0 + w) for x in reversed(xs)])
    frame = lambda geoms, codes: gpd.GeoDataFrame(
        {"code": codes, "name": codes}, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    zones = pd.concat([zones_frame(frame([district], ["D1"]), "district"),
                       zones_frame(frame([left, right], ["S1", "S2"]), "subdistrict")], ignore_index=True)
    return zones, lead_appointments(["S1", "S2"])


@pytest.mark.parametrize("gap_deg, real", [
    pytest.param(1e-11, False, id="nanometre-noise-dropped"),
    pytest.param(2e-5, True, id="two-metre-sliver-reported"),
])
def test_gaps_drop_overlay_noise_and_keep_real_slivers(gap_deg, real):
    from zeren.geo.coverage import coverage_gaps

    zones, appointments = _two_units(gap_deg)
    result = coverage_gaps(zones, appointments, as_of="2024-06-01")
    slivers = result.gaps[result.gaps["reason"] == "sliver"]
    if real:
        assert len(slivers) == 1 and slivers["area_m2"].iloc[0] > 1000  # ~2 m x 1.1 km
        assert result.noise_pieces == 0
    else:
        assert slivers.empty and result.small_slivers == 0 and result.small_slivers_area_m2 == 0
        assert result.noise_pieces == 1 and result.gap_area_m2 == 0


# -- 3. workload weighed by a population nobody imported -------------------------------------------
def _without_population(path) -> None:
    """Blank every zone's population, as a store imported from files without one would be (through the
    store's own SQLite connection: the GeoPackage R*Tree triggers need its functions)."""
    from pathlib import Path

    from zeren.layers.store.gpkg import GeoPackageEngine

    con = GeoPackageEngine(Path(path)).connect()
    try:
        con.execute("UPDATE zones SET population = NULL")
    finally:
        con.close()


def test_workload_by_population_without_population_refuses_clearly(capsys, demo_store):
    _without_population(demo_store)
    run = cli(capsys, "workload", "--weight", "population", "--store", demo_store)
    assert run.rc == 2, run.text
    assert "no zone" in run.err and "has a population" in run.err and "--population-field" in run.err
    assert "Gini" not in run.out
    with TestClient(create_app(make_settings(demo_store))) as c:
        r = c.get("/coverage/workload", params={"weight": "population"})
        assert r.status_code == 422 and "--population-field" in r.text
        assert c.get("/coverage/workload", params={"weight": "area"}).status_code == 200  # area still weighs
    assert cli(capsys, "workload", "--weight", "area", "--store", demo_store).rc == 0


def test_import_layer_population_field_fills_the_population(capsys, demo_store, tmp_path, demo_frames):
    """--population-field names the field that holds the population (here 人口), at both doors."""
    import geopandas as gpd

    subs = demo_frames["zones"][demo_frames["zones"]["kind"] == "subdistrict"].head(3)
    frame = gpd.GeoDataFrame({"code": subs["code"], "name": subs["name"], "人口": [1000, 2000, 3000]},
                             geometry=subs.geometry.to_numpy(), crs=4326)
    path = tmp_path / "subs.geojson"
    frame.to_file(path, driver="GeoJSON")
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", "2026", "--population-field",
              "人口", "--store", demo_store, "--json")
    assert run.rc == 0, run.text
    store = open_store(str(demo_store))
    try:
        now = store.zones(kind="subdistrict", as_of="2026-06-01").set_index("code")
    finally:
        store.close()
    assert now.loc[list(subs["code"]), "population"].tolist() == [1000, 2000, 3000]


# -- 4. a report on a kind the store does not have suggests the kinds it has -----------------------
@pytest.fixture(scope="module")
def districts_only(demo_template, demo_frames, tmp_path_factory):
    """A store holding only the demo's districts, imported from a GeoJSON file as a newcomer would."""
    import geopandas as gpd

    folder = tmp_path_factory.mktemp("districts")
    zones = demo_frames["zones"]
    gpd.GeoDataFrame(zones[zones["kind"] == "district"][["code", "name", "geometry"]], crs=4326).to_file(
        folder / "districts.geojson", driver="GeoJSON")
    store = folder / "districts.gpkg"
    assert cli_main(["import-layer", str(folder / "districts.geojson"), "--kind", "district", "--edition", "2024",
                     "--store", str(store)]) == 0
    return store, int((zones["kind"] == "district").sum())


@pytest.mark.parametrize("command, path", [
    pytest.param(["coverage"], "/coverage/summary", id="coverage"),
    pytest.param(["gaps", "--out", "{tmp}/gaps.geojson"], "/coverage/gaps", id="gaps"),
    pytest.param(["overlaps", "--out", "{tmp}/overlaps.geojson"], "/coverage/overlaps", id="overlaps"),
])
def test_report_on_a_missing_kind_suggests_the_kinds_present(capsys, districts_only, tmp_path, command, path):
    store, n = districts_only
    run = cli(capsys, *[c.format(tmp=tmp_path) for c in command], "--store", store)
    assert run.rc == 0, run.text
    assert "no 'subdistrict' zones" in run.out
    assert f"district ({n})" in run.out and "try --kind district" in run.out
    with TestClient(create_app(make_settings(store))) as c:
        body = c.get(path).json()
    assert "kind=district" in body["message"] and f"district ({n})" in body["message"]
    follow = cli(capsys, "coverage", "--kind", "district", "--store", store)  # the suggestion works
    assert follow.rc == 0 and "nothing to cover" not in follow.out


# -- 5. the OGC projects collection advertises where the projects are ------------------------------
def test_ogc_projects_collection_extent_is_the_projects_box(http, demo_template):
    store = open_store(str(demo_template))
    try:
        projects = store.projects()
    finally:
        store.close()
    assert len(projects)
    want = shapely.total_bounds(projects.geometry.to_numpy())
    for url in ("/ogc/collections/projects", "/ogc/collections"):
        body = http.get(url).json()
        collection = body if "id" in body else next(c for c in body["collections"] if c["id"] == "projects")
        (bbox,) = collection["extent"]["spatial"]["bbox"]
        assert bbox != [-180, -90, 180, 90]
        assert bbox == pytest.approx(list(want), abs=1e-9)


def test_ogc_projects_extent_grows_with_a_new_project(store_client):
    from tests.api.conftest import AUTH

    c = store_client
    far = {"type": "Polygon", "coordinates": [[[104.9, 30.9], [104.91, 30.9], [104.91, 30.91], [104.9, 30.91],
                                               [104.9, 30.9]]]}
    r = c.post("/projects", json={"name": "远处的项目", "geometry": far}, headers=AUTH)
    assert r.status_code in (200, 201), r.text
    (bbox,) = c.get("/ogc/collections/projects").json()["extent"]["spatial"]["bbox"]
    assert bbox[2] == pytest.approx(104.91) and bbox[3] == pytest.approx(30.91)


@pytest.fixture
def store_client(demo_store):
    with TestClient(create_app(make_settings(demo_store))) as c:
        yield c


# -- 6. a lat/lon-swapped import: each rejection once, and the swap named --------------------------
def _subdistricts_file(frames, path, n=3, swap=False, **columns):
    import geopandas as gpd

    subs = frames["zones"][frames["zones"]["kind"] == "subdistrict"].sort_values("code").head(n)
    geoms = subs.geometry.to_numpy()
    if swap:
        geoms = shapely.transform(geoms, lambda xy: xy[:, ::-1])
    data = {"code": subs["code"].to_numpy(), "name": subs["name"].to_numpy()}
    data.update({k: (subs[v].to_numpy() if isinstance(v, str) else v) for k, v in columns.items()})
    frame = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    if path.suffix == ".zip":
        import zipfile

        folder = path.with_suffix("")
        folder.mkdir()
        frame.to_file(folder / "subs.shp", encoding="UTF-8")
        with zipfile.ZipFile(path, "w") as zf:
            for f in folder.iterdir():
                zf.write(f, f.name)
    elif path.suffix == ".csv":
        pd.DataFrame(data).assign(wkt=shapely.to_wkt(geoms)).to_csv(path, index=False)
    else:
        frame.to_file(path, driver="GeoJSON")
    return subs


@pytest.mark.parametrize("skip", [False, True], ids=["plain", "skip-rejected"])
def test_swapped_import_lists_each_rejection_once_and_suggests_the_swap(capsys, demo_store, demo_frames, tmp_path,
                                                                        skip):
    path = tmp_path / "swapped.geojson"
    subs = _subdistricts_file(demo_frames, path, swap=True)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", "2026", "--store", demo_store,
              *(["--skip-rejected"] if skip else []))
    assert run.rc == 2
    for code in subs["code"]:
        assert run.text.count(f"(code {code})") == 1, run.text
    assert "import the other 0" not in run.text
    assert "Every feature was rejected" in run.err and "lat/lon swapped" in run.err and "Swap" in run.err


def test_swapped_import_into_an_empty_store_is_caught_by_the_china_box(capsys, tmp_path):
    """Kashgar's subdistricts swapped: (39.5, 76.0) is a valid lon/lat (in the Arctic), but not Chinese data."""
    import geopandas as gpd

    square = shapely.box(75.95, 39.45, 76.05, 39.55)
    frame = gpd.GeoDataFrame({"code": ["653101001"], "name": ["喀什示例街道"]},
                             geometry=[shapely.transform(square, lambda xy: xy[:, ::-1])], crs=4326)
    frame.to_file(tmp_path / "kashgar.geojson", driver="GeoJSON")
    run = cli(capsys, "import-layer", tmp_path / "kashgar.geojson", "--kind", "subdistrict", "--edition", "2026",
              "--store", tmp_path / "new.gpkg")
    assert run.rc == 2 and "lat/lon swapped" in run.err


def test_swapped_http_import_says_so(store_client, demo_frames, tmp_path):
    from tests.api.conftest import AUTH

    path = tmp_path / "swapped.geojson"
    _subdistricts_file(demo_frames, path, swap=True)
    r = store_client.post("/zones/import", params={"kind": "subdistrict", "edition": 2026},
                          content=path.read_bytes(), headers={**AUTH, "Content-Type": "application/geo+json"})
    assert r.status_code == 422 and "Every feature was rejected" in r.text and "Swap the coordinates" in r.text


# -- 9. a Shapefile's truncated field names ---------------------------------------------------------
def test_shapefile_truncated_parent_code_is_recognised_with_a_note(capsys, demo_store, demo_frames, tmp_path):
    path = tmp_path / "subs.zip"
    subs = _subdistricts_file(demo_frames, path, parent_code="parent_code")
    import geopandas as gpd

    assert "parent_cod" in gpd.read_file(path).columns  # what the .dbf really holds
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", "2026", "--dry-run", "--json",
              "--store", demo_store)
    assert run.rc == 0, run.text
    read = json.loads(run.out)["read"]
    assert "parent_code" not in read["missing_fields"]
    assert any("'parent_cod' read as 'parent_code'" in n for n in read["notes"])
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", "2026", "--store", demo_store)
    assert run.rc == 0 and "parent_cod" in run.out
    store = open_store(str(demo_store))
    try:
        now = store.zones(kind="subdistrict", as_of="2026-06-01").set_index("code")
    finally:
        store.close()
    assert now.loc[list(subs["code"]), "parent_code"].tolist() == subs["parent_code"].tolist()
    assert all("parent_cod" not in a for a in now.loc[list(subs["code"]), "attrs"])  # not kept as an attribute


def test_missing_optional_fields_are_named_with_the_option(capsys, demo_store, demo_frames, tmp_path):
    path = tmp_path / "subs.zip"
    _subdistricts_file(demo_frames, path, SJDM="parent_code")  # 上级代码, as many bureaus name it
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", "2026", "--dry-run", "--json",
              "--store", demo_store)
    read = json.loads(run.out)["read"]
    assert "parent_code" in read["missing_fields"]
    assert any("no 'parent_code' field" in n and "--parent-field" in n for n in read["notes"])


# -- 10. --crs on a file that states no CRS ---------------------------------------------------------
def test_crs_on_a_file_without_one_does_not_claim_the_file_states_one(capsys, demo_store, demo_frames, tmp_path):
    path = tmp_path / "subs.csv"
    _subdistricts_file(demo_frames, path)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", "2026", "--dry-run", "--crs",
              "gcj02", "--store", demo_store)
    assert run.rc == 0, run.text
    assert "not as the file states" not in run.out
    assert "the file states no CRS: coordinates taken as gcj02 (--crs)" in run.out


def test_crs_overriding_the_files_crs_names_what_the_file_states(capsys, demo_store, demo_frames, tmp_path):
    path = tmp_path / "subs.geojson"
    _subdistricts_file(demo_frames, path)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", "2026", "--dry-run", "--crs",
              "gcj02", "--store", demo_store)
    assert run.rc == 0, run.text
    assert "coordinates taken as gcj02 (--crs), not as the file states (WGS 84)" in run.out


# -- 7. GET /audit is a read ------------------------------------------------------------------------
def test_audit_without_a_token_says_reading_it_needs_an_admin_token(http):
    from tests.api.conftest import AUTH, AUTH_PLANNER

    r = http.get("/audit")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert "reading the audit log needs an admin token" in r.text and "change" not in r.text
    r = http.get("/audit", headers=AUTH_PLANNER)
    assert r.status_code == 403 and "reading the audit log needs an admin token" in r.text
    assert http.get("/audit", headers=AUTH).status_code == 200


# -- 11. a polygon site that only touches a zone does not match it --------------------------------
def test_square_site_sharing_an_edge_with_a_zone_does_not_match_it():
    from zeren.geo.assign import ZoneIndex, assign

    from tests.geo.test_assign import APPOINTMENTS, CITY, X0, Y0, D

    index = ZoneIndex(CITY)
    resp = index.responsibility(APPOINTMENTS, "2025-01-01")
    # S2 is the cell (1, 0); the site is the cell east of the district, sharing S2's east edge (and S4's corner)
    site = shapely.box(X0 + 2 * D, Y0, X0 + 3 * D, Y0 + D)
    line = shapely.LineString([(X0 + 2 * D, Y0 + 0.5 * D), (X0 + 3 * D, Y0 + 0.5 * D)])  # touches S2 at one end
    inside = shapely.box(X0 + 1.5 * D, Y0, X0 + 2.5 * D, Y0 + D)  # half in S2, half outside: still matches
    result = assign(index, resp, np.array([site, line, inside], dtype=object))
    codes = [sorted(index.code[result.pair_zone[result.pair_site == i]]) for i in range(3)]
    assert codes[0] == [] and codes[1] == []
    assert not result.covered[0] and result.nearest_zone[0] >= 0  # it gets a nearest zone instead
    assert codes[2] == ["D1", "S2"]
    assert np.all(result.pair_share > 0)


def test_demo_subdistrict_as_a_site_lists_no_neighbour_with_share_zero(http, demo_frames):
    """A project drawn exactly on a subdistrict's boundary: its neighbours only touch it."""
    zones = demo_frames["zones"]
    sub = zones[(zones["kind"] == "subdistrict")].sort_values("code").iloc[0]
    feature = {"type": "Feature", "properties": {"name": "same as the subdistrict"},
               "geometry": shapely.geometry.mapping(sub.geometry)}
    r = http.post("/assign", json=feature)
    assert r.status_code == 200, r.text
    props = r.json()["features"][0]["properties"]
    matched = {(z["kind"], z["code"]): z["share"] for z in props["zones"]}
    assert matched[("subdistrict", sub["code"])] == pytest.approx(1.0)
    assert all(share > 0 for share in matched.values()), matched
    neighbours = zones[(zones["kind"] == "subdistrict") & zones.geometry.touches(sub.geometry)]
    assert len(neighbours) and not {("subdistrict", c) for c in neighbours["code"]} & set(matched)
