"""``zeren tiles export --kind K --out zones.pmtiles``: the vector tiles of one kind in one PMTiles v3 file, for
intranet map servers and QGIS (Layer > Add Layer > Add Vector Tile Layer, or drag the file in). Exit 0 ok,
2 bad input (a zoom range or box over the tile budget, an unknown kind, a folder that does not exist)."""
from __future__ import annotations

import argparse
import math
import sys

from zeren.api.cli.common import add_store_argument, parse_date_arg, workspace
from zeren.api.cli.errors import EXIT_OK
from zeren.api.service import tiles as service
from zeren.geo.kinds import ALL_KINDS, KIND_LABELS
from zeren.geo.tiles import MAX_ZOOM


def _zoom(text: str) -> int:
    try:
        z = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a zoom level; give a whole number 0-{MAX_ZOOM}") from None
    if not 0 <= z <= MAX_ZOOM:
        raise argparse.ArgumentTypeError(f"{z} is outside [0, {MAX_ZOOM}]")
    return z


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not minlon,minlat,maxlon,maxlat (four numbers)")
    minlon, minlat, maxlon, maxlat = box
    if not (-180 <= minlon <= maxlon <= 180 and -90 <= minlat <= maxlat <= 90):
        raise argparse.ArgumentTypeError(f"{text[:80]!r}: give minlon,minlat,maxlon,maxlat with lon in [-180, 180], "
                                         f"lat in [-90, 90], min before max")
    return box


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return n


def cmd_export(args) -> int:
    ws = workspace(args)
    try:
        from tqdm import tqdm

        service.check_out(args.out, args.kind)
        plan_box, count = service.export_plan(ws.catalogue, args.kind, args.min_zoom, args.max_zoom, args.as_of,
                                              args.bbox, args.max_tiles)
        with tqdm(total=count, unit="tile", desc="tiles", file=sys.stderr, disable=args.quiet) as bar:
            result = service.export_pmtiles(ws.catalogue, args.kind, args.out, min_zoom=args.min_zoom,
                                            max_zoom=args.max_zoom, as_of=args.as_of, bbox=args.bbox,
                                            max_tiles=args.max_tiles, progress=lambda n: bar.update(n - bar.n))
    finally:
        ws.close()
    zh, _ = KIND_LABELS[args.kind]
    print(f"矢量瓦片已导出 / vector tiles exported: {result.path}")
    print(f"  {zh} / {result.kind}: {result.tiles:,} tiles with zones (of {result.considered:,} over "
          f"{','.join(f'{v:.4f}' for v in plan_box)}), zooms {result.min_zoom}-{result.max_zoom}, "
          f"{result.bytes:,} bytes")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("tiles", help="vector tiles of the zones: export them to a PMTiles file")
    which = p.add_subparsers(dest="tiles", required=True, metavar="export")
    q = which.add_parser("export", help="write one kind's vector tiles (MVT) to a PMTiles v3 file",
                         description="Tiles of one zone kind, with code, name, lead_planner_id, has_lead and kind, "
                                     "as the server's /tiles endpoint cuts them; empty tiles are left out. The "
                                     "file is written under a temporary name and renamed when complete.")
    q.add_argument("--kind", required=True, choices=ALL_KINDS, help="the zone kind, e.g. subdistrict")
    q.add_argument("--out", required=True, help="the .pmtiles file to write (replaced when the export completes)")
    q.add_argument("--min-zoom", type=_zoom, default=0, help="lowest zoom level (default 0)")
    q.add_argument("--max-zoom", type=_zoom, default=14, help="highest zoom level (default 14)")
    q.add_argument("--as-of", type=parse_date_arg, help="the zones and leads in force on this date, YYYY-MM-DD "
                                                        "(default today)")
    q.add_argument("--bbox", type=_bbox, help="only tiles meeting minlon,minlat,maxlon,maxlat (default: the zones' "
                                              "bounds)")
    q.add_argument("--max-tiles", type=_count, default=service.MAX_EXPORT_TILES,
                   help=f"refuse an export covering more tiles than this (default {service.MAX_EXPORT_TILES:,})")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    add_store_argument(q)
    q.set_defaults(func=cmd_export)
