"""``zeren report planner P --year 2025 --out report.html``, ``zeren report team T --year 2025`` and ``zeren
report city --year 2025``: the annual evaluation (年度考核) as a printable HTML page set, a PDF printed from the
same HTML, or JSON. Without ``--out`` a short summary is printed (``--format json``: the whole report)."""
from __future__ import annotations

import argparse

from zeren.api.cli.common import add_store_argument, print_json, workspace
from zeren.api.cli.errors import EXIT_OK, CommandError
from zeren.api.service import reports as service
from zeren.layers.errors import ValidationError


def _year(text: str) -> int:
    try:
        return service.check_year(text).year
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _emit(args, ws, report: dict) -> int:
    fmt = service.output_format(args.out, args.format) if (args.out or args.format) else None
    if args.out:
        path = service.write_report(ws, report, args.out, fmt)
        print(f"已写出 / written: {path} ({fmt}{', 无数据 / no data' if report['empty'] else ''})")
    elif fmt == "json":
        print_json(service.report_json(report))
    elif fmt is not None:
        raise CommandError(f"--format {fmt} needs --out FILE (only json prints to the terminal)")
    else:
        print(service.report_text(report))
    return EXIT_OK


def cmd_planner(args) -> int:
    ws = workspace(args)
    return _emit(args, ws, service.planner_report(ws, args.planner, args.year))


def cmd_team(args) -> int:
    ws = workspace(args)
    return _emit(args, ws, service.team_report(ws, args.team, args.year))


def cmd_city(args) -> int:
    ws = workspace(args)
    return _emit(args, ws, service.city_report(ws, args.year))


def register(sub) -> None:
    p = sub.add_parser("report", help="annual evaluation: a planner's, a team's or the city's year (HTML, PDF, JSON)")
    which = p.add_subparsers(dest="report", required=True, metavar="planner|team|city")
    for name, func, helptext in (("planner", cmd_planner, "one planner's year (年度考核)"),
                                 ("team", cmd_team, "one team's year: its territory, members and figures"),
                                 ("city", cmd_city, "the city's year: coverage, gaps, Gini, feedback, ranking")):
        q = which.add_parser(name, help=helptext)
        if name == "planner":
            q.add_argument("planner", help="the planner's id, e.g. P006")
        elif name == "team":
            q.add_argument("team", help="the team's id, e.g. T14 (zeren teams lists them)")
        q.add_argument("--year", type=_year, required=True, help="the year, e.g. 2025")
        q.add_argument("--out", help="write the report to this file (.html, .pdf or .json)")
        q.add_argument("--format", choices=service.FORMATS, help="html, pdf or json (default: from --out)")
        add_store_argument(q)
        q.set_defaults(func=func)
