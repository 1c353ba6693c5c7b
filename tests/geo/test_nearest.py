"""geo.nearest.near_pairs against the brute force (every point measured against every geometry), on the real
Chengdu subdistricts in UTM: the same pairs and the same distances through every path (cells, crowded cells
cut in four, one query per point) and on degenerate inputs."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

import zeren.geo.nearest as nearest
from zeren.geo.nearest import near_pairs

GPKG = Path(__file__).resolve().parents[2] / "data" / "chengdu_hangzhou.gpkg"
SLACK = 1.0


def brute(geoms, x, y, slack=SLACK):
    """Every (point, geometry) pair within slack of the point's nearest geometry, with shapely's distance."""
    d = shapely.distance(shapely.points(x, y)[:, None], geoms[None, :])
    s, g = np.nonzero(d <= np.nanmin(d, axis=1)[:, None] + slack)
    return _sorted(s, g, d[s, g])


def _sorted(s, g, d):
    order = np.lexsort((g, s))
    return np.asarray(s)[order], np.asarray(g)[order], np.asarray(d)[order]


def assert_brute(tree, x, y, slack=SLACK):
    got = _sorted(*near_pairs(tree, x, y, slack))
    want = brute(tree.geometries, x, y, slack)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])  # the same GEOS distances, to the last bit
    return got


@pytest.fixture(scope="module")
def chengdu():
    """(boundary lines of the real Chengdu subdistricts in UTM 48N, the subdistrict polygons in UTM 48N)."""
    zones = gpd.read_file(GPKG, layer="subdistricts_chengdu").set_crs(4326, allow_override=True).to_crs(32648)
    polygons = np.asarray(zones.geometry.array, dtype=object)
    lines = shapely.get_parts(shapely.boundary(polygons))
    return lines, polygons


def _outside(polygons, n, seed, margin=20_000):
    """n random points in the zones' bounds widened by ``margin`` metres, none inside a zone."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = shapely.total_bounds(polygons)
    x = rng.uniform(minx - margin, maxx + margin, 4 * n)
    y = rng.uniform(miny - margin, maxy + margin, 4 * n)
    inside = shapely.STRtree(polygons).query(shapely.points(x, y), predicate="within")[0]
    keep = np.setdiff1d(np.arange(4 * n), inside)[:n]
    return x[keep], y[keep]


def test_the_pairs_and_distances_of_the_brute_force_on_real_boundaries(chengdu):
    lines, polygons = chengdu
    x, y = _outside(polygons, 3000, seed=1)
    s, g, d = assert_brute(shapely.STRtree(lines), x, y)
    assert set(s.tolist()) == set(range(len(x)))  # every point has its nearest
    assert len(s) > len(x)  # shared borders: ties within a metre exist and are all found


def test_polygons_as_well_as_lines(chengdu):
    _, polygons = chengdu
    x, y = _outside(polygons, 1500, seed=2, margin=5_000)
    assert_brute(shapely.STRtree(polygons), x, y, slack=50.0)


def test_crowded_cells_and_the_one_query_per_point_fallback_give_the_same_pairs(chengdu, monkeypatch):
    lines, polygons = chengdu
    x, y = _outside(polygons, 2000, seed=3, margin=2_000)
    tree = shapely.STRtree(lines)
    calls = {"cells": 0, "alone": 0}
    by_cells, one_by_one = nearest._by_cells, nearest._one_by_one

    def count_cells(*a):
        found, rest = by_cells(*a)
        calls["cells"] += 1
        return found, rest

    def count_alone(tree, points, x, y, todo, slack):
        calls["alone"] += len(todo)
        return one_by_one(tree, points, x, y, todo, slack)

    monkeypatch.setattr(nearest, "_by_cells", count_cells)
    monkeypatch.setattr(nearest, "_one_by_one", count_alone)
    monkeypatch.setattr(nearest, "_cells_pay", lambda *a: True)  # every level tried, whatever the probe says
    monkeypatch.setattr(nearest, "MAX_CANDIDATES", 3)  # most cells crowded: cut in four, then point by point
    assert_brute(tree, x, y)
    assert calls["cells"] == nearest.LEVELS and 0 < calls["alone"] < len(x)
    monkeypatch.setattr(nearest, "MAX_CANDIDATES", 0)  # every cell crowded: the fallback answers all
    calls["alone"] = 0
    assert_brute(tree, x, y)
    assert calls["alone"] == len(x)


