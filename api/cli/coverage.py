"""``zeren gaps | overlaps | coverage | workload``: is every unit covered by a responsible planner, once?

    gaps      [--kind K] [--within CODE] [--as-of DATE] [--sliver-m2 N] --out FILE(.geojson|.gpkg)
    overlaps  [--kind K] [--tolerance-m2 N] [--as-of DATE] --out FILE(.geojson|.gpkg)
    coverage  [--kind K] [--by district] [--as-of DATE] [--json] [--out FILE.csv|.json]
    workload  [--as-of DATE] [--weight area|population|zones|projects] [--json]

Each reads the store (``--store``, default env ZEREN_STORE or ./zeren.gpkg), computes with ``geo.coverage``
and prints bilingual tables (Chinese first). Exit 0 ok, 2 bad input (with a message saying what to do).
"""
from __future__ import annotations

import json
import math
import sys
import unicodedata

import numpy as np
import pandas as pd

from zeren.geo import coverage
from zeren.geo.kinds import KIND_LABELS
from zeren.layers.writers import output_path, write_layers
from zeren.api.cli.common import add_store_argument, parse_date_arg, workspace
from zeren.api.cli.errors import EXIT_OK
from zeren.api.service import coverage as service
from zeren.api.service.coverage import summary_json, workload_json

GEO_SUFFIXES = (".geojson", ".json", ".gpkg")
WEIGHT_LABELS = {"area": ("面积", "area"), "population": ("人口", "population"), "zones": ("单元数", "zones"),
                 "projects": ("在办项目", "open projects")}


# -- pure formatting helpers ---------------------------------------------------------------------
def display_width(text: str) -> int:
    """Terminal columns taken by ``text`` (CJK characters count two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(width - display_width(text), 0)
    return gap + text if right else text + gap


def format_value(value, fmt: str = "") -> str:
    """A cell: '—' for missing values, ``fmt`` (a format spec) for numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if fmt and isinstance(value, (int, float, np.integer, np.floating)):
        return format(value, fmt)
    return str(value)


