"""Tests for geo.pointgrid: PointGrid.query must give exactly the pairs of the plain STRtree "covers" join."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPoint, MultiPolygon, Point, Polygon, box

from zeren.geo.pointgrid import PointGrid, components4, covers_pairs

GPKG = Path(__file__).resolve().parents[2] / "data" / "chengdu_hangzhou.gpkg"


def plain_join(zones, points) -> np.ndarray:
    """The reference: (point, zone) pairs of shapely.STRtree(points).query(zones, predicate="covers")."""
    zones = np.asarray(zones, dtype=object)
    points = np.asarray(points, dtype=object)
    if not len(zones) or not len(points):
        return np.zeros((0, 2), np.int64)
    zone, point = shapely.STRtree(points).query(zones, predicate="covers")
    return _pairs(point, zone)


def _pairs(point, zone) -> np.ndarray:
    pairs = np.column_stack([np.asarray(point, np.int64), np.asarray(zone, np.int64)])
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else pairs.reshape(0, 2)


def assert_same_as_plain(grid: PointGrid, points, zones=None) -> np.ndarray:
    zones = grid.zones if zones is None else zones
    point, zone = grid.query(points)
    assert point.dtype == np.intp and zone.dtype == np.intp
    got = _pairs(point, zone)
    # no pair twice: the clean and the exact parts never overlap
    assert len(np.unique(got, axis=0)) == len(got)
    want = plain_join(zones, points)
    np.testing.assert_array_equal(got, want)
    return got


def boundary_points(zones) -> np.ndarray:
    """Every vertex of every ring of the zones, and the midpoint of every segment."""
    rings = shapely.get_rings(shapely.get_parts(np.asarray(zones, dtype=object)))
    coords, which = shapely.get_coordinates(rings, return_index=True)
    same = which[1:] == which[:-1]
    mids = (coords[:-1][same] + coords[1:][same]) / 2
    xy = np.unique(np.vstack([coords, mids]), axis=0)
    return shapely.points(xy)


def grid_line_points(grid: PointGrid, rng, n: int) -> np.ndarray:
    """Points exactly on the grid's cell edges and corners (as the grid computes them)."""
    ny, nx = grid.shape
    i = rng.integers(0, nx + 1, n)
    j = rng.integers(0, ny + 1, n)
    x = grid.origin[0] + i * grid.cell
    y = grid.origin[1] + j * grid.cell
    fx = rng.uniform(0, nx * grid.cell, n) + grid.origin[0]
    fy = rng.uniform(0, ny * grid.cell, n) + grid.origin[1]
    which = rng.integers(0, 3, n)  # 0: corner, 1: on a vertical edge, 2: on a horizontal edge
    return shapely.points(np.where(which == 2, fx, x), np.where(which == 1, fy, y))


# --- the real Chengdu zones -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chengdu_zones() -> np.ndarray:
    subdistricts = gpd.read_file(GPKG, layer="subdistricts_chengdu")
    districts = gpd.read_file(GPKG, layer="districts_chengdu")
    assert subdistricts.crs.to_epsg() == 4490 and districts.crs.to_epsg() == 4490
    return np.concatenate([subdistricts.geometry.to_numpy(), districts.geometry.to_numpy()]).astype(object)


@pytest.fixture(scope="module")
def chengdu_grid(chengdu_zones) -> PointGrid:
    return PointGrid(chengdu_zones)


def test_chengdu_random_points(chengdu_zones, chengdu_grid):
    rng = np.random.default_rng(20240601)
    minx, miny, maxx, maxy = shapely.total_bounds(chengdu_zones)
    points = shapely.points(rng.uniform(minx, maxx, 200_000), rng.uniform(miny, maxy, 200_000))
    got = assert_same_as_plain(chengdu_grid, points)
    assert len(got) > 200_000  # most points are in a subdistrict and its district
    # the grid does its job: most cells are clean and the components carry the zones
    assert chengdu_grid.dirty_fraction < 0.1
    assert chengdu_grid.n_components >= len(chengdu_zones)


def test_chengdu_points_on_borders_and_vertices(chengdu_zones, chengdu_grid):
    points = boundary_points(chengdu_zones)
    got = assert_same_as_plain(chengdu_grid, points)
    # vertices on shared borders match several zones
    assert np.bincount(got[:, 0]).max() >= 3


