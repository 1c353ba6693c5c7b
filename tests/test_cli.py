"""The `zeren` command line on the demo city: `demo`, `lookup` and `assign`.

The right answers are derived here, independently of geo.assign, from the store's own frames with plain
shapely / geopandas: a point's zones are the polygons that cover it; its lead is the active `lead`
appointment on the most specific base zone (community, village, subdistrict, district) that has one, lowest
code first among zones of one kind; consultations are the planners of covering historic and key areas.
"""
from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from zeren.geo.answer import MAX_SUGGESTION_M
from zeren.geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from zeren.api.service.demo import HANDOVER_DATE
from tests.layers._support import (  # noqa: F401 - fixtures
    BASE_ORDER,
    active_appointees,
    active_leads,
    as_list,
    cli,
    demo_frames,
    demo_store,
    demo_template,
    expected_lead,
    private_contacts,
    zeren_subprocess,
    zones_at,
    zones_in_force,
)

AS_OF = "2025-03-01"
CONSULTING_KINDS = ("historic_area", "key_area")  # the demo's (default) consultation rules


def _subdistrict(frames, code):
    z = frames["zones"]
    return z[(z["kind"] == "subdistrict") & (z["code"] == code)].geometry.iloc[0]


def _inside(frames, code):
    p = _subdistrict(frames, code).representative_point()
    return p.x, p.y


def _district_fallback(frames):
    """A subdistrict the demo left without a lead, in a district that has one."""
    leads = active_leads(frames["appointments"], AS_OF)
    z = zones_in_force(frames["zones"], AS_OF)
    subs = z[(z["kind"] == "subdistrict")].sort_values("code")
    for row in subs.itertuples():
        if ("subdistrict", row.code) not in leads and ("district", row.parent_code) in leads:
            p = row.geometry.representative_point()
            return p.x, p.y
    raise AssertionError("the demo has no subdistrict falling back to its district")


def _shared_vertex(frames):
    """A vertex two subdistricts share exactly: the point is on both (a border)."""
    z = zones_in_force(frames["zones"], AS_OF)
    subs = z[z["kind"] == "subdistrict"].sort_values("code")
    seen = {}
    for code, geom in zip(subs["code"], subs.geometry):
        for xy in map(tuple, shapely.get_coordinates(geom)):
            if xy in seen and seen[xy] != code:
                return float(xy[0]), float(xy[1])
            seen.setdefault(xy, code)
    raise AssertionError("no shared vertex")


POINTS = [  # name -> (lon, lat) or a function of the demo's frames
    pytest.param((104.0530, 30.6695), id="kuanzhai-alleys-historic-area"),
    pytest.param((104.0657, 30.6570), id="tianfu-square-key-area"),
    pytest.param((104.0840, 30.6555), id="daci-temple-historic-area"),
    pytest.param((104.0725, 30.6765), id="wenshu-monastery-historic-area"),
    pytest.param((104.1270, 30.6700), id="east-suburb-renewal-area"),
    pytest.param((104.0700, 30.4100), id="tianfu-new-area-key-area"),
    pytest.param(_district_fallback, id="subdistrict-without-lead-falls-back-to-district"),
    pytest.param(_shared_vertex, id="on-a-vertex-shared-by-two-subdistricts"),
    pytest.param(lambda f: _inside(f, "510121001"), id="jintang-uncovered"),
    pytest.param(lambda f: _inside(f, "510129003"), id="dayi-uncovered"),
]


def _point(spec, frames):
    return spec(frames) if callable(spec) else spec


def lookup_json(capsys, store, lon, lat, *extra):
    run = cli(capsys, "lookup", "--lon", repr(lon), "--lat", repr(lat), "--json", "--store", store, *extra)
    assert run.rc == 0, run.text
    return json.loads(run.out)


# -- demo --------------------------------------------------------------------------------------------
def test_demo_then_lookup_as_users_run_them(tmp_path, demo_frames):
    store = tmp_path / "demo.gpkg"
    made = zeren_subprocess("demo", "--store", store)
    assert made.returncode == 0, made.stderr
    asked = zeren_subprocess("lookup", "--lon", "104.0530", "--lat", "30.6695", "--as-of", AS_OF, "--json",
                             "--store", store)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    planner, kind, code = expected_lead(demo_frames, 104.0530, 30.6695, AS_OF)
    assert (answer["lead"]["planner"]["id"], answer["lead"]["zone"]["code"]) == (planner, code)
    assert code == "510105002" and answer["lead"]["zone"]["name"] == "青羊区第2街道"


def test_demo_reports_what_it_built(tmp_path, capsys, demo_frames):
    run = cli(capsys, "demo", "--store", tmp_path / "d.gpkg")
    assert run.rc == 0
    counts = demo_frames["zones"]["kind"].value_counts()
    for kind, n in counts.items():
        assert f"/ {kind}: {n}" in run.out
    assert f"planners: {len(demo_frames['planners'])}" in run.out


def test_demo_rebuilds_over_its_own_store(tmp_path, capsys):
    store = tmp_path / "d.gpkg"
    assert cli(capsys, "demo", "--store", store).rc == 0
    assert cli(capsys, "demo", "--store", store).rc == 0  # a demo store may be rebuilt without --force


