"""The ``zeren`` command line. Each command parses, calls geo/layers, prints; errors exit 2 with a message
that names the file, row or field and what to do."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from zeren.geo.answer import ASSIGNMENT_COLUMNS, assignment_columns
from zeren.geo.crs import geometries_to_wgs84, lonlat_problems
from zeren.geo.errors import GeoInputError
from zeren.geo.hierarchy import derive_parent_codes, parent_kind
from zeren.geo.kinds import ALL_KINDS, KIND_LABELS
from zeren.layers.errors import ValidationError, ZerenError
from zeren.layers.schema import planner_problems
from zeren.layers.store import DEFAULT_STORE, open_store
from zeren.layers.writers import output_path, write_layers

EXIT_OK = 0
EXIT_BAD_INPUT = 2
ASSIGN_CHUNK = 200_000


class CommandError(Exception):
    """A bad command line or input: printed as it is, exit 2."""


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=os.environ.get("ZEREN_STORE", DEFAULT_STORE),
                        help="GeoPackage file or postgresql:// URL (env ZEREN_STORE; default ./zeren.gpkg)")


def parse_date_arg(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write YYYY-MM-DD") from None


def load_catalogue(args):
    from zeren.layers.catalogue import Catalogue

    return Catalogue(open_store(args.store))


# -- demo ----------------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    from zeren.layers.demo import build_demo

    path = args.store
    if _is_file_store(path) and Path(path).exists() and not args.force and not _is_demo_store(path):
        raise CommandError(f"{path} exists and is not a demo store; pass --force to replace it with the demo city")
    store = build_demo(path)
    zones = store.zones()
    print(f"演示城市已建成 / demo city built: {path}")
    for kind, count in zones["kind"].value_counts().sort_index().items():
        print(f"  {KIND_LABELS[kind][0]} / {kind}: {count}")
    print(f"  规划师 / planners: {len(store.planners())}   任命 / appointments: {len(store.appointments())}   "
          f"项目 / projects: {len(store.projects())}")
    print(f"试试 / try: zeren lookup --lon 104.0657 --lat 30.6570 --store {path}")
    return EXIT_OK


def _is_file_store(location) -> bool:
    return not str(location).startswith(("postgresql://", "postgres://"))


def _is_demo_store(path) -> bool:
    try:
        store = open_store(path)
    except ZerenError:
        return False
    try:
        return store.meta("origin") == "demo"
    finally:
        store.close()


# -- import --------------------------------------------------------------------------------------
def _existing_store(location):
    """The store to check an import against, or None when there is none yet: a new store is made only
    once there is something to write, so a refused import leaves no empty store behind."""
    try:
        return open_store(location)
    except ZerenError:
        if _is_file_store(location) and Path(location).exists() and Path(location).stat().st_size:
            raise  # a file that is there but is no Zeren store is an error, even in a dry run
        return None


def cmd_import_layer(args) -> int:
    from zeren.layers.importer import read_zone_layer

    store = _existing_store(args.store)  # with one, codes and parents are checked against it
    existing = store.zones(as_of=None) if store is not None else None
    bounds = tuple(existing.total_bounds) if existing is not None and len(existing) else None
    zones, report = read_zone_layer(args.file, layer=args.layer, crs=args.crs, code_field=args.code_field,
                                    name_field=args.name_field, parent_field=args.parent_field, data_bounds=bounds)
    pk = parent_kind(args.kind)
    if pk and existing is not None and zones["parent_code"].isna().any():
        parents = existing[existing["kind"] == pk]
        if len(parents):
            missing = zones["parent_code"].isna().to_numpy()
            zones.loc[missing, "parent_code"] = derive_parent_codes(zones.geometry.to_numpy()[missing],
                                                                     parents.geometry.to_numpy(),
                                                                     parents["code"].to_numpy())
            report.notes.append(f"parent_code derived from the {pk} layer for {int(missing.sum())} feature(s)")
    print(report.text())
    if report.rejected and not args.skip_rejected:
        shown = "".join(f"\n  {report.unit} {r.row} (code {r.code}): {r.reason}" for r in report.rejected[:20])
        more = f"\n  ... and {len(report.rejected) - 20} more" if len(report.rejected) > 20 else ""
        print(f"zeren: error: {args.file}: {len(report.rejected)} feature(s) rejected; nothing was written:"
              f"{shown}{more}\nFix them, or pass --skip-rejected to import the other {report.accepted}.",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.dry_run:
        print(f"试运行 / dry run: {len(zones)} feature(s) would be written as {args.kind} edition {args.edition}")
        return EXIT_OK
    if not len(zones):
        raise CommandError(f"{args.file}: no feature to import")
    valid_from = args.valid_from or dt.date(args.edition, 1, 1)
    if store is None:
        store = open_store(args.store, create=True)
    written = store.replace_zones(zones, kind=args.kind, edition=args.edition, valid_from=valid_from,
                                  report=report.as_dict(), source=str(args.file))
    print(f"已导入 / imported: {written} {args.kind} zone(s), edition {args.edition}, valid from {valid_from}, "
          f"into {args.store}")
    return EXIT_OK


def cmd_import_planners(args) -> int:
    from zeren.layers.importer import read_csv_records

    frame = read_csv_records(args.file, ["id", "name", "organization", "disciplines", "public_contact",
                                         "private_contact"])
    problems = planner_problems(frame)  # before a new store would be made for them
    if problems:
        raise CommandError(f"{args.file}: " + str(ValidationError(
            f"{len(problems)} problem(s) in the planners; nothing was written", problems)))
    try:
        counts = open_store(args.store, create=True).upsert_planners(frame, actor=args.actor, source=str(args.file))
    except ValidationError as exc:
        raise CommandError(f"{args.file}: {exc}") from None  # name the file as well as the rows
    print(f"规划师 / planners: {counts['added']} added, {counts['updated']} updated")
    return EXIT_OK


def cmd_import_appointments(args) -> int:
    from zeren.layers.importer import read_csv_records

    frame = read_csv_records(args.file, ["planner_id", "zone_kind", "zone_code", "role", "start", "end"])
    try:
        ids = open_store(args.store).add_appointments(frame, actor=args.actor, source=str(args.file))
    except ValidationError as exc:
        raise CommandError(f"{args.file}: {exc}") from None  # name the file as well as the rows
    print(f"任命 / appointments: {len(ids)} added")
    return EXIT_OK


# -- lookup and assign ---------------------------------------------------------------------------
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
    answer = load_catalogue(args).lookup(args.lon, args.lat, args.crs, args.as_of)
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
    else:
        print(format_answer(answer))
    return EXIT_OK


def _site_problems(geoms: np.ndarray, bounds) -> np.ndarray:
    """Per site: None when usable, else what is wrong with it."""
    problems = np.full(len(geoms), None, dtype=object)
    missing = pd.isna(geoms) | shapely.is_empty(geoms)
    problems[missing] = "empty or missing geometry"
    ok = ~missing
    if ok.any():
        b = shapely.bounds(geoms[ok])
        for xcol, ycol in ((0, 1), (2, 3)):
            found = lonlat_problems(b[:, xcol], b[:, ycol], bounds)
            bad = np.flatnonzero(ok)[found != "ok"]
            problems[bad] = [f"coordinates {what.replace('_', ' ')}" for what in found[found != "ok"]]
    return problems


def cmd_assign(args) -> int:
    from zeren.layers.importer import read_table

    out_path = output_path(args.out)
    frame, crs = read_table(args.sites, layer=args.layer, crs=args.crs)
    clashes = [c for c in (*ASSIGNMENT_COLUMNS, "error") if c in frame.columns]
    if clashes:
        raise CommandError(f"{args.sites}: input already has column(s) {', '.join(clashes)} that assign adds; "
                           f"rename them first")
    catalogue = load_catalogue(args)
    geoms = np.asarray(frame.geometry.to_numpy(), dtype=object)
    usable = ~(pd.isna(geoms) | shapely.is_empty(geoms))
    wgs = geoms.copy()
    if usable.any():
        wgs[usable] = geometries_to_wgs84(geoms[usable], crs)
    problems = _site_problems(wgs, catalogue.index.bounds)
    bad = np.flatnonzero(problems != None)  # noqa: E711
    if len(bad) and not args.skip_bad:
        first_row = frame.attrs.get("first_row", 1)  # a CSV's rows are named by their line number
        shown = "\n".join(f"  row {i + first_row}: {problems[i]}" for i in bad[:50])
        raise CommandError(f"{args.sites}: {len(bad)} site(s) cannot be assigned; nothing was written:\n{shown}\n"
                           f"Fix them, or pass --skip-bad to write them with an 'error' column.")
    good = np.flatnonzero(problems == None)  # noqa: E711
    parts = []
    chunks = [good[i:i + ASSIGN_CHUNK] for i in range(0, len(good), ASSIGN_CHUNK)] or [good]
    progress = _progress(len(good)) if len(good) > ASSIGN_CHUNK and sys.stderr.isatty() else None
    for chunk in chunks:
        result = catalogue.assign(wgs[chunk], args.as_of)
        cols = assignment_columns(result)
        cols.index = chunk
        parts.append(cols)
        if progress:
            progress.update(len(chunk))
    if progress:
        progress.close()
    added = pd.concat(parts) if parts else assignment_columns(catalogue.assign(wgs[:0], args.as_of))
    added = added.reindex(np.arange(len(frame)))
    added["covered"] = added["covered"].fillna(False).astype(bool)
    added["split"] = added["split"].fillna(False).astype(bool)
    for c in ("planners", "consultations", "zones"):
        added[c] = [v if isinstance(v, list) else [] for v in added[c]]
    if len(bad):
        added["error"] = problems
    out = frame.reset_index(drop=True).join(added.reset_index(drop=True))
    # GeoJSON is WGS84 lon/lat by definition (RFC 7946): every format gets the converted geometries
    out = gpd.GeoDataFrame(out.drop(columns="geometry"), geometry=gpd.GeoSeries(wgs, crs="EPSG:4326"))
    write_layers(out_path, {"assigned": out},
                 csv_wkt_column=None if frame.attrs.get("geometry_columns") else "wkt")
    covered = int(out["covered"].sum())
    print(f"已分配 / assigned: {len(good)} site(s); 有责任规划师 / covered: {covered}; "
          f"无 / uncovered: {len(good) - covered}; 错误 / errors: {len(bad)} -> {args.out}")
    return EXIT_OK


def _progress(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="site", desc="assign", file=sys.stderr)


# -- the parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zeren", description="Zeren 责任: who is the responsible planner here?")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="build the demo city (Chengdu) into a store")
    add_store_argument(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing store file")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("import-layer", help="import a boundary layer (GeoJSON, GeoPackage, zipped Shapefile, CSV)")
    p.add_argument("file", type=Path)
    p.add_argument("--kind", required=True, choices=ALL_KINDS)
    p.add_argument("--layer", help="layer name in a multi-layer file")
    p.add_argument("--code-field", default="code")
    p.add_argument("--name-field", default="name")
    p.add_argument("--parent-field", default="parent_code")
    p.add_argument("--crs", help="CRS when the file has none (or to override it): EPSG:n, wgs84, cgcs2000, gcj02, bd09")
    p.add_argument("--edition", type=int, default=dt.date.today().year, help="boundary edition (a year)")
    p.add_argument("--valid-from", type=parse_date_arg, help="first day the edition is in force (default: 1 January)")
    p.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    p.add_argument("--skip-rejected", action="store_true", help="import the good features even if some are rejected")
    add_store_argument(p)
    p.set_defaults(func=cmd_import_layer)

    for name, func, what in (("import-planners", cmd_import_planners,
                              "id,name,organization,disciplines,public_contact,private_contact"),
                             ("import-appointments", cmd_import_appointments,
                              "planner_id,zone_kind,zone_code,role,start,end")):
        p = sub.add_parser(name, help=f"import a CSV ({what})")
        p.add_argument("file", type=Path)
        p.add_argument("--actor", default=os.environ.get("USER", "cli"), help="who is importing (for the audit log)")
        add_store_argument(p)
        p.set_defaults(func=func)

    p = sub.add_parser("lookup", help="who is responsible for this point?")
    p.add_argument("--lon", type=float, required=True, help="longitude (or x in --crs)")
    p.add_argument("--lat", type=float, required=True, help="latitude (or y in --crs)")
    p.add_argument("--crs", default="wgs84", help="wgs84 (default), cgcs2000, gcj02 (AMap/Tencent), bd09 (Baidu), EPSG:n")
    p.add_argument("--as-of", type=parse_date_arg, help="date of the answer (default today)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_argument(p)
    p.set_defaults(func=cmd_lookup)

    p = sub.add_parser("assign", help="assign many sites (points, lines, polygons) to planners")
    p.add_argument("sites", type=Path, help="GeoJSON, GeoPackage, zipped Shapefile, or CSV with lon/lat or wkt")
    p.add_argument("--out", required=True, help="output .geojson, .gpkg or .csv")
    p.add_argument("--layer")
    p.add_argument("--crs", help="CRS when the file has none: wgs84, cgcs2000, gcj02, bd09, EPSG:n")
    p.add_argument("--as-of", type=parse_date_arg)
    p.add_argument("--skip-bad", action="store_true", help="write unusable sites with an 'error' column")
    add_store_argument(p)
    p.set_defaults(func=cmd_assign)

    # imported here, not at the top: these modules use this one's helpers (store argument, dates, errors)
    from zeren.api.cli import coverage as cli_coverage, life_circles as cli_life_circles, maps as cli_maps, serve as cli_serve

    for module in (cli_serve, cli_coverage, cli_maps, cli_life_circles):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CommandError, ZerenError, GeoInputError, FileNotFoundError, ValueError) as exc:
        print(f"zeren: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # the reader went away (`zeren lookup ... | head`): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
