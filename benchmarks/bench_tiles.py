"""Vector tiles: the time to render a z12 and a z6 tile (p50, p99) from the in-memory index (what
``GET /tiles/{kind}/{z}/{x}/{y}.mvt`` runs on a cache miss) against ``ST_AsMVT`` on the same zones in PostGIS
(issue #10, "Performance"); and the tiles of the zoom a tiled map page of the kind opens at (its layer's
``minZoom``: z8 for the national communities), the tiles of its first view; and the tile layer's build time.

  python benchmarks/bench_tiles.py            # the national store of bench_national.py: 608,400 communities
  python benchmarks/bench_tiles.py --small    # 150 x 150 = 22,500 communities (CI)
  python benchmarks/bench_tiles.py --side 390 # a quarter of the country

The synthetic country is bench_national.py's, imported into a PostGIS database made for the run
(``ZEREN_TEST_PG_URL``) and dropped after; without PostGIS the in-memory figures are measured on a GeoPackage
store and the baseline is skipped with a note. Both paths answer the same question: the zones of one kind in
force today, with ``code``, ``name``, ``lead_planner_id`` (the lead appointment in force), ``has_lead`` and
``kind``, clipped with a 64/4096 buffer into a 4096 extent. The baseline is the usual PostGIS tile query
(``ST_TileEnvelope``, ``ST_Transform`` to 3857, ``ST_AsMVTGeom``, ``ST_AsMVT``, the lead by an indexed lateral
lookup), one query per tile over one open connection. Tiles are drawn at random points of the country; the
same tiles for both paths. Exit 0 whatever the figures.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

BASELINE_SQL = """
WITH mvtgeom AS (
  SELECT ST_AsMVTGeom(ST_Transform(z.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom,
         z.code, z.name, l.planner_id AS lead_planner_id, l.planner_id IS NOT NULL AS has_lead, z.kind
  FROM zones z
  LEFT JOIN LATERAL (SELECT a.planner_id FROM appointments a
                     WHERE a.zone_kind = z.kind AND a.zone_code = z.code AND a.role = 'lead'
                       AND a.start_date <= %(day)s AND (a.end_date IS NULL OR a.end_date > %(day)s)
                     ORDER BY a.planner_id LIMIT 1) l ON true
  WHERE z.kind = %(kind)s AND z.valid_from <= %(day)s AND (z.valid_to IS NULL OR z.valid_to > %(day)s)
    AND z.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096), 4326)
)
SELECT ST_AsMVT(mvtgeom.*, %(kind)s, 4096, 'geom') FROM mvtgeom
"""


def random_tiles(bounds, z: int, n: int, seed: int) -> list[tuple[int, int, int]]:
    from zeren.geo.tiles import tiles_covering

    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = bounds
    out = []
    for lon, lat in zip(rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)):
        xs, ys = tiles_covering((lon, lat, lon, lat), z)
        out.append((z, xs[0], ys[0]))
    return out


def percentiles(ms: list[float]) -> str:
    p50, p99 = np.percentile(ms, [50, 99])
    return f"p50 {p50:8.2f} ms  p99 {p99:8.2f} ms"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="22,500 communities (CI)")
    parser.add_argument("--side", type=int, help="cells per side, a multiple of 15 (default 780; 150 small)")
    parser.add_argument("--kinds", default="community,subdistrict", help="kinds to measure (default "
                                                                         "community,subdistrict)")
    args = parser.parse_args(argv)
    import bench_national
    from zeren.api.service.tiles import render_tile
    from zeren.api.service.workspace import Workspace

    side = args.side or (150 if args.small else 780)
    t = time.perf_counter()
    zones, _, bounds = bench_national.synthetic_country(side)
    counts = {kind: len(v[0]) for kind, v in zones.items()}
    print(f"synthetic country: {counts['community']:,} communities, {counts['subdistrict']:,} subdistricts, "
          f"{counts['district']:,} districts, generated in {time.perf_counter() - t:.1f} s")
    samples = {12: 40 if args.small else 200, 6: 5 if args.small else 20}
    base = os.environ.get("ZEREN_TEST_PG_URL")
    name = f"zeren_bench_tiles_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="zeren-bench-tiles-") as tmp:
        tmp = Path(tmp)
        location = bench_national._postgis_database(base, name, create=True) if base else str(tmp / "tiles.gpkg")
        try:
            t = time.perf_counter()
            bench_national.build_store(location, zones, tmp)
            print(f"store ({'PostGIS' if base else 'GeoPackage'}) built in {time.perf_counter() - t:.1f} s")
            del zones
            ws = Workspace.open(location)
            catalogue = ws.catalogue
            t = time.perf_counter()
            catalogue.warm()
            print(f"index ready in {time.perf_counter() - t:.1f} s: {len(catalogue.index):,} zones")
            day = dt.date.today()
            con = None
            if base:
                import psycopg

                con = psycopg.connect(location, autocommit=True)
            else:
                print("ST_AsMVT baseline: skipped (ZEREN_TEST_PG_URL is not set; `source /tmp/env.sh` on the dev "
                      "machine)")
            for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
                from zeren.maps.builders import tile_min_zoom

                t = time.perf_counter()
                layer = catalogue.index.tile_source.layer(kind)
                print(f"\n--- {kind}: tile layer built in {time.perf_counter() - t:.2f} s ({len(layer):,} zones; "
                      f"each projected to EPSG:3857 by the first tile that needs it)")
                page_zoom = tile_min_zoom(layer.lonlat)
                render_tile(catalogue, kind, *random_tiles(bounds, 12, 1, seed=1)[0], day)  # the first tile's
                # one-off costs (the names column, read once per index) are not a tile's
                gc.collect()
                gc.freeze()  # as `zeren serve` does after loading: full collections no longer walk the index
                for z in dict.fromkeys((12, 6, page_zoom)):
                    label = f"z{z}" + (" (the map page's first view)" if z == page_zoom else "")
                    tiles = random_tiles(bounds, z, samples.get(z, 10 if args.small else 40), seed=z)
                    ours, cpu, sizes = [], [], []
                    for tile in tiles:
                        t, c = time.perf_counter(), time.thread_time()
                        body = render_tile(catalogue, kind, *tile, day)
                        cpu.append((time.thread_time() - c) * 1000)
                        ours.append((time.perf_counter() - t) * 1000)
                        sizes.append(len(body))
                    print(f"  {label} in memory ({len(tiles)} tiles, mean {np.mean(sizes) / 1024:,.1f} KiB): "
                          f"{percentiles(ours)}  (CPU time {percentiles(cpu)}; load average "
                          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
                    if con is None:
                        continue
                    theirs, their_sizes = [], []
                    for z_, x, y in tiles:
                        t = time.perf_counter()
                        row = con.execute(BASELINE_SQL, {"z": z_, "x": x, "y": y, "day": day, "kind": kind}).fetchone()
                        theirs.append((time.perf_counter() - t) * 1000)
                        their_sizes.append(len(row[0] or b""))
                    print(f"  z{z} ST_AsMVT  ({len(tiles)} tiles, mean {np.mean(their_sizes) / 1024:,.1f} KiB): "
                          f"{percentiles(theirs)}")
                    print(f"  z{z} in memory / ST_AsMVT: p50 {np.median(ours) / np.median(theirs):.2f}x, p99 "
                          f"{np.percentile(ours, 99) / np.percentile(theirs, 99):.2f}x (below 1 = faster)")
            if con is not None:
                con.close()
            ws.close()
        finally:
            if base:
                bench_national._postgis_database(base, name, create=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
