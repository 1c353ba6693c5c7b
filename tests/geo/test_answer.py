"""geo.answer on the tiny city of test_assign: the fast answer equals the plain one it replaced, the precomputed
pieces are built once, an empty index answers, and the prepared zones are used one thread at a time."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import shapely

import zeren.geo.assign as geo_assign
from zeren.geo.answer import PlannerBook, assignment_columns, site_answer
from zeren.geo.assign import ZoneIndex, assign
from zeren.geo.errors import GeoInputError
from tests.geo import _reference
from tests.geo.test_assign import APPOINTMENTS, CITY, D, X0, Y0, appts, pt, run, zones_frame

PLANNERS = pd.DataFrame([{"id": p, "name": f"名{p}", "organization": "org", "disciplines": ["planning"],
                          "public_contact": "pub", "private_contact": "SECRET"}
                         for p in ("PD", "P1", "P2", "P3", "PC", "PH", "PHc", "PR", "PM", "OLD", "NEW")])
HANDOVER = pd.concat([APPOINTMENTS, appts([("OLD", "subdistrict", "S4", "lead", "2024-01-01", "2025-03-01"),
                                           ("NEW", "subdistrict", "S4", "lead", "2025-03-01"),
                                           ("PM2", "historic_area", "H1", "member")])], ignore_index=True)


@pytest.fixture(scope="module")
def index():
    return ZoneIndex(CITY)


def random_points(rng, n):
    return shapely.points(X0 + rng.uniform(-0.6, 2.6, n) * D, Y0 + rng.uniform(-0.6, 2.6, n) * D)


def random_boxes(rng, n):
    x, y = rng.uniform(-0.4, 2.2, n), rng.uniform(-0.4, 2.2, n)
    w, h = rng.uniform(0.02, 0.9, n), rng.uniform(0.02, 0.9, n)
    return shapely.box(X0 + x * D, Y0 + y * D, X0 + (x + w) * D, Y0 + (y + h) * D)


def random_lines(rng, n):
    x, y = rng.uniform(-0.4, 2.4, (2, n)), rng.uniform(-0.4, 2.4, (2, n))
    return np.array([shapely.LineString([(X0 + x[0, i] * D, Y0 + y[0, i] * D), (X0 + x[1, i] * D, Y0 + y[1, i] * D)])
                     for i in range(n)], dtype=object)


BORDER_POINTS = [pt(0.7, 1.0), pt(1.0, 1.0), pt(1.0, 0.4), pt(2.0, 2.0), pt(0.0, 0.5), pt(0.2, 0.35)]


@pytest.mark.parametrize("as_of", ["2024-12-31", "2025-03-01", "2025-06-30"])
@pytest.mark.parametrize("include_private", [False, True])
def test_site_answer_is_the_plain_answer(index, as_of, include_private):
    """Points (covered, uncovered, on borders and corners), boxes and lines, one batch and one by one."""
    rng = np.random.default_rng(11)
    book = PlannerBook(PLANNERS, include_private=include_private)
    sites = np.concatenate([random_points(rng, 120), np.array(BORDER_POINTS, dtype=object),
                            random_boxes(rng, 40), random_lines(rng, 30)])
    result = run(index, sites, as_of=as_of, appointments=HANDOVER)
    uncovered = 0
    for i in range(len(sites)):
        expected = _reference.site_answer(result, i, book, sites)
        assert site_answer(result, i, book) == expected, i
        uncovered += not expected["covered"]
    assert 10 < uncovered < len(sites) - 10
    for i in range(0, len(sites), 7):  # alone, as a lookup computes it
        single = run(index, [sites[i]], as_of=as_of, appointments=HANDOVER)
        assert site_answer(single, 0, book) == _reference.site_answer(single, 0, book, [sites[i]])


def test_answers_own_their_dicts(index):
    result = run(index, [pt(0.3, 0.3)])
    answer = site_answer(result, 0, PlannerBook(PLANNERS))
    answer["lead"]["zone"]["name"] = "changed"
    answer["zones"][0]["code"] = "changed"
    again = site_answer(result, 0, PlannerBook(PLANNERS))
    assert again["lead"]["zone"]["name"] == "名C1" and again["zones"][0]["code"] == "C1"
    assert index.zone_ref(0) is not index.zone_ref(0)


def test_zone_refs_without_or_with_missing_english_names():
    frame = CITY.copy()
    frame["name_en"] = [None, "Sub one", np.nan, None, None, None, "Old town", None]
    refs = ZoneIndex(frame).zone_refs
    assert [r["name_en"] for r in refs] == [None, "Sub one", None, None, None, None, "Old town", None]
    assert all(r["name_en"] is None for r in ZoneIndex(CITY.drop(columns="name_en")).zone_refs)
    for pos, ref in enumerate(ZoneIndex(frame).zone_refs):
        assert ref == _reference.zone_ref(ZoneIndex(frame), pos)


def test_nearest_tree_is_built_once_per_date(index, monkeypatch):
    built = []
    real = shapely.STRtree

    def counting(geoms, *args, **kwargs):
        # geometries in the tree; for the boundary lines of the nearest-zone search, their segments
        lines = len(geoms) and all(shapely.get_type_id(np.asarray(geoms)) == 1)
        built.append(int((shapely.get_num_coordinates(geoms) - 1).sum()) if lines else len(geoms))
        return real(geoms, *args, **kwargs)

    monkeypatch.setattr(geo_assign.shapely, "STRtree", counting)
    resp = index.responsibility(APPOINTMENTS, "2025-01-01")
    far = [pt(2.5, 0.5), pt(-0.5, 1.5), pt(3.0, 3.0)]
    first = [int(assign(index, resp, np.array([p], dtype=object)).nearest_zone[0]) for p in far]
    second = [int(assign(index, resp, np.array([p], dtype=object)).nearest_zone[0]) for p in far]
    n_led = int((resp.lead_key != geo_assign.NO_LEAD).sum())
    assert built == [n_led]  # a few sites: one lon/lat tree of the led zones, nothing projected
    assert first == second and min(first) >= 0
    many = np.array(far * (geo_assign._FEW_NEAREST // len(far) + 1), dtype=object)  # a batch: the metric trees
    batch = assign(index, resp, many).nearest_zone
    led = index.metric_geoms[resp.lead_key != geo_assign.NO_LEAD]
    # the led zones' boundaries, a border two led zones share kept once (either direction)
    segments = len({tuple(sorted((a, b))) for g in led for ring in [g.exterior, *g.interiors]
                    for a, b in zip(ring.coords[:-1], ring.coords[1:])}) if all(
        g.geom_type == "Polygon" for g in led) else None
    assert len(built) == 2 and (segments is None or built[1] == segments)
    assert batch.tolist() == first * (len(many) // len(far)) + first[:len(many) % len(far)]
    assert resp.lead_segments is resp.lead_segments
    assign(index, index.responsibility(APPOINTMENTS, "2025-01-02"), np.array(far, dtype=object))
    assert len(built) == 3  # another date, another tree


def test_responsibility_of_another_index_is_refused(index):
    other = ZoneIndex(CITY)
    with pytest.raises(GeoInputError, match="another zone index"):
        assign(index, other.responsibility(APPOINTMENTS, "2025-01-01"), np.array([pt(0.5, 0.5)], dtype=object))


def test_empty_index_answers_every_site_uncovered():
    index = ZoneIndex(CITY.iloc[:0])
    resp = index.responsibility(APPOINTMENTS, "2025-01-01")
    sites = np.array([pt(0.5, 0.5), pt(5, 5), shapely.box(X0, Y0, X0 + D, Y0 + D)], dtype=object)
    result = assign(index, resp, sites)
    cols = assignment_columns(result)
    assert len(cols) == 3 and not cols["covered"].any()
    for col in ("lead_planner_id", "lead_zone_kind", "lead_zone_code", "nearest_zone_code", "nearest_planner_id"):
        assert cols[col].tolist() == [None, None, None], col
    assert cols["zones"].tolist() == [[], [], []] and cols["nearest_distance_m"].isna().all()
    answer = site_answer(result, 1, PlannerBook(PLANNERS))
    assert answer == {"covered": False, "lead": None, "planners": [], "consultations": [], "zones": [],
                      "split": False, "nearest": None}
    assert len(assignment_columns(assign(index, resp, sites[:0]))) == 0


def test_columns_of_covered_and_uncovered_sites(index):
    result = run(index, [pt(1.5, 0.2), pt(2.5, 0.5), pt(1.5, 1.2)])
    cols = assignment_columns(result)
    assert cols["lead_zone_code"].tolist() == ["S2", None, "D1"]
    assert cols["lead_planner_id"].tolist() == ["P2", None, "PD"]
    assert cols["nearest_zone_code"].tolist() == [None, "S2", None]
    assert cols["nearest_planner_id"].tolist() == [None, "P2", None]


# -- threads: the prepared zones ------------------------------------------------------------------
class CountingLock:
    def __init__(self):
        self._lock = threading.Lock()
        self.entered = 0

    def __enter__(self):
        self._lock.acquire()
        self.entered += 1
        return self

    def __exit__(self, *exc):
        self._lock.release()


def test_prepared_zones_are_used_under_the_lock():
    index = ZoneIndex(CITY)
    index.prepared_lock = lock = CountingLock()
    resp = index.responsibility(APPOINTMENTS, "2025-01-01")
    assign(index, resp, np.array([pt(0.5, 0.5)], dtype=object))  # a lookup: the tree only
    assert lock.entered == 0
    assign(index, resp, random_boxes(np.random.default_rng(1), 5))  # shares: "covers" with the prepared zones
    assert lock.entered == 1
    index.point_grid  # noqa: B018 - built: batches of points now take it, under the lock
    assign(index, resp, random_points(np.random.default_rng(2), geo_assign._GRID_MIN_SITES))
    assert lock.entered == 2
    assign(index, resp, random_points(np.random.default_rng(3), 3))  # small batches still take the tree
    assert lock.entered == 2


def test_small_batches_match_the_same_zones_with_or_without_the_grid():
    plain, gridded = ZoneIndex(CITY), ZoneIndex(CITY)
    gridded.point_grid  # noqa: B018
    points = np.concatenate([random_points(np.random.default_rng(4), 300), np.array(BORDER_POINTS, dtype=object)])
    for sites in (points[:1], points[:5], points):
        a = run(plain, sites)
        b = run(gridded, sites)
        assert sorted(zip(a.pair_site.tolist(), a.pair_zone.tolist())) == \
            sorted(zip(b.pair_site.tolist(), b.pair_zone.tolist()))
        assert a.lead_zone.tolist() == b.lead_zone.tolist()


def test_threads_sharing_one_index_get_the_serial_answers():
    index = ZoneIndex(CITY)
    resp = index.responsibility(HANDOVER, "2025-06-30")
    rng = np.random.default_rng(8)
    batches = [random_boxes(rng, 40), random_lines(rng, 40), random_points(rng, 600), random_points(rng, 1)] * 4
    book = PlannerBook(PLANNERS)

    def answers(sites):
        result = assign(index, resp, sites)
        return [site_answer(result, i, book) for i in range(len(sites))]

    serial = [answers(b) for b in batches]
    index.point_grid  # noqa: B018 - from here on the big point batches go through the grid
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(answers, batches))
    for s, t in zip(serial, threaded):
        assert [a["lead"] for a in s] == [a["lead"] for a in t]
        assert [sorted(z["code"] for z in a["zones"]) for a in s] == [sorted(z["code"] for z in a["zones"]) for a in t]
        assert [a["zones"] for a in s] == [a["zones"] for a in t]


def test_edition_change_keeps_refs_per_position():
    old = ("subdistrict", "S1", shapely.box(X0, Y0, X0 + D, Y0 + D), "2020-01-01", "2025-01-01")
    new = ("subdistrict", "S1", shapely.box(X0, Y0, X0 + 2 * D, Y0 + D), "2025-01-01")
    index = ZoneIndex(zones_frame([old, new]))
    a = appts([("P1", "subdistrict", "S1", "lead", "2020-01-01")])
    result = run(index, [pt(1.5, 0.5)], as_of="2025-01-01", appointments=a)
    answer = site_answer(result, 0, PlannerBook(PLANNERS))
    assert answer == _reference.site_answer(result, 0, PlannerBook(PLANNERS), [pt(1.5, 0.5)])
    assert answer["lead"]["zone"] == {"kind": "subdistrict", "code": "S1", "name": "名S1", "name_en": None}


def test_assignment_columns_are_the_declared_ones():
    from zeren.geo.answer import ASSIGNMENT_COLUMNS, assignment_columns
    from zeren.geo.assign import ZoneIndex, assign
    from tests.geo.test_assign import APPOINTMENTS, CITY, pt

    index = ZoneIndex(CITY)
    result = assign(index, index.responsibility(APPOINTMENTS, "2025-01-01"), np.array([pt(0.5, 0.5)], dtype=object))
    assert tuple(assignment_columns(result).columns) == ASSIGNMENT_COLUMNS


@pytest.mark.parametrize("per_piece", [2, 3])
def test_nearest_zone_over_boundary_lines_is_the_one_over_single_segments(monkeypatch, per_piece):
    """Runs of a ring's segments kept as one line each give the same nearest zones and the same distances (bit
    for bit) as one segment a line, on zones whose rings have many vertices and shared, partly deduplicated
    borders; uncovered points all around them and in a zone without a lead."""
    rng = np.random.default_rng(5)
    city = CITY.copy()
    city["geometry"] = shapely.segmentize(city.geometry.to_numpy(), D / 7)  # shared borders: the same vertices
    points = random_points(rng, 3000)
    answers = []
    for k in (1, per_piece):
        monkeypatch.setattr(geo_assign, "_SEGMENTS_PER_PIECE", k)
        index = ZoneIndex(city)
        resp = index.responsibility(APPOINTMENTS, "2025-03-01")
        result = assign(index, resp, points)
        answers.append((result.nearest_zone, result.nearest_distance_m))
        zone_of, tree = resp.lead_segments
        assert len(zone_of) == len(tree.geometries)
        if k > 1:
            assert (shapely.get_num_coordinates(tree.geometries) > 2).any()
    assert (answers[0][0] >= 0).sum() > 300
    assert np.array_equal(answers[0][0], answers[1][0])
    assert np.array_equal(answers[0][1], answers[1][1], equal_nan=True)


@pytest.mark.parametrize("collide", [False, True], ids=["hashed", "every-hash-equal"])
def test_first_of_shared_keeps_one_copy_per_segment_the_first_ranked(monkeypatch, collide):
    """Shared segments (either direction, -0.0 as 0.0) keep the copy of the zone ranked first, against a plain
    dictionary over the rows; also when every hash collides (the exact sort decides then)."""
    from zeren.geo import assign as geo_assign

    rng = np.random.default_rng(4)
    base = np.round(rng.uniform(-2, 2, (300, 2, 2)), 1)  # coarse: many repeated ends
    base[:20, 0] = [0.0, 0.0]
    picks = rng.integers(0, len(base), 2000)
    ends = base[picks].copy()
    flip = rng.random(len(ends)) < 0.5
    ends[flip] = ends[flip][:, ::-1]
    ends[:50][ends[:50] == 0.0] = -0.0
    rank = rng.integers(0, 40, len(ends))
    best = {}
    for i, ((ax, ay), (bx, by)) in enumerate(ends.tolist()):
        key = tuple(sorted([(ax + 0.0, ay + 0.0), (bx + 0.0, by + 0.0)]))
        if key not in best or (rank[i], i) < best[key]:
            best[key] = (rank[i], i)
    expected = sorted(i for _, i in best.values())
    if collide:
        monkeypatch.setattr(geo_assign.pd, "factorize", lambda h: (np.zeros(len(h), dtype=np.intp), h[:1]))
    assert geo_assign._first_of_shared(ends, rank).tolist() == expected