EXIT_CODES = [  # (argv after `zeren`, exit code) run as a real process
    pytest.param(["lookup", "--lon", "104.0657", "--lat", "30.6570"], 0, id="lookup-ok"),
    pytest.param(["lookup", "--lon", "30.6570", "--lat", "104.0657"], 2, id="lookup-swapped"),
    pytest.param(["lookup", "--lon", "104.0657"], 2, id="lookup-missing-lat"),
    pytest.param(["import-layer", "nowhere.geojson", "--kind", "district"], 2, id="import-missing-file"),
    pytest.param(["import-appointments", "nowhere.csv"], 2, id="appointments-missing-file"),
]


@pytest.mark.parametrize("argv, code", EXIT_CODES)
def test_exit_codes_of_the_installed_command(demo_store, tmp_path, argv, code):
    done = zeren_subprocess(*argv, "--store", demo_store, cwd=tmp_path)
    assert done.returncode == code, done.stderr
    if code == 2:
        assert done.stderr.strip() and "Traceback" not in done.stderr


# -- lookup ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", POINTS)
def test_lookup_names_the_right_lead(demo_template, demo_frames, capsys, spec):
    lon, lat = _point(spec, demo_frames)
    answer = lookup_json(capsys, demo_template, lon, lat, "--as-of", AS_OF)
    expected = expected_lead(demo_frames, lon, lat, AS_OF)
    if expected is None:
        assert answer["covered"] is False and answer["lead"] is None
    else:
        got = answer["lead"]
        assert answer["covered"] is True
        assert (got["planner"]["id"], got["zone"]["kind"], got["zone"]["code"]) == expected


@pytest.mark.parametrize("spec", POINTS)
def test_lookup_lists_the_zones_here(demo_template, demo_frames, capsys, spec):
    lon, lat = _point(spec, demo_frames)
    answer = lookup_json(capsys, demo_template, lon, lat, "--as-of", AS_OF)
    assert {(z["kind"], z["code"]) for z in answer["zones"]} == zones_at(demo_frames, lon, lat, AS_OF)


@pytest.mark.parametrize("spec", POINTS)
def test_lookup_lists_the_planners_to_consult(demo_template, demo_frames, capsys, spec):
    lon, lat = _point(spec, demo_frames)
    answer = lookup_json(capsys, demo_template, lon, lat, "--as-of", AS_OF)
    expected = {(pid, code) for kind, code in zones_at(demo_frames, lon, lat, AS_OF) if kind in CONSULTING_KINDS
                for pid in active_appointees(demo_frames["appointments"], kind, code, AS_OF)}
    assert {(c["planner"]["id"], c["zone"]["code"]) for c in answer["consultations"]} == expected


def test_kuanzhai_point_must_consult_the_historic_area(demo_template, demo_frames, capsys):
    answer = lookup_json(capsys, demo_template, 104.0530, 30.6695, "--as-of", AS_OF)
    ha = active_appointees(demo_frames["appointments"], "historic_area", "HA-001", AS_OF)
    assert len(ha) == 2 and {c["planner"]["id"] for c in answer["consultations"]} == ha
    assert all(c["zone"]["code"] == "HA-001" and c["reason"] for c in answer["consultations"])


def test_renewal_area_planners_are_listed_but_not_consulted(demo_template, demo_frames, capsys):
    answer = lookup_json(capsys, demo_template, 104.1270, 30.6700, "--as-of", AS_OF)
    ra = active_appointees(demo_frames["appointments"], "renewal_area", "RA-001", AS_OF)
    assert ra and ra <= {p["planner"]["id"] for p in answer["planners"]}
    assert not ra & {c["planner"]["id"] for c in answer["consultations"]}


def test_consultation_rules_are_data(demo_store, demo_frames, capsys):
    """Make renewal areas oblige consultation in the store: the CLI's answer follows."""
    from zeren.layers.store import open_store

    store = open_store(demo_store)
    store.set_consultation_kinds(["historic_area", "key_area", "renewal_area"], actor="test")
    store.close()
    answer = lookup_json(capsys, demo_store, 104.1270, 30.6700, "--as-of", AS_OF)
    ra = active_appointees(demo_frames["appointments"], "renewal_area", "RA-001", AS_OF)
    assert {c["planner"]["id"] for c in answer["consultations"] if c["zone"]["code"] == "RA-001"} == ra


def test_cli_works_on_a_postgis_store(pg_url_clean, demo_frames, tmp_path, capsys):
    """import-layer, import-planners, import-appointments and lookup against a postgresql:// store."""
    from tests.layers._support import real_layer

    layer = tmp_path / "subdistricts.geojson"
    real_layer("subdistricts_hangzhou").to_file(layer, driver="GeoJSON")
    planners = tmp_path / "p.csv"
    planners.write_text("id,name,organization,disciplines,public_contact,private_contact\n"
                        "H1,钱塘,杭州示例团队,planning,h1@example.org,+86-571-1\n", encoding="utf-8")
    appointments = tmp_path / "a.csv"
    appointments.write_text("planner_id,zone_kind,zone_code,role,start,end\n"
                            "H1,subdistrict,330106008,lead,2024-01-01,\n", encoding="utf-8")
    for argv in (["import-layer", layer, "--kind", "subdistrict", "--edition", "2024"],
                 ["import-planners", planners], ["import-appointments", appointments]):
        run = cli(capsys, *argv, "--store", pg_url_clean)
        assert run.rc == 0, run.text
    zones = real_layer("subdistricts_hangzhou")
    point = zones[zones["code"] == "330106008"].geometry.iloc[0].representative_point()
    answer = lookup_json(capsys, pg_url_clean, point.x, point.y, "--as-of", AS_OF)
    assert (answer["lead"]["planner"]["id"], answer["lead"]["zone"]["code"]) == ("H1", "330106008")
    assert "+86-571-1" not in json.dumps(answer)


