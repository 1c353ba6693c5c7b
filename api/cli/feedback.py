"""``zeren feedback list|export|categories``: the residents' feedback cases in the store, listed, written to a
CSV or GeoJSON file (for a spreadsheet or QGIS), and the category list. Whoever can open the store acts as an
admin; ``--planner P`` shows what planner P sees."""
from __future__ import annotations

from zeren.api.cli.common import add_store_argument, parse_date_arg, print_json, workspace
from zeren.api.cli.errors import EXIT_OK
from zeren.api.service import feedback as service
from zeren.api.service.actors import Actor
from zeren.geo.kinds import FEEDBACK_STATUS_LABELS, FEEDBACK_STATUSES
from zeren.layers.writers import output_path, write_layers

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cases(args):
    ws = workspace(args)
    actor = Actor("cli") if not args.planner else Actor(f"cli:{args.planner}", "planner", args.planner)
    return ws, service.list_feedback(ws, actor=actor, status=args.status, category=args.category, zone=args.zone,
                                     since=args.since, until=args.until)


def cmd_list(args) -> int:
    _, frame = _cases(args)
    rows = [service.case_view(r) for r in frame.drop(columns="geometry").to_dict("records")]
    if args.json:
        print_json(rows)
        return EXIT_OK
    if not rows:
        print("无留言 / no feedback cases match")
        return EXIT_OK
    print(f"留言 / feedback cases: {len(rows)} (ref, status, category, received, zone, routed to, response)")
    for v in rows:
        zone = (v["zone"] or {}).get("name") or "—"
        hours = "—" if v["response_hours"] is None else f"{v['response_hours'] / 24:.1f} d"
        flag = " [辖区外 outside]" if v["outside"] else ""
        print(f"  {v['ref']}  {FEEDBACK_STATUS_LABELS[v['status']][0]} {v['status']:<11} {v['category']:<12} "
              f"{v['received_at'][:10]}  {zone}  → {','.join(v['routed_to'])}  {hours}{flag}")
    return EXIT_OK


def _safe_cell(value):
    """A text cell a spreadsheet will not run as a formula (residents' texts are untrusted)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def cmd_export(args) -> int:
    out = output_path(args.out, (".csv", ".geojson", ".json"))
    _, frame = _cases(args)
    layer = service.export_frame(frame, with_contact=args.with_contact)
    if out.suffix.lower() == ".csv":
        for column in ("text", "reply", "contact", "zone_name"):
            if column in layer.columns:
                layer[column] = layer[column].map(_safe_cell)
    write_layers(out, {"feedback": layer})
    print(f"已写出 / written: {out} ({len(layer)} cases{', with contacts' if args.with_contact else ''})")
    return EXIT_OK


def cmd_categories(args) -> int:
    rows = service.categories(workspace(args), include_retired=True)
    if args.json:
        print_json(rows)
        return EXIT_OK
    for c in rows:
        print(f"  {c['code']:<14} {c['name']} / {c['name_en'] or ''}{'' if c['active'] else '  (retired)'}")
    return EXIT_OK


def _filters(p) -> None:
    p.add_argument("--status", choices=FEEDBACK_STATUSES)
    p.add_argument("--category", help="category code (see zeren feedback categories)")
    p.add_argument("--zone", help="only cases in (or routed to) this zone code")
    p.add_argument("--since", type=parse_date_arg, help="received on or after YYYY-MM-DD")
    p.add_argument("--until", type=parse_date_arg, help="received on or before YYYY-MM-DD")
    p.add_argument("--planner", help="only the cases routed to this planner id")
    add_store_argument(p)


def register(sub) -> None:
    p = sub.add_parser("feedback", help="residents' feedback cases: list, export, categories")
    fsub = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    q = fsub.add_parser("list", help="list the cases")
    _filters(q)
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_list)
    q = fsub.add_parser("export", help="write the cases to a .csv or .geojson file")
    _filters(q)
    q.add_argument("--out", required=True, help="output .csv or .geojson")
    q.add_argument("--with-contact", action="store_true", help="include the residents' private contacts")
    q.set_defaults(func=cmd_export)
    q = fsub.add_parser("categories", help="the feedback categories")
    q.add_argument("--json", action="store_true", help="print JSON")
    add_store_argument(q)
    q.set_defaults(func=cmd_categories)
