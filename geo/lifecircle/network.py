"""A walking network as a graph, built once from street lines, searched with scipy's bounded Dijkstra.

Nodes are line end points and the vertices shared by two or more lines (OSM ways meet at shared vertices
anywhere along them); vertices are snapped to a grid (default 0.01 m) so that touching ends meet. Edges are
the pieces of lines between nodes. Centres and facilities are put on the network by splitting the nearest
edge at their projected point, so both ends of that edge are reached at their along-edge distances.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import numpy as np
import pyproj
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components, dijkstra

from zeren.geo.lifecircle._crs import bounds_wgs84, metric_crs, require_crs
from zeren.geo.lifecircle.errors import LifeCircleError
from zeren.geo.lifecircle.lines import substrings

_EPS = 1e-6  # metres: a cut closer than this to an edge end is put on that end
# Fragments shorter than this (a flight of steps, an indoor corridor, a platform cut off in the data) are
# not snapped to when a larger street is within reach: a centre 5 m from the main network must not land
# on a 4 m stub. Real islands with streets are longer.
DEFAULT_MIN_COMPONENT_M = 250.0


@dataclass(frozen=True, eq=False)
class WalkNetwork:
    """Undirected street graph in a metric CRS: edge ``i`` runs from node ``u[i]`` to ``v[i]`` along ``geometry[i]``."""

    crs: pyproj.CRS
    geometry: np.ndarray  # LineStrings, metric
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    node_xy: np.ndarray  # (n_nodes, 2)

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    @property
    def n_edges(self) -> int:
        return len(self.u)

    @cached_property
    def tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.geometry)

    @cached_property
    def component_length(self) -> np.ndarray:
        """Per edge: the total street length of its connected component (metres)."""
        n, label = connected_components(self.matrix, directed=False)
        per_component = np.bincount(label[self.u], weights=self.length, minlength=n)
        return per_component[label[self.u]]

    def major_tree(self, min_component_m: float) -> tuple[shapely.STRtree, np.ndarray]:
        """STRtree over the edges of components with at least ``min_component_m`` of street, and their ids."""
        cache = self.__dict__.setdefault("_major_trees", {})
        if min_component_m not in cache:
            ids = np.flatnonzero(self.component_length >= min_component_m)
            cache[min_component_m] = (shapely.STRtree(self.geometry[ids]), ids)
        return cache[min_component_m]

    @cached_property
    def matrix(self) -> sp.csr_matrix:
        """Symmetric sparse adjacency (shortest of parallel edges; self-loops left out)."""
        keep = self.u != self.v
        a = np.minimum(self.u, self.v)[keep]
        b = np.maximum(self.u, self.v)[keep]
        w = self.length[keep]
        order = np.lexsort((w, b, a))
        a, b, w = a[order], b[order], w[order]
        first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
        a, b, w = a[first], b[first], w[first]
        n = self.n_nodes
        return sp.csr_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(n, n))

    def to_wgs84(self) -> gpd.GeoDataFrame:
        """The edges as a GeoDataFrame (u, v, length_m) in EPSG:4326, e.g. to look at or save."""
        frame = gpd.GeoDataFrame({"u": self.u, "v": self.v, "length_m": self.length},
                                 geometry=self.geometry, crs=self.crs)
        return frame.to_crs(4326)


def _line_parts(lines) -> tuple[np.ndarray, pyproj.CRS]:
    """LineString parts of a frame/series/array of (Multi)LineStrings, 2-D, non-empty."""
    if isinstance(lines, gpd.GeoDataFrame):
        lines = lines.geometry
    if not isinstance(lines, gpd.GeoSeries):
        raise LifeCircleError("路网必须是带坐标系的 GeoDataFrame/GeoSeries / "
                              "the network must be a GeoDataFrame or GeoSeries with a CRS")
    crs = require_crs(lines, "路网 network")
    geoms = np.asarray(lines.values, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if len(geoms) == 0:
        raise LifeCircleError("路网为空 / the street network is empty")
    parts = shapely.get_parts(geoms)
    kinds = shapely.get_type_id(parts)
    if not (kinds == 1).any():
        raise LifeCircleError(f"路网中没有线要素 / the network has no line geometries "
                              f"(found {sorted(set(shapely.get_type_id(geoms).tolist()))} type ids; 1/5 = line)")
    return shapely.force_2d(parts[kinds == 1]), crs


def build_network(lines, *, crs: pyproj.CRS | str | int | None = None, grid_m: float = 0.01) -> WalkNetwork:
    """Build the walking graph from street lines (any CRS; projected to ``crs`` or the data's UTM zone)."""
    parts, src_crs = _line_parts(lines)
    series = gpd.GeoSeries(parts, crs=src_crs)
    target = pyproj.CRS.from_user_input(crs) if crs is not None else metric_crs(bounds_wgs84(series))
    if not target.is_projected:
        raise LifeCircleError(f"测量坐标系必须是投影坐标系 / the measuring CRS must be projected, got {target.name}")
    parts = np.asarray(series.to_crs(target).values, dtype=object)

    coords, line = shapely.get_coordinates(parts, return_index=True)
    if not np.isfinite(coords).all():
        raise LifeCircleError("路网坐标无效（投影失败）/ network coordinates are not finite after projection")
    grid = np.round(coords / grid_m).astype(np.int64)
    keep = np.r_[True, (line[1:] != line[:-1]) | (grid[1:] != grid[:-1]).any(axis=1)]  # drop repeated vertices
    grid, line = grid[keep], line[keep]
    counts = np.bincount(line, minlength=len(parts))
    valid = counts[line] >= 2  # a line needs two distinct vertices
    grid, line = grid[valid], line[valid]
    if len(grid) == 0:
        raise LifeCircleError("路网没有有效线段 / the network has no line with two distinct points")

    uniq, vid = np.unique(grid, axis=0, return_inverse=True)
    vid = vid.ravel()
    is_start = np.r_[True, line[1:] != line[:-1]]
    is_end = np.r_[line[1:] != line[:-1], True]
    shared = np.bincount(vid, minlength=len(uniq)) >= 2
    is_node = is_start | is_end | shared[vid]

    # Each occurrence belongs to the edge that starts at the last node occurrence up to it; a node
    # occurrence inside a line also ends the previous edge.
    c = np.cumsum(is_node) - 1
    own = ~is_end
    ends_prev = is_node & ~is_start
    occ = np.arange(len(vid))
    edge_raw = np.r_[c[own], c[ends_prev] - 1]
    occ_all = np.r_[occ[own], occ[ends_prev]]
    order = np.lexsort((occ_all, edge_raw))
    edge_raw, occ_all = edge_raw[order], occ_all[order]
    edge_ids, edge_idx = np.unique(edge_raw, return_inverse=True)
    node_coords = uniq.astype(float) * grid_m
    geometry = shapely.linestrings(node_coords[vid[occ_all]], indices=edge_idx)

    first_occ = np.r_[0, np.flatnonzero(np.diff(edge_idx)) + 1]
    last_occ = np.r_[first_occ[1:] - 1, len(edge_idx) - 1]
    u_vertex, v_vertex = vid[occ_all[first_occ]], vid[occ_all[last_occ]]
    node_vertices, inverse = np.unique(np.r_[u_vertex, v_vertex], return_inverse=True)
    n_edges = len(edge_ids)
    return WalkNetwork(
        crs=target,
        geometry=geometry,
        u=inverse[:n_edges].astype(np.int64),
        v=inverse[n_edges:].astype(np.int64),
        length=shapely.length(geometry),
        node_xy=node_coords[node_vertices],
    )


@dataclass(frozen=True)
class Snap:
    """Where points meet the network: ``edge`` (-1 when farther than the limit), ``along`` it, ``distance`` off it."""

    edge: np.ndarray
    along: np.ndarray
    distance: np.ndarray
    point_xy: np.ndarray  # the projected points on the street (nan when not snapped)

    @property
    def ok(self) -> np.ndarray:
        return self.edge >= 0


def snap(network: WalkNetwork, points, max_distance_m: float,
         min_component_m: float = DEFAULT_MIN_COMPONENT_M) -> Snap:
    """Project metric points onto their nearest edge; points farther than ``max_distance_m`` get edge -1.

    Edges of components with at least ``min_component_m`` of street are preferred; a point is put on a
    smaller fragment only when no larger street lies within ``max_distance_m``. ``distance`` is the
    distance to the street snapped to, or for unsnapped points to the nearest street of all.
    """
    points = np.asarray(points, dtype=object)
    n = len(points)
    edge = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.nan)
    todo = ~(shapely.is_missing(points) | shapely.is_empty(points)) if n else np.zeros(0, bool)
    passes = [network.major_tree(min_component_m), (network.tree, np.arange(network.n_edges))]
    for tree, ids in passes:
        if not todo.any() or len(ids) == 0:
            continue
        (pi, ei), dist = tree.query_nearest(points[todo], return_distance=True, all_matches=False)
        idx = np.flatnonzero(todo)[pi]
        near = dist <= max_distance_m
        edge[idx[near]] = ids[ei[near]]
        distance[idx] = np.where(np.isnan(distance[idx]), dist, np.minimum(distance[idx], dist))
        distance[idx[near]] = dist[near]
        todo[idx[near]] = False
    along = np.full(n, np.nan)
    point_xy = np.full((n, 2), np.nan)
    ok = edge >= 0
    if ok.any():
        along[ok] = shapely.line_locate_point(network.geometry[edge[ok]], points[ok])
        point_xy[ok] = shapely.get_coordinates(shapely.line_interpolate_point(network.geometry[edge[ok]], along[ok]))
    return Snap(edge=edge, along=along, distance=distance, point_xy=point_xy)


