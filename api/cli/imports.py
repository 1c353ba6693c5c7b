"""``zeren import-layer | import-planners | import-appointments``: boundaries, planners and appointments from
files, through the same use cases as the HTTP API (so the same rules hold)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from zeren.api.cli.common import (actor, add_actor_argument, add_store_argument, create_workspace,
                                  existing_workspace, parse_date_arg, print_json, workspace)
from zeren.api.cli.errors import EXIT_OK
from zeren.api.service import appointments, boundaries, planners
from zeren.geo.kinds import ALL_KINDS
from zeren.layers.errors import ConflictError, ValidationError
from zeren.layers.importer import read_csv_records
from zeren.layers.store import APPOINTMENT_FIELDS, PLANNER_FIELDS


def cmd_import_layer(args) -> int:
    request = boundaries.LayerImport(
        path=Path(args.file), kind=args.kind, edition=args.edition, valid_from=args.valid_from, layer=args.layer,
        crs=args.crs, code_field=args.code_field, name_field=args.name_field, parent_field=args.parent_field,
        name_en_field=args.name_en_field, population_field=args.population_field, within=tuple(args.within or ()),
        retire_missing=args.retire_missing, skip_rejected=args.skip_rejected, dry_run=args.dry_run)
    ws = existing_workspace(args.store)
    zones, report = boundaries.read_layer(ws.store if ws is not None else None, request)
    refusal = boundaries.read_refusal(zones, report, request)
    if not args.json:  # a refusal lists the rejected features itself: never print them twice
        print(report.text(show_rejected=args.skip_rejected and refusal is None))
    if refusal is not None:
        raise refusal
    if ws is None and not request.dry_run:
        ws = create_workspace(args.store)
    if ws is None:
        plan = boundaries.import_layer(None, request, actor=actor(args))
    else:
        plan = boundaries.import_zones(ws, zones, report, request, actor=actor(args))
    if args.json:
        print_json(plan.as_dict())
    else:
        print(plan.text())
        if plan.written:
            print(f"已写入 / written into {args.store}")
    return EXIT_OK


def _naming(path):
    """Errors about a file's rows name the file too."""
    class Named:
        def __enter__(self):
            return self

        def __exit__(self, kind, exc, tb):
            if isinstance(exc, (ValidationError, ConflictError)) and not exc.summary.startswith(str(path)):
                raise type(exc)(f"{path}: {exc.summary}", exc.problems) from None
            return False
    return Named()


def cmd_import_planners(args) -> int:
    frame = read_csv_records(args.file, list(PLANNER_FIELDS))
    with _naming(args.file):
        planners.check_planners(frame)  # before a new store would be made for them
        ws = existing_workspace(args.store) or create_workspace(args.store)
        result = planners.save_planners(ws, frame, actor=actor(args), source=str(args.file))
    print(result.text())
    return EXIT_OK


def cmd_import_appointments(args) -> int:
    frame = read_csv_records(args.file, list(APPOINTMENT_FIELDS))
    with _naming(args.file):
        result = appointments.add_appointments(workspace(args), frame, actor=actor(args), source=str(args.file))
    print(result.text())
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("import-layer", help="import a boundary layer as an edition (GeoJSON, GeoPackage, zipped "
                                            "Shapefile, CSV)",
                       description="Writes a new version of the zones in the file; zones the file leaves out stay in "
                                   "force unless the file is declared complete with --within or --retire-missing. "
                                   "Unchanged zones keep their record. --dry-run shows exactly what would change.")
    p.add_argument("file", type=Path)
    p.add_argument("--kind", required=True, choices=ALL_KINDS)
    p.add_argument("--edition", type=int, default=dt.date.today().year, help="boundary edition (a year; default "
                                                                              "this year)")
    p.add_argument("--valid-from", type=parse_date_arg, help="first day the edition is in force (default: 1 January "
                                                              "of the edition's year)")
    p.add_argument("--within", action="append", metavar="CODE",
                   help="the file is complete inside this zone (e.g. a district code; repeatable): zones of --kind "
                        "inside it that the file leaves out are retired from --valid-from")
    p.add_argument("--retire-missing", action="store_true",
                   help="the file is complete for the whole kind: every zone of --kind it leaves out is retired")
    p.add_argument("--dry-run", action="store_true", help="say what would be added, changed, kept and retired; "
                                                          "write nothing")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--layer", help="layer name in a multi-layer file")
    p.add_argument("--code-field", default="code", help="field with the zone code (default code)")
    p.add_argument("--name-field", default="name", help="field with the Chinese name (default name)")
    p.add_argument("--parent-field", default="parent_code",
                   help="field with the parent zone's code (default parent_code; derived from the parent layer when "
                        "absent)")
    p.add_argument("--name-en-field", default="name_en", help="field with the English name (default name_en)")
    p.add_argument("--population-field", default="population", help="field with the population (default population)")
    p.add_argument("--crs", help="CRS when the file has none (or to override it): EPSG:n, wgs84, cgcs2000, gcj02, bd09")
    p.add_argument("--skip-rejected", action="store_true", help="import the good features even if some are rejected")
    add_store_argument(p)
    add_actor_argument(p)
    p.set_defaults(func=cmd_import_layer)

    for name, func, fields, extra in (
            ("import-planners", cmd_import_planners, PLANNER_FIELDS,
             "disciplines are separated by ';' (e.g. planning;heritage). Planners already stored as given are left "
             "alone: importing the same file twice changes nothing."),
            ("import-appointments", cmd_import_appointments, APPOINTMENT_FIELDS,
             "role is lead, member or consultant; dates YYYY-MM-DD, end exclusive and may be empty. A row that "
             "repeats a stored appointment is reported as already present and not added; a second lead over the "
             "same dates is refused (nothing is written).")):
        p = sub.add_parser(name, help=f"import a CSV ({','.join(fields)})", description=f"Columns: "
                                                                                      f"{','.join(fields)}. {extra}")
        p.add_argument("file", type=Path)
        add_actor_argument(p)
        add_store_argument(p)
        p.set_defaults(func=func)
