"""``zeren life-circles``: generate 15-minute community life circles and check their daily services.

    life-circles generate CENTRES [--network FILE] [--minutes 15 ...] [--speed-kmh 4.5] [--buffer-m 40]
                          [--max-snap-m 300] [--radius-m R] [--clip FILE] [--clip-by-centre] [--crs CRS]
                          --out FILE [--streets-out FILE]
    life-circles check CIRCLES --pois FILE [--mapping FILE] [--osm-map FILE] [--category-col NAME]
                       [--network FILE] [--search-m 3000] [--crs CRS] --out FILE [--summary-out FILE.json]

Files: GeoPackage, GeoJSON, Shapefile, CSV (lon/lat columns, WGS84 unless --crs), OSM .osm/.pbf (network,
POIs). Output by suffix: .gpkg, .geojson/.json, .csv (geometry as WKT). Exit 0 ok, 2 bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from zeren.api.service import life_circles as service
from zeren.geo.lifecircle import (
    DEFAULT_BUFFER_M,
    DEFAULT_MAX_SNAP_M,
    DEFAULT_SPEED_KMH,
    build_network,
)
from zeren.geo.lifecircle.health import DEFAULT_SEARCH_M
from zeren.layers.facilities import load_categories, load_osm_map, read_points, read_pois
from zeren.layers.network import read_network, read_vector
from zeren.layers.writers import output_path, write_frame
from zeren.maps import write_standalone



def cmd_generate(args) -> int:
    """Handler of ``life-circles generate``."""
    out = output_path(args.out)
    streets_out = output_path(args.streets_out) if args.streets_out else None
    centres = read_points(args.centres, crs=args.crs, layer=args.layer, what="centres file")
    network = read_network(args.network, layer=args.network_layer) if args.network else None
    clip = read_vector(args.clip, layer=args.clip_layer, what="clip file") if args.clip else None
    options = {"keep_streets": True} if streets_out and network is not None else {}
    made = service.generate(centres, network=network, network_name=service.file_name(args.network),
                            minutes=args.minutes, speed_kmh=args.speed_kmh, radius_m=args.radius_m, clip=clip,
                            clip_ref={"file": Path(args.clip).name} if args.clip else None, buffer_m=args.buffer_m,
                            max_snap_m=args.max_snap_m, clip_by_centre=args.clip_by_centre, **options)
    for row in made.skipped.itertuples(index=False):
        dist = "" if pd.isna(row.distance_m) else f" ({row.distance_m:.0f} m)"
        print(f"跳过 / skipped {row.code} {row.name}: {row.reason}{dist}", file=sys.stderr)
    write_frame(made.circles, out, "life_circles", csv_wkt_column="geometry_wkt")
    if streets_out is not None and made.streets is not None:
        write_frame(made.streets, streets_out, "reached_streets", csv_wkt_column="geometry_wkt")
    method = made.circles["method"].iloc[0]
    print(f"已生成 {len(made.circles)} 个生活圈（{method}）→ {out} / wrote {len(made.circles)} life circles "
          f"({method}) to {out}")
    return 0


def cmd_check(args) -> int:
    """Handler of ``life-circles check``."""
    out = output_path(args.out)
    circles = read_vector(args.circles, layer=args.layer, crs=args.crs, what="circles file")
    mapping = load_osm_map(args.osm_map) if args.osm_map else None
    pois = read_pois(args.pois, category_col=args.category_col, crs=args.crs, layer=args.pois_layer,
                     mapping=mapping)
    categories = load_categories(args.mapping)
    network = build_network(read_network(args.network, layer=args.network_layer)) if args.network else None
    result = service.check_file(circles, pois, categories=categories, network=network, search_m=args.search_m)
    write_frame(result.circles, out, "life_circle_check", csv_wkt_column="geometry_wkt")
    if args.summary_out:
        Path(args.summary_out).write_text(json.dumps(result.summary, ensure_ascii=False, indent=2), "utf-8")
    if args.map:
        write_standalone(service.check_map(result, sources=(args.pois, args.network)), args.map)
    print(result.summary_text())
    for row in result.circles.itertuples(index=False):
        if row.missing_zh:
            print(f"  {row.code} {row.name}: 缺少 {row.missing_zh} / lacks {row.missing}")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``life-circles generate`` and ``life-circles check`` to a ``zeren`` subparsers object."""
    top = subparsers.add_parser("life-circles", help="15分钟社区生活圈 / 15-minute community life circles",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="life_circles_command", required=True)

    gen = sub.add_parser("generate", help="生成生活圈 / generate life circles from centre points")
    gen.add_argument("centres", metavar="CENTRES", help="centre points: GeoJSON/GeoPackage/CSV with lon,lat")
    gen.add_argument("--network", metavar="FILE", help="street lines (GeoPackage/GeoJSON) or OSM .osm/.pbf; "
                     "without it: straight-line buffers of GB 50180-2018 radii")
    gen.add_argument("--minutes", type=float, nargs="+", default=[15.0], help="walking minutes (default 15)")
    gen.add_argument("--speed-kmh", type=float, default=DEFAULT_SPEED_KMH, help="walking speed (default 4.5)")
    gen.add_argument("--buffer-m", type=float, default=DEFAULT_BUFFER_M, help="buffer around reached streets (40)")
    gen.add_argument("--max-snap-m", type=float, default=DEFAULT_MAX_SNAP_M,
                     help="centres farther than this from any street are reported (300)")
    gen.add_argument("--radius-m", type=float, help="straight-line radius instead of the GB 50180-2018 default")
    gen.add_argument("--clip", metavar="FILE", help="polygons (district/subdistrict) to clip the circles to")
    gen.add_argument("--clip-by-centre", action="store_true", help="clip each circle to the polygon holding its centre")
    gen.add_argument("--crs", help="CRS of CENTRES when the file states none (required for CSV): wgs84, cgcs2000, gcj02, bd09, EPSG:n")
    gen.add_argument("--layer", help="layer of CENTRES in a GeoPackage")
    gen.add_argument("--network-layer", help="layer of the network file in a GeoPackage")
    gen.add_argument("--clip-layer", help="layer of the clip file in a GeoPackage")
    gen.add_argument("--out", required=True, metavar="FILE", help="output .gpkg/.geojson/.csv (EPSG:4326)")
    gen.add_argument("--streets-out", metavar="FILE", help="also write the reached street pieces")
    gen.set_defaults(func=cmd_generate)

    chk = sub.add_parser("check", help="生活圈体检 / health check of daily services per circle")
    chk.add_argument("circles", metavar="CIRCLES", help="life circles (output of generate)")
    chk.add_argument("--pois", required=True, metavar="FILE",
                     help="facilities: OSM .osm/.pbf, or points with a category column")
    chk.add_argument("--mapping", metavar="FILE", help="category table CSV (default data/facility_categories.csv)")
    chk.add_argument("--osm-map", metavar="FILE", help="OSM tag map CSV (default data/osm_facility_map.csv)")
    chk.add_argument("--category-col", default="category", help="category column of the POI file (category)")
    chk.add_argument("--network", metavar="FILE", help="street network for walking distances (else straight-line)")
    chk.add_argument("--search-m", type=float, default=DEFAULT_SEARCH_M, help="how far to look for the nearest (3000)")
    chk.add_argument("--crs", help="CRS of CIRCLES/POIS when a file states none (required for CSV): wgs84, cgcs2000, gcj02, bd09, EPSG:n")
    chk.add_argument("--layer", help="layer of CIRCLES in a GeoPackage")
    chk.add_argument("--pois-layer", help="layer of the POI file in a GeoPackage")
    chk.add_argument("--network-layer", help="layer of the network file in a GeoPackage")
    chk.add_argument("--out", required=True, metavar="FILE", help="output .gpkg/.geojson/.csv")
    chk.add_argument("--summary-out", metavar="FILE", help="also write the summary as JSON")
    chk.add_argument("--map", metavar="FILE.html", help="also write a map of the circles coloured by score")
    chk.set_defaults(func=cmd_check)
    return top