def insert_points(network: WalkNetwork, where: Snap) -> tuple[WalkNetwork, np.ndarray]:
    """Split edges at the snapped points; returns the new network and each point's node (-1 if not snapped)."""
    node = np.full(len(where.edge), -1, dtype=np.int64)
    ok = np.flatnonzero(where.ok)
    if len(ok) == 0:
        return network, node
    e, t = where.edge[ok], where.along[ok]
    at_u = t <= _EPS
    at_v = t >= network.length[e] - _EPS
    node[ok[at_u]] = network.u[e[at_u]]
    node[ok[at_v & ~at_u]] = network.v[e[at_v & ~at_u]]
    mid = ~(at_u | at_v)
    if not mid.any():
        return network, node

    # One new node per distinct (edge, position); positions rounded to 1 mm.
    me, mt = e[mid], np.round(t[mid], 3)
    cuts, inverse = np.unique(np.c_[me, mt], axis=0, return_inverse=True)
    cut_edge, cut_t = cuts[:, 0].astype(np.int64), cuts[:, 1]
    new_node = network.n_nodes + np.arange(len(cuts))
    node[ok[mid]] = new_node[inverse.ravel()]

    # Chain u -> cut1 -> ... -> cutk -> v along every split edge (cuts are sorted by edge, then position).
    first = np.r_[True, cut_edge[1:] != cut_edge[:-1]]
    last = np.r_[cut_edge[1:] != cut_edge[:-1], True]
    prev_node = np.where(first, network.u[cut_edge], np.r_[-1, new_node[:-1]])
    prev_t = np.where(first, 0.0, np.r_[0.0, cut_t[:-1]])
    seg_edge = np.r_[cut_edge, cut_edge[last]]
    seg_from = np.r_[prev_node, new_node[last]]
    seg_to = np.r_[new_node, network.v[cut_edge[last]]]
    seg_start = np.r_[prev_t, cut_t[last]]
    seg_end = np.r_[cut_t, network.length[cut_edge[last]]]
    pieces = substrings(network.geometry[seg_edge], seg_start, seg_end)
    new_xy = shapely.get_coordinates(shapely.line_interpolate_point(network.geometry[cut_edge], cut_t))

    keep = np.ones(network.n_edges, dtype=bool)
    keep[cut_edge] = False
    split = WalkNetwork(
        crs=network.crs,
        geometry=np.r_[network.geometry[keep], pieces],
        u=np.r_[network.u[keep], seg_from],
        v=np.r_[network.v[keep], seg_to],
        length=np.r_[network.length[keep], shapely.length(pieces)],
        node_xy=np.r_[network.node_xy, new_xy],
    )
    return split, node