def test_chengdu_points_on_grid_lines_and_near_vertices(chengdu_zones, chengdu_grid):
    rng = np.random.default_rng(7)
    on_lines = grid_line_points(chengdu_grid, rng, 50_000)
    vertices = shapely.get_coordinates(boundary_points(chengdu_zones))
    pick = vertices[rng.integers(0, len(vertices), 20_000)]
    step = rng.choice([-1, 1], pick.shape) * rng.choice([1e-13, 1e-11, 1e-9, 1e-7], pick.shape)
    nudged = shapely.points(pick + step)
    assert_same_as_plain(chengdu_grid, np.concatenate([on_lines, nudged]))


@pytest.mark.parametrize("max_cells", [16, 1_000, 100_000])
def test_chengdu_coarse_grids(chengdu_zones, max_cells):
    grid = PointGrid(chengdu_zones, max_cells=max_cells)
    assert grid.shape[0] * grid.shape[1] <= 2 * max_cells
    rng = np.random.default_rng(max_cells)
    minx, miny, maxx, maxy = shapely.total_bounds(chengdu_zones)
    points = np.concatenate([
        shapely.points(rng.uniform(minx, maxx, 20_000), rng.uniform(miny, maxy, 20_000)),
        grid_line_points(grid, rng, 5_000),
        boundary_points(chengdu_zones[:30]),
    ])
    assert_same_as_plain(grid, points)


def test_parallel_and_serial_exact_joins_agree(chengdu_zones):
    # enough dirty points to take the two-thread branch of query
    grid = PointGrid(chengdu_zones, max_cells=2_000, workers=2)
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = shapely.total_bounds(chengdu_zones)
    points = shapely.points(rng.uniform(minx, maxx, 60_000), rng.uniform(miny, maxy, 60_000))
    assert_same_as_plain(grid, points)
    one_thread = PointGrid(chengdu_zones, max_cells=2_000, workers=1)
    np.testing.assert_array_equal(_pairs(*one_thread.query(points)), _pairs(*grid.query(points)))


# --- holes, multipolygons, odd inputs -------------------------------------------------------------------

def holes_and_parts() -> np.ndarray:
    outer = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(2, 2), (2, 5), (5, 5), (5, 2)],
                                                          [(6, 6), (6, 8.5), (8.5, 8.5), (8.5, 6)]])
    hole_filler = box(2, 2, 5, 5)  # fills the first hole exactly: shares its boundary
    island = Polygon([(6.5, 6.5), (8, 6.5), (8, 8), (6.5, 8)])  # inside the second hole, not touching it
    multi = MultiPolygon([box(12, 0, 14, 2), box(14, 2, 16, 4),  # two parts touching at a corner
                          Polygon([(12, 5), (16, 5), (16, 9), (12, 9)], [[(13, 6), (15, 6), (14, 8)]])])
    overlay = shapely.buffer(Point(5, 5), 3.0)  # overlaps everything around the first hole
    return np.array([outer, hole_filler, island, multi, overlay], dtype=object)


@pytest.mark.parametrize("max_cells", [16, 400, 1 << 16])
def test_holes_and_multipolygons(max_cells):
    zones = holes_and_parts()
    grid = PointGrid(zones, max_cells=max_cells)
    rng = np.random.default_rng(11)
    points = np.concatenate([
        shapely.points(rng.uniform(-1, 17, 30_000), rng.uniform(-1, 11, 30_000)),
        boundary_points(zones),
        grid_line_points(grid, rng, 5_000),
        shapely.points([(3, 3), (7, 7), (7.25, 7.25), (6.25, 6.25), (14, 2), (14, 7), (13.5, 6.5), (14, 6)]),
    ])
    got = assert_same_as_plain(grid, points)
    # the checks above are against shapely; spot-check the meaning too
    hits = {int(p): set(got[got[:, 0] == p, 1]) for p in range(len(points) - 8, len(points))}
    base = len(points) - 8
    assert hits[base + 0] == {1, 4}  # in the first hole: the filler and the overlay, not the outer polygon
    assert hits[base + 1] == {2, 4}  # on the island inside the second hole, and the overlay
    assert hits[base + 3] == {4}  # in the second hole off the island: only the overlay
    assert hits[base + 4] == {3}  # the corner where two parts of the multipolygon touch


def test_points_off_the_grid_nan_missing_empty_and_multipoints():
    zones = holes_and_parts()
    grid = PointGrid(zones, max_cells=4096)
    got = assert_same_as_plain(grid, odd_points())
    assert not (got[:, 0] < 16).any()  # nothing matches the off-grid, NaN, missing and empty points
    assert {16, 18, 19, 20, 21, 22, 23} <= set(got[:, 0])


