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
    parser.add_argument("--actor", type=actor_name,
                        help="who is making the change, for the audit log (default: your OS account; the OS "
                             "account is recorded beside any other name: 'cli:NAME (os: ACCOUNT)')")


def parse_date_arg(text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
        if len(text) != 10:
            raise ValueError
        return day
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write YYYY-MM-DD") from None


def actor_name(text: str) -> str:
    """``--actor`` as given, refused (exit 2, before anything is read or written) unless it is a plain name."""
    given = text.strip()
    if given and (any(c in given for c in "()") or not given.isprintable() or len(given) > 100):
        raise argparse.ArgumentTypeError(f"{given[:100]!r}: give a plain name (at most 100 printable characters, "
                                         f"no parentheses); the OS account is recorded beside it")
    return given


def actor(args) -> Actor:
    """The audit log's actor: ``cli:ACCOUNT`` (the OS account running the command, which ``--actor`` cannot
    change), or ``cli:NAME (os: ACCOUNT)`` when ``--actor NAME`` names someone else."""
    given = actor_name(getattr(args, "actor", None) or "")
    if not given or given == ENV.os_user:
        return Actor(f"cli:{ENV.os_user}")
    return Actor(f"cli:{given} (os: {ENV.os_user})")


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