@dataclass(frozen=True)
class Block:
    """Distances from some sources (``rows`` of the caller's list) to the nodes of a local subgraph.

    Nodes not in ``nodes`` are farther than the limit as the crow flies, hence unreachable (inf).
    """

    rows: np.ndarray
    nodes: np.ndarray  # node ids of the network
    dist: np.ndarray  # (len(rows), len(nodes)); inf beyond the limit
    position: np.ndarray  # network node id -> column in ``dist`` (-1 outside the subgraph)

    def at(self, node_ids: np.ndarray) -> np.ndarray:
        """Distances to arbitrary network nodes, shape (len(rows), len(node_ids))."""
        cols = self.position[node_ids]
        out = self.dist[:, np.maximum(cols, 0)]
        out[:, cols < 0] = np.inf
        return out


def _spatial_batches(xy: np.ndarray, cell_m: float, batch: int) -> list[np.ndarray]:
    """Source indices grouped by grid cell (so each batch's search area is small), at most ``batch`` each."""
    cell = np.floor(xy / max(cell_m, 1.0)).astype(np.int64)
    order = np.lexsort((cell[:, 1], cell[:, 0]))
    key = cell[order]
    breaks = np.flatnonzero((key[1:] != key[:-1]).any(axis=1)) + 1
    out = []
    for group in np.split(order, breaks):
        out.extend(np.split(group, np.arange(batch, len(group), batch)))
    return out