def odd_points() -> np.ndarray:
    nan, inf = float("nan"), float("inf")
    return np.array([
        Point(-1e9, 5), Point(1e9, 5), Point(5, -1e9), Point(5, 1e9), Point(-1, -1), Point(17, 11),
        Point(nan, nan), Point(nan, 5), Point(5, nan), Point(inf, 5), Point(-inf, -inf),
        None, Point(), MultiPoint(), Polygon(), LineString(),
        MultiPoint([(3, 3), (4, 4)]),  # covered by the hole filler and the overlay as a whole
        MultiPoint([(3, 3), (30, 30)]),  # not covered by anything
        MultiPoint([(1, 1)]),
        shapely.GeometryCollection([Point(1, 1)]),
        LineString([(2, 2), (5, 2)]),  # along the hole's edge: covered by outer, filler and overlay
        box(0.5, 0.5, 1, 1),
        Point(1, 1, 7),  # a Z coordinate is ignored
        Point(0, 0),
    ], dtype=object)


def test_covers_pairs_on_odd_inputs():
    zones = holes_and_parts()
    shapely.prepare(zones)
    points = odd_points()
    for workers in (1, 2):
        np.testing.assert_array_equal(_pairs(*covers_pairs(zones, points, workers)), plain_join(zones, points))
    # zones without finite bounds: no grid, everything through covers_pairs
    odd_zones = np.concatenate([zones, np.array([box(0, 0, float("inf"), 1)], dtype=object)])
    grid = PointGrid(odd_zones)
    assert grid.labels is None
    assert_same_as_plain(grid, np.concatenate([points, shapely.points([(0.5, 0.5), (1e300, 0.5), (3, 3)])]))


def test_empty_inputs():
    zones = holes_and_parts()
    grid = PointGrid(zones)
    point, zone = grid.query(np.array([], dtype=object))
    assert point.shape == zone.shape == (0,) and point.dtype == np.intp
    no_zones = PointGrid(np.array([], dtype=object))
    point, zone = no_zones.query(shapely.points(np.random.default_rng(0).uniform(0, 1, (100, 2))))
    assert len(point) == len(zone) == 0
    only_empty = PointGrid(np.array([None, Polygon()], dtype=object))
    assert len(only_empty.query(shapely.points([(0, 0), (1, 1)]))[0]) == 0


@pytest.mark.parametrize("zones", [
    [box(3, 4, 5, 6)],  # one zone
    [box(0, 0, 1, 1e-9)],  # very thin
    [box(0, 0, 1e-9, 1), box(1e-9, 0, 2e-9, 1)],  # very thin, two zones sharing an edge
    [box(100.5, 30.25, 100.5, 30.25)],  # degenerate: a point
    [LineString([(0, 0), (1, 0)]), Point(0.5, 0)],  # not polygons: covered only on the line and the point
    [box(0, 0, 1, 1), Point(5, 5), MultiPoint([(2, 3), (4, 1)])],  # lone points as zones
    [box(1e7, 3e6, 1e7 + 1, 3e6 + 1)],  # large coordinates, small extent
])
@pytest.mark.parametrize("max_cells", [16, 1 << 20])
def test_degenerate_bounds(zones, max_cells):
    zones = np.array(zones, dtype=object)
    grid = PointGrid(zones, max_cells=max_cells)
    minx, miny, maxx, maxy = shapely.total_bounds(zones)
    rng = np.random.default_rng(5)
    w, h = max(maxx - minx, 1e-9), max(maxy - miny, 1e-9)
    points = np.concatenate([
        shapely.points(rng.uniform(minx - w, maxx + w, 5_000), rng.uniform(miny - h, maxy + h, 5_000)),
        shapely.points(rng.uniform(minx, maxx, 5_000), rng.uniform(miny, maxy, 5_000)),
        shapely.points(shapely.get_coordinates(zones)),
        shapely.points([(minx, miny), (maxx, maxy), (minx, maxy), (maxx, miny),
                        ((minx + maxx) / 2, (miny + maxy) / 2)]),
        grid_line_points(grid, rng, 2_000),
    ])
    assert_same_as_plain(grid, points)


