"""The geometric building blocks of geo.coverage, on hand-made shapes with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import box

from zeren.geo.coverage import _prep


def _same(pieces, expected):
    got = shapely.union_all(pieces) if len(pieces) else shapely.Polygon()
    assert shapely.area(shapely.symmetric_difference(got, expected)) == pytest.approx(0, abs=1e-9)
    assert sum(shapely.area(pieces)) == pytest.approx(shapely.area(expected))
    assert len(pieces) == len(shapely.get_parts(expected))


def test_subtract_equals_difference_with_holes_islands_and_nesting():
    ring = box(0, 0, 10, 10).difference(box(2, 2, 8, 8))  # a part with a hole
    island = box(3, 3, 7, 7).difference(box(4, 4, 6, 6))  # an island in that hole, with its own hole
    inner = box(4.5, 4.5, 5.5, 5.5)  # an island in the island's hole
    union = shapely.MultiPolygon([ring, island, inner])
    assert shapely.is_valid(union)
    for territory in (box(-1, -1, 11, 11), box(-1, -1, 11, 11).difference(box(4.8, 4.8, 5.2, 5.2)),
                      box(1, 1, 9, 6), box(5, 5, 20, 20)):
        _same(_prep.subtract(territory, union), shapely.difference(territory, union))


def test_subtract_with_an_empty_union():
    territory = box(0, 0, 1, 1)
    _same(_prep.subtract(territory, shapely.Polygon()), territory)


def test_union_polygons_verifies_the_coverage():
    top = shapely.Polygon([(0, 1), (1, 1), (2, 1), (2, 2), (0, 2)])  # noded where the two below meet
    tiles = np.array([box(0, 0, 1, 1), box(1, 0, 2, 1), top], dtype=object)
    union, method = _prep.union_polygons(tiles)
    assert method == "coverage_union" and union.equals(box(0, 0, 2, 2))
    t_junction = np.array([box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 2, 2)], dtype=object)
    union, method = _prep.union_polygons(t_junction)  # not a valid coverage: union_all, same answer
    assert method == "union_all" and union.equals(box(0, 0, 2, 2))
    overlapping = np.array([box(0, 0, 2, 2), box(1, 0, 3, 2)], dtype=object)  # GEOS alone lets this through
    union, method = _prep.union_polygons(overlapping)
    assert method == "union_all" and union.equals(box(0, 0, 3, 2))
    assert _prep.union_polygons(overlapping, fallback=False) == (None, "not_a_coverage")
    nested = np.array([box(0, 0, 4, 4), box(1, 1, 2, 2)], dtype=object)
    assert _prep.union_polygons(nested)[1] == "union_all"


def test_join_codes():
    out = _prep.join_codes(np.array(["b", "a", "a", "c"], dtype=object), np.array([0, 0, 0, 2]), 4)
    assert out.tolist() == ["a,b", "", "c", ""]


def test_repair_reports_and_fixes():
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    geoms = np.array([box(0, 0, 1, 1), bowtie, None, shapely.LineString([(0, 0), (1, 1)]),
                      shapely.GeometryCollection([box(2, 2, 3, 3), shapely.Point(0, 0)])], dtype=object)
    fixed, problems = _prep.repair(geoms, "subdistrict", np.array(list("abcde"), dtype=object))
    assert problems["code"].tolist() == ["b", "c", "d", "e"]
    assert shapely.is_valid(fixed[1]) and fixed[1].area == pytest.approx(0.5)
    assert fixed[2] is None and fixed[3] is None and fixed[4].equals(box(2, 2, 3, 3))
    # the costly validity test can be limited to some geometries
    _, problems = _prep.repair(geoms, "subdistrict", np.array(list("abcde"), dtype=object),
                               check=np.array([True, False, True, True, True]))
    assert "b" not in set(problems["code"])


@pytest.mark.parametrize("seed", range(6))
def test_subtract_equals_difference_on_random_tilings(seed):
    rng = np.random.default_rng(seed)
    points = shapely.multipoints(rng.uniform(0, 100, (400, 2)))
    cells = shapely.clip_by_rect(shapely.get_parts(shapely.voronoi_polygons(points, extend_to=box(0, 0, 100, 100))),
                                 0, 0, 100, 100)
    led = cells[rng.random(len(cells)) < rng.uniform(0.3, 0.95)]
    union, method = _prep.union_polygons(led)
    assert method == "coverage_union"
    x0, y0 = rng.uniform(-10, 40, 2)
    for territory in (box(0, 0, 100, 100), box(x0, y0, x0 + 60, y0 + 50),
                      box(0, 0, 100, 100).difference(shapely.Point(50, 50).buffer(15))):
        _same(_prep.subtract(territory, union), shapely.difference(territory, union))


def _lonlat_tiling(seed, n=300, box_=(104.0, 30.6, 104.1, 30.7)):
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = box_
    points = shapely.multipoints(rng.uniform((x0, y0), (x1, y1), (n, 2)))
    cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=box(*box_)))
    return shapely.clip_by_rect(cells, *box_), rng


@pytest.mark.parametrize("seed", range(4))
def test_uncovered_ground_equals_plain_difference(seed):
    from pyproj import CRS

    from zeren.geo.coverage.gaps import uncovered_ground

    cells, rng = _lonlat_tiling(seed)
    led = rng.random(len(cells)) < 0.8
    metric = _prep.Metric(CRS.from_epsg(32648))
    codes = np.array([f"c{i}" for i in range(len(cells))], dtype=object)
    exact_territory = shapely.coverage_union_all(cells)  # as a district layer dissolved from the cells
    wider = box(103.99, 30.59, 104.11, 30.71)  # ground outside every cell
    for territory, bare_expected in ((exact_territory, False), (wider, True)):
        ground = uncovered_ground(territory, cells, led, "subdistrict", codes, metric)
        assert ground.method == "coverage_union"
        expected = metric(shapely.difference(territory, shapely.union_all(cells[led])))
        pieces = metric(np.concatenate([ground.unit_pieces, ground.bare_pieces]))
        assert shapely.area(pieces).sum() == pytest.approx(expected.area, rel=1e-9)
        assert shapely.union_all(pieces).symmetric_difference(expected).area < 1e-6 * expected.area
        assert (len(ground.bare_pieces) > 0) == bare_expected
        clusters = shapely.get_parts(shapely.coverage_union_all(cells[~led]))
        assert len(ground.unit_pieces) == len(clusters)
    # overlapping units: the slow path, same answer
    broken = cells.copy()
    broken[0] = shapely.buffer(broken[0], 0.002)
    ground = uncovered_ground(exact_territory, broken, led, "subdistrict", codes, metric)
    assert ground.method == "union_all"
    expected = metric(shapely.difference(exact_territory, shapely.union_all(broken[led])))
    pieces = np.concatenate([ground.unit_projected, ground.bare_projected])
    assert shapely.area(pieces).sum() == pytest.approx(expected.area, rel=1e-6)