def _utm(lon_centre: float, lat_centre: float) -> int:
    return (32600 if lat_centre >= 0 else 32700) + int(math.floor((lon_centre + 180) / 6)) + 1


NEAREST_TIE_M = 1.0  # zones within a metre of the closest tie (a shared border projects with noise)


def _lead_candidates(frames, as_of):
    """Base zones in force with an active lead, in the metric CRS (UTM zone of the data's centre)."""
    zones = zones_in_force(frames["zones"], as_of)
    leads = active_leads(frames["appointments"], as_of)
    minx, miny, maxx, maxy = frames["zones"].total_bounds
    crs = _utm((minx + maxx) / 2, (miny + maxy) / 2)
    has_lead = [(k, c) in leads and k in BASE_ORDER for k, c in zip(zones["kind"], zones["code"])]
    candidates = zones[has_lead][["kind", "code", "geometry"]].to_crs(crs).reset_index(drop=True)
    candidates["level"] = candidates["kind"].map({k: i for i, k in enumerate(BASE_ORDER)})
    return candidates, leads, crs


def expected_nearest(frames, lon, lat, as_of):
    """(zone code, planner, metres) of the nearest base zone with a lead: among the zones within a metre of
    the closest, the most specific kind, then the lowest code."""
    candidates, leads, crs = _lead_candidates(frames, as_of)
    site = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4326).to_crs(crs).iloc[0]
    d = candidates.distance(site)
    tied = candidates.assign(d=d)[d <= d.min() + NEAREST_TIE_M]
    best = tied.sort_values(["level", "code"]).iloc[0]
    return best["code"], leads[(best["kind"], best["code"])], float(best["d"])


@pytest.mark.parametrize("code", ["510121001", "510121007", "510129003"], ids=["jintang-1", "jintang-7", "dayi-3"])
def test_uncovered_site_gets_the_nearest_zone_with_a_lead(demo_template, demo_frames, capsys, code):
    lon, lat = _inside(demo_frames, code)
    answer = lookup_json(capsys, demo_template, lon, lat, "--as-of", AS_OF)
    assert answer["covered"] is False
    want_code, want_planner, want_m = expected_nearest(demo_frames, lon, lat, AS_OF)
    near = answer["nearest"]
    assert near["distance_m"] > 0
    assert (near["zone"]["code"], near["planner"]["id"]) == (want_code, want_planner)
    assert near["distance_m"] == pytest.approx(want_m, abs=0.1)


def _handover(frames):
    """A subdistrict whose lead changes on HANDOVER_DATE, its old and new leads, and a point inside it."""
    a = frames["appointments"]
    lead = a[a["role"] == "lead"]
    ended = lead[lead["end"] == pd.Timestamp(HANDOVER_DATE)].sort_values("zone_code").iloc[0]
    new = lead[(lead["zone_code"] == ended["zone_code"]) & (lead["start"] == pd.Timestamp(HANDOVER_DATE))].iloc[0]
    assert ended["planner_id"] != new["planner_id"]
    return ended["zone_code"], ended["planner_id"], new["planner_id"], _inside(frames, ended["zone_code"])


HANDOVER_DAYS = [  # (--as-of, which lead: old / new)
    pytest.param("2024-01-01", "old", id="first-day-of-the-appointment"),
    pytest.param("2025-06-30", "old", id="day-before-the-handover"),
    pytest.param("2025-07-01", "new", id="handover-day-end-exclusive-start-inclusive"),
    pytest.param("2030-01-01", "new", id="years-later"),
]


@pytest.mark.parametrize("as_of, which", HANDOVER_DAYS)
def test_as_of_date_picks_the_lead_before_or_after_a_handover(demo_template, demo_frames, capsys, as_of, which):
    code, old, new, (lon, lat) = _handover(demo_frames)
    answer = lookup_json(capsys, demo_template, lon, lat, "--as-of", as_of)
    assert answer["lead"]["zone"]["code"] == code
    assert answer["lead"]["planner"]["id"] == (old if which == "old" else new)
    assert answer["as_of"] == as_of


def test_before_the_boundary_edition_nothing_is_in_force(demo_template, capsys):
    answer = lookup_json(capsys, demo_template, 104.0530, 30.6695, "--as-of", "2023-12-31")
    assert answer["covered"] is False and answer["zones"] == []


def _scalars(xy) -> tuple[float, float]:
    return float(np.ravel(xy[0])[0]), float(np.ravel(xy[1])[0])


def _project(crs):
    t = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    return lambda lon, lat: t.transform(lon, lat)


CONVERTED = [  # (--crs, WGS84 lon/lat -> coordinates in that CRS)
    pytest.param("gcj02", lambda lon, lat: _scalars(wgs84_to_gcj02(lon, lat)), id="gcj02-amap"),
    pytest.param("bd09", lambda lon, lat: _scalars(wgs84_to_bd09(lon, lat)), id="bd09-baidu"),
    pytest.param("cgcs2000", lambda lon, lat: (lon, lat), id="cgcs2000"),
    pytest.param("EPSG:32648", _project(32648), id="utm-48n"),
]