def test_edges_exactly_on_grid_lines():
    # integer boxes and a 1.0 cell: the zones' edges are exactly the grid's lines
    zones = np.array([box(i, j, i + 1, j + 1) for i in range(0, 64, 1) for j in range(0, 64, 8)]
                     + [box(0, 0, 32, 64), box(16.5, 16.5, 47.5, 47.5)], dtype=object)
    grid = PointGrid(zones, max_cells=4096)
    assert grid.cell == 1.0 and grid.origin == (-1.0, -1.0)
    xs = np.arange(-2, 66.5, 0.5)
    xx, yy = np.meshgrid(xs, xs)
    points = np.concatenate([shapely.points(xx.ravel(), yy.ravel()),
                             grid_line_points(grid, np.random.default_rng(9), 20_000)])
    assert_same_as_plain(grid, points)


def test_covers_pairs_is_the_plain_join(chengdu_zones):
    rng = np.random.default_rng(4)
    minx, miny, maxx, maxy = shapely.total_bounds(chengdu_zones)
    points = shapely.points(rng.uniform(minx, maxx, 30_000), rng.uniform(miny, maxy, 30_000))
    want = plain_join(chengdu_zones, points)
    for workers in (1, 2):
        np.testing.assert_array_equal(_pairs(*covers_pairs(chengdu_zones, points, workers)), want)


# --- property test on random small tilings --------------------------------------------------------------

coordinate = st.floats(min_value=-50, max_value=50, allow_nan=False, allow_infinity=False)


@st.composite
def tilings(draw):
    """A Voronoi tiling of a box, a few unions of its cells (districts), and an overlay with a hole."""
    x0 = draw(coordinate)
    y0 = draw(coordinate)
    span = draw(st.sampled_from([1e-4, 0.37, 1.0, 13.0]))
    n = draw(st.integers(1, 25))
    unit = st.floats(0, 1, allow_nan=False)
    seeds = [(x0 + draw(unit) * span, y0 + draw(unit) * span) for _ in range(n)]
    frame = box(x0, y0, x0 + span, y0 + span)
    if draw(st.booleans()):  # snapped to a coarse lattice: axis-aligned and collinear edges, shared vertices
        q = span / 8
        seeds = [(x0 + round((x - x0) / q) * q, y0 + round((y - y0) / q) * q) for x, y in seeds]
    k = draw(st.integers(1, 3))
    cx, cy = x0 + draw(unit) * span, y0 + draw(unit) * span
    try:
        cells = shapely.get_parts(shapely.voronoi_polygons(MultiPoint(seeds), extend_to=frame))
        cells = shapely.clip_by_rect(cells, *frame.bounds)
        cells = cells[~shapely.is_empty(cells)]
        groups = np.arange(len(cells)) % k
        districts = [shapely.union_all(cells[groups == g]) for g in range(k)]
        overlay = shapely.difference(shapely.buffer(Point(cx, cy), span * 0.3, quad_segs=3),
                                     shapely.buffer(Point(cx, cy), span * 0.1, quad_segs=2))
    except shapely.errors.GEOSException:  # GEOS trouble with near-coincident seeds: not what is tested here
        assume(False)
    zones = np.concatenate([cells, np.array(districts + [overlay], dtype=object)])
    return zones[~shapely.is_empty(zones)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(zones=tilings(), max_cells=st.sampled_from([16, 200, 5_000, 1 << 18]), seed=st.integers(0, 2**32 - 1))
def test_random_tilings_match_the_plain_join(zones, max_cells, seed):
    grid = PointGrid(zones, max_cells=max_cells)
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = shapely.total_bounds(zones)
    w, h = maxx - minx, maxy - miny
    vertices = shapely.get_coordinates(boundary_points(zones))
    points = np.concatenate([
        shapely.points(rng.uniform(minx - 0.1 * w, maxx + 0.1 * w, 2_000),
                       rng.uniform(miny - 0.1 * h, maxy + 0.1 * h, 2_000)),
        shapely.points(vertices),
        shapely.points(vertices + rng.normal(0, max(w, h) * 1e-9, vertices.shape)),
        grid_line_points(grid, rng, 500),
    ])
    assert_same_as_plain(grid, points)


# --- boxes: lines and polygons inside clean cells (issue #10) ---------------------------------------------

def test_box_labels_hold_exactly_the_zones_that_cover_the_box(chengdu_zones, chengdu_grid):
    """A box given a clean component is covered whole by every zone of that component and meets no other
    zone's interior; boxes that meet a border, leave the grid or have NaN bounds get 0."""
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = shapely.total_bounds(chengdu_zones)
    n = 4_000
    cx, cy = rng.uniform(minx - 0.05, maxx + 0.05, n), rng.uniform(miny - 0.05, maxy + 0.05, n)
    half = rng.uniform(0, 40, n) * chengdu_grid.cell  # from a point to boxes of dozens of cells
    bounds = np.column_stack([cx - half, cy - half, cx + half, cy + half])
    bounds[:5] = np.nan
    labels = chengdu_grid.box_labels(bounds)
    assert (labels[:5] == 0).all()
    inside = np.flatnonzero(labels > 0)
    assert 0.2 * n < len(inside) < n  # many boxes are held whole, not all
    boxes = shapely.box(*bounds[inside].T)
    site, zone = chengdu_grid.expand(np.arange(len(inside)), labels[inside])
    assert shapely.covers(chengdu_zones[zone], boxes[site]).all()
    tree = shapely.STRtree(chengdu_zones)
    s, z = tree.query(boxes, predicate="intersects")
    interior = shapely.area(shapely.intersection(chengdu_zones[z], boxes[s])) > 0
    want = {(int(a), int(b)) for a, b, i in zip(s, z, interior) if i}
    assert {(int(a), int(b)) for a, b in zip(site, zone)} == want


def test_box_labels_of_boxes_straddling_a_cell_edge_and_the_margin():
    zones = np.array([box(0, 0, 10, 10), box(10, 0, 20, 10)], dtype=object)
    grid = PointGrid(zones, max_cells=400)
    c = grid.cell
    x0, y0 = grid.origin
    # a box inside the left zone only, a box over the shared edge, a box off the grid, one reaching past it
    bounds = np.array([[2, 2, 3, 3], [9.5, 2, 10.5, 3], [-50, -50, -40, -40], [15, 5, 25, 6],
                       [x0 + c, y0 + c, x0 + 1.5 * c, y0 + 1.5 * c]], dtype=float)
    labels = grid.box_labels(bounds)
    assert labels[0] > 0 and labels[1] == 0 and labels[3] == 0
    site, zone = grid.expand(np.arange(5), labels)
    assert sorted(zone[site == 0].tolist()) == [0]
    assert not (site == 2).any() and not (site == 4).any()  # clean but outside every zone


# --- components4: the grid's labelling of clean cells, checked against scipy.ndimage.label ------------------

def _same_as_scipy(mask: np.ndarray) -> int:
    from scipy import ndimage

    expected, n_expected = ndimage.label(mask)  # 4-connectivity, numbered in raster order
    got, n = components4(mask)
    assert n == n_expected
    assert got.shape == mask.shape
    np.testing.assert_array_equal(got, expected)
    return n


@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (17, 1), (2, 2), (40, 33), (301, 7)])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.55, 0.8, 1.0])
def test_components4_is_scipys_label_on_random_masks(shape, p):
    rng = np.random.default_rng(int(p * 100) + shape[0] * 1000 + shape[1])
    for _ in range(20):
        _same_as_scipy(rng.random(shape) < p)


