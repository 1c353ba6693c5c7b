"""Bulk point-in-polygon against a fixed set of zones, through a precomputed uniform grid.

``PointGrid(zones).query(points)`` returns exactly the (point, zone) pairs of the plain join
``shapely.STRtree(points).query(zones, predicate="covers")`` -- a zone matches every point it covers,
so points on a border or a vertex match every zone whose boundary they are on -- several times faster
once built, because most points never meet a polygon:

* **Build (once per zone set).** A uniform grid of square cells is laid over the zones' total bounds
  (plus one cell of margin). Every cell that any zone's linework (exterior and interior rings of every
  polygon part, plus any lines or points) passes through is marked *dirty*: each segment is cut into
  pieces shorter than a cell along each axis, and each piece marks every cell its bounding box touches,
  widened by ``EPS`` cell widths (at most 2 x 2 cells; of those, a cell that the piece provably misses,
  beyond a corner it passes clear of, is left out). So the marking is a guaranteed superset of the cells
  the boundaries touch, even under floating-point rounding, and close to exact. No boundary passes
  through a *clean* cell, so each zone covers a clean cell whole or not at all; and two edge-adjacent
  clean cells lie in the same zones (no boundary separates them). So the clean cells are labelled into
  4-connected components (``components4``: the same labels as ``scipy.ndimage.label``, in numpy, without
  scipy's 0.2 s import on every ``zeren assign``), one cell centre per component is located with one
  exact join, and each component stores its zone list (CSR: component -> zones).
* **Query.** Each point's cell is computed with vectorised arithmetic. A point in a clean cell gets its
  component's zones; a point in a dirty cell (about 5 % of uniformly spread points for 3,000 zones, 15 %
  for 30,000, with the default grid) goes through the exact join (``covers_pairs``: bounding-box
  candidates from an STRtree over those points, decided by ``shapely.intersects_xy``; on both cores).
  A point off the grid, with a NaN coordinate, empty or missing matches nothing. Non-point geometries
  (a MultiPoint, say) take the plain "covers" join, so any input is answered exactly.

Why the answer is exact: a point P and its cell centre C can only differ in some zone's membership if the
segment P-C meets that zone's boundary; the segment lies in P's cell, so that boundary point does too (up
to rounding far below ``EPS``) and would have made the cell dirty. The same argument along the segment
between two adjacent clean cells' centres justifies the component labels. The predicates themselves are
GEOS's exact ones, as in the plain join. The tests compare with the plain join on real and random zones,
points on borders, vertices and cell edges.

Measured (``benchmarks/bench_assign.py``, 1M uniform points, synthetic_city of benchmarks/bench_assign.py, a busy
2-core machine, best of 5): 3,046 zones: build 0.14 s, query 0.11 s against 1.7 s for the plain 2-thread
join; 30,496 zones: build 0.76 s, query 0.26 s against 1.8 s.

The pairs come back as two int64 arrays ``(point_index, zone_index)``: first every pair of points in clean
cells, ordered by point index (zones of one point in increasing zone order), then the pairs found by the
exact join. Treat the order as unspecified (it is deterministic for a given input); each pair occurs once.

Memory: the grid holds one label per cell, uint16 while there are fewer than 65,535 clean components (else
int32): 16 MB at the default cap of 8M cells. The build's temporaries peak at about 100 MB there.

Threads: ``query`` never modifies the grid, and its own two threads use disjoint zones. Several threads
querying one grid at once would share the prepared zones, and GEOS does not promise that prepared geometries
are safe to use concurrently (libgeos/geos#825): serialise such callers (a lock) to be safe.

``benchmarks/bench_assign.py`` compares it with the plain join.
"""
from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property

import numpy as np
import shapely

__all__ = ["PointGrid", "covers_pairs", "components4"]