@pytest.mark.parametrize("crs, convert", CONVERTED)
@pytest.mark.parametrize("spec", POINTS[:3] + POINTS[6:7])
def test_converted_point_gets_the_same_answer(demo_template, demo_frames, capsys, crs, convert, spec):
    lon, lat = _point(spec, demo_frames)
    x, y = convert(lon, lat)
    assert crs in ("cgcs2000",) or abs(x - lon) > 1e-4 or abs(y - lat) > 1e-4  # the point really moved
    plain = lookup_json(capsys, demo_template, lon, lat, "--as-of", AS_OF)
    moved = lookup_json(capsys, demo_template, x, y, "--crs", crs, "--as-of", AS_OF)
    assert moved["site"]["lon"] == pytest.approx(lon, abs=1e-7) and moved["site"]["lat"] == pytest.approx(lat, abs=1e-7)
    for key in ("covered", "lead", "planners", "consultations", "zones", "split", "nearest"):
        assert moved[key] == plain[key], key


def test_gcj02_point_differs_from_the_wgs84_reading(demo_template, capsys):
    """The same numbers read as WGS84 and as GCJ-02 are hundreds of metres apart."""
    a = lookup_json(capsys, demo_template, 104.0530, 30.6695, "--as-of", AS_OF)
    b = lookup_json(capsys, demo_template, 104.0530, 30.6695, "--crs", "gcj02", "--as-of", AS_OF)
    geod = pyproj.Geod(ellps="WGS84")
    _, _, metres = geod.inv(a["site"]["lon"], a["site"]["lat"], b["site"]["lon"], b["site"]["lat"])
    assert 200 < metres < 900


JSON_KEYS = [  # (path into the answer, keys it must have)
    pytest.param((), {"covered", "lead", "planners", "consultations", "zones", "split", "nearest", "site", "as_of"},
                 id="answer"),
    pytest.param(("lead",), {"planner", "zone"}, id="lead"),
    pytest.param(("lead", "planner"), {"id", "name", "organization", "disciplines", "public_contact"},
                 id="lead-planner"),
    pytest.param(("lead", "zone"), {"kind", "code", "name"}, id="lead-zone"),
    pytest.param(("zones", 0), {"kind", "code", "name", "share"}, id="zone"),
    pytest.param(("planners", 0), {"planner", "role", "zone", "reason"}, id="planner-entry"),
    pytest.param(("consultations", 0), {"planner", "zone", "reason"}, id="consultation"),
    pytest.param(("site",), {"lon", "lat", "given", "crs"}, id="site"),
]


@pytest.mark.parametrize("path, keys", JSON_KEYS)
def test_lookup_json_has_the_documented_keys(demo_template, capsys, path, keys):
    node = lookup_json(capsys, demo_template, 104.0530, 30.6695, "--as-of", AS_OF)
    for step in path:
        node = node[step]
    assert keys <= set(node)
    assert "private_contact" not in json.dumps(node)


def test_uncovered_json_has_a_nearest_with_zone_planner_and_distance(demo_template, demo_frames, capsys):
    lon, lat = _inside(demo_frames, "510121001")
    near = lookup_json(capsys, demo_template, lon, lat, "--as-of", AS_OF)["nearest"]
    assert {"zone", "planner", "distance_m"} <= set(near) and {"kind", "code", "name"} <= set(near["zone"])


def test_text_answer_names_the_lead_and_the_zone(demo_template, demo_frames, capsys):
    run = cli(capsys, "lookup", "--lon", "104.0530", "--lat", "30.6695", "--as-of", AS_OF, "--store", demo_template)
    planner, _, code = expected_lead(demo_frames, 104.0530, 30.6695, AS_OF)
    name = demo_frames["planners"].set_index("id").loc[planner, "name"]
    lead_line = next(l for l in run.out.splitlines() if l.startswith("责任规划师 / lead planner"))
    assert name in lead_line and planner in lead_line
    assert code in run.out and "青羊区第2街道" in run.out and "须征询" in run.out


BAD_POINTS = [  # (lon, lat, --crs, words in the error)
    pytest.param("30.6695", "104.0530", "wgs84", ["swap", "lies inside the data"], id="swapped-into-the-data"),
    pytest.param("10.0", "100.0", "wgs84", ["swap", "would be valid"], id="swapped-elsewhere"),
    pytest.param("200", "30.6", "wgs84", ["longitude 200", "out of range"], id="longitude-out-of-range"),
    pytest.param("104.05", "-91", "wgs84", ["latitude -91", "out of range"], id="latitude-out-of-range"),
    pytest.param("nan", "30.6", "wgs84", ["finite"], id="not-a-number"),
    pytest.param("104.05", "30.66", "mars", ["unknown CRS"], id="unknown-crs"),
]


@pytest.mark.parametrize("lon, lat, crs, words", BAD_POINTS)
def test_bad_point_exits_2_with_a_clear_message(demo_template, capsys, lon, lat, crs, words):
    run = cli(capsys, "lookup", "--lon", lon, "--lat", lat, "--crs", crs, "--store", demo_template)
    assert run.rc == 2 and run.out == ""
    for word in words:
        assert word in run.err


