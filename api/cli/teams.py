"""``zeren coverage disciplines`` (the zones whose appointed people lack a required discipline) and
``zeren teams`` (the teams, their members' disciplines and roles)."""
from __future__ import annotations

import json

from zeren.api.cli.common import add_store_argument, print_json, workspace
from zeren.api.cli.errors import EXIT_OK
from zeren.api.service import teams as service
from zeren.geo.kinds import TEAM_ROLES
from zeren.layers.writers import output_path


def cmd_disciplines(args) -> int:
    report = service.discipline_gaps(workspace(args), args.as_of)
    if args.out:
        out = output_path(args.out, (".json", ".csv"))
        if out.suffix.lower() == ".json":
            out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        else:
            import pandas as pd

            table = pd.DataFrame(report["zones"])
            for col in ("people", "teams", "disciplines"):
                table[col] = table[col].map(";".join)
            table["missing"] = table["missing"].map(lambda gs: ";".join("|".join(g) for g in gs))
            table.to_csv(out, index=False, encoding="utf-8")
    if args.json:
        print_json(report)
    else:
        print(service.gaps_text(report))
    return EXIT_OK


def cmd_teams(args) -> int:
    rows = service.teams(workspace(args))
    if args.json:
        print_json(rows)
        return EXIT_OK
    for t in rows:
        print(f"{t['id']}  {t['name']}  (lead {t['lead_planner_id'] or '—'}, {len(t['appointments'])} appointments)")
        for m in t["members"]:
            print(f"    {m['planner_id']:<6} {TEAM_ROLES.get(m['role'], (m['role'],))[0]} {m['role']:<8} "
                  f"{m['discipline'] or '—'}")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("teams", help="teams: members, their disciplines and roles")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_argument(p)
    p.set_defaults(func=cmd_teams)