def test_components4_on_snakes_spirals_and_combs():
    # one component that winds through every row: many rounds of hooking if the roots were not compressed
    snake = np.zeros((401, 301), bool)
    snake[::2, :] = True
    snake[1::4, -1] = True
    snake[3::4, 0] = True
    assert _same_as_scipy(snake) == 1
    spiral = np.zeros((99, 99), bool)
    top, left, bottom, right = 0, 0, 98, 98
    while top <= bottom and left <= right:
        spiral[top, left:right + 1] = spiral[top:bottom + 1, right] = True
        spiral[bottom, left:right + 1] = spiral[top + 2:bottom + 1, left] = True
        top, left, bottom, right = top + 2, left + 2, bottom - 2, right - 2
    _same_as_scipy(spiral)
    comb = np.zeros((50, 60), bool)
    comb[0, :] = True
    comb[:, ::2] = True
    assert _same_as_scipy(comb) == 1
    _same_as_scipy(~comb)  # the teeth's gaps: 29 separate columns
    diagonal = np.eye(30, dtype=bool)  # touching only at corners: 30 components under 4-connectivity
    assert _same_as_scipy(diagonal) == 30


def test_components4_on_the_real_chengdu_grid(chengdu_grid):
    # the clean cells of the grid over the real districts: what the grid's labels were built from
    clean = chengdu_grid.labels.reshape(chengdu_grid.shape) > 0
    assert 0.5 < clean.mean() < 1
    assert _same_as_scipy(clean) == chengdu_grid.n_components


def test_components4_refuses_other_ranks():
    with pytest.raises(ValueError):
        components4(np.ones(5, bool))