# -- private contacts --------------------------------------------------------------------------------
def _outputs(capsys, store, tmp_path, frames):
    runs = [cli(capsys, "lookup", "--lon", str(lon), "--lat", str(lat), *extra, "--store", store)
            for lon, lat in [(104.0530, 30.6695), (104.0657, 30.6570), _inside(frames, "510121001")]
            for extra in ([], ["--json"])]
    sites = tmp_path / "sites.csv"
    sites.write_text("id,lon,lat\n1,104.0530,30.6695\n2,104.0657,30.6570\n3,104.42,30.84\n", encoding="utf-8")
    texts = [r.text for r in runs]
    for suffix in (".csv", ".geojson", ".gpkg"):
        out = tmp_path / f"assigned{suffix}"
        run = cli(capsys, "assign", sites, "--crs", "wgs84", "--out", out, "--store", store)
        texts.append(run.text)
        texts.append(out.read_bytes().decode("utf-8", "replace"))
    return texts


def test_private_contacts_never_leave_the_cli(demo_store, demo_frames, tmp_path, capsys):
    secrets = private_contacts(demo_frames)
    assert len(secrets) == len(demo_frames["planners"]) > 0
    texts = _outputs(capsys, demo_store, tmp_path, demo_frames)
    texts.append(cli(capsys, "demo", "--store", tmp_path / "fresh.gpkg").text)
    blob = "\n".join(texts).replace(str(tmp_path), "TMP")  # the folder is named after this test
    assert "private_contact" not in blob
    leaked = [s for s in secrets if s in blob]
    assert leaked == []


# -- assign ------------------------------------------------------------------------------------------
ADDED = ["covered", "lead_planner_id", "lead_zone_kind", "lead_zone_code", "split", "planners", "consultations",
         "zones", "nearest_zone_code", "nearest_planner_id", "nearest_distance_m"]
SITES = [  # (site id, lon, lat, note) — points anyone can check on a map
    ("S1", 104.0530, 30.6695, "宽窄巷子"),
    ("S2", 104.0657, 30.6570, "天府广场"),
    ("S3", 104.1270, 30.6700, "东郊记忆"),
    ("S4", 104.4200, 30.8400, "金堂"),
    ("S5", 104.9000, 30.2000, "成都以外"),
]


def _site_frame():
    frame = pd.DataFrame(SITES, columns=["site_id", "lon", "lat", "备注"])
    frame["priority"] = [3, 1, 2, 5, 4]
    return frame


def _in_geojson(folder):
    f = _site_frame()
    path = folder / "sites.geojson"
    gpd.GeoDataFrame(f.drop(columns=["lon", "lat"]), geometry=gpd.points_from_xy(f["lon"], f["lat"]),
                     crs=4326).to_file(path, driver="GeoJSON")
    return path, [], ["site_id", "备注", "priority"]


def _in_gpkg(folder):
    f = _site_frame()
    path = folder / "sites.gpkg"
    gpd.GeoDataFrame(f.drop(columns=["lon", "lat"]), geometry=gpd.points_from_xy(f["lon"], f["lat"]),
                     crs=4326).to_file(path, driver="GPKG", layer="sites")
    return path, [], ["site_id", "备注", "priority"]


def _in_csv_lonlat(encoding):
    def build(folder):
        path = folder / f"sites_{encoding}.csv"
        _site_frame().to_csv(path, index=False, encoding=encoding)
        return path, ["--crs", "wgs84"], ["site_id", "lon", "lat", "备注", "priority"]
    return build


def _in_csv_wkt(folder):
    f = _site_frame()
    f["wkt"] = [shapely.Point(x, y).wkt for x, y in zip(f["lon"], f["lat"])]
    path = folder / "sites_wkt.csv"
    f.drop(columns=["lon", "lat"]).to_csv(path, index=False)
    return path, ["--crs", "wgs84"], ["site_id", "备注", "priority", "wkt"]


INPUTS = [
    pytest.param(_in_geojson, id="in-geojson"),
    pytest.param(_in_gpkg, id="in-gpkg"),
    pytest.param(_in_csv_lonlat("utf-8"), id="in-csv-lonlat"),
    pytest.param(_in_csv_lonlat("gbk"), id="in-csv-lonlat-gbk"),
    pytest.param(_in_csv_wkt, id="in-csv-wkt"),
]
OUTPUTS = [pytest.param(".csv", id="out-csv"), pytest.param(".geojson", id="out-geojson"),
           pytest.param(".gpkg", id="out-gpkg")]


def read_output(path) -> pd.DataFrame:
    if str(path).endswith(".csv"):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        frame = frame.replace({"": None})
    else:
        frame = pd.DataFrame(gpd.read_file(path))
    frame["site_id"] = frame["site_id"].astype(str)
    return frame.set_index("site_id", drop=False)


@pytest.fixture
def assigned(request, demo_template, tmp_path, capsys):
    build, suffix = request.param
    path, extra, columns = build(tmp_path)
    out = tmp_path / f"assigned{suffix}"
    run = cli(capsys, "assign", path, *extra, "--as-of", AS_OF, "--out", out, "--store", demo_template)
    assert run.rc == 0, run.text
    return read_output(out), columns, suffix


COMBINATIONS = [pytest.param((i.values[0], o.values[0]), id=f"{i.id}-{o.id}") for i in INPUTS for o in OUTPUTS]


@pytest.mark.parametrize("assigned", COMBINATIONS, indirect=True)
def test_assign_keeps_every_input_column(assigned):
    frame, columns, _ = assigned
    assert [c for c in columns if c not in frame.columns] == []
    expected = _site_frame().set_index("site_id", drop=False)
    assert sorted(frame.index) == sorted(expected.index)
    for col in ("备注", "priority"):
        assert [str(v) for v in frame.loc[expected.index, col]] == [str(v) for v in expected[col]], col


