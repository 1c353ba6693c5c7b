"""What every ``zeren`` command shares: the store argument, dates, the workspace, the actor, JSON output."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from zeren.api.cli.errors import CommandError
from zeren.api.service.actors import Actor
from zeren.api.service.workspace import Workspace
from zeren.api.settings import command_environment
from zeren.layers.errors import ZerenError
from zeren.layers.store import is_database_url, open_store

ENV = command_environment()


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=ENV.store,
                        help="GeoPackage file or postgresql:// URL (env ZEREN_STORE; default ./zeren.gpkg)")


def add_actor_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--actor", help="who is making the change, for the audit log (default: your login name; "
                                        "the login name is recorded as well)")


def parse_date_arg(text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
        if len(text) != 10:
            raise ValueError
        return day
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write YYYY-MM-DD") from None


def actor(args) -> Actor:
    """The audit log's actor: ``--actor`` as given, with the login name beside it when they differ."""
    given = (getattr(args, "actor", None) or "").strip()
    if not given or given == ENV.os_user:
        return Actor(f"cli:{ENV.os_user}")
    return Actor(f"cli:{given} (login {ENV.os_user})")


def workspace(args) -> Workspace:
    return Workspace.open(args.store)


def existing_workspace(location) -> Workspace | None:
    """The workspace of the store at ``location``, or None when there is none yet: a new store is made only
    once there is something to write, so a refused import leaves no empty store behind."""
    try:
        return Workspace.open(location)
    except ZerenError:
        if not is_database_url(location) and Path(location).exists() and Path(location).stat().st_size:
            raise  # a file that is there but is no Zeren store is an error, even in a dry run
        return None


def create_workspace(location) -> Workspace:
    return Workspace(open_store(location, create=True))


def print_json(value) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def require_suffix(path: str, suffixes: tuple[str, ...], what: str) -> None:
    if not str(path).lower().endswith(suffixes):
        raise CommandError(f"{path}: {what} is written as {' or '.join(suffixes)}")


def stderr(text: str) -> None:
    print(text, file=sys.stderr)