def test_degenerate_inputs(chengdu):
    lines, polygons = chengdu
    tree = shapely.STRtree(lines)
    x0, y0 = _outside(polygons, 1, seed=4)
    assert_brute(tree, np.repeat(x0, 50), np.repeat(y0, 50))  # one place: no cell has an area
    xs = np.linspace(x0[0], x0[0] + 30_000, 40)
    assert_brute(tree, xs, np.full(40, y0[0]))  # points on a line
    assert_brute(tree, x0, y0)  # a single point
    s, g, d = near_pairs(tree, np.array([x0[0], np.inf]), np.array([y0[0], 0.0]), SLACK)
    assert set(s.tolist()) == {0}  # a coordinate a projection overflowed: no pair, and the others answered
    empty = near_pairs(shapely.STRtree(np.array([], dtype=object)), x0, y0, SLACK)
    assert all(len(a) == 0 for a in empty)
    assert all(len(a) == 0 for a in near_pairs(tree, np.zeros(0), np.zeros(0), SLACK))


def test_the_probe_sends_crowded_points_one_by_one_and_spread_ones_to_cells(chengdu, monkeypatch):
    """Points far outside the city take cells; points in a band a few metres from many boundaries (every
    cell crowded) are answered one query each, and both give the brute force's pairs."""
    lines, polygons = chengdu
    tree = shapely.STRtree(lines)
    used = []
    by_cells = nearest._by_cells
    monkeypatch.setattr(nearest, "_by_cells", lambda *a: used.append(len(a[4])) or by_cells(*a))
    far_x, far_y = _outside(polygons, 2000, seed=5, margin=40_000)
    assert_brute(tree, far_x, far_y)
    assert used and used[0] == 2000
    used.clear()
    rng = np.random.default_rng(6)
    anchor = shapely.get_coordinates(shapely.line_interpolate_point(lines, 0.5, normalized=True))
    x, y = anchor[:, 0] + rng.uniform(-2, 2, len(anchor)), anchor[:, 1] + rng.uniform(-2, 2, len(anchor))
    monkeypatch.setattr(nearest, "MAX_CANDIDATES", 1)
    assert_brute(tree, x, y)
    assert not used


@pytest.mark.parametrize("slack", [0.0, SLACK, 50.0])
def test_the_vertex_bound_gives_the_pairs_of_the_brute_force(chengdu, monkeypatch, slack):
    """Many points left for one query each take the bound of their nearest vertex (a k-d tree) instead of the
    tree's nearest search: near boundaries (ties of shared borders, points on vertices), far outside, and
    against polygons, the pairs and the distances are the brute force's."""
    lines, polygons = chengdu
    monkeypatch.setattr(nearest, "_cells_pay", lambda *a: False)  # every point one query each
    monkeypatch.setattr(nearest, "VERTEX_BOUND_MIN", 1)
    rng = np.random.default_rng(7)
    mid = shapely.get_coordinates(shapely.line_interpolate_point(lines, 0.5, normalized=True))
    vertices = shapely.get_coordinates(lines)[rng.choice(len(shapely.get_coordinates(lines)), 300)]
    far_x, far_y = _outside(polygons, 1000, seed=8, margin=30_000)
    x = np.concatenate([mid[:, 0] + rng.uniform(-3, 3, len(mid)), vertices[:, 0], far_x])
    y = np.concatenate([mid[:, 1] + rng.uniform(-3, 3, len(mid)), vertices[:, 1], far_y])
    tree = shapely.STRtree(lines)
    assert tree not in nearest._VERTEX_TREES
    s, _, d = assert_brute(tree, x, y, slack)
    assert tree in nearest._VERTEX_TREES  # the bound was used, and its k-d tree is kept for the next call
    assert set(s.tolist()) == set(range(len(x)))
    assert (d[np.isin(s, np.arange(len(mid), len(mid) + 300))] == 0).any()  # points on vertices: distance 0
    assert_brute(tree, far_x, far_y, slack)  # the kept k-d tree
    px, py = _outside(polygons, 800, seed=9, margin=5_000)
    assert_brute(shapely.STRtree(polygons), px, py, slack)


def test_the_vertex_trees_go_with_their_trees(chengdu, monkeypatch):
    import gc

    lines, polygons = chengdu
    monkeypatch.setattr(nearest, "_cells_pay", lambda *a: False)
    monkeypatch.setattr(nearest, "VERTEX_BOUND_MIN", 1)
    x, y = _outside(polygons, 50, seed=10)
    before = len(nearest._VERTEX_TREES)
    tree = shapely.STRtree(lines[:500])
    near_pairs(tree, x, y, SLACK)
    assert len(nearest._VERTEX_TREES) == before + 1
    del tree
    gc.collect()
    assert len(nearest._VERTEX_TREES) == before
    # a tree of more vertices than the bound may hold gets none: the nearest search answers, the same pairs
    monkeypatch.setattr(nearest, "VERTEX_BOUND_MAX", 100)
    big = shapely.STRtree(lines)
    assert_brute(big, x, y)
    assert big in nearest._VERTEX_TREES and nearest._VERTEX_TREES[big] is None
    # a tree of empty geometries has no vertex to bound with: the nearest search answers (no pair at all)
    empty = shapely.STRtree(np.array([shapely.LineString()], dtype=object))
    assert all(len(a) == 0 for a in near_pairs(empty, x, y, SLACK))
