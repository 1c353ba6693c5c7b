"""Benchmark: 15-minute walking life circles for many centres, Zeren vs per-centre networkx Dijkstra.

    python -m benchmarks.bench_life_circles            # full: 1,000 centres on a ~50,000-edge grid and on Helsinki
    python -m benchmarks.bench_life_circles --small    # CI: 100 centres on a ~2,000-edge grid and on Helsinki

Both sides search the same graph (the centres already split into their edges) for the same walk
(1125 m = 15 min at 4.5 km/h):
* Zeren: batched bounded ``scipy.sparse.csgraph.dijkstra(indices=..., limit=walk)`` plus the vectorised
  reached-pieces step (which street parts each centre reaches, partial edges included);
* networkx: ``single_source_dijkstra_path_length(G, centre, cutoff=walk, weight="length")`` per centre,
  nothing more (its reached nodes only, no edge pieces: the baseline is favoured).
In full mode networkx runs on a random sample of ``--nx-sample`` centres and is extrapolated linearly
(each centre's search is independent), as the output says. The full circle build (buffers and unions)
is timed too, for the record: it is the same work whichever search found the streets.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely

from zeren.geo.lifecircle import build_network, network_life_circles, walk_distance_m
from zeren.geo.lifecircle.network import bounded_distances, insert_points, reached_pieces, snap

HELSINKI = Path(__file__).resolve().parent.parent / "data" / "helsinki.osm.pbf"
TARGET_RATIO = 3.0


def grid_lines(target_edges: int, spacing_m: float = 80.0, seed: int = 0) -> gpd.GeoDataFrame:
    """A square street grid with about ``target_edges`` edges (slightly jittered), in UTM 50N near Beijing."""
    n = int(np.ceil((1 + np.sqrt(1 + 2 * target_edges)) / 2))  # 2 n (n - 1) >= target
    rng = np.random.default_rng(seed)
    xy = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), axis=-1).reshape(-1, 2) * spacing_m
    xy = xy + rng.uniform(-spacing_m * 0.15, spacing_m * 0.15, xy.shape) + (440_000.0, 4_420_000.0)
    idx = np.arange(n * n).reshape(n, n)
    pairs = np.r_[np.c_[idx[:-1, :].ravel(), idx[1:, :].ravel()], np.c_[idx[:, :-1].ravel(), idx[:, 1:].ravel()]]
    lines = shapely.linestrings(np.stack([xy[pairs[:, 0]], xy[pairs[:, 1]]], axis=1))
    return gpd.GeoDataFrame(geometry=lines, crs="EPSG:32650")


def random_centres(lines: gpd.GeoDataFrame, n: int, seed: int = 1) -> gpd.GeoDataFrame:
    """``n`` centres a little off random points of the streets (so every one snaps)."""
    rng = np.random.default_rng(seed)
    geoms = np.asarray(lines.geometry.values)
    pick = rng.integers(0, len(geoms), n)
    pts = shapely.line_interpolate_point(geoms[pick], rng.uniform(0, 1, n), normalized=True)
    metric = lines.estimate_utm_crs()
    xy = shapely.get_coordinates(gpd.GeoSeries(pts, crs=lines.crs).to_crs(metric).values)
    xy += rng.uniform(-15, 15, xy.shape)
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries(shapely.points(xy), crs=metric).to_crs(lines.crs).values,
                            crs=lines.crs)


def zeren_search(net, centres_xy, walk: float) -> tuple[float, int]:
    """Seconds for snap + split + bounded Dijkstra + reached pieces; and the number of pieces found."""
    t = time.perf_counter()
    where = snap(net, centres_xy, 300.0)
    split, nodes = insert_points(net, where)
    n_pieces = 0
    for block in bounded_distances(split, nodes, walk):
        r, _, _, _ = reached_pieces(split, block, np.full(len(block.rows), walk))
        n_pieces += len(r)
    return time.perf_counter() - t, n_pieces


def networkx_search(net, centres_xy, walk: float, sample: int | None, seed: int = 2) -> tuple[float, int, bool]:
    """Seconds for per-centre networkx Dijkstra (on a sample when asked, extrapolated); centres timed; sampled?"""
    where = snap(net, centres_xy, 300.0)
    split, nodes = insert_points(net, where)
    graph = nx.Graph()
    graph.add_weighted_edges_from(zip(split.u.tolist(), split.v.tolist(), split.length.tolist()), weight="length")
    sources = nodes[nodes >= 0]
    sampled = sample is not None and sample < len(sources)
    if sampled:
        sources = np.random.default_rng(seed).choice(sources, sample, replace=False)
    t = time.perf_counter()
    for s in sources.tolist():
        nx.single_source_dijkstra_path_length(graph, s, cutoff=walk, weight="length")
    elapsed = time.perf_counter() - t
    total = int((nodes >= 0).sum())
    return elapsed * total / len(sources), len(sources), sampled


def run_case(name: str, lines: gpd.GeoDataFrame, n_centres: int, nx_sample: int | None, circles: bool) -> dict:
    walk = walk_distance_m(15, 4.5)
    t = time.perf_counter()
    net = build_network(lines)
    build_s = time.perf_counter() - t
    centres = random_centres(lines, n_centres)
    centres_xy = np.asarray(centres.to_crs(net.crs).geometry.values)
    zeren_s, pieces = zeren_search(net, centres_xy, walk)
    nx_s, nx_timed, sampled = networkx_search(net, centres_xy, walk, nx_sample)
    out = {"case": name, "edges": net.n_edges, "nodes": net.n_nodes, "centres": n_centres, "build_s": build_s,
           "zeren_s": zeren_s, "networkx_s": nx_s, "nx_timed": nx_timed, "sampled": sampled,
           "ratio": nx_s / zeren_s if zeren_s > 0 else float("inf"), "pieces": pieces}
    if circles:
        t = time.perf_counter()
        result = network_life_circles(centres, net, minutes=15)
        out["circles_s"] = time.perf_counter() - t
        out["circles"] = len(result.circles)
    return out


def report(row: dict) -> str:
    nx_note = (f"(measured on {row['nx_timed']} centres, extrapolated to {row['centres']})" if row["sampled"]
               else f"(all {row['nx_timed']} centres)")
    lines = [
        f"== {row['case']}: {row['edges']:,} edges, {row['nodes']:,} nodes, {row['centres']:,} centres, walk 1125 m",
        f"   graph build (once)            {row['build_s']:8.3f} s",
        f"   Zeren search + reached pieces {row['zeren_s']:8.3f} s   ({row['pieces']:,} street pieces)",
        f"   networkx per-centre Dijkstra  {row['networkx_s']:8.3f} s   {nx_note}",
        f"   ratio networkx / Zeren        {row['ratio']:8.1f} x   (target >= {TARGET_RATIO:g} x: "
        f"{'met' if row['ratio'] >= TARGET_RATIO else 'NOT met'})",
    ]
    if "circles_s" in row:
        lines.append(f"   full circles (search+buffer+union) {row['circles_s']:6.2f} s for {row['circles']:,} circles")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="fast run for CI")
    parser.add_argument("--centres", type=int, help="centres per case (default 1000, --small 100)")
    parser.add_argument("--edges", type=int, help="grid edges (default 50000, --small 2000)")
    parser.add_argument("--nx-sample", type=int, default=200, help="networkx centres timed in full mode (200)")
    parser.add_argument("--no-circles", action="store_true", help="skip timing the full circle build")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the ratio target is not met")
    args = parser.parse_args(argv)
    n_centres = args.centres or (100 if args.small else 1000)
    n_edges = args.edges or (2000 if args.small else 50_000)
    sample = None if args.small else args.nx_sample
    from zeren.layers.network import read_network

    cases = [("synthetic grid", grid_lines(n_edges)), ("Helsinki OSM (real)", read_network(HELSINKI))]
    rows = []
    for name, lines in cases:
        row = run_case(name, lines, n_centres, sample, circles=not args.no_circles)
        rows.append(row)
        print(report(row), flush=True)
    worst = min(r["ratio"] for r in rows)
    print(f"\nworst ratio {worst:.1f} x; target >= {TARGET_RATIO:g} x {'met' if worst >= TARGET_RATIO else 'NOT met'}")
    return 1 if args.strict and worst < TARGET_RATIO else 0


if __name__ == "__main__":
    sys.exit(main())
