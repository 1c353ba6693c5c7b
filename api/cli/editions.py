"""``zeren editions [--kind K]``, ``zeren editions diff``, ``zeren editions carry-over``: boundary editions over
time, the changes between two, and appointments moved to the zones that replaced theirs."""
from __future__ import annotations

import geopandas as gpd
import pandas as pd

from zeren.api.cli.common import actor, add_actor_argument, add_store_argument, print_json, workspace
from zeren.api.cli.errors import EXIT_OK, CommandError
from zeren.api.jsonable import records
from zeren.api.service import editions
from zeren.geo.kinds import ALL_KINDS, KIND_LABELS
from zeren.layers.writers import output_path, write_layers


def cmd_list(args) -> int:
    table = editions.list_editions(workspace(args), args.kind)
    if args.json:
        print_json(records(table))
        return EXIT_OK
    if table.empty:
        print("无边界版本 / no boundary editions yet: import one with zeren import-layer FILE --kind K --edition YEAR")
        return EXIT_OK
    print("边界版本 / boundary editions (kind, edition, first day, zones written, of them in force today, source)")
    for r in table.itertuples(index=False):
        zh = KIND_LABELS.get(r.kind, (r.kind,))[0]
        print(f"  {zh} {r.kind:<13} {r.edition}  from {pd.Timestamp(r.valid_from).date()}  {r.zones:>6} zones  "
              f"{r.in_force:>6} in force  {r.source or ''}")
    return EXIT_OK


def diff_layer(diff: editions.EditionDiff) -> gpd.GeoDataFrame:
    """The changed, removed and added zones as one layer for QGIS: ``status``, the new geometry (the old one
    for removed zones), IoU and successors as text."""
    rows, geoms = [], []
    old = {str(c): g for c, g in zip(diff.old["code"], diff.old.geometry)}
    new = {str(c): g for c, g in zip(diff.new["code"], diff.new.geometry)}
    for z in diff.zones:
        if z["status"] == "unchanged":
            continue
        rows.append({"code": z["code"], "name": z["name"], "status": z["status"],
                     "iou": z.get("iou"), "area_change_m2": z.get("area_change_m2"), "hausdorff_m": z.get("hausdorff_m"),
                     "successors": ";".join(f"{s['code']}:{s['share']:.3f}" for s in z.get("successors", [])) or None,
                     "predecessors": ";".join(f"{s['code']}:{s['share']:.3f}" for s in z.get("predecessors", []))
                     or None})
        geoms.append(old[z["code"]] if z["status"] == "removed" else new[z["code"]])
    columns = ["code", "name", "status", "iou", "area_change_m2", "hausdorff_m", "successors", "predecessors"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"),
                            crs="EPSG:4326")


def old_layer(diff: editions.EditionDiff) -> gpd.GeoDataFrame:
    """The old boundaries of the changed and removed zones."""
    codes = {z["code"] for z in diff.zones if z["status"] in ("changed", "removed")}
    old = diff.old[diff.old["code"].astype(str).isin(codes)]
    return gpd.GeoDataFrame(old[["code", "name", "edition"]].assign(edition=old["edition"].astype("int64")),
                            geometry=old.geometry.to_numpy(), crs="EPSG:4326")


def cmd_diff(args) -> int:
    out = output_path(args.out, (".geojson", ".json", ".gpkg")) if args.out else None
    diff = editions.diff_editions(workspace(args), args.kind, args.from_edition, args.to_edition,
                                  min_share=args.min_share)
    print_json(diff.as_dict()) if args.json else print(diff.text())
    if out is not None:
        layers = {"edition_diff": diff_layer(diff)}
        if out.suffix.lower() == ".gpkg":
            layers["edition_diff_old"] = old_layer(diff)
        write_layers(out, layers)
        if not args.json:
            print(f"已写出 / written: {out} ({', '.join(layers)})")
    return EXIT_OK


def cmd_carry_over(args) -> int:
    result = editions.carry_over(workspace(args), args.kind, args.to_edition, apply=args.apply, actor=actor(args),
                                 min_share=args.min_share)
    print_json(result.as_dict()) if args.json else print(result.text())
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("editions", help="boundary editions: list them, compare two, carry appointments over")
    p.add_argument("--kind", choices=ALL_KINDS, help="only this kind")
    p.add_argument("--json", action="store_true")
    add_store_argument(p)
    p.set_defaults(func=cmd_list)
    which = p.add_subparsers(dest="editions_command", metavar="ACTION")

    d = which.add_parser("diff", help="what changed between two editions of a kind (added, removed, changed, "
                                      "successors, dangling appointments, projects whose lead changes)")
    d.add_argument("--kind", required=True, choices=ALL_KINDS)
    d.add_argument("--from", dest="from_edition", type=int, required=True, metavar="YEAR")
    d.add_argument("--to", dest="to_edition", type=int, required=True, metavar="YEAR")
    d.add_argument("--min-share", type=float, default=editions.DEFAULT_MIN_SHARE,
                   help="a successor must be made of more than this share of the old zone's ground (default 0.5)")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.add_argument("--out", help="also write the changed, removed and added zones: .geojson or .gpkg (for QGIS)")
    add_store_argument(d)
    d.set_defaults(func=cmd_diff)

    c = which.add_parser("carry-over", help="move appointments from zones an edition retired to their successors")
    c.add_argument("--kind", required=True, choices=ALL_KINDS)
    c.add_argument("--to", dest="to_edition", type=int, required=True, metavar="YEAR")
    c.add_argument("--apply", action="store_true", help="create the proposed appointments (one transaction, audited)")
    c.add_argument("--min-share", type=float, default=editions.DEFAULT_MIN_SHARE,
                   help="carry only to zones made of more than this share of the old zone's ground (default 0.5)")
    c.add_argument("--json", action="store_true")
    add_store_argument(c)
    add_actor_argument(c)
    c.set_defaults(func=cmd_carry_over)


__all__ = ["register", "diff_layer", "old_layer", "CommandError"]
