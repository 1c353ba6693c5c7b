"""Assignment rules on tiny synthetic layers near Chengdu, one behaviour per test."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from zeren.geo.answer import PlannerBook, assignment_columns, site_answer
from zeren.geo.assign import ZoneIndex, assign
from zeren.geo.errors import GeoInputError

X0, Y0, D = 104.00, 30.60, 0.01  # a 0.01° grid (about 1 km)
GPKG = Path(__file__).resolve().parents[2] / "data" / "chengdu_hangzhou.gpkg"


def cell(ix, iy, w=1, h=1):
    return shapely.box(X0 + ix * D, Y0 + iy * D, X0 + (ix + w) * D, Y0 + (iy + h) * D)


def zones_frame(rows):
    """rows: (kind, code, geometry[, valid_from, valid_to])"""
    recs = []
    for r in rows:
        kind, code, geom = r[:3]
        vf = r[3] if len(r) > 3 else "2024-01-01"
        vt = r[4] if len(r) > 4 else None
        recs.append({"kind": kind, "code": code, "name": f"名{code}", "name_en": None, "parent_code": None,
                     "edition": 2024, "valid_from": pd.Timestamp(vf), "valid_to": pd.Timestamp(vt) if vt else pd.NaT,
                     "population": pd.NA, "attrs": {}, "geometry": geom})
    frame = gpd.GeoDataFrame(recs, geometry="geometry", crs="EPSG:4326")
    frame["population"] = frame["population"].astype("Int64")
    return frame


def appts(rows):
    """rows: (planner, kind, code, role[, start, end])"""
    recs = []
    for i, r in enumerate(rows):
        start = r[4] if len(r) > 4 else "2024-01-01"
        end = r[5] if len(r) > 5 else None
        recs.append({"id": i, "planner_id": r[0], "zone_kind": r[1], "zone_code": r[2], "role": r[3],
                     "start": pd.Timestamp(start), "end": pd.Timestamp(end) if end else pd.NaT})
    return pd.DataFrame(recs)


# A district of 2x2 subdistricts; one community inside S1; a historic area over the S1/S2 border;
# a renewal area (does not oblige consultation) inside S4.
CITY = zones_frame([
    ("district", "D1", cell(0, 0, 2, 2)),
    ("subdistrict", "S1", cell(0, 0)), ("subdistrict", "S2", cell(1, 0)),
    ("subdistrict", "S3", cell(0, 1)), ("subdistrict", "S4", cell(1, 1)),
    ("community", "C1", shapely.box(X0 + 0.2 * D, Y0 + 0.2 * D, X0 + 0.5 * D, Y0 + 0.5 * D)),
    ("historic_area", "H1", shapely.box(X0 + 0.8 * D, Y0 + 0.3 * D, X0 + 1.2 * D, Y0 + 0.6 * D)),
    ("renewal_area", "R1", shapely.box(X0 + 1.4 * D, Y0 + 1.4 * D, X0 + 1.6 * D, Y0 + 1.6 * D)),
])
APPOINTMENTS = appts([
    ("PD", "district", "D1", "lead"),
    ("P1", "subdistrict", "S1", "lead"), ("P2", "subdistrict", "S2", "lead"),
    ("P3", "subdistrict", "S3", "lead"),  # S4 has no lead: falls back to the district
    ("PC", "community", "C1", "lead"),
    ("PH", "historic_area", "H1", "lead"), ("PHc", "historic_area", "H1", "consultant"),
    ("PR", "renewal_area", "R1", "lead"),
    ("PM", "subdistrict", "S1", "member"),
])


@pytest.fixture(scope="module")
def index():
    return ZoneIndex(CITY)


def run(index, geoms, as_of="2025-01-01", appointments=APPOINTMENTS, **kw):
    resp = index.responsibility(appointments, as_of)
    return assign(index, resp, np.array(geoms, dtype=object), **kw)


def lead_of(result, i=0):
    z = result.lead_zone[i]
    return None if z < 0 else (result.index.code[z], result.resp.lead_planner[z])


def pt(fx, fy):
    """A point at fractional grid coordinates."""
    return shapely.Point(X0 + fx * D, Y0 + fy * D)


LEAD_CASES = {
    "inside S2": (pt(1.5, 0.2), ("S2", "P2")),
    "community beats subdistrict": (pt(0.3, 0.3), ("C1", "PC")),
    "S4 without lead falls back to district": (pt(1.5, 1.2), ("D1", "PD")),
    "shared S1/S3 border: lowest code": (pt(0.7, 1.0), ("S1", "P1")),
    "corner of four subdistricts: lowest code": (pt(1.0, 1.0), ("S1", "P1")),
}


@pytest.mark.parametrize("name", LEAD_CASES)
def test_lead_rule(index, name):
    site, expected = LEAD_CASES[name]
    assert lead_of(run(index, [site])) == expected


def test_point_on_shared_border_matches_both_zones(index):
    result = run(index, [pt(0.7, 1.0)])
    assert {result.index.code[z] for z in result.pair_zone} == {"D1", "S1", "S3"}


def test_corner_point_matches_all_four_subdistricts(index):
    result = run(index, [pt(1.0, 1.0)])
    subs = {result.index.code[z] for z in result.pair_zone if result.index.kind[z] == "subdistrict"}
    assert subs == {"S1", "S2", "S3", "S4"}


def test_point_outside_every_zone_gets_nearest_with_distance(index):
    site = pt(2.5, 0.5)  # half a cell east of the district
    result = run(index, [site])
    assert lead_of(result) is None
    nearest = result.index.code[result.nearest_zone[0]]
    assert nearest in {"S2", "D1"}  # both are 0.5 cells away; lowest lead rank: subdistrict S2 first
    assert nearest == "S2"
    _, _, expected = Geod(ellps="WGS84").inv(X0 + 2.5 * D, Y0 + 0.5 * D, X0 + 2 * D, Y0 + 0.5 * D)
    assert result.nearest_distance_m[0] == pytest.approx(abs(expected), rel=0.005)


def test_polygon_lead_is_largest_share_and_split(index):
    site = shapely.box(X0 + 0.7 * D, Y0 + 0.1 * D, X0 + 1.1 * D, Y0 + 0.2 * D)  # 3/4 in S1, 1/4 in S2
    result = run(index, [site])
    shares = {result.index.code[z]: s for z, s in zip(result.pair_zone, result.pair_share)}
    assert shares["S1"] == pytest.approx(0.75, abs=0.01)
    assert shares["S2"] == pytest.approx(0.25, abs=0.01)
    assert shares["D1"] == pytest.approx(1.0)
    assert lead_of(result) == ("S1", "P1")
    assert result.split[0]  # no subdistrict holds 90%


def test_polygon_mostly_in_one_zone_is_not_split(index):
    site = shapely.box(X0 + 0.5 * D, Y0 + 0.6 * D, X0 + 1.04 * D, Y0 + 0.8 * D)  # 50/54 in S1
    result = run(index, [site])
    assert lead_of(result) == ("S1", "P1")
    assert not result.split[0]


def test_line_share_is_by_length(index):
    line = shapely.LineString([(X0 + 0.5 * D, Y0 + 0.9 * D), (X0 + 0.5 * D, Y0 + 1.3 * D)])  # 1/4 in S1? no: 0.1 vs 0.3
    result = run(index, [line])
    shares = {result.index.code[z]: s for z, s in zip(result.pair_zone, result.pair_share)}
    assert shares["S1"] == pytest.approx(0.25, abs=0.01)
    assert shares["S3"] == pytest.approx(0.75, abs=0.01)
    assert lead_of(result) == ("S3", "P3")


def test_consultation_only_for_obliging_overlay_kinds(index):
    historic = run(index, [pt(0.9, 0.4)])
    _, zones, planners = historic.consultation_pairs()
    assert set(planners) == {"PH", "PHc"}
    renewal = run(index, [pt(1.5, 1.5)])
    assert len(renewal.consultation_pairs()[0]) == 0
    _, _, all_planners, _ = renewal.planner_pairs()
    assert "PR" in set(all_planners)  # still listed among the planners here


def test_consultation_kinds_are_data(index):
    resp = index.responsibility(APPOINTMENTS, "2025-01-01", consultation_kinds=("renewal_area",))
    result = assign(index, resp, np.array([pt(1.5, 1.5)], dtype=object))
    assert set(result.consultation_pairs()[2]) == {"PR"}


@pytest.mark.parametrize("as_of, expected", [
    ("2024-12-31", ("S2", "OLD")),   # before the handover
    ("2025-03-01", ("S2", "NEW")),   # start inclusive / end exclusive: the new lead on the day
    ("2025-02-28", ("S2", "OLD")),
])
def test_as_of_honours_both_ends(index, as_of, expected):
    handover = appts([("OLD", "subdistrict", "S2", "lead", "2024-01-01", "2025-03-01"),
                      ("NEW", "subdistrict", "S2", "lead", "2025-03-01")])
    assert lead_of(run(index, [pt(1.5, 0.5)], as_of=as_of, appointments=handover)) == expected


def test_edition_windows_pick_the_zone_in_force():
    old = ("subdistrict", "S1", cell(0, 0), "2020-01-01", "2025-01-01")
    new = ("subdistrict", "S1", cell(0, 0, 2, 1), "2025-01-01")
    index = ZoneIndex(zones_frame([old, new]))
    a = appts([("P1", "subdistrict", "S1", "lead", "2020-01-01")])
    east = pt(1.5, 0.5)  # only in the 2025 edition
    assert lead_of(run(index, [east], as_of="2024-12-31", appointments=a)) is None
    assert lead_of(run(index, [east], as_of="2025-01-01", appointments=a)) == ("S1", "P1")


@pytest.mark.parametrize("bad", [None, shapely.Point(), shapely.Polygon()], ids=["missing", "empty point", "empty polygon"])
def test_missing_or_empty_sites_are_refused(index, bad):
    with pytest.raises(GeoInputError):
        run(index, [pt(0.5, 0.5), bad])


def test_site_answer_shape_and_no_private_contact(index):
    planners = pd.DataFrame([{"id": p, "name": p, "organization": "org", "disciplines": ["planning"],
                              "public_contact": "pub", "private_contact": "SECRET"}
                             for p in ("PD", "P1", "P2", "P3", "PC", "PH", "PHc", "PR", "PM")])
    result = run(index, [pt(0.9, 0.4)])
    answer = site_answer(result, 0, PlannerBook(planners))
    assert set(answer) == {"covered", "lead", "planners", "consultations", "zones", "split", "nearest"}
    assert answer["lead"]["zone"]["code"] == "S1" and answer["lead"]["planner"]["id"] == "P1"
    assert {c["planner"]["id"] for c in answer["consultations"]} == {"PH", "PHc"}
    assert [z["code"] for z in answer["zones"]] == ["S1", "D1", "H1"]  # most specific first
    assert "SECRET" not in repr(answer)
    assert "SECRET" in repr(site_answer(result, 0, PlannerBook(planners, include_private=True)))


def test_bulk_columns_match_single_answers(index):
    rng = np.random.default_rng(5)
    sites = shapely.points(X0 + rng.uniform(-0.2, 2.2, 500) * D, Y0 + rng.uniform(-0.2, 2.2, 500) * D)
    result = run(index, sites)
    cols = assignment_columns(result)
    for i in range(0, 500, 37):
        single = run(index, [sites[i]])
        assert cols["covered"].iat[i] == bool(single.lead_zone[0] >= 0)
        assert cols["lead_zone_code"].iat[i] == (single.index.code[single.lead_zone[0]] if single.lead_zone[0] >= 0 else None)


# -- properties ---------------------------------------------------------------------------------
coords = st.floats(min_value=-0.3, max_value=2.3, allow_nan=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(coords, coords), min_size=1, max_size=40), st.randoms())
def test_results_do_not_depend_on_row_order(index, xy, rnd):
    sites = np.array([pt(x, y) for x, y in xy], dtype=object)
    perm = list(range(len(sites)))
    rnd.shuffle(perm)
    a = run(index, sites)
    b = run(index, sites[perm])
    assert list(a.lead_zone[perm]) == list(b.lead_zone)
    shuffled_zones = ZoneIndex(CITY.sample(frac=1, random_state=rnd.randint(0, 99)))
    c = run(shuffled_zones, sites)
    codes_a = [a.index.code[z] if z >= 0 else None for z in a.lead_zone]
    codes_c = [c.index.code[z] if z >= 0 else None for z in c.lead_zone]
    assert codes_a == codes_c


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(coords, coords, st.floats(0.05, 1.5), st.floats(0.05, 1.5))
def test_shares_over_a_tiling_sum_to_at_most_one(index, x, y, w, h):
    site = shapely.box(X0 + x * D, Y0 + y * D, X0 + (x + w) * D, Y0 + (y + h) * D)
    result = run(index, [site])
    subs = index.kind[result.pair_zone] == "subdistrict"
    total = result.pair_share[subs].sum()
    assert total <= 1 + 1e-6
    inside = shapely.intersection(site, cell(0, 0, 2, 2)).area / site.area
    assert total == pytest.approx(inside, abs=0.01)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 1), st.integers(0, 1), st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_point_strictly_inside_one_base_zone_gets_exactly_it(index, ix, iy, fx, fy):
    result = run(index, [pt(ix + fx, iy + fy)])
    subs = [index.code[z] for z in result.pair_zone if index.kind[z] == "subdistrict"]
    assert subs == [f"S{1 + ix + 2 * iy}"]


def test_large_batches_of_polygons_and_lines_match_the_tree_path_exactly():
    """A batch large enough to use the point grid for lines and polygons (sites inside clean cells take their
    cell's zones, share 1, no predicate) gives the same pairs, shares, leads and splits as the tree path,
    on the real Chengdu districts and subdistricts."""
    import zeren.geo.assign as geo_assign

    subdistricts = gpd.read_file(GPKG, layer="subdistricts_chengdu").to_crs(4326)
    districts = gpd.read_file(GPKG, layer="districts_chengdu").to_crs(4326)
    frame = pd.concat([subdistricts.assign(kind="subdistrict"), districts.assign(kind="district")],
                      ignore_index=True)
    zones = zones_frame([(k, str(c), g) for k, c, g in zip(frame["kind"], frame["code"], frame.geometry)])
    leads = appts([("P1", k, str(c), "lead") for k, c in zip(frame["kind"][::2], frame["code"][::2])])
    rng = np.random.default_rng(11)
    minx, miny, maxx, maxy = zones.total_bounds
    n = 6_000
    cx, cy = rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)
    r = rng.uniform(0.0005, 0.02, n)
    sites = np.empty(n, dtype=object)
    sites[: n // 2] = shapely.buffer(shapely.points(cx[: n // 2], cy[: n // 2]), r[: n // 2], quad_segs=3)
    sites[n // 2:] = shapely.linestrings(np.stack([np.column_stack([cx[n // 2:], cy[n // 2:]]),
                                                   np.column_stack([cx[n // 2:] + r[n // 2:], cy[n // 2:]])], 1))

    def result(use_grid: bool):
        index = ZoneIndex(zones)
        resp = index.responsibility(leads, "2025-01-01")
        saved = geo_assign._GRID_MIN_BOXES
        geo_assign._GRID_MIN_BOXES = 1 if use_grid else 10 ** 9
        try:
            out = assign(index, resp, sites)
        finally:
            geo_assign._GRID_MIN_BOXES = saved
        assert ("point_grid" in vars(index)) is use_grid
        order = np.lexsort((out.pair_zone, out.pair_site))
        return out, order

    (fast, fo), (tree, to) = result(True), result(False)
    np.testing.assert_array_equal(fast.pair_site[fo], tree.pair_site[to])
    np.testing.assert_array_equal(fast.pair_zone[fo], tree.pair_zone[to])
    np.testing.assert_allclose(fast.pair_share[fo], tree.pair_share[to], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fast.lead_zone, tree.lead_zone)
    np.testing.assert_array_equal(fast.split, tree.split)
    grid = fast.index.point_grid
    held = grid.box_labels(shapely.bounds(sites)) > 0
    assert 0.1 * n < held.sum() < n  # the fast path really answered part of the batch


def _chengdu_half_led():
    subdistricts = gpd.read_file(GPKG, layer="subdistricts_chengdu").to_crs(4326)
    zones = zones_frame([("subdistrict", str(c), g) for c, g in zip(subdistricts["code"], subdistricts.geometry)])
    leads = appts([("P1", "subdistrict", str(c), "lead") for c in subdistricts["code"][::2]])
    index = ZoneIndex(zones)
    return index, index.responsibility(leads, "2025-01-01")


def test_the_nearest_zone_of_a_batch_is_each_point_s_own_nearest_zone():
    """A batch's nearest zones (cells of points, geo.nearest) against each point asked alone (the lon/lat
    search of a few sites), on the real Chengdu subdistricts with every other one led: the same zone, the
    same distance."""
    from zeren.geo.assign import assign_xy

    index, resp = _chengdu_half_led()
    rng = np.random.default_rng(12)
    minx, miny, maxx, maxy = index.zones.total_bounds
    lon, lat = rng.uniform(minx - 0.3, maxx + 0.3, 60_000), rng.uniform(miny - 0.3, maxy + 0.3, 60_000)
    batch = assign_xy(index, resp, lon, lat)
    uncovered = np.flatnonzero(batch.lead_zone < 0)
    assert len(uncovered) > 10_000  # outside the city and in the unled half
    assert (batch.nearest_zone[uncovered] >= 0).all()
    for i in uncovered[::400]:
        alone = assign(index, resp, np.array([shapely.Point(lon[i], lat[i])], dtype=object))
        assert alone.nearest_zone[0] == batch.nearest_zone[i]
        assert alone.nearest_distance_m[0] == pytest.approx(batch.nearest_distance_m[i], rel=1e-9, abs=1e-6)


def test_a_batch_from_the_far_side_of_the_globe_is_answered_without_a_nearest_zone():
    """Points and polygons the metric CRS projects to infinity (lon -170 for a CRS of Chengdu) get no nearest
    zone, in a batch as alone, and the rest of the batch is answered (this raised a GEOS error before)."""
    from zeren.geo.assign import assign_xy

    index, resp = _chengdu_half_led()
    lon = np.r_[np.full(100, -170.0), np.full(100, 104.5)]
    lat = np.r_[np.linspace(-10, 10, 100), np.linspace(30.0, 30.1, 100)]
    squares = shapely.buffer(shapely.points(lon, lat), 0.001)
    for sites, result in ((shapely.points(lon, lat), assign_xy(index, resp, lon, lat)),
                          (squares, assign(index, resp, squares))):
        lost = ~np.isfinite(shapely.bounds(index.to_metric(sites))).all(axis=1)
        assert 20 < lost.sum() < 100 and not lost[100:].any()
        assert (result.nearest_zone[lost] == -1).all() and np.isnan(result.nearest_distance_m[lost]).all()
        assert (result.nearest_zone[~lost] >= 0).all() and (result.lead_zone[~lost] < 0).all()
