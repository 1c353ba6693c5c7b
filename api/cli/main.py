"""The ``zeren`` command line: one parser, each command a function ``(args) -> int`` that parses, calls one use
case (zeren.api.service) and prints. Errors go through one table (``zeren.api.cli.errors``): exit 0 on
success, 2 on bad input with a message that names the file, row or field and says what to do."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from zeren.api.cli.common import add_store_argument
from zeren.api.cli.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, HANDLED, CommandError, exit_code
from zeren.geo.kinds import KIND_LABELS
from zeren.layers.errors import ZerenError
from zeren.layers.store import is_database_url, open_store


def cmd_demo(args) -> int:
    from zeren.api.service.demo import build_demo

    path = args.store
    if not is_database_url(path) and Path(path).exists() and not args.force and not _is_demo_store(path):
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


def _is_demo_store(path) -> bool:
    try:
        store = open_store(path)
    except ZerenError:
        return False
    try:
        return store.meta("origin") == "demo"
    finally:
        store.close()


# Commands whose module alone is registered when one of them is run: ``zeren assign`` on a large file should
# not spend a second importing the web server, the map pages and the coverage reports it never uses.
_ALONE = {"assign": "sites", "lookup": "sites"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or (``command`` in ``_ALONE``) of that command's module only."""
    import importlib

    parser = argparse.ArgumentParser(prog="zeren", description="Zeren 责任: who is the responsible planner here?")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if command in _ALONE:
        importlib.import_module(f"zeren.api.cli.{_ALONE[command]}").register(sub)
        return parser
    from zeren.api.cli import coverage, editions, feedback, imports, life_circles, maps, reports, serve, sites, teams

    p = sub.add_parser("demo", help="build the demo city (Chengdu) into a store")
    add_store_argument(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing store file")
    p.set_defaults(func=cmd_demo)
    for module in (imports, editions, sites, serve, coverage, maps, life_circles, feedback, teams):
        module.register(sub)
    reports.register(sub)  # zeren report planner|city: the annual evaluation
    from zeren.api.cli import tiles
    tiles.register(sub)  # zeren tiles export: vector tiles to a PMTiles file
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(argv[0] if argv else None).parse_args(argv)
    except SystemExit as exc:  # argparse: a usage error (2, its message printed) or --help (0)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        return args.func(args)
    except HANDLED as exc:
        print(f"zeren: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except BrokenPipeError:
        # the reader went away (`zeren lookup ... | head`): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
