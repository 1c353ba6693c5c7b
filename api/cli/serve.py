"""``zeren serve`` (the web API under uvicorn) and ``zeren token`` (make and hash bearer tokens)."""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from zeren.api.cli.errors import EXIT_BAD_INPUT, EXIT_OK


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve the web API (OpenAPI docs at /docs, OGC API at /ogc)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--store", default=None,
                   help="GeoPackage file or postgresql:// URL (env ZEREN_STORE; default ./zeren.gpkg)")
    p.add_argument("--demo", action="store_true",
                   help="build the demo city into a temporary store first, and print a demo admin token")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--tokens-file", default=None, help="file of hashed tokens (env ZEREN_TOKENS_FILE)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("token", help="make a bearer token for the API (or hash one)")
    tsub = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    q = tsub.add_parser("new", help="print a fresh token and the line to add to the tokens file")
    q.add_argument("--role", required=True, choices=("admin", "planner"))
    q.add_argument("--planner-id", help="the planner a planner token acts for (required with --role planner)")
    q.add_argument("--name", help="who holds it (shown in the audit log)")
    q.set_defaults(func=cmd_token_new)
    q = tsub.add_parser("hash", help="read a token on standard input and print its SHA-256")
    q.set_defaults(func=cmd_token_hash)


# -- tokens ---------------------------------------------------------------------------------------
def _entry_lines(entry) -> list[str]:
    record = {"sha256": entry.sha256, "role": entry.role}
    if entry.planner_id:
        record["planner_id"] = entry.planner_id
    if entry.name:
        record["name"] = entry.name
    return [
        "  JSON tokens file (one entry of the list):",
        "    " + json.dumps(record, ensure_ascii=False),
        "  CSV tokens file (header sha256,role,planner_id,name):",
        f"    {entry.sha256},{entry.role},{entry.planner_id or ''},{entry.name or ''}",
        "  or the environment (entries separated by commas):",
        f"    ZEREN_TOKENS={_env_entry(entry)}",
    ]


def _env_entry(entry) -> str:
    from zeren.api.auth import format_token_entries

    return format_token_entries([entry])


def cmd_token_new(args) -> int:
    from zeren.api.auth import TokenConfigError, TokenEntry, hash_token, new_token

    token = new_token()
    try:
        entry = TokenEntry(sha256=hash_token(token), role=args.role, planner_id=args.planner_id, name=args.name)
    except TokenConfigError as exc:
        print(f"zeren: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"token: {token}")
    print("Give the token to its holder now: it is not stored anywhere, only its SHA-256 is.")
    print("Add this line to the tokens file (ZEREN_TOKENS_FILE), then restart the server:")
    print("\n".join(_entry_lines(entry)))
    print(f"Use it as:  Authorization: Bearer {token}")
    return EXIT_OK


def cmd_token_hash(args) -> int:
    from zeren.api.auth import hash_token

    token = sys.stdin.readline().strip()
    if not token:
        print("zeren: error: give the token on standard input", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(hash_token(token))
    return EXIT_OK


# -- serve ----------------------------------------------------------------------------------------
def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def cmd_serve(args) -> int:
    import uvicorn

    from zeren.api.http.app import create_app
    from zeren.api.auth import TokenConfigError, TokenEntry, TokenRegistry, hash_token, new_token
    from zeren.api.settings import Settings, SettingsError, export_environment
    from zeren.layers.errors import ZerenError
    from zeren.layers.store import open_store

    if args.workers < 1:
        print("zeren: error: --workers must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not 0 < args.port < 65536:
        print("zeren: error: --port must be between 1 and 65535", file=sys.stderr)
        return EXIT_BAD_INPUT
    overrides = {}
    if args.store:
        overrides["store"] = args.store
    if args.tokens_file:
        overrides["tokens_file"] = args.tokens_file
    demo_dir = None
    try:
        settings = Settings.from_env(**overrides)
        demo_token = None
        if args.demo:
            from zeren.api.service.demo import build_demo

            demo_dir = Path(tempfile.mkdtemp(prefix="zeren-demo-"))
            path = demo_dir / "demo.gpkg"
            print(f"演示城市 / building the demo city into {path} ...", flush=True)
            build_demo(path).close()
            demo_token = new_token()
            entry = TokenEntry(sha256=hash_token(demo_token), role="admin", name="demo")
            settings = settings.replace(store=str(path), extra_tokens=settings.extra_tokens + (entry,))
        TokenRegistry.from_settings(settings)  # a bad tokens file stops here, with its message
        open_store(settings.store).close()  # so does a missing or foreign store
    except (SettingsError, TokenConfigError, ZerenError, ValueError, OSError) as exc:
        print(f"zeren: error: {exc}", file=sys.stderr)
        if demo_dir is not None:
            shutil.rmtree(demo_dir, ignore_errors=True)
        return EXIT_BAD_INPUT

    base = f"http://{_url_host(args.host)}:{args.port}"
    print(f"Zeren 责任 API on {base}  (store: {_redact(settings.store)}, workers: {args.workers})")
    print(f"  API docs / 接口文档:   {base}/docs")
    print(f"  coverage map / 覆盖图: {base}/maps/coverage")
    print(f"  OGC API - Features:    {base}/ogc   (QGIS / GDAL: OAPIF:{base}/ogc)")
    print(f"  try / 试试:            {base}/lookup?lon=104.0530&lat=30.6695")
    if demo_token:
        print(f"  demo admin token / 演示管理员令牌 (valid while this server runs): {demo_token}")
        print(f"    curl -H 'Authorization: Bearer {demo_token}' {base}/audit")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("  note: listening beyond this machine; reads are public, writes need a token", flush=True)
    sys.stdout.flush()
    # httptools, with the request line and headers capped (ZEREN_MAX_HEADER_BYTES: 431 past it; see api.http.protocol)
    common = dict(host=args.host, port=args.port, loop="uvloop", http="zeren.api.http.protocol:LimitedHttpToolsProtocol",
                  h11_max_incomplete_event_size=settings.max_header_bytes, log_level=args.log_level,
                  access_log=not args.no_access_log, proxy_headers=False, timeout_graceful_shutdown=10)
    try:
        if args.workers == 1:
            uvicorn.run(create_app(settings), **common)
        else:
            export_environment(settings)  # the workers build their settings from it (hashes only)
            uvicorn.run("zeren.api.http.app:app_from_env", factory=True, workers=args.workers, **common)
    finally:
        if demo_dir is not None:
            shutil.rmtree(demo_dir, ignore_errors=True)
    return EXIT_OK


def _redact(location: str) -> str:
    """A store location fit to print: a database password is replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in location:
        return location
    parts = urlsplit(location)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return location


__all__ = ["register", "cmd_serve", "cmd_token_new", "cmd_token_hash"]