MAX_CELLS = 1 << 23  # default cap on the grid's cells: 8M = 16 MB of uint16 labels (about 2900 x 2900)
TARGET_DIRTY = 0.01  # the grid is made no finer than needed for about this share of dirty cells
EPS = 1e-7  # widening of each piece's bounding box, in cells (rounding errors are ~1e-12 of a cell)
PIECE = 0.9  # longest extent of a piece along either axis, in cells (< 1 - 2 EPS: boxes span <= 2 x 2)
CLEARANCE = 1e-6  # in cells: a piece this far from a corner provably misses the cell beyond it
_MAX_SIDE = 1 << 16  # cells along one axis at most (very thin bounds)
_PIECES_PER_CHUNK = 2_000_000  # bounds the temporary memory of the dirty marking
_MAX_PIECES = 50_000_000  # the grid is coarsened rather than cut the boundaries into more pieces (~5 s)
_PARALLEL_MIN = 20_000  # fewer points than this: the exact join runs on one thread
_COLLECTION_TYPES = (4, 5, 6, 7)


def covers_pairs(zones: np.ndarray, points: np.ndarray, workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The exact join without a grid: (point_index, zone_index) wherever the zone covers the point.

    The same pairs as ``shapely.STRtree(points).query(zones, predicate="covers")``, 2-3x as fast: the
    tree over the points gives bounding-box candidates grouped by zone, and ``shapely.intersects_xy`` decides
    them (for a point, "the zone intersects it" and "the zone covers it" are the same thing: the point is in
    the closed zone), one zone's candidates after another so the prepared zone stays in the cache. Geometries
    other than points (MultiPoint, ...) are decided with "covers" itself. ``zones`` should be prepared
    (``shapely.prepare``). With ``workers`` > 1 and enough points the zones are shared out between threads.
    """
    zones = np.asarray(zones, dtype=object)
    points = np.asarray(points, dtype=object)
    if not len(zones) or not len(points):
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    x, y, other = _xy(points)
    return _join(zones, points, x, y, np.flatnonzero(np.isfinite(x) & np.isfinite(y)), other, workers)


def _join(zones, points, x, y, simple, other, workers) -> tuple[np.ndarray, np.ndarray]:
    """The exact join of points[simple] (points with finite x, y) and points[other] (any other geometry)."""
    parts = []
    if len(simple):
        tree = shapely.STRtree(points[simple])
        sx, sy = x[simple], y[simple]

        def run(chunk):
            zi, pi = tree.query(zones[chunk])  # bounding boxes only, grouped by zone
            ok = shapely.intersects_xy(zones[chunk][zi], sx[pi], sy[pi])
            return simple[pi[ok]], chunk[zi[ok]]

        if workers > 1 and len(simple) >= _PARALLEL_MIN and len(zones) >= 2 * workers:
            chunks = [np.arange(i, len(zones), workers) for i in range(workers)]  # interleaved: alike in cost
            with ThreadPoolExecutor(workers) as pool:
                parts.extend(pool.map(run, chunks))
        else:
            parts.append(run(np.arange(len(zones))))
    if len(other):
        zi, pi = shapely.STRtree(points[other]).query(zones, predicate="covers")
        parts.append((other[pi], zi))
    if not parts:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return (np.concatenate([p for p, _ in parts]).astype(np.intp, copy=False),
            np.concatenate([z for _, z in parts]).astype(np.intp, copy=False))


def components4(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """(labels, n) of the 4-connected components of the True cells of a 2-D boolean ``mask``: labels 1..n
    numbered in raster order of each component's first cell, 0 on False cells -- exactly what
    ``scipy.ndimage.label(mask)`` returns (the tests compare the two), in whole-array numpy.

    Each row's runs of True cells are numbered in raster order (one cumulative sum). Two runs of adjacent rows
    touch exactly when they share a column, and then they share one where either of them starts: those
    columns give every edge of the graph of runs. Its components come from hooking roots onto smaller roots
    along every edge at once, then pointer jumping, until no edge joins two roots; each component's root is
    then its first run in raster order, so ranking the roots numbers the components as scipy does.
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError("components4 takes a 2-D mask")
    ny, nx = mask.shape
    flat = mask.ravel()
    index = np.int32 if flat.size < np.iinfo(np.int32).max else np.int64
    if not flat.size:
        return np.zeros(mask.shape, index), 0
    start = flat.copy()  # a run starts at a True cell whose left neighbour, in its row, is False
    start[1:] &= ~flat[:-1]
    start[::nx] = flat[::nx]
    run = np.cumsum(start, dtype=index)  # the run of each True cell, 1..n_runs (junk on False cells)
    n_runs = int(run[-1])
    at = np.flatnonzero((start[:-nx] | start[nx:]) & flat[:-nx] & flat[nx:])
    del start
    a, b = run[at], run[at + nx]
    parent = np.arange(n_runs + 1, dtype=index)
    while len(a):
        ra, rb = parent[a], parent[b]  # roots: parent is fully compressed here
        apart = ra != rb
        if not apart.any():
            break
        a, b, ra, rb = a[apart], b[apart], ra[apart], rb[apart]
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))  # pointers only ever go down: no cycle
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    is_root = parent == np.arange(n_runs + 1, dtype=index)
    is_root[0] = False
    rank = np.cumsum(is_root, dtype=index)
    labels = rank[parent][run]
    labels *= flat
    return labels.reshape(ny, nx), int(rank[-1])