def bounded_distances(network: WalkNetwork, sources: np.ndarray, limit_m: float, batch: int = 64):
    """Yield ``Block``s of network distances (inf beyond ``limit_m``) from the ``sources`` nodes.

    Sources are batched by place; each batch searches only the nodes within ``limit_m`` (straight line)
    of the batch's bounding box, with one bounded scipy Dijkstra call (``indices=batch, limit=limit_m``).
    Network distance is never shorter than the straight line, so nothing reachable is left out.
    """
    sources = np.asarray(sources, dtype=np.int64)
    if len(sources) == 0:
        return
    limit_m = float(limit_m)
    node_xy = network.node_xy
    by_x = network.__dict__.get("_nodes_by_x")
    if by_x is None:
        by_x = network.__dict__.setdefault("_nodes_by_x", np.argsort(node_xy[:, 0], kind="stable"))
    xs = node_xy[by_x, 0]
    matrix = network.matrix
    for rows in _spatial_batches(node_xy[sources], max(limit_m, 200.0), batch):
        src = sources[rows]
        (x0, y0), (x1, y1) = node_xy[src].min(axis=0) - limit_m, node_xy[src].max(axis=0) + limit_m
        cand = by_x[np.searchsorted(xs, x0, "left"):np.searchsorted(xs, x1, "right")]
        y = node_xy[cand, 1]
        nodes = np.sort(cand[(y >= y0) & (y <= y1)])
        position = np.full(network.n_nodes, -1, dtype=np.int64)
        position[nodes] = np.arange(len(nodes))
        sub = matrix[nodes][:, nodes]
        dist = dijkstra(sub, directed=True, indices=position[src], limit=limit_m, min_only=False)
        yield Block(rows=rows, nodes=nodes, dist=np.atleast_2d(dist), position=position)


def reached_pieces(network: WalkNetwork, block: Block, budget: np.ndarray):
    """Reached parts of edges: arrays ``(row, edge, start, end)``, distances along each edge.

    ``row`` indexes ``block.rows``; ``budget`` is the walking distance left per row. An edge reached from
    ``u`` at ``du`` is walked for ``min(L, budget - du)`` from ``u``; likewise from ``v``; when the two
    parts meet the whole edge is reached.
    """
    budget = np.asarray(budget, dtype=float)[:, None]
    inside = (block.position[network.u] >= 0) | (block.position[network.v] >= 0)
    edges = np.flatnonzero(inside)
    du = block.at(network.u[edges])
    dv = block.at(network.v[edges])
    row, j = np.nonzero((du <= budget) | (dv <= budget))
    edge = edges[j]
    length = network.length[edge]
    left = budget[row, 0]
    a = np.clip(left - du[row, j], 0.0, length)  # inf distance -> 0
    b = np.clip(left - dv[row, j], 0.0, length)
    full = a + b >= length - _EPS
    part_a = ~full & (a > _EPS)
    part_b = ~full & (b > _EPS)
    return (
        np.r_[row[full], row[part_a], row[part_b]],
        np.r_[edge[full], edge[part_a], edge[part_b]],
        np.r_[np.zeros(full.sum()), np.zeros(part_a.sum()), (length - b)[part_b]],
        np.r_[length[full], a[part_a], length[part_b]],
    )