@pytest.mark.parametrize("assigned", COMBINATIONS, indirect=True)
def test_assign_adds_the_assignment_columns(assigned):
    frame, _, _ = assigned
    assert [c for c in ADDED if c not in frame.columns] == []
    assert "error" not in frame.columns


def _truthy(v):
    return v is True or v == 1 or str(v).lower() in ("true", "1")


@pytest.mark.parametrize("assigned", COMBINATIONS, indirect=True)
def test_assign_agrees_with_lookup_rules(assigned, demo_frames):
    frame, _, _ = assigned
    for site_id, lon, lat, _ in SITES:
        row = frame.loc[site_id]
        want = expected_lead(demo_frames, lon, lat, AS_OF)
        assert _truthy(row["covered"]) == (want is not None), site_id
        if want is None:
            assert row["lead_planner_id"] is None or pd.isna(row["lead_planner_id"])
            assert float(row["nearest_distance_m"]) > 0 and row["nearest_zone_code"]
        else:
            assert (row["lead_planner_id"], row["lead_zone_kind"], row["lead_zone_code"]) == want, site_id
        zones = {(z["kind"], z["code"]) for z in as_list(row["zones"])}
        assert zones == zones_at(demo_frames, lon, lat, AS_OF), site_id


@pytest.mark.parametrize("assigned", [pytest.param((_in_csv_lonlat("utf-8"), ".csv"), id="csv")], indirect=True)
def test_assign_csv_writes_lists_as_json(assigned, demo_frames):
    frame, _, _ = assigned
    row = frame.loc["S1"]
    consulted = {(c["planner_id"], c["zone_code"]) for c in json.loads(row["consultations"])}
    ha = active_appointees(demo_frames["appointments"], "historic_area", "HA-001", AS_OF)
    assert consulted == {(p, "HA-001") for p in ha}
    assert {p["role"] for p in json.loads(row["planners"])} >= {"lead", "consultant"}
    assert json.loads(frame.loc["S5", "zones"]) == []


def test_assign_csv_keeps_lon_lat_and_adds_no_geometry_column(demo_template, tmp_path, capsys):
    path, extra, columns = _in_csv_lonlat("utf-8")(tmp_path)
    out = tmp_path / "out.csv"
    assert cli(capsys, "assign", path, *extra, "--out", out, "--store", demo_template).rc == 0
    header = pd.read_csv(out, nrows=0).columns.tolist()
    assert header == columns + ADDED


def test_assign_geojson_to_csv_adds_wkt(demo_template, tmp_path, capsys):
    path, extra, _ = _in_geojson(tmp_path)
    out = tmp_path / "out.csv"
    assert cli(capsys, "assign", path, *extra, "--out", out, "--store", demo_template).rc == 0
    frame = pd.read_csv(out, dtype=str).set_index("site_id")
    point = shapely.from_wkt(frame.loc["S2", "wkt"])
    assert (point.x, point.y) == pytest.approx((104.0657, 30.6570), abs=1e-8)


def test_assign_polygon_site_spanning_zones_is_split(demo_template, demo_frames, tmp_path, capsys):
    """A square across the border of two subdistricts: every subdistrict it touches is matched with its share
    of the square (area in the UTM zone), and the lead comes from the one holding the most of it."""
    a, b = "510105001", "510105002"
    c = _subdistrict(demo_frames, a).intersection(_subdistrict(demo_frames, b)).representative_point()
    square = shapely.box(c.x - 0.002, c.y - 0.0015, c.x + 0.001, c.y + 0.0015)
    path = tmp_path / "site.csv"
    pd.DataFrame({"site_id": ["Q"], "wkt": [square.wkt]}).to_csv(path, index=False)
    out = tmp_path / "out.csv"
    assert cli(capsys, "assign", path, "--crs", "wgs84", "--as-of", AS_OF, "--out", out,
               "--store", demo_template).rc == 0
    row = pd.read_csv(out, dtype=str).iloc[0]
    crs = 32648
    subs = zones_in_force(demo_frames["zones"], AS_OF)
    subs = subs[subs["kind"] == "subdistrict"].to_crs(crs)
    metric = gpd.GeoSeries([square], crs=4326).to_crs(crs).iloc[0]
    shares = {code: g.intersection(metric).area / metric.area for code, g in zip(subs["code"], subs.geometry)}
    shares = {code: v for code, v in shares.items() if v > 0}
    assert {a, b} <= set(shares)
    got = {z["code"]: z["share"] for z in json.loads(row["zones"]) if z["kind"] == "subdistrict"}
    assert set(got) == set(shares)
    for code, share in shares.items():
        assert got[code] == pytest.approx(share, abs=1e-4), code
    leads = active_leads(demo_frames["appointments"], AS_OF)
    led = {code: v for code, v in shares.items() if ("subdistrict", code) in leads}
    assert row["lead_zone_code"] == max(led, key=led.get)
    assert row["split"] == str(max(led.values()) < 0.9)


BAD_SITES = [  # (lon, lat, words in the error for that row)
    pytest.param("30.6570", "104.0657", ["swapped"], id="swapped"),
    pytest.param("", "", ["empty or missing"], id="empty"),
    pytest.param("200", "30.6", ["out of range"], id="out-of-range"),
    pytest.param("abc", "30.6", ["empty or missing"], id="not-a-number"),
]