def _linework(geoms: np.ndarray) -> np.ndarray:
    """Every ring of every polygon part, every line part and every point part, as separate geometries."""
    parts = shapely.get_parts(geoms)
    while len(parts) and np.isin(shapely.get_type_id(parts), _COLLECTION_TYPES).any():
        parts = shapely.get_parts(parts)  # nested collections
    parts = parts[~shapely.is_empty(parts)]
    types = shapely.get_type_id(parts)
    polys = types == 3
    rings = shapely.get_rings(parts[polys]) if polys.any() else np.zeros(0, dtype=object)
    return np.concatenate([rings, parts[~polys]])


class PointGrid:
    """A precomputed grid answering "which zones cover each point" for a fixed array of zones.

    ``zones``: a 1-D array (or sequence) of shapely geometries (normally Polygon / MultiPolygon, holes
    allowed; any geometry works), prepared in place. Missing or empty zones match nothing; zones with NaN
    coordinates are not supported. ``max_cells``: cap on the grid's size (2 bytes a cell, 4 with 65,535
    clean components or more). ``workers``: threads for the exact joins (the build's and the dirty points').
    The build happens in the constructor (about 0.15 s for 3,000 zones, 0.8 s for 30,000); ``query`` is
    read-only.

    Attributes after the build: ``shape`` (ny, nx), ``cell`` (cell width in the zones' units),
    ``origin`` (x, y of the grid's lower-left corner), ``dirty_fraction`` (share of cells marked dirty),
    ``n_components``, ``build_seconds``.
    """

    def __init__(self, zones, *, max_cells: int = MAX_CELLS, workers: int = 2):
        t0 = time.perf_counter()
        self.zones = np.asarray(zones, dtype=object).ravel()
        shapely.prepare(self.zones)
        self.workers = max(1, int(workers))
        self.labels = None  # flat (ny * nx,) uint16 / int32: 0 = dirty cell, k > 0 = clean component k
        self.offsets = np.zeros(1, np.int64)  # CSR per component label (offsets[k]..offsets[k+1])
        self.zone_ids = np.zeros(0, np.intp)
        self.shape = (0, 0)
        self.cell = 1.0
        self.origin = (0.0, 0.0)
        self.dirty_fraction = 1.0
        self.n_components = 0
        bounds = shapely.total_bounds(self.zones) if len(self.zones) else np.full(4, np.nan)
        if np.isfinite(bounds).all():
            self._build(bounds, int(max_cells))
        self.build_seconds = time.perf_counter() - t0

    # --- a built grid as arrays, and back -----------------------------------------------------------

    STATE_VERSION = 1  # bump when the arrays' meaning changes: a kept state of another version is not adopted

    def state(self) -> dict[str, np.ndarray]:
        """The built grid as plain arrays (what ``from_state`` takes back): to keep it between processes. The
        zones are not in it; the caller keys the state by them (``geo.assign.point_grid_key``)."""
        labels = self.labels if self.labels is not None else np.zeros(0, np.uint16)
        return {"version": np.array([self.STATE_VERSION]), "has_labels": np.array([self.labels is not None]),
                "labels": labels, "offsets": self.offsets, "zone_ids": self.zone_ids,
                "shape": np.array(self.shape, dtype=np.int64), "cell": np.array([self.cell]),
                "origin": np.array(self.origin, dtype=float), "dirty_fraction": np.array([self.dirty_fraction]),
                "n_components": np.array([self.n_components], dtype=np.int64)}

    @classmethod
    def from_state(cls, zones, state, *, workers: int = 2) -> "PointGrid":
        """The grid ``state()`` gave, over the same ``zones`` (prepared in place, as the constructor does),
        without building it. ``ValueError`` when the arrays are not a grid of this version over that many
        zones (the caller then builds one)."""
        t0 = time.perf_counter()
        grid = cls.__new__(cls)
        grid.zones = np.asarray(zones, dtype=object).ravel()
        grid.workers = max(1, int(workers))
        try:
            if int(state["version"][0]) != cls.STATE_VERSION:
                raise ValueError("a point grid of another version")
            shape = tuple(int(v) for v in state["shape"])
            labels = np.asarray(state["labels"]) if bool(state["has_labels"][0]) else None
            offsets = np.asarray(state["offsets"], dtype=np.int64)
            zone_ids = np.asarray(state["zone_ids"], dtype=np.intp)
            n_comp = int(state["n_components"][0])
            cell, origin = float(state["cell"][0]), tuple(float(v) for v in state["origin"])
            dirty_fraction = float(state["dirty_fraction"][0])
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"not a point grid state: {exc}") from None
        # what the queries index with is checked: a label beyond the offsets, a zone beyond the zones, a
        # labels array of another size would answer wrongly or fail later
        if labels is not None:
            if (len(shape) != 2 or min(shape) < 1 or labels.ndim != 1 or len(labels) != shape[0] * shape[1]
                    or labels.dtype not in (np.uint16, np.int32) or len(offsets) != n_comp + 2):
                raise ValueError("a point grid state of inconsistent sizes")
            if len(labels) and int(labels.max()) > n_comp:
                raise ValueError("a point grid state with labels beyond its components")
            if not (cell > 0 and math.isfinite(cell) and all(math.isfinite(o) for o in origin)):
                raise ValueError("a point grid state without a usable cell")
        if (len(offsets) and (offsets[0] != 0 or int(offsets[-1]) != len(zone_ids) or (np.diff(offsets) < 0).any())
                or (len(zone_ids) and (int(zone_ids.min()) < 0 or int(zone_ids.max()) >= len(grid.zones)))):
            raise ValueError("a point grid state whose zones are not these")
        shapely.prepare(grid.zones)
        grid.labels, grid.offsets, grid.zone_ids = labels, offsets, zone_ids
        grid.shape, grid.cell, grid.origin = shape, cell, origin
        grid.dirty_fraction, grid.n_components = dirty_fraction, n_comp
        grid.build_seconds = time.perf_counter() - t0
        return grid

    # --- build -------------------------------------------------------------------------------------

    def _build(self, bounds: np.ndarray, max_cells: int) -> None:
        lines = _linework(self.zones)
        minx, miny, maxx, maxy = (float(b) for b in bounds)
        w, h = maxx - minx, maxy - miny
        length = float(np.nansum(shapely.length(lines)))
        cell = max(_cell_size(w, h, length, max(max_cells, 16)),
                   max(w, h) / _MAX_SIDE,  # thin bounds
                   length / (PIECE * _MAX_PIECES),  # bounded build time, whatever the boundaries' length
                   max(abs(minx), abs(miny), abs(maxx), abs(maxy)) * 2.0 ** -36)  # far above rounding
        if not cell > 0:
            cell = 1.0  # every zone is one and the same point at the origin
        while True:
            x0, y0 = minx - cell, miny - cell  # one cell of margin on every side
            # the query's arithmetic: every point of the bounds falls inside the margin
            nx = int(math.floor((maxx - x0) / cell)) + 2
            ny = int(math.floor((maxy - y0) / cell)) + 2
            if nx * ny <= 2 * max(max_cells, 16):
                break
            cell *= 1.25  # rounding on tiny budgets: coarsen until it fits
        self.cell, self.origin, self.shape = cell, (x0, y0), (ny, nx)

        dirty = np.zeros(ny * nx, dtype=bool)
        coords, which = shapely.get_coordinates(lines, return_index=True)
        u = (coords[:, 0] - x0) / cell
        v = (coords[:, 1] - y0) / cell
        same = which[1:] == which[:-1]
        ua, va, ub, vb = u[:-1][same], v[:-1][same], u[1:][same], v[1:][same]
        single = np.bincount(which, minlength=len(lines)) == 1  # a point part: a zero-length "segment"
        if single.any():
            first = np.searchsorted(which, np.flatnonzero(single))
            ua, va = np.r_[ua, u[first]], np.r_[va, v[first]]
            ub, vb = np.r_[ub, u[first]], np.r_[vb, v[first]]
        ok = np.isfinite(ua) & np.isfinite(va) & np.isfinite(ub) & np.isfinite(vb)
        ua, va, ub, vb = ua[ok], va[ok], ub[ok], vb[ok]
        # cut segments into pieces shorter than PIECE cells along each axis (most real segments already are),
        # and mark them in chunks of about _PIECES_PER_CHUNK pieces, to bound the temporary memory
        k = np.maximum(np.ceil(np.maximum(np.abs(ub - ua), np.abs(vb - va)) * (1 / PIECE)), 1).astype(np.int64)
        ends = np.cumsum(k)
        start = 0
        while start < len(k):
            stop = int(np.searchsorted(ends, ends[start] - k[start] + _PIECES_PER_CHUNK, side="right"))
            stop = max(stop, start + 1)
            sl = slice(start, stop)
            kk = k[sl]
            short = kk == 1
            if short.all():
                _mark(dirty, nx, ny, ua[sl], va[sl], ub[sl], vb[sl])
            else:
                _mark(dirty, nx, ny, ua[sl][short], va[sl][short], ub[sl][short], vb[sl][short])
                cut = ~short
                _mark(dirty, nx, ny, *_pieces(ua[sl][cut], va[sl][cut], ub[sl][cut], vb[sl][cut], kk[cut]))
            start = stop
        dirty = dirty.reshape(ny, nx)
        self.dirty_fraction = float(dirty.mean())

        labels, n_comp = components4(~dirty)  # 4-connected components of clean cells, in raster order
        del dirty
        self.n_components = n_comp = int(n_comp)
        flat = labels.ravel()
        if n_comp:
            # components are numbered in raster order: first cells are where the running maximum rises
            running = np.maximum.accumulate(flat)
            first = np.flatnonzero(np.r_[flat[:1] > 0, running[1:] > running[:-1]])
            if len(first) != n_comp or not np.array_equal(flat[first], np.arange(1, n_comp + 1)):
                _, first = np.unique(flat, return_index=True)  # not in raster order after all: slow way
                first = first[flat[first] > 0]
            iy, ix = np.divmod(first, nx)
            cx, cy = x0 + (ix + 0.5) * cell, y0 + (iy + 0.5) * cell
            comp, zone = _join(self.zones, shapely.points(cx, cy), cx, cy, np.arange(n_comp), (), self.workers)
            order = np.lexsort((zone, comp))
            comp, zone = comp[order], zone[order]
        else:
            comp = zone = np.zeros(0, np.intp)
        self.zone_ids = zone.astype(np.intp)
        # offsets indexed by label: label k > 0 is component comp = k - 1; label 0 (dirty) has no zones
        self.offsets = np.zeros(n_comp + 2, np.int64)
        np.cumsum(np.bincount(comp + 1, minlength=n_comp + 1), out=self.offsets[1:])
        self.labels = flat.astype(np.uint16) if n_comp < np.iinfo(np.uint16).max else flat

    # --- query -------------------------------------------------------------------------------------

    def query(self, points) -> tuple[np.ndarray, np.ndarray]:
        """(point_index, zone_index) of every zone that covers every point, as int64 arrays.

        ``points``: a 1-D array of shapely geometries, normally Points (a Z coordinate is ignored). Missing,
        empty and NaN points match nothing; other geometry types (MultiPoint, ...) are answered by the plain
        "covers" join. The order of the pairs is unspecified (see the module's docstring); each occurs once.
        """
        points = np.asarray(points, dtype=object).ravel()
        n = len(points)
        nothing = np.zeros(0, np.intp)
        if not n or not len(self.zones):
            return nothing, nothing
        if self.labels is None:  # no usable bounds: everything through the exact join
            return covers_pairs(self.zones, points, self.workers)
        x, y, other = _xy(points)
        label = self._labels_of(x, y)
        label[other] = 0  # not points: to the exact join
        dirty = np.flatnonzero(label == 0)
        clean = np.flatnonzero(label > 0)
        cp, cz = self._expand(clean, label[clean])
        # dirty cells: the exact join, for the points with finite coordinates (NaN ones match nothing)
        simple = dirty[np.isfinite(x[dirty]) & np.isfinite(y[dirty])]
        dp, dz = _join(self.zones, points, x, y, simple, other, self.workers)
        return np.concatenate([cp, dp]), np.concatenate([cz, dz])

    def query_xy(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """``query`` of the points (x, y) given as coordinate arrays (NaN: a point that matches nothing): the
        same pairs, with a shapely point made only for each point in a dirty cell (for the exact join)."""
        x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
        n = len(x)
        nothing = np.zeros(0, np.intp)
        if not n or not len(self.zones):
            return nothing, nothing
        finite = np.isfinite(x) & np.isfinite(y)
        if self.labels is None:
            simple = np.flatnonzero(finite)
        else:
            label = self._labels_of(x, y)
            clean = np.flatnonzero(label > 0)
            cp, cz = self._expand(clean, label[clean])
            simple = np.flatnonzero((label == 0) & finite)
        points = np.full(n, None, dtype=object)
        points[simple] = shapely.points(x[simple], y[simple])
        dp, dz = _join(self.zones, points, x, y, simple, nothing, self.workers)
        if self.labels is None:
            return dp, dz
        return np.concatenate([cp, dp]), np.concatenate([cz, dz])

    def box_labels(self, bounds: np.ndarray) -> np.ndarray:
        """For each box (rows of minx, miny, maxx, maxy), the clean component that holds it whole, else 0.

        A box whose cells (every cell it touches, its edges included) are all clean lies in one component
        (a rectangle of clean cells is 4-connected): each zone of that component covers the box whole, and
        no other zone meets its interior, so any geometry inside the box is assigned without a predicate.
        A box meeting a dirty cell, or with a NaN bound, gets 0. Cells are counted with a summed-area table
        of the dirty cells, built on first use ((ny + 1) x (nx + 1) int32: 32 MB at the default cap)."""
        bounds = np.asarray(bounds, dtype=float).reshape(-1, 4)
        out = np.zeros(len(bounds), dtype=np.int64)
        if self.labels is None or not len(bounds):
            return out
        ny, nx = self.shape
        inv = 1.0 / self.cell
        ok = np.isfinite(bounds).all(axis=1)
        b = np.where(ok[:, None], bounds, 0.0)
        u0 = np.clip(np.floor((b[:, 0] - self.origin[0]) * inv), 0, nx - 1).astype(np.intp)
        u1 = np.clip(np.floor((b[:, 2] - self.origin[0]) * inv), 0, nx - 1).astype(np.intp)
        v0 = np.clip(np.floor((b[:, 1] - self.origin[1]) * inv), 0, ny - 1).astype(np.intp)
        v1 = np.clip(np.floor((b[:, 3] - self.origin[1]) * inv), 0, ny - 1).astype(np.intp)
        table = self._dirty_sums
        dirty = table[v1 + 1, u1 + 1] - table[v0, u1 + 1] - table[v1 + 1, u0] + table[v0, u0]
        clean = ok & (dirty == 0)
        out[clean] = self.labels[v0[clean] * nx + u0[clean]]
        return out

    @cached_property
    def _dirty_sums(self) -> np.ndarray:
        ny, nx = self.shape
        table = np.zeros((ny + 1, nx + 1), dtype=np.int32)
        dirty = (self.labels == 0).reshape(ny, nx)
        np.cumsum(dirty, axis=0, dtype=np.int32, out=table[1:, 1:])
        np.cumsum(table[1:, 1:], axis=1, dtype=np.int32, out=table[1:, 1:])
        return table

    def expand(self, sites: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(site, zone) pairs of the given sites with the zones of their clean components (labels > 0)."""
        return self._expand(np.asarray(sites, dtype=np.intp), np.asarray(labels, dtype=np.intp))

    def _labels_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Label of each point's cell: 0 dirty, k > 0 clean component k.

        A point off the grid, or with a NaN coordinate, is clamped onto the grid's margin: a margin cell lies
        outside every zone's bounds, so it is either clean with no zones or dirty (then the exact join answers).
        """
        ny, nx = self.shape
        inv = 1.0 / self.cell
        u = x - self.origin[0]
        u *= inv
        np.fmax(u, 0.0, out=u)  # fmax / fmin turn NaN into the bound
        np.fmin(u, nx - 1, out=u)
        v = y - self.origin[1]
        v *= inv
        np.fmax(v, 0.0, out=v)
        np.fmin(v, ny - 1, out=v)
        cell = v.astype(np.intp)  # truncation is floor for v >= 0
        cell *= nx
        cell += u.astype(np.intp)
        return self.labels[cell]

    def _expand(self, pts: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The zones of each clean point's component, as (point, zone) pairs ordered by point."""
        off = self.offsets
        start = off[lab]
        counts = off[lab + 1] - start
        total = int(counts.sum())
        if not total:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        point = np.repeat(pts, counts)
        shift = np.repeat(start - (np.cumsum(counts) - counts), counts)
        shift += np.arange(total)
        return point, self.zone_ids[shift]


def _cell_size(w: float, h: float, length: float, max_cells: int) -> float:
    """Cell width: fine enough that the boundaries make about TARGET_DIRTY of the cells dirty, within the cap.

    A boundary of length L crosses about 1.3 L / c cells of width c; shared borders count twice in L.
    """
    area = w * h
    if area > 0 and length > 0:
        want = (1.3 * 0.6 * length / TARGET_DIRTY) ** 2 / area
        cells = min(float(max_cells), max(want, 4096.0))
    else:
        cells = float(max_cells)
    return math.sqrt(area / cells) if area > 0 else 0.0


def _pieces(ua, va, ub, vb, k):
    """Cut each segment (ua, va)-(ub, vb) into k[i] equal pieces; returns the pieces' end points."""
    seg = np.repeat(np.arange(len(k)), k)
    j = np.arange(len(seg), dtype=np.float64) - np.repeat(np.cumsum(k) - k, k)
    kk = k.astype(np.float64)
    du, dv = ((ub - ua) / kk)[seg], ((vb - va) / kk)[seg]
    pu0 = ua[seg] + du * j
    pv0 = va[seg] + dv * j
    return pu0, pv0, pu0 + du, pv0 + dv


def _mark(dirty, nx, ny, pu0, pv0, pu1, pv1) -> None:
    """Mark every cell that the pieces (pu0, pv0)-(pu1, pv1), in cell units, pass through (or nearly).

    A piece spans less than one cell per axis, so its box widened by EPS covers at most 2 x 2 cells. When it
    covers 2 x 2 and passes clear of their common corner, the one cell on the corner's far side from the piece
    cannot be touched (its nearest point to the piece's line is the corner) and is left clean.
    """
    i0 = np.floor(np.minimum(pu0, pu1) - EPS).astype(np.int64)
    i1 = np.floor(np.maximum(pu0, pu1) + EPS).astype(np.int64)
    j0 = np.floor(np.minimum(pv0, pv1) - EPS).astype(np.int64)
    j1 = np.floor(np.maximum(pv0, pv1) + EPS).astype(np.int64)
    corner = np.flatnonzero((i0 != i1) & (j0 != j1))
    ku, kv = i1[corner].astype(np.float64), j1[corner].astype(np.float64)  # the common corner, unclipped
    np.clip(i0, 0, nx - 1, out=i0)
    np.clip(i1, 0, nx - 1, out=i1)
    np.clip(j0, 0, ny - 1, out=j0)
    np.clip(j1, 0, ny - 1, out=j1)
    j0 *= nx
    j1 *= nx
    # cells a, b, c: without a corner the box is one cell or two, (i0, j0) and (i1, j0) or (i0, j1), and
    # (i1, j1) is one of them; with a corner, d = (i1, j1) is added and the untouched cell replaced by d
    a = j0 + i0
    b = j0 + i1
    c = j1 + i0
    if len(corner):
        sa, sb, sc = a[corner], b[corner], c[corner]
        d = j1[corner] + i1[corner]
        pu0, pv0 = pu0[corner], pv0[corner]
        du, dv = pu1[corner] - pu0, pv1[corner] - pv0
        cross = du * (kv - pv0) - dv * (ku - pu0)  # > 0: the corner is on the left of the piece
        clear = cross * cross > (CLEARANCE * CLEARANCE) * (du * du + dv * dv)
        # the normal from the piece's line towards the corner is (-dv, du) when cross > 0, else (dv, -du);
        # the cell around the corner in that normal's direction is the untouched one
        pos = cross > 0
        right = np.where(pos, dv < 0, dv > 0)  # the untouched cell is in column i1, else i0
        top = np.where(pos, du > 0, du < 0)  # ... in row j1, else j0
        a[corner] = np.where(clear & ~right & ~top, d, sa)
        b[corner] = np.where(clear & right & ~top, d, sb)
        c[corner] = np.where(clear & ~right & top, d, sc)
        # when d itself is the untouched cell, it is replaced by a (marked anyway)
        dirty[np.where(clear & right & top, sa, d)] = True
    dirty[a] = True
    dirty[b] = True
    dirty[c] = True


def _xy(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x and y of every point (NaN where missing, empty or not a Point), and the positions of geometries that
    are not points but may still be covered (MultiPoint and the like), for the exact join."""
    try:
        x, y = shapely.get_x(points), shapely.get_y(points)  # NaN for None and non-points
    except shapely.errors.GEOSException:  # an empty Point
        types = shapely.get_type_id(points)
        simple = (types == 0) & ~shapely.is_empty(points)
        x = np.full(len(points), np.nan)
        y = np.full(len(points), np.nan)
        x[simple], y[simple] = shapely.get_x(points[simple]), shapely.get_y(points[simple])
    unknown = np.flatnonzero(np.isnan(x))
    if not len(unknown):
        return x, y, unknown
    sub = points[unknown]
    other = (shapely.get_type_id(sub) > 0) & ~shapely.is_empty(sub)
    return x, y, unknown[other]
