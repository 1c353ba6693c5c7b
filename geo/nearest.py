"""The geometries nearest to many points, found cell by cell: one nearest-neighbour query per grid cell of
points instead of one per point.

``near_pairs(tree, x, y, slack)`` returns, for every point, each geometry of the tree within ``slack`` of the
point's nearest one, with its distance: the pairs ``tree.query_nearest`` and
``tree.query(..., predicate="dwithin", distance=nearest + slack)`` give, with the same GEOS distances.

Why it is exact. A point's distance to a geometry is 1-Lipschitz: a point p of a square cell with centre c
and half-diagonal r is within r of c, so its nearest geometry is at most d(c) + r away (d(c): the centre's
nearest distance), and every geometry within ``slack`` of that is at most d(c) + r + slack from p, hence at
most d(c) + 2r + slack from c. One "dwithin" query per cell with that radius gives candidates that hold all
of them; each point is then measured against its cell's candidates only (``shapely.distance``, the same
numbers the tree's own search computes).

Why it is fast. At 185,000 points outside a city of 300 zones (1,059 boundary lines), one query per point
took 0.95 s; the cells' queries take 0.07 s and the pairs' distances 0.2 s. Cells are sized from the points'
extent for about ``POINTS_PER_CELL`` points each; a cell with more than ``MAX_CANDIDATES`` candidates (points
in a gap among many small zones) is cut in four and tried again, up to ``LEVELS`` times; the points of cells
still crowded after that are answered one query each, as before. Before each level a probe of a few hundred
points estimates whether most cells would be crowded, and if so the rest go one query each at once: where
small zones crowd the points (a 30,000-zone city, 20-35 candidates a point) cells would cost more than the
queries they save. So at most ``MAX_CANDIDATES`` pairs a point are measured, and the search is never much
slower than one query per point.

Where cells do not pay and many points are left (``VERTEX_BOUND_MIN`` or more), the points are not sent to the
tree's nearest-neighbour search either: in a dense field of lines that search is the cost (179,000 points in the
gaps of a 30,000-zone city, 1.2 s of the 1.66 s). Each point's distance to the nearest *vertex* of the tree's
geometries, from a k-d tree over the vertices (``scipy.spatial.cKDTree``, built once per tree), bounds its
nearest distance from above, and the "dwithin" query with that bound plus ``slack`` holds every geometry the
exact search would give (the vertex is on a geometry; the bound is widened by 1e-9 of the distance and of the
coordinates, for the rounding of the k-d tree and of GEOS). The pairs and distances are the same, to the bit;
it takes 0.6 s there, with the import of scipy.spatial (0.25 s, paid only where the bound is used). A tree of
more than ``VERTEX_BOUND_MAX`` vertices (a nation's zones as polygons, when their segments were too many to
keep) gets no k-d tree: it would cost more memory than the segments that were declined.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np
import shapely

__all__ = ["near_pairs", "near_candidates", "nearest_distance"]

POINTS_PER_CELL = 4
MAX_CANDIDATES = 16
LEVELS = 4
_PROBES = 256
VERTEX_BOUND_MIN = 20_000  # points left for one-by-one queries from which the vertex bound pays (its k-d tree)
VERTEX_BOUND_MAX = 3_000_000  # vertices of a tree at most, for its k-d tree (about 35 bytes each: 100 MB)
_VERTEX_TREES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # STRtree -> k-d tree of its vertices
_VERTEX_LOCK = threading.Lock()
_REL_EPS = 1e-9  # widening of the candidates' radius, relative: rounding in the cell arithmetic


def near_pairs(tree: shapely.STRtree, x: np.ndarray, y: np.ndarray, slack: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point index, geometry index, distance) for every geometry of ``tree`` at most ``slack`` farther from
    the point than its nearest geometry (the nearest included); none for a point with a non-finite coordinate
    (a projection overflows on the far side of the globe). Coordinates in the tree's CRS, distances in its
    units. Sorted by nothing in particular."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    empty = (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0))
    if n == 0 or len(tree.geometries) == 0:
        return empty
    points = shapely.points(x, y)
    parts = []
    todo = np.flatnonzero(np.isfinite(x) & np.isfinite(y))  # (a projection may overflow far away: no pair)
    if not len(todo):
        return empty
    side = _first_side(x[todo], y[todo])
    for _ in range(LEVELS):
        if not len(todo) or not side > 0 or not _cells_pay(tree, points, todo, side, slack):
            break
        found, todo = _by_cells(tree, points, x, y, todo, side, slack)
        parts.append(found)
        side /= 2
    if len(todo):
        parts.append(_one_by_one(tree, points, x, y, todo, slack))
    s = np.concatenate([p[0] for p in parts])
    g = np.concatenate([p[1] for p in parts])
    d = np.concatenate([p[2] for p in parts])
    closest = np.full(n, np.inf)
    np.minimum.at(closest, s, d)
    keep = d <= closest[s] + slack
    return s[keep], g[keep], d[keep]


def nearest_distance(tree: shapely.STRtree, geoms: np.ndarray) -> np.ndarray:
    """The distance from each geometry to the nearest one of the tree (inf where the tree gives none)."""
    (q, _), d = tree.query_nearest(geoms, return_distance=True)
    out = np.full(len(geoms), np.inf)
    np.minimum.at(out, q, d)
    return out


def near_candidates(tree: shapely.STRtree, geoms: np.ndarray, slack: float) -> tuple[np.ndarray, np.ndarray]:
    """(query index, tree index) of every tree geometry within ``slack`` of each query geometry's nearest one,
    one nearest and one "dwithin" query per geometry (any geometry type; distances not measured). The query
    geometries must have finite coordinates."""
    return tree.query(geoms, predicate="dwithin", distance=nearest_distance(tree, geoms) + slack)


def _first_side(x: np.ndarray, y: np.ndarray) -> float:
    """The side of a square cell holding about POINTS_PER_CELL of the points, were they spread evenly over
    their bounding box."""
    w, h = float(x.max() - x.min()), float(y.max() - y.min())
    cells = max(len(x) / POINTS_PER_CELL, 1.0)
    area = w * h
    if area > 0:
        return float(np.sqrt(area / cells))
    return max(w, h) / cells  # points on a line (or one place: 0, and every point is queried alone)


def _cells_pay(tree, points, todo, side, slack) -> bool:
    """Whether most cells of ``side`` around the points ``todo`` would have few candidates, judged on up to
    ``_PROBES`` of them spread through the batch (one nearest and one "dwithin" query each). Where the
    geometries crowd the points (a gap among many small zones) cells cost more than a query per point."""
    probe = todo[np.linspace(0, len(todo) - 1, min(len(todo), _PROBES)).astype(np.intp)]
    c, _ = near_candidates(tree, points[probe], side * np.sqrt(2.0) + slack)
    return bool(np.mean(np.bincount(c, minlength=len(probe)) <= MAX_CANDIDATES) >= 0.5)


def _by_cells(tree, points, x, y, todo, side, slack):
    """The candidate pairs of the points ``todo`` whose cell (of ``side``) has few candidates, and the points
    left (in crowded cells)."""
    ix = np.floor((x[todo] - x[todo].min()) / side).astype(np.int64)
    iy = np.floor((y[todo] - y[todo].min()) / side).astype(np.int64)
    keys, cell = np.unique(ix * (int(iy.max()) + 1) + iy, return_inverse=True)
    cx = x[todo].min() + (keys // (int(iy.max()) + 1) + 0.5) * side
    cy = y[todo].min() + (keys % (int(iy.max()) + 1) + 0.5) * side
    centres = shapely.points(cx, cy)
    radius = nearest_distance(tree, centres) + side * np.sqrt(2.0) + slack
    # widened by the rounding of the cell arithmetic: relative to the coordinates' magnitude and the side
    scale = max(float(np.abs(x[todo]).max()), float(np.abs(y[todo]).max()), side)
    c2, g2 = tree.query(centres, predicate="dwithin", distance=radius * (1 + _REL_EPS) + _REL_EPS * scale)
    count = np.bincount(c2, minlength=len(keys))
    fine = count[cell] <= MAX_CANDIDATES
    mine, rest = todo[fine], todo[~fine]
    cell = cell[fine]
    order = np.argsort(c2, kind="stable")
    g2 = g2[order]
    first = np.cumsum(count) - count  # each cell's first candidate in g2
    per = count[cell]
    s = np.repeat(mine, per)
    step = np.arange(len(s)) - np.repeat(np.cumsum(per) - per, per)
    g = g2[np.repeat(first[cell], per) + step]
    return (s, g, shapely.distance(points[s], tree.geometries[g])), rest


def _one_by_one(tree, points, x, y, todo, slack):
    """The pairs of ``todo`` from one "dwithin" query per point: within ``slack`` of its nearest distance (a
    nearest query per point), or of the upper bound its nearest vertex gives, for many points (see the module's
    docstring), the distances then measured and compared by the caller."""
    kd = _vertex_tree(tree) if len(todo) >= VERTEX_BOUND_MIN or tree in _VERTEX_TREES else None
    if kd is not None and kd.n:
        bound = kd.query(np.column_stack([x[todo], y[todo]]))[0]
        # widened by the rounding of two ways to measure one vertex: relative to the distance and the coordinates
        scale = max(float(np.abs(x[todo]).max()), float(np.abs(y[todo]).max()))
        s, g = tree.query(points[todo], predicate="dwithin",
                          distance=bound * (1 + _REL_EPS) + _REL_EPS * scale + slack)
    else:
        s, g = near_candidates(tree, points[todo], slack)
    return todo[s], g, shapely.distance(points[todo[s]], tree.geometries[g])


def _vertex_tree(tree: shapely.STRtree):
    """The k-d tree of every vertex of ``tree``'s geometries, built once per tree (kept while the tree lives);
    None for a tree of more than ``VERTEX_BOUND_MAX`` vertices (remembered too)."""
    with _VERTEX_LOCK:
        if tree in _VERTEX_TREES:
            return _VERTEX_TREES[tree]
        kd = None
        if int(shapely.get_num_coordinates(tree.geometries).sum()) <= VERTEX_BOUND_MAX:
            from scipy.spatial import cKDTree  # (0.25 s to import: only where the bound pays)

            vertices = shapely.get_coordinates(tree.geometries)
            kd = cKDTree(vertices, leafsize=32, balanced_tree=False, compact_nodes=False)
        _VERTEX_TREES[tree] = kd
        return kd