@pytest.mark.parametrize("lon, lat, words", BAD_SITES)
def test_assign_bad_row_exits_2_listing_it_and_writes_nothing(demo_template, tmp_path, capsys, lon, lat, words):
    path = tmp_path / "sites.csv"
    path.write_text(f"site_id,lon,lat\nA,104.05,30.66\nB,{lon},{lat}\nC,104.06,30.65\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    run = cli(capsys, "assign", path, "--crs", "wgs84", "--out", out, "--store", demo_template)
    assert run.rc == 2
    assert "sites.csv" in run.err and "1 site(s)" in run.err
    row_line = next(l for l in run.err.splitlines() if l.strip().startswith("row "))
    assert row_line.strip().startswith("row 3:")  # line 3 of the file (the header is line 1)
    for word in words:
        assert word in row_line
    assert not out.exists()


def test_assign_lists_every_bad_row(demo_template, tmp_path, capsys):
    path = tmp_path / "sites.csv"
    path.write_text("site_id,lon,lat\nA,104.05,30.66\nB,30.66,104.05\nC,,\nD,104.06,30.65\nE,200,30\n",
                    encoding="utf-8")
    run = cli(capsys, "assign", path, "--crs", "wgs84", "--out", tmp_path / "o.csv", "--store", demo_template)
    assert run.rc == 2
    rows = [l.strip().split(":")[0] for l in run.err.splitlines() if l.strip().startswith("row ")]
    assert rows == ["row 3", "row 4", "row 6"]


def test_assign_skip_bad_writes_an_error_column(demo_template, tmp_path, capsys):
    path = tmp_path / "sites.csv"
    path.write_text("site_id,lon,lat\nA,104.0530,30.6695\nB,30.66,104.05\nC,,\nD,104.4200,30.8400\n",
                    encoding="utf-8")
    out = tmp_path / "out.csv"
    run = cli(capsys, "assign", path, "--crs", "wgs84", "--skip-bad", "--as-of", AS_OF, "--out", out,
              "--store", demo_template)
    assert run.rc == 0, run.text
    frame = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("site_id")
    assert list(frame.index) == ["A", "B", "C", "D"]
    assert frame.loc["A", "error"] == "" and frame.loc["D", "error"] == ""
    assert "swapped" in frame.loc["B", "error"] and "empty" in frame.loc["C", "error"]
    assert frame.loc["A", "covered"] == "True" and frame.loc["B", "covered"] == "False"
    assert frame.loc["B", "lead_planner_id"] == "" and frame.loc["D", "nearest_zone_code"] != ""


def test_assign_with_gcj02_input_matches_wgs84(demo_template, tmp_path, capsys):
    f = _site_frame()
    gx, gy = wgs84_to_gcj02(f["lon"].to_numpy(), f["lat"].to_numpy())
    shifted = f.assign(lon=gx, lat=gy)
    (tmp_path / "w.csv").write_text(f.to_csv(index=False), encoding="utf-8")
    (tmp_path / "g.csv").write_text(shifted.to_csv(index=False), encoding="utf-8")
    for name, crs in (("w", "wgs84"), ("g", "gcj02")):
        assert cli(capsys, "assign", tmp_path / f"{name}.csv", "--crs", crs, "--as-of", AS_OF,
                   "--out", tmp_path / f"{name}_out.csv", "--store", demo_template).rc == 0
    a = pd.read_csv(tmp_path / "w_out.csv", dtype=str)
    b = pd.read_csv(tmp_path / "g_out.csv", dtype=str)
    assert a[ADDED].equals(b[ADDED])


# -- 100,000 random points, checked against an independent point-in-polygon computation --------------
N_RANDOM = 100_000
BIG_AS_OF = "2025-09-01"


@pytest.fixture(scope="module")
def random_assignment(demo_template, demo_frames, tmp_path_factory):
    import contextlib
    import io

    from zeren.api.cli.main import main

    folder = tmp_path_factory.mktemp("random")
    minx, miny, maxx, maxy = demo_frames["zones"].total_bounds
    rng = np.random.default_rng(20250901)
    lon, lat = rng.uniform(minx, maxx, N_RANDOM), rng.uniform(miny, maxy, N_RANDOM)
    path = folder / "random.csv"
    pd.DataFrame({"n": np.arange(N_RANDOM), "lon": lon, "lat": lat}).to_csv(path, index=False)
    out = folder / "random_out.csv"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["assign", str(path), "--crs", "wgs84", "--as-of", BIG_AS_OF, "--out", str(out),
                     "--store", str(demo_template)]) == 0
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    got["n"] = got["n"].astype("int64")
    points = gpd.GeoDataFrame({"n": np.arange(N_RANDOM)}, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    return points, got.set_index("n").sort_index()


@pytest.fixture(scope="module")
def independent(random_assignment, demo_frames):
    """Zones, lead and consultations of every point by geopandas.sjoin + the appointment table."""
    points, _ = random_assignment
    zones = zones_in_force(demo_frames["zones"], BIG_AS_OF)[["kind", "code", "geometry"]].reset_index(drop=True)
    pairs = gpd.sjoin(points, zones, predicate="intersects", how="inner")[["n", "kind", "code"]]
    leads = active_leads(demo_frames["appointments"], BIG_AS_OF)
    level = {k: i for i, k in enumerate(BASE_ORDER)}
    pairs = pairs.assign(level=pairs["kind"].map(level),
                         lead=[leads.get((k, c)) for k, c in zip(pairs["kind"], pairs["code"])])
    led = pairs[pairs["level"].notna() & pairs["lead"].notna()].sort_values(["n", "level", "code"])
    first = led.drop_duplicates("n").set_index("n")
    lead = pd.DataFrame({"planner": first["lead"], "kind": first["kind"], "code": first["code"]})
    consult = pairs[pairs["kind"].isin(CONSULTING_KINDS)]
    return pairs, lead.reindex(np.arange(N_RANDOM)), consult


def test_random_points_cover_every_case(independent):
    pairs, lead, _ = independent
    covered = lead["planner"].notna()
    assert 0.2 < covered.mean() < 0.8  # covered and uncovered points both plentiful
    assert set(lead.loc[covered, "kind"]) == {"subdistrict", "district"}  # incl. district fall-backs
    assert (pairs["kind"] == "historic_area").any()


def test_random_points_covered_flag_agrees(random_assignment, independent):
    _, got = random_assignment
    _, lead, _ = independent
    assert (got["covered"] == "True").to_numpy().tolist() == lead["planner"].notna().to_numpy().tolist()


def test_random_points_lead_agrees_exactly(random_assignment, independent):
    _, got = random_assignment
    _, lead, _ = independent
    want = lead.fillna("").astype(str)
    mismatch = ((got["lead_planner_id"] != want["planner"]) | (got["lead_zone_kind"] != want["kind"])
                | (got["lead_zone_code"] != want["code"]))
    assert int(mismatch.sum()) == 0, got[mismatch].head()


def test_random_points_zones_agree_exactly(random_assignment, independent):
    _, got = random_assignment
    pairs, _, _ = independent
    want = pairs.groupby("n").apply(lambda g: sorted(zip(g["kind"], g["code"])), include_groups=False)
    want = want.reindex(np.arange(N_RANDOM)).apply(lambda v: v if isinstance(v, list) else [])
    have = [sorted((z["kind"], z["code"]) for z in json.loads(v)) for v in got["zones"]]
    bad = [i for i, (a, b) in enumerate(zip(have, want)) if a != b]
    assert bad == []


def test_random_points_consultations_agree_exactly(random_assignment, independent, demo_frames):
    _, got = random_assignment
    _, _, consult = independent
    people = {(k, c): active_appointees(demo_frames["appointments"], k, c, BIG_AS_OF)
              for k, c in set(zip(consult["kind"], consult["code"]))}
    want = {n: set() for n in range(N_RANDOM)}
    for n, k, c in zip(consult["n"], consult["kind"], consult["code"]):
        want[n] |= {(p, c) for p in people[(k, c)]}
    rows = np.flatnonzero(got["consultations"].to_numpy() != "[]")
    have = {n: set() for n in range(N_RANDOM)}
    for n in rows:
        have[n] = {(c["planner_id"], c["zone_code"]) for c in json.loads(got["consultations"].iat[n])}
    assert have == want


def test_random_uncovered_points_get_the_nearest_zone_with_a_lead(random_assignment, independent, demo_frames):
    points, got = random_assignment
    _, lead, _ = independent
    uncovered = lead["planner"].isna().to_numpy()
    candidates, leads, crs = _lead_candidates(demo_frames, BIG_AS_OF)
    sites = points[uncovered].to_crs(crs).reset_index(drop=True)
    closest = gpd.sjoin_nearest(sites, candidates, distance_col="d").groupby("n")["d"].min()
    near = gpd.sjoin(sites, candidates, predicate="dwithin",
                     distance=closest.reindex(sites["n"]).to_numpy() + NEAREST_TIE_M)
    near = near.sort_values(["n", "level", "code"]).drop_duplicates("n").set_index("n")
    assert list(near.index) == list(sites["n"])
    chosen = candidates.geometry.to_numpy()[near["index_right"].to_numpy()]
    metres = shapely.distance(sites.geometry.to_numpy(), chosen)
    # a site outside every zone in force is offered no nearest zone farther than 50 km (offered_nearest)
    in_force = zones_in_force(demo_frames["zones"], BIG_AS_OF)
    inside = shapely.STRtree(in_force.geometry.to_numpy()).query(
        points[uncovered].geometry.to_numpy(), predicate="intersects")[0]
    offered = ~(~np.isin(np.arange(len(sites)), inside) & (np.round(metres, 1) > MAX_SUGGESTION_M))
    have = got[uncovered]
    assert list(have["nearest_zone_code"]) == [c if o else "" for c, o in zip(near["code"], offered)]
    assert list(have["nearest_planner_id"]) == [leads[(k, c)] if o else ""
                                                for k, c, o in zip(near["kind"], near["code"], offered)]
    distance = have["nearest_distance_m"][offered].astype(float).to_numpy()
    assert np.abs(distance - metres[offered]).max() <= 0.05 + 1e-6
    assert (have["nearest_distance_m"][~offered] == "").all()
    assert (got.loc[~uncovered, "nearest_zone_code"] == "").all()


def test_assign_refuses_input_columns_it_would_overwrite(demo_template, tmp_path, capsys):
    sites = tmp_path / "clash.csv"
    sites.write_text("lon,lat,covered\n104.0530,30.6695,yes\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    run = cli(capsys, "assign", sites, "--crs", "wgs84", "--out", out, "--store", demo_template)
    assert run.rc == 2 and "covered" in run.err and "rename" in run.err
    assert not out.exists()
