"""``zeren lookup`` (who is responsible for this point?) and ``zeren assign`` (many sites from a file)."""
from __future__ import annotations

import gc
import sys
from pathlib import Path


from zeren.api.cli.common import ENV, add_store_argument, parse_date_arg, print_json, workspace
from zeren.api.cli.errors import EXIT_OK
from zeren.api.service import assign as service
from zeren.api.service.budget import CLI_MAX_FEATURE_VERTICES, CLI_MAX_VERTICES, cli_budget
from zeren.api.service.lookup import lookup
from zeren.geo.kinds import KIND_LABELS
from zeren.layers.index_cache import IndexCache


def _person(p: dict | None) -> str:
    if not p:
        return "—"
    org = f"，{p['organization']}" if p.get("organization") else ""
    contact = f"，{p['public_contact']}" if p.get("public_contact") else ""
    return f"{p.get('name')}（{p.get('id')}{org}{contact}）"


def _zone(z: dict) -> str:
    zh, en = KIND_LABELS.get(z["kind"], (z["kind"], z["kind"]))
    return f"{zh}「{z['name']}」{z['code']} / {en}"


def format_answer(answer: dict) -> str:
    site = answer["site"]
    lines = [f"地点 / site: {site['lon']:.6f}, {site['lat']:.6f} (WGS84; given {site['given'][0]}, {site['given'][1]} "
             f"in {site['crs']})   日期 / as of: {answer['as_of']}"]
    if answer["covered"]:
        lead = answer["lead"]
        lines.append(f"责任规划师 / lead planner: {_person(lead['planner'])}")
        lines.append(f"  负责 / for: {_zone(lead['zone'])}")
    else:
        lines.append("此处尚无责任规划师 / no responsible planner covers this site")
        if answer.get("notice"):
            lines.append(f"  {answer['notice']}")
        near = answer["nearest"]
        if near:
            lines.append(f"  最近的有规划师的区域 / nearest zone with a planner: {_zone(near['zone'])}, "
                         f"{near['distance_m']:.0f} m — {_person(near['planner'])}")
    if answer["consultations"]:
        lines.append("须征询 / must also consult:")
        lines += [f"  {_person(c['planner'])} — {c['reason']}" for c in answer["consultations"]]
    others = [p for p in answer["planners"] if not (answer["lead"] and p["role"] == "lead"
                                                     and p["zone"] == answer["lead"]["zone"])]
    if others:
        lines.append("其他规划师 / other planners here:")
        lines += [f"  {_person(p['planner'])} — {p['reason']}" for p in others]
    lines.append("所在区域 / zones here:")
    lines += [f"  {_zone(z)}" for z in answer["zones"]] or ["  —"]
    return "\n".join(lines)


def cmd_lookup(args) -> int:
    answer = lookup(workspace(args), args.lon, args.lat, args.crs, args.as_of)
    print_json(answer) if args.json else print(format_answer(answer))
    return EXIT_OK


def cmd_assign(args) -> int:
    ws = workspace(args)
    progress = _progress() if sys.stderr.isatty() else None
    # The objects that exist now (the modules, their tables: 74,000 of them) are set aside from the
    # cycle collector for the run, so its full collections walk only what the run makes: they cost 0.11 s of
    # a 2.2 s million-point run. Given back to it afterwards (a test calls this in a long-lived process).
    gc.freeze()
    cache = IndexCache(ENV.index_cache) if ENV.index_cache else None
    try:
        done = service.assign_file(ws, args.sites, args.out, layer=args.layer, crs=args.crs, as_of=args.as_of,
                                   skip_bad=args.skip_bad, chunk_rows=args.chunk_rows,
                                   progress=progress.update if progress else None,
                                   budget=cli_budget(args.max_vertices, args.max_feature_vertices),
                                   index_cache=cache)
    finally:
        gc.unfreeze()
        if progress:
            progress.close()
    print(f"已分配 / assigned: {done.assigned} site(s); 有责任规划师 / covered: {done.covered}; 无 / uncovered: "
          f"{done.assigned - done.covered}; 错误 / errors: {done.bad} -> {args.out}")
    if cache is not None and cache.problem:
        print(f"注意 / note: 索引缓存无法写入，下次仍需重建 / the index cache cannot be written, the next run builds "
              f"the index again ({cache.problem}; set ZEREN_INDEX_CACHE to a writable folder, or 'off')",
              file=sys.stderr)
    return EXIT_OK


def _progress():
    from tqdm import tqdm

    return tqdm(unit="site", desc="assign", file=sys.stderr)


def _positive(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("give at least 1")
    return value


def register(sub) -> None:
    p = sub.add_parser("lookup", help="who is responsible for this point?")
    p.add_argument("--lon", type=float, required=True, help="longitude (or x in --crs)")
    p.add_argument("--lat", type=float, required=True, help="latitude (or y in --crs)")
    p.add_argument("--crs", default="wgs84", help="wgs84 (default), cgcs2000, gcj02 (AMap/Tencent), bd09 (Baidu), EPSG:n")
    p.add_argument("--as-of", type=parse_date_arg, help="date of the answer (default today)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_argument(p)
    p.set_defaults(func=cmd_lookup)

    p = sub.add_parser("assign", help="assign many sites (points, lines, polygons) to planners",
                       description="Assign many sites to planners, file in, file out. A large batch keeps the zone "
                                   "index's point grid and nearest-zone segments in ZEREN_INDEX_CACHE (default "
                                   "~/.cache/zeren/index; 'off' keeps none) for the next run over the same zones: "
                                   "a cache only, safe to delete; a changed zone or appointment never reads a "
                                   "stale entry.")
    p.add_argument("sites", type=Path, help="GeoJSON, GeoPackage, GeoParquet, zipped Shapefile, or CSV with lon/lat "
                                            "or wkt")
    p.add_argument("--out", required=True, help="output .csv, .gpkg, .parquet (GeoParquet 1.1) or .geojson")
    p.add_argument("--chunk-rows", type=_positive, default=service.FILE_CHUNK, metavar="N",
                   help=f"rows read, assigned and written at a time (default {service.FILE_CHUNK:,}): memory stays "
                        f"flat whatever the file size")
    p.add_argument("--layer")
    p.add_argument("--crs", help="CRS when the file has none: wgs84, cgcs2000, gcj02, bd09, EPSG:n")
    p.add_argument("--as-of", type=parse_date_arg)
    p.add_argument("--skip-bad", action="store_true", help="write unusable sites with an 'error' column")
    p.add_argument("--max-feature-vertices", type=int, metavar="N",
                   help=f"refuse a site with more vertices (default {CLI_MAX_FEATURE_VERTICES:,})")
    p.add_argument("--max-vertices", type=int, metavar="N",
                   help=f"refuse a chunk of rows (--chunk-rows) with more vertices (default {CLI_MAX_VERTICES:,})")
    add_store_argument(p)
    p.set_defaults(func=cmd_assign)
