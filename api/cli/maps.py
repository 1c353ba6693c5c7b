"""`zeren map coverage|gaps|site|planner|project ... --out FILE.html`: standalone pages that open offline."""
from __future__ import annotations

import argparse

from zeren.api.service import pages
from zeren.api.cli.common import ENV, add_store_argument, parse_date_arg, workspace
from zeren.api.cli.errors import EXIT_OK, CommandError
from zeren.geo.kinds import ALL_KINDS
from zeren.maps import BASEMAPS, MapSettings, write_standalone


def register(sub) -> None:
    p = sub.add_parser("map", help="write a map page (HTML that opens offline)")
    which = p.add_subparsers(dest="map", required=True, metavar="MAP")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, help="the .html file to write")
    common.add_argument("--as-of", type=parse_date_arg)
    common.add_argument("--basemap", default=ENV.basemap, choices=BASEMAPS,
                        help="none (offline), osm, tianditu (needs ZEREN_TIANDITU_KEY), amap, tencent")
    common.add_argument("--assets", choices=("inline", "relative"), default="inline",
                        help="inline the JS/CSS into the page (default) or copy them beside it")
    add_store_argument(common)

    m = which.add_parser("coverage", parents=[common], help="zones coloured by their lead planner, gaps hatched")
    m.add_argument("--kind", default="subdistrict", choices=ALL_KINDS)
    m.add_argument("--within", help="a district (or other zone) code")
    m = which.add_parser("gaps", parents=[common], help="uncovered ground and units without a planner")
    m.add_argument("--kind", default="subdistrict", choices=ALL_KINDS)
    m.add_argument("--within")
    m = which.add_parser("site", parents=[common], help="one site, its zones, lead and consultations")
    m.add_argument("--lon", type=float, required=True)
    m.add_argument("--lat", type=float, required=True)
    m.add_argument("--crs", default="wgs84")
    m = which.add_parser("planner", parents=[common], help="one planner's zones and projects")
    m.add_argument("planner_id")
    m = which.add_parser("project", parents=[common], help="one project and the planners it was assigned")
    m.add_argument("project_id", type=int)
    m = which.add_parser("diff", parents=[common], help="what a boundary edition changed (old boundary dashed)")
    m.add_argument("--kind", required=True, choices=ALL_KINDS)
    m.add_argument("--from", dest="from_edition", type=int, required=True, metavar="YEAR")
    m.add_argument("--to", dest="to_edition", type=int, required=True, metavar="YEAR")
    p.set_defaults(func=cmd_map)


def cmd_map(args) -> int:
    if not args.out.lower().endswith((".html", ".htm")):
        raise CommandError(f"{args.out}: a map is written as .html")
    settings = MapSettings(basemap=args.basemap, tianditu_key=ENV.tianditu_key, tile_url=ENV.tile_url,
                           attribution=ENV.map_attribution, approval_number=ENV.approval_number)
    ws = workspace(args)
    if args.map == "coverage":
        m = pages.coverage_page(ws, kind=args.kind, within=args.within, as_of=args.as_of, settings=settings)
    elif args.map == "gaps":
        m = pages.gaps_page(ws, kind=args.kind, within=args.within, as_of=args.as_of, settings=settings)
    elif args.map == "site":
        m = pages.site_page(ws, args.lon, args.lat, crs=args.crs, as_of=args.as_of, settings=settings)
    elif args.map == "planner":
        m = pages.planner_page(ws, args.planner_id, as_of=args.as_of, settings=settings)
    elif args.map == "diff":
        m = pages.edition_diff_page(ws, kind=args.kind, from_edition=args.from_edition, to_edition=args.to_edition,
                                    settings=settings)
    else:
        m = pages.project_page(ws, args.project_id, settings=settings)
    path = write_standalone(m, args.out, assets=args.assets)
    print(f"地图已写入 / map written: {path} ({path.stat().st_size / 1024:.0f} KB)")
    return EXIT_OK