def format_table(rows: pd.DataFrame, columns: list[tuple[str, str, str, str]]) -> str:
    """A plain-text table; ``columns``: (column, Chinese header, English header, number format).

    Headers are bilingual on two lines (Chinese first); numbers are right-aligned."""
    cells = [[format_value(v, fmt) for v in rows[col].tolist()] for col, _, _, fmt in columns]
    numeric = [pd.api.types.is_numeric_dtype(rows[col]) for col, *_ in columns]
    widths = [max([display_width(zh), display_width(en)] + [display_width(c) for c in col_cells])
              for (_, zh, en, _), col_cells in zip(columns, cells)]
    lines = ["  ".join(_pad(zh, w, r) for (_, zh, _, _), w, r in zip(columns, widths, numeric)).rstrip(),
             "  ".join(_pad(en, w, r) for (_, _, en, _), w, r in zip(columns, widths, numeric)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for i in range(len(rows)):
        lines.append("  ".join(_pad(c[i], w, r) for c, w, r in zip(cells, widths, numeric)).rstrip())
    return "\n".join(lines)


def kind_label(kind: str) -> str:
    zh, en = KIND_LABELS.get(kind, (kind, kind))
    return f"{zh} / {en}"


def gaps_report(result: coverage.GapsResult) -> str:
    """The terminal report of ``zeren gaps``: totals, then the named units without a planner."""
    where = f"{result.within}" if result.within else f"{kind_label(result.territory_kind or result.kind)}"
    lines = [f"责任规划师缺口 / planner coverage gaps — {kind_label(result.kind)}, "
             f"范围 / within: {where}, 日期 / as of: {result.as_of.date()}"]
    if result.nothing_to_cover:
        lines.append(f"无可覆盖的单元 / {result.message}")
        return "\n".join(lines + _invalid_lines(result.invalid))
    lines.append(f"单元 / units: {result.units_total}，有责任规划师 / with a lead: {result.units_with_lead}，"
                 f"无 / without: {len(result.units_without_planner)}")
    lines.append(f"面积 / area: {result.territory_area_m2 / 1e6:,.2f} km²，覆盖 / covered: {result.covered_pct:.2f}%，"
                 f"缺口 / uncovered: {result.gap_area_m2 / 1e6:,.3f} km² in {len(result.gaps)} polygon(s)")
    if result.small_slivers:
        lines.append(f"小于 {result.sliver_m2:g} m² 的缝隙 / slivers under {result.sliver_m2:g} m²: "
                     f"{result.small_slivers} ({result.small_slivers_area_m2:,.3g} m², not written)")
    if len(result.gaps):
        counts = result.gaps["reason"].value_counts()
        lines.append("缺口类型 / gap types: " + "，".join(
            f"{coverage.REASON_LABELS[r][0]} / {coverage.REASON_LABELS[r][1]}: {int(counts.get(r, 0))}"
            for r in coverage.REASONS if counts.get(r, 0)))
    units = result.units_without_planner
    if len(units):
        table = pd.DataFrame(units.drop(columns="geometry")).assign(area_km2=units["area_m2"] / 1e6)
        table["district"] = [" ".join(str(v) for v in pair if isinstance(v, str) and v)
                             for pair in zip(table["district_code"], table["district_name"])]
        lines += ["", "无责任规划师的单元 / units without a lead planner:", format_table(table, [
            ("code", "代码", "code", ""), ("name", "名称", "name", ""), ("district", "所属区县", "district", ""),
            ("area_km2", "面积 km²", "area km²", ",.3f"), ("population", "人口", "population", ",")])]
    else:
        lines.append("所有单元都有责任规划师 / every unit has a lead planner")
    return "\n".join(lines + _invalid_lines(result.invalid))


def _invalid_lines(invalid: pd.DataFrame) -> list[str]:
    if invalid is None or not len(invalid):
        return []
    return ["", f"几何问题 / geometry problems ({len(invalid)}):"] + [
        f"  {r.kind} {r.code}: {r.problem}" for r in invalid.head(50).itertuples()] + (
        [f"  ... and {len(invalid) - 50} more"] if len(invalid) > 50 else [])


def overlaps_report(result: coverage.OverlapsResult) -> str:
    lines = [f"重叠与冲突 / overlaps and conflicts — {kind_label(result.kind)}, 日期 / as of: {result.as_of.date()}"]
    if result.nothing_to_cover:
        lines.append(f"无可检查的单元 / {result.message}")
    else:
        lines.append(f"检查单元 / zones checked: {result.zones_checked}，重叠 / overlapping pairs over "
                     f"{result.tolerance_m2:g} m²: {len(result.overlaps)}")
    if len(result.overlaps):
        lines.append(format_table(pd.DataFrame(result.overlaps.drop(columns="geometry")), [
            ("code_a", "单元甲", "zone a", ""), ("name_a", "名称", "name", ""), ("code_b", "单元乙", "zone b", ""),
            ("name_b", "名称", "name", ""), ("area_m2", "重叠面积 m²", "overlap m²", ",.1f"),
            ("share_a_pct", "占甲 %", "of a %", ".2f"), ("share_b_pct", "占乙 %", "of b %", ".2f")]))
    conflicts = result.conflicts
    lines.append(f"责任规划师任命冲突 / conflicting lead appointments: {len(conflicts)}")
    if len(conflicts):
        table = conflicts.assign(**{c: conflicts[c].dt.strftime("%Y-%m-%d") for c in
                                    ("overlap_start", "overlap_end")})
        lines.append(format_table(table, [
            ("zone_code", "单元", "zone", ""), ("planner_a", "规划师甲", "planner a", ""),
            ("planner_b", "规划师乙", "planner b", ""), ("overlap_start", "重叠自", "from", ""),
            ("overlap_end", "重叠至", "until", "")]))
    return "\n".join(lines + _invalid_lines(result.invalid))


SUMMARY_TABLE = [
    ("code", "代码", "code", ""), ("name", "名称", "name", ""),
    ("units_total", "单元", "units", ""), ("units_with_lead", "有规划师", "with lead", ""),
    ("units_with_lead_pct", "单元 %", "units %", ".1f"), ("area_covered_pct", "面积 %", "area %", ".1f"),
    ("population_covered_pct", "人口 %", "people %", ".1f"),
    ("life_circles_with_planner_pct", "生活圈 %", "circles %", ".1f"),
]


def summary_report(result: coverage.CoverageSummary) -> str:
    lines = [f"覆盖情况 / coverage — {kind_label(result.kind)} by {kind_label(result.by)}, "
             f"日期 / as of: {result.as_of.date()}"]
    if result.nothing_to_cover:
        return "\n".join(lines + [f"无可覆盖的单元 / {result.message}"])
    totals = pd.DataFrame([dict(result.totals, code="全市", name="all")])
    table = pd.concat([result.table, totals], ignore_index=True)
    for col in ("units_with_lead_pct", "area_covered_pct", "population_covered_pct", "life_circles_with_planner_pct"):
        table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    lines.append(format_table(table, SUMMARY_TABLE))
    return "\n".join(lines + _invalid_lines(result.invalid))


def workload_report(result: coverage.WorkloadResult) -> str:
    imb = result.imbalance
    zh, en = WEIGHT_LABELS[imb.weight]
    lines = [f"工作量 / planner workload, 日期 / as of: {result.as_of.date()}"]
    if not len(result.planners):
        return "\n".join(lines + [f"无 / {result.message}"])
    lines.append(format_table(result.planners, [
        ("planner_id", "编号", "id", ""), ("name", "姓名", "name", ""),
        ("zones_lead", "负责", "lead", ""), ("zones_member", "成员", "member", ""),
        ("zones_consultant", "顾问", "consultant", ""), ("lead_area_km2", "面积 km²", "area km²", ",.2f"),
        ("lead_population", "人口", "population", ","), ("projects_open", "在办项目", "open proj.", ""),
        ("projects_total", "项目", "projects", "")]))
    lines.append(f"均衡度（{zh}）/ balance of {en}, {imb.planners} lead planner(s): "
                 f"最大/中位 max/median = {format_value(imb.max_to_median, '.2f')}，"
                 f"基尼系数 Gini = {format_value(imb.gini, '.3f')}")
    lines.append(f"  最重 / most loaded: {', '.join(imb.most_loaded) or '—'}；"
                 f"最轻 / least loaded: {', '.join(imb.least_loaded) or '—'}")
    if len(result.unmatched):
        lines.append(f"  注意 / note: {len(result.unmatched)} lead appointment(s) name a zone with no edition "
                     f"valid on that date (counted, no area)")
    return "\n".join(lines)


# -- handlers ------------------------------------------------------------------------------------
def cmd_gaps(args) -> int:
    """Handler of ``zeren gaps``."""
    out = output_path(args.out, GEO_SUFFIXES)
    result = service.gaps(workspace(args), kind=args.kind, within=args.within, as_of=args.as_of,
                          sliver_m2=args.sliver_m2)
    write_layers(out, {"gaps": result.gaps, "units_without_planner": result.units_without_planner})
    print(gaps_report(result))
    print(f"已写出 / written: {out}")
    return EXIT_OK


def cmd_overlaps(args) -> int:
    """Handler of ``zeren overlaps``."""
    out = output_path(args.out, GEO_SUFFIXES)
    result = service.overlaps(workspace(args), kind=args.kind, as_of=args.as_of, tolerance_m2=args.tolerance_m2)
    write_layers(out, {"overlaps": result.overlaps})
    print(overlaps_report(result))
    print(f"已写出 / written: {out}")
    return EXIT_OK


def cmd_coverage(args) -> int:
    """Handler of ``zeren coverage`` (and ``zeren coverage disciplines``)."""
    if getattr(args, "report", None) == "disciplines":
        from zeren.api.cli.teams import cmd_disciplines

        return cmd_disciplines(args)
    out = output_path(args.out, (".csv", ".json")) if args.out else None
    result = service.summary(workspace(args), kind=args.kind, by=args.by, as_of=args.as_of)
    data = summary_json(result)
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else summary_report(result))
    if out is not None and out.suffix.lower() == ".json":
        out.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    elif out is not None:
        totals = pd.DataFrame([dict(result.totals, code="ALL", name="全市 / all")])
        frame = result.table if result.nothing_to_cover else pd.concat([result.table, totals], ignore_index=True)
        frame.to_csv(out, index=False, encoding="utf-8")
    if out is not None:
        print(f"已写出 / written: {out}", file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK


def cmd_workload(args) -> int:
    """Handler of ``zeren workload``."""
    result = service.workload(workspace(args), as_of=args.as_of, weight=args.weight)
    print(json.dumps(workload_json(result), ensure_ascii=False, indent=2) if args.json else workload_report(result))
    return EXIT_OK


def register(subparsers) -> None:
    """Add ``gaps``, ``overlaps``, ``coverage`` and ``workload`` to the ``zeren`` parser."""
    p = subparsers.add_parser("gaps", help="units without a lead planner, and the uncovered ground")
    p.add_argument("--kind", default="subdistrict", help="unit kind (default subdistrict)")
    p.add_argument("--within", metavar="CODE", help="a district or subdistrict code (default: the whole city)")
    p.add_argument("--as-of", metavar="DATE", type=parse_date_arg, help="YYYY-MM-DD (default today)")
    p.add_argument("--sliver-m2", type=float, default=1000.0,
                   help="bare ground pieces smaller than this are counted, not written (default 1000)")
    p.add_argument("--out", required=True, help="output .geojson (gaps) or .gpkg (gaps + units_without_planner)")
    add_store_argument(p)
    p.set_defaults(func=cmd_gaps)

    p = subparsers.add_parser("overlaps", help="overlapping zones of one kind, and conflicting lead appointments")
    p.add_argument("--kind", default="subdistrict", help="zone kind (default subdistrict)")
    p.add_argument("--tolerance-m2", type=float, default=1.0, help="ignore overlaps up to this area (default 1)")
    p.add_argument("--as-of", metavar="DATE", type=parse_date_arg, help="YYYY-MM-DD (default today)")
    p.add_argument("--out", required=True, help="output .geojson or .gpkg of the overlap polygons")
    add_store_argument(p)
    p.set_defaults(func=cmd_overlaps)

    p = subparsers.add_parser("coverage", help="coverage per district: units, area, population, life circles; "
                                               "`zeren coverage disciplines`: zones short of a discipline")
    p.add_argument("report", nargs="?", choices=("disciplines",),
                   help="disciplines: the zones whose appointed people lack a required discipline")
    p.add_argument("--kind", default="subdistrict", help="unit kind (default subdistrict)")
    p.add_argument("--by", default="district", help="parent kind of the rows (default district)")
    p.add_argument("--as-of", metavar="DATE", type=parse_date_arg, help="YYYY-MM-DD (default today)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--out", help="also write the table: .csv or .json")
    add_store_argument(p)
    p.set_defaults(func=cmd_coverage)

    p = subparsers.add_parser("workload", help="zones, area, population and projects per planner; imbalance")
    p.add_argument("--as-of", metavar="DATE", type=parse_date_arg, help="YYYY-MM-DD (default today)")
    p.add_argument("--weight", default="area", choices=list(service.WEIGHTS),
                   help="what the imbalance figures weigh (default area)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_store_argument(p)
    p.set_defaults(func=cmd_workload)
