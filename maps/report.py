"""The annual evaluation as a printable page set (A4, Chinese first, English second), and its PDF.

The figures come computed (``zeren.api.service.reports``); this module only lays them out. Every text from
the store (names, feedback, team names) is HTML-escaped. The territory map is an inline SVG (no tiles, no
script), so the page prints and converts to PDF offline exactly as it shows. :func:`html_to_pdf` prints the
same HTML with headless Chromium.
"""
from __future__ import annotations

import html
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import shapely
from zeren.geo.kinds import (
    DISCIPLINE_LABELS,
    KIND_LABELS,
    PROJECT_STATUS_LABELS,
    PROJECT_STATUSES,
    ROLE_LABELS,
)
from zeren.maps.palette import NO_PLANNER, OVERLAY_COLOURS, PLANNER_PALETTE


class PDFError(RuntimeError):
    """Chromium is missing, or could not print the page."""


CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
ROLE_COLOURS = {"lead": PLANNER_PALETTE[1], "member": PLANNER_PALETTE[4], "consultant": PLANNER_PALETTE[5]}

_CSS = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Micro Hei", "Source Han Sans SC", sans-serif;
       color: #222; margin: 0; font-size: 10.5pt; line-height: 1.45; }
.page { max-width: 186mm; margin: 0 auto; padding: 6mm 0; page-break-after: always; break-after: page; }
.page:last-child { page-break-after: auto; break-after: auto; }
h1 { font-size: 18pt; margin: 0 0 2mm; } h2 { font-size: 13pt; margin: 5mm 0 2mm; border-bottom: 1.5px solid #44AA99; }
.en { color: #555; font-weight: normal; font-size: 0.85em; }
.sub { color: #555; margin: 0 0 3mm; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm; font-size: 9.5pt; }
th, td { border: 1px solid #ccc; padding: 1.2mm 1.8mm; text-align: left; vertical-align: top; }
th { background: #f1f5f4; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.facts { display: grid; grid-template-columns: repeat(3, 1fr); gap: 2mm; margin: 2mm 0 3mm; }
.fact { border: 1px solid #cfe3df; border-radius: 2mm; padding: 2mm 3mm; background: #f7fbfa; }
.fact b { display: block; font-size: 14pt; } .fact span { color: #555; font-size: 8.5pt; }
.empty { border: 2px dashed #D7191C; padding: 6mm; margin: 6mm 0; font-size: 12pt; background: #fff6f6; }
.note { color: #666; font-size: 8.5pt; } .open { color: #b35900; font-weight: bold; }
svg.map { width: 100%; height: auto; border: 1px solid #ccc; background: #fbfbf8; }
.legend span { display: inline-block; margin-right: 4mm; font-size: 8.5pt; }
.legend i { display: inline-block; width: 3.2mm; height: 3.2mm; margin-right: 1mm; vertical-align: -0.4mm;
            border: 1px solid #333; }
@media print { svg.map { max-height: 92mm; } .page { padding: 0; } }
.bar { display: inline-block; height: 2.6mm; background: #44AA99; vertical-align: middle; }
"""


def _e(value) -> str:
    """Escaped text ('—' for nothing)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    return html.escape(str(value), quote=True)


def _bi(zh: str, en: str) -> str:
    return f'{html.escape(zh)} <span class="en">{html.escape(en)}</span>'


def _num(value, digits: int = 0, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return "是 yes" if value else "否 no"
    if digits == 0:
        return f"{round(float(value)):,}{suffix}"
    return f"{float(value):,.{digits}f}{suffix}"


def _pct(share) -> str:
    return "—" if share is None else f"{100 * float(share):.1f}%"


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>")


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    th = "".join(f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


# -- the territory map ------------------------------------------------------------------------------
def _rings(geom) -> list[np.ndarray]:
    out = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.is_empty or poly.geom_type != "Polygon":
            continue
        out.append(np.asarray(poly.exterior.coords))
        out += [np.asarray(r.coords) for r in poly.interiors]
    return out


def territory_svg(zones, context=None, *, width: int = 700, height: int = 420) -> str:
    """An inline SVG of ``zones`` (WGS84 frame with ``role``, ``kind``, ``name``) over ``context`` (grey, e.g.
    the districts), in a local equirectangular view (x scaled by cos(latitude)), north up."""
    if zones is None or len(zones) == 0:
        return ('<svg class="map" viewBox="0 0 700 120" xmlns="http://www.w3.org/2000/svg"><text x="350" y="65" '
                'text-anchor="middle" font-size="16" fill="#777">本年末无负责单元 / no zone held at the year\'s end'
                '</text></svg>')
    minx, miny, maxx, maxy = zones.total_bounds
    padx, pady = max((maxx - minx) * 0.12, 0.004), max((maxy - miny) * 0.12, 0.004)
    minx, maxx, miny, maxy = minx - padx, maxx + padx, miny - pady, maxy + pady
    k = float(np.cos(np.radians((miny + maxy) / 2)))
    span_x, span_y = (maxx - minx) * k, maxy - miny
    scale = min(width / span_x, height / span_y)
    w, h = span_x * scale, span_y * scale
    tol = max(span_x, span_y) / 900

    def path(geom) -> str:
        geom = shapely.simplify(geom, tol, preserve_topology=True)
        parts = []
        for ring in _rings(geom):
            xs = (ring[:, 0] - minx) * k * scale
            ys = (maxy - ring[:, 1]) * scale
            parts.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys)) + " Z")
        return " ".join(parts)

    shapes = []
    view = shapely.box(minx, miny, maxx, maxy)
    if context is not None and len(context):
        for geom, name in zip(context.geometry, context["name"]):
            clipped = shapely.intersection(geom, view)
            if not clipped.is_empty:
                shapes.append(f'<path d="{path(clipped)}" fill="#eeeeea" stroke="#999" stroke-width="0.8">'
                              f"<title>{_e(name)}</title></path>")
    order = {"lead": 0, "member": 1, "consultant": 2}
    rows = sorted(zip(zones.geometry, zones["role"], zones["kind"], zones["name"]),
                  key=lambda r: (r[2] in OVERLAY_COLOURS, order.get(r[1], 3)))
    for geom, role, kind, name in rows:
        colour = ROLE_COLOURS.get(role, NO_PLANNER)
        outline = OVERLAY_COLOURS.get(kind, "#222")
        dash = ' stroke-dasharray="5 3"' if role != "lead" else ""
        shapes.append(f'<path d="{path(geom)}" fill="{colour}" fill-opacity="0.55" stroke="{outline}" '
                      f'stroke-width="1.4"{dash} fill-rule="evenodd"><title>{_e(name)} · '
                      f'{_e("/".join(ROLE_LABELS.get(role, (role, role))))}</title></path>')
    for geom, name in zip(zones.geometry, zones["name"]):
        p = geom.representative_point()
        x, y = (p.x - minx) * k * scale, (maxy - p.y) * scale
        shapes.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="10" text-anchor="middle" fill="#111" '
                      f'stroke="#fff" stroke-width="2.5" paint-order="stroke">{_e(name)}</text>')
    bar_km = _nice_km(span_x * 111.32 / 4)
    bar_px = bar_km / 111.32 * scale
    shapes.append(f'<g transform="translate(10,{h - 14:.0f})"><rect width="{bar_px:.1f}" height="4" fill="#333"/>'
                  f'<text y="-3" font-size="9">{bar_km:g} km</text></g>'
                  f'<text x="{w - 12:.0f}" y="18" font-size="12" text-anchor="middle">N ↑</text>')
    return (f'<svg class="map" viewBox="0 0 {w:.0f} {h:.0f}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'aria-label="territory map">{"".join(shapes)}</svg>')


def _nice_km(x: float) -> float:
    if x <= 0:
        return 1.0
    base = 10 ** np.floor(np.log10(x))
    return float(max(b for b in (1, 2, 5) if b * base <= x) * base) if x >= base else float(base)


def _legend() -> str:
    items = "".join(f'<span><i style="background:{ROLE_COLOURS[r]}"></i>{_bi(*ROLE_LABELS[r])}</span>'
                    for r in ("lead", "member", "consultant"))
    return f'<div class="legend">{items}<span><i style="background:#eeeeea"></i>{_bi("区县", "districts")}</span></div>'


# -- the planner's year -----------------------------------------------------------------------------
def _header(report: dict, title_zh: str, title_en: str) -> str:
    return (f'<h1>{html.escape(title_zh)} <span class="en">{html.escape(title_en)}</span></h1>'
            f'<p class="sub">{report["year"]} 年度 / year {report["year"]} · {report["start"]} – {report["end"]} · '
            f"截至当年 12 月 31 日生效的任命与版本 / appointments and editions in force on 31 December</p>")


def _empty(report: dict) -> str:
    return f'<div class="empty"><b>{_e(report["message"])}</b></div>'


def planner_html(report: dict, *, territory=None, context=None) -> str:
    """The planner's annual report (two A4 pages: the territory, then the year's work and the comparison)."""
    p = report["planner"]
    name = f'{p["name"]}（{p["id"]}）'
    head = _header(report, f"责任规划师年度考核 · {name}", "responsible planner's annual evaluation")
    who = (f'<p>{_bi("单位", "organisation")}：{_e(p.get("organization"))} · {_bi("专业", "disciplines")}：'
           f'{_e(", ".join(p.get("disciplines") or []) or None)} · {_bi("团队", "teams")}：'
           f'{_e(", ".join(t["name"] for t in report.get("teams", [])) or None)}</p>')
    return _year_html(report, f"{name} {report['year']}", head + who, territory, context)


def team_html(report: dict, *, territory=None, context=None) -> str:
    """The team's annual report: the planner's pages over the team's territory and people, with its members
    (discipline and role: 负责人 / 成员 / 专家顾问) and how its territory is drawn."""
    t = report["team"]
    name = f'{t["name"]}（{t["id"]}）'
    head = _header(report, f"责任规划师团队年度考核 · {name}", "planner team's annual evaluation")
    lead = f'{t["lead_name"]}（{t["lead_planner_id"]}）' if t.get("lead_planner_id") else None
    who = (f'<p>{_bi("单位", "organisation")}：{_e(t.get("organization"))} · {_bi("团队负责人", "team lead")}：'
           f'{_e(lead)} · {_bi("成员", "members")}：{len(report["members"])}</p>')
    rows = [[_e(m["name"]), _e(m["planner_id"]),
             f'{_e(m["role_label"])} <span class="en">{_e(m["role_label_en"])}</span>',
             _e(_discipline(m["discipline"])), _e(", ".join(_discipline(d) for d in m["disciplines"]) or None),
             _e(m["organization"])] for m in report["members"]]
    members = (f'<h2>{_bi("团队成员", "members")}</h2>'
               + _table([_bi("姓名", "name"), "ID", _bi("角色", "role"), _bi("在团队中的专业", "discipline in the team"),
                         _bi("本人专业", "own disciplines"), _bi("单位", "organisation")], rows))
    rule = report["territory_rule"]
    note = f'<p class="note">{_e(rule["zh"])} / {_e(rule["en"])}</p>'
    if report["empty"]:
        return _year_html(report, f"{name} {report['year']}", head + who + members, territory, context)
    return _year_html(report, f"{name} {report['year']}", head + who, territory, context, note=note,
                      second=members)


def _discipline(key) -> str | None:
    if key is None:
        return None
    zh, en = DISCIPLINE_LABELS.get(key, (key, key))
    return f"{zh} {en}"


_BASIS = {"team": ("团队任命", "team's appointment"), "lead": ("负责人任命", "lead's appointment")}


def _year_html(report: dict, title: str, top: str, territory, context, *, note: str = "", second: str = "") -> str:
    """The pages a planner's and a team's year share: facts, territory map and zones, then projects,
    feedback, discipline gaps and the city percentiles."""
    if report["empty"]:
        return _page(title, f'<div class="page">{top}{_empty(report)}</div>')
    f = report["facts"]
    facts = "".join(f'<div class="fact"><b>{v}</b><span>{label}</span></div>' for v, label in (
        (_num(f["zones_held"]), _bi("年末所持单元", "zones held at the year's end")),
        (_num(f["zones_lead"]), _bi("其中负责", "of them as lead")),
        (_num(f["area_km2"], 2, " km²"), _bi("负责面积", "area led")),
        (_num(f["population"]), _bi("负责人口", "population led")),
        (_num(f["life_circles"]), _bi("覆盖生活圈", "life circles reached")),
        (_pct(f["share_of_city_population_led"]), _bi("占全市负责人口", "share of the city's population led")),
    ))
    team = report["kind"] == "team"
    zone_rows = []
    for z in report["zones"]:
        row = [_e("/".join(KIND_LABELS.get(z["kind"], (z["kind"], z["kind"])))), _e(z["code"]), _e(z["name"]),
               _e("/".join(ROLE_LABELS.get(z["role"], (z["role"], z["role"])))), _num(z["area_km2"], 2),
               _num(z["population"])]
        if team:
            row += [_e(", ".join(z["planners"])), _e(" ".join(_BASIS.get(z["basis"], (z["basis"], ""))))]
        zone_rows.append(row)
    head = [_bi("类型", "kind"), _bi("编码", "code"), _bi("名称", "name"), _bi("角色", "role"),
            _bi("面积 km²", "area km²"), _bi("人口", "population")]
    if team:
        head += [_bi("持有人", "held by"), _bi("依据", "basis")]
    page1 = (f'<div class="page">{top}<div class="facts">{facts}</div>'
             f'<h2>{_bi("责任片区", "territory")}</h2>{territory_svg(territory, context)}{_legend()}{note}'
             + _table(head, zone_rows, {4, 5}) + "</div>")
    page2 = (f'<div class="page">{second}{_projects(report)}{_feedback(report)}{_gaps(report)}{_figures(report)}'
             f'<p class="note">生成自 Zeren；数字均由服务层按当年日期从数据库计算 / made by Zeren; every figure is '
             f"computed from the store as of the year's dates. 合成示例数据仅用于演示 / synthetic demo data is marked "
             f"【合成示例】.</p></div>")
    return _page(title, page1 + page2)


def _stages(stages: list[dict]) -> str:
    parts = []
    for s in stages:
        label = "/".join(PROJECT_STATUS_LABELS.get(s["status"], (s["status"], s["status"])))
        final = s["status"] == PROJECT_STATUSES[-1]
        days = "完成 done" if final else f'{s["days"]:.0f} 天 days'
        cls = ' class="open"' if s["open"] else ""
        parts.append(f"<span{cls}>{html.escape(label)}: {days}{' (进行中 open)' if s['open'] else ''}</span>")
    return " → ".join(parts)


def _projects(report: dict) -> str:
    people = set(report["people"])
    rows = [[_e(p["id"]), _e(p["name"]),
             _e("负责 lead" if p["lead_planner_id"] in people else "咨询 consulted"),
             _e("/".join(PROJECT_STATUS_LABELS.get(p["status_at_end"], (p["status_at_end"],) * 2))),
             _stages(p["stages"])] for p in report["projects"]]
    body = (_table(["#", _bi("项目", "project"), _bi("角色", "role"), _bi("年末环节", "stage at year end"),
                    _bi("各环节用时", "days per workflow stage")], rows)
            if rows else f'<p>{_bi("本年无项目", "no project this year")}</p>')
    n = len(report["consultations"])
    return (f'<h2>{_bi("项目与工作流程", "projects by workflow stage")}</h2>{body}'
            f'<p>{_bi("提供咨询", "consultations given")}：{n}</p>')


def _feedback(report: dict) -> str:
    fb = report["feedback"]
    summary = (f'<p>{_bi("收到", "received")} <b>{fb["received"]}</b> · {_bi("已答复", "answered")} '
               f'<b>{fb["answered"]}</b> ({_pct(fb["answer_rate"])}) · {_bi("答复时长中位数", "median response")} '
               f'<b>{_num(fb["median_response_hours"], 1, " h")}</b> · {_bi("平均评分", "mean rating")} '
               f'<b>{_num(fb["mean_rating"], 2)}</b></p>')
    rows = [[_e(c["ref"]), _e(c["received_at"][:10]), _e(c["category"]), _e(c["text"]),
             "是 yes" if c["answered"] else "否 no", _num(c["response_hours"], 1)] for c in fb["cases"]]
    table = _table([_bi("编号", "ref"), _bi("日期", "date"), _bi("类别", "category"), _bi("内容", "text"),
                    _bi("已答复", "answered"), _bi("时长 h", "hours")], rows, {5}) if rows else ""
    return (f'<h2>{_bi("居民留言", "resident feedback")}</h2>{summary}{table}'
            f'<p class="note">{_bi("最近的留言（至多 12 条）", "latest cases (at most 12)")}</p>')


def _gaps(report: dict) -> str:
    gaps = report["discipline_gaps"]
    if not gaps:
        ok = _bi("所涉单元专业配齐", "every zone its people serve has the disciplines it needs")
        return f'<h2>{_bi("专业缺口", "discipline gaps")}</h2><p>{ok}</p>'
    rows = [[_e(g["name"]), _e(g["code"]), _e(g["missing_text"])] for g in gaps]
    return (f'<h2>{_bi("专业缺口", "discipline gaps")}</h2>'
            + _table([_bi("单元", "zone"), _bi("编码", "code"), _bi("缺少", "missing")], rows))


def _figures(report: dict) -> str:
    rows = []
    for f in report["figures"]:
        digits = 2 if isinstance(f["value"], float) else 0
        pct = f["city_percentile"]
        value = _pct(f["value"]) if f["key"] == "answer_rate" and f["value"] is not None else _num(f["value"], digits)
        median = (_pct(f["city_median"]) if f["key"] == "answer_rate" and f["city_median"] is not None
                  else _num(f["city_median"], 2 if isinstance(f["city_median"], float) else 0))
        bar = "" if pct is None else f'<span class="bar" style="width:{pct * 0.35:.1f}mm"></span> '
        better = "越高越好 higher is better" if f["better"] == "high" else "越低越好 lower is better"
        rows.append([_bi(f["label"], f["label_en"]), value, median, f'{bar}{_num(pct, 1)}', better])
    n = report["compared"]
    team = report["kind"] == "team"
    own = _bi("本团队", "team") if team else _bi("本人", "planner")
    among = (f"在全市 {n} 个团队中的位置" if team else f"在全市 {n} 名规划师中的位置")
    among_en = f"position among the city's {n} {'teams' if team else 'planners'}"
    return (f'<h2>{_bi("全市百分位", "city percentile")}</h2>'
            + _table([_bi("指标", "figure"), own, _bi("全市中位数", "city median"),
                      _bi("百分位", "percentile"), ""], rows, {1, 2})
            + f'<p class="note">{among}（中位秩：低于者占比加相等者的一半）/ {among_en} (mid-rank).</p>')


# -- the city's year --------------------------------------------------------------------------------
def city_html(report: dict) -> str:
    head = _header(report, "责任规划师制度年度总结", "the city's responsible-planner year")
    if report["empty"]:
        return _page(f"city {report['year']}", f'<div class="page">{head}{_empty(report)}</div>')
    s, e = report["coverage_start"] or {}, report["coverage_end"] or {}
    cov = _table([_bi("指标", "figure"), _bi("年初", "start of year"), _bi("年末", "end of year")], [
        [_bi("有责任规划师的街道/乡镇", "subdistricts with a lead"),
         f'{_num(s.get("units_with_lead"))} / {_num(s.get("units_total"))}',
         f'{_num(e.get("units_with_lead"))} / {_num(e.get("units_total"))}'],
        [_bi("单元覆盖率", "share of units"), _num(s.get("units_with_lead_pct"), 1, "%"),
         _num(e.get("units_with_lead_pct"), 1, "%")],
        [_bi("人口覆盖率", "share of population with a lead"), _num(s.get("population_covered_pct"), 1, "%"),
         _num(e.get("population_covered_pct"), 1, "%")],
    ], {1, 2})
    closed = ", ".join(f'{_e(g["name"])} ({_e(g["code"])})' for g in report["gaps_closed"]) or "—"
    opened = ", ".join(f'{_e(g["name"])} ({_e(g["code"])})' for g in report["gaps_opened"]) or "—"
    gini = report["workload_gini"]
    fb = report["feedback"]
    summary = (f'<h2>{_bi("空缺变化", "gaps")}</h2><p>{_bi("年内填补", "closed")} ({len(report["gaps_closed"])})：'
               f'{closed}</p><p>{_bi("年内新增", "opened")} ({len(report["gaps_opened"])})：{opened}</p>'
               f'<h2>{_bi("工作量均衡", "workload imbalance")}</h2><p>Gini · {_bi("面积", "area")} '
               f'<b>{_num(gini["area"], 3)}</b> · {_bi("人口", "population")} <b>{_num(gini["population"], 3)}</b> · '
               f'{_bi("单元数", "zones")} <b>{_num(gini["zones"], 3)}</b> · {_bi("负责规划师", "lead planners")} '
               f'{report["lead_planners"]}</p>'
               f'<h2>{_bi("居民留言", "resident feedback")}</h2><p>{_bi("收到", "received")} <b>{fb["received"]}</b> · '
               f'{_bi("已答复", "answered")} <b>{fb["answered"]}</b> · {_bi("答复时长中位数", "median response")} '
               f'<b>{_num(fb["median_response_hours"], 1, " h")}</b> · {_bi("平均评分", "mean rating")} '
               f'<b>{_num(fb["mean_rating"], 2)}</b>'
               + (f' · {_bi("其中合成示例", "synthetic")} {fb["synthetic"]}' if fb["synthetic"] else "") + "</p>")
    rows = [[str(d["rank"]), _e(d["name"]), _e(d["code"]), _num(d["units_with_lead_pct"], 1, "%"),
             _num(d["feedback"]), _num(d["feedback_per_10k"], 2), _pct(d["answer_rate"]),
             _num(d["median_response_hours"], 1), _num(d["mean_rating"], 2), _pct(d["share_staffed"])]
            for d in report["districts"]]
    ranking = (f'<h2>{_bi("区县排名", "district ranking")}</h2>'
               + _table([_bi("名次", "rank"), _bi("区县", "district"), _bi("编码", "code"),
                         _bi("单元覆盖", "units led"), _bi("留言", "feedback"), _bi("每万人", "per 10,000"),
                         _bi("答复率", "answered"), _bi("时长中位 h", "median h"), _bi("评分", "rating"),
                         _bi("专业配齐", "staffed")], rows, {0, 3, 4, 5, 6, 7, 8, 9})
               + '<p class="note">' + _bi("排序：答复率、答复时长、单元覆盖",
                                          "ranked by answer rate, then response time, then coverage") + "</p>")
    planners = [[_e(p["planner_id"]), _e(p["name"]), _num(p["zones_lead"]), _num(p["lead_population"]),
                 _num(p["feedback_received"]), _num(p["feedback_answered"]), _num(p["median_response_hours"], 1),
                 _num(p["discipline_gaps"])] for p in report["planners"]]
    top = (f'<h2>{_bi("规划师（按已答复留言）", "planners (by feedback answered)")}</h2>'
           + _table(["ID", _bi("姓名", "name"), _bi("负责单元", "zones led"), _bi("负责人口", "population"),
                     _bi("收到", "received"), _bi("答复", "answered"), _bi("时长中位 h", "median h"),
                     _bi("专业缺口", "gaps")], planners, {2, 3, 4, 5, 6, 7}))
    disc = report.get("discipline")
    disc_html = "" if not disc else (
        f'<h2>{_bi("专业配置", "disciplines")}</h2><p>{disc["zones_staffed"]} / {disc["zones_checked"]} '
        f'{_bi("个单元专业配齐", "zones fully staffed")}</p>'
        + _table([_bi("单元", "zone"), _bi("编码", "code"), _bi("缺少", "missing")],
                 [[_e(z["name"]), _e(z["code"]), _e(z["missing_text"])] for z in disc["short"]]))
    return _page(f"city {report['year']}", f'<div class="page">{head}<h2>{_bi("覆盖", "coverage")}</h2>{cov}'
                                            f'{summary}{disc_html}</div><div class="page">{ranking}{top}</div>')


# -- PDF --------------------------------------------------------------------------------------------
def find_chromium(path: str | None = None) -> str | None:
    """The Chromium to print with: ``path`` when given, else the first installed of the usual places."""
    if path:
        return path if Path(path).exists() or shutil.which(path) else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def html_to_pdf(page: str, out: str | os.PathLike, *, chromium: str | None = None, timeout: float = 120) -> Path:
    """Print ``page`` (a whole HTML document) to the PDF file ``out`` with headless Chromium (A4, the page's
    own @page rules, no header or footer). Raises PDFError when Chromium is missing or fails."""
    exe = find_chromium(chromium)
    if exe is None:
        raise PDFError("PDF output needs Chromium (apt-get install chromium); or write --format html")
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="zeren-pdf-") as tmp:
        src = Path(tmp) / "report.html"
        src.write_text(page, encoding="utf-8")
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
               "--run-all-compositor-stages-before-draw", f"--user-data-dir={tmp}/profile",
               f"--print-to-pdf={out}", src.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PDFError(f"Chromium did not finish printing the PDF within {timeout:.0f} s") from exc
    if done.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise PDFError(f"Chromium could not print the PDF (exit {done.returncode}): {tail[0][:200]}")
    return out


__all__ = ["PDFError", "city_html", "find_chromium", "html_to_pdf", "planner_html", "team_html", "territory_svg"]
