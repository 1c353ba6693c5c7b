"""Map pages for an ``<iframe>``: coverage, gaps, one site, one planner, one project, and the index ``/maps``.

Each page is built by :mod:`api.pages` (the same pages as ``zeren map ... --out FILE.html``) with the map
settings of :class:`api.settings.Settings` and references only ``/static/maps/`` (Leaflet and Zeren's JS/CSS,
served by the app: no CDN). Zone layers over the inline limit are drawn from the vector tiles
``/tiles/{kind}/{z}/{x}/{y}.mvt`` (on a GCJ-02 basemap they load ``/maps/zones/{kind}.geojson``).
Who may embed the pages is the app's ``Content-Security-Policy:
frame-ancestors`` (``ZEREN_FRAME_ANCESTORS``). Reads are public.
"""
from __future__ import annotations

import html
import threading
from collections import OrderedDict
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from zeren.api.service import pages
from zeren.api.http.deps import day_in_force, parse_input_crs
from zeren.api.http.models import DEMO_LAT, DEMO_LON, ERRORS, ErrorBody, errors
from zeren.api.http.routers._geojson import GeoJSONResponse, dumps
from zeren.geo.kinds import ALL_KINDS, KIND_LABELS
from zeren.geo.validity import as_timestamp
from zeren.layers.errors import NotFoundError

router = APIRouter(tags=["maps"])

EMBED_TITLE = "责任规划师地图"
HTML_ANSWER = {200: {"content": {"text/html": {"schema": {"type": "string"}}},
                     "description": "A standalone HTML page (Leaflet), made to be shown in an `<iframe>`."}}


def html_errors(*codes: int) -> dict:
    """Error answers of a page: JSON (the one error shape), though the page itself is HTML."""
    ref = {"$ref": f"#/components/schemas/{ErrorBody.__name__}"}
    return {c: {"description": ERRORS[c]["description"], "content": {"application/json": {"schema": ref}}}
            for c in codes}


KindQuery = Annotated[Literal[ALL_KINDS], Query(  # type: ignore[valid-type]
    description=f"Kind of unit the map colours by its lead planner: {', '.join(ALL_KINDS)}.",
    examples=["subdistrict"])]
WithinQuery = Annotated[str | None, Query(
    max_length=100, description="Only this unit: a district (or subdistrict) code; default the whole city.",
    examples=["510105"])]
AsOfQuery = Annotated[str | None, Query(
    max_length=40, description="Date of the map, YYYY-MM-DD (default today).", examples=["2025-06-30"],
    json_schema_extra={"format": "date"})]


def _html(text: str) -> HTMLResponse:
    return HTMLResponse(text, headers={"Cache-Control": "no-cache"})


def _settings(request: Request, day):
    """The page's MapSettings: the app's map settings, and the URLs its large zone layers load from: the
    vector tiles (``/tiles/...``; GeoJSON only where tiles cannot be drawn), and the zone planners a tiled
    zone's popup asks for. All pinned to the page's date, so the layers and the page agree."""
    when = as_timestamp(day).date().isoformat()
    return request.app.state.zeren.settings.map_settings(
        geojson_url=f"/maps/zones/{{kind}}.geojson?as_of={when}",
        zone_tiles_url=f"/tiles/{{kind}}/{{z}}/{{x}}/{{y}}.mvt?as_of={when}",
        zone_details_url=f"/zones/{{kind}}/{{code}}/planners?as_of={when}")


def _render(m) -> HTMLResponse:
    return _html(m.get_root().render())


class _PageCache:
    """The last pages built, keyed by the catalogue's generation (bumped by every reload: a new appointment, a
    new edition), the page's URL and its date: a national coverage page takes seconds to build and its
    viewers ask for the same few. Kept on ``app.state``, one per app. Coverage and gaps pages only (the
    planner page lists projects, which are not part of the generation)."""

    SIZE = 16

    def __init__(self):
        self._pages: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def page(self, request: Request, day, build) -> HTMLResponse:
        # the generation is read first: a page built from a later state is at worst kept under an older key
        key = (request.app.state.zeren.catalogue.generation, request.url.path,
               tuple(sorted(request.query_params.multi_items())), as_timestamp(day))
        with self._lock:
            text = self._pages.get(key)
            if text is not None:
                self._pages.move_to_end(key)
                return _html(text)
        text = build().get_root().render()
        with self._lock:
            self._pages[key] = text
            while len(self._pages) > self.SIZE:
                self._pages.popitem(last=False)
        return _html(text)


def _cached(request: Request, day, build) -> HTMLResponse:
    state = request.app.state
    cache = getattr(state, "zeren_pages", None)
    if cache is None:
        cache = state.zeren_pages = _PageCache()
    return cache.page(request, day, build)


# -- the pages -----------------------------------------------------------------------------------
@router.get("/maps/coverage", response_class=HTMLResponse, responses={**HTML_ANSWER, **html_errors(404, 422)},
            summary="Map page: units coloured by their lead planner, gaps and overlaps marked",
            description="Every unit of `kind` coloured by its lead planner (hover: the unit, its lead and public "
                        "contact), units without a lead and uncovered ground hatched, overlaps in red, overlay "
                        "areas (historic, key, renewal) on top. Same page as `zeren map coverage`.")
def coverage_map(request: Request, kind: KindQuery = "subdistrict", within: WithinQuery = None,
                 as_of: AsOfQuery = None) -> HTMLResponse:
    day = day_in_force(request, as_of)
    return _cached(request, day, lambda: pages.coverage_page(
        request.app.state.zeren.workspace, kind=kind, within=within or None, as_of=day,
        settings=_settings(request, day)))


@router.get("/maps/gaps", response_class=HTMLResponse, responses={**HTML_ANSWER, **html_errors(404, 422)},
            summary="Map page: units without a lead planner and uncovered ground",
            description="The gaps of `GET /coverage/gaps` on a map: units without a lead planner, slivers "
                        "between units and ground outside every unit. Same page as `zeren map gaps`.")
def gaps_map(request: Request, kind: KindQuery = "subdistrict", within: WithinQuery = None,
             as_of: AsOfQuery = None) -> HTMLResponse:
    day = day_in_force(request, as_of)
    return _cached(request, day, lambda: pages.gaps_page(
        request.app.state.zeren.workspace, kind=kind, within=within or None, as_of=day,
        settings=_settings(request, day)))


@router.get("/maps/site", response_class=HTMLResponse, responses={**HTML_ANSWER, **html_errors(422)},
            summary="Map page: one site, the zones it lies in, its lead planner and whom to consult",
            description="The answer of `GET /lookup` on a map. Give `crs=gcj02` for a point copied from "
                        "AMap/Tencent, `bd09` for Baidu. Same page as `zeren map site`.")
def site_map(
    request: Request,
    lon: Annotated[float, Query(allow_inf_nan=False, description="Longitude (or x in `crs`).",
                                examples=[DEMO_LON])],
    lat: Annotated[float, Query(allow_inf_nan=False, description="Latitude (or y in `crs`).",
                                examples=[DEMO_LAT])],
    crs: Annotated[str, Query(max_length=2000, description="CRS of lon/lat: `wgs84` (default), `cgcs2000`, "
                                                           "`gcj02` (AMap, Tencent), `bd09` (Baidu) or `EPSG:n`.",
                              examples=["wgs84"])] = "wgs84",
    as_of: AsOfQuery = None,
) -> HTMLResponse:
    day = day_in_force(request, as_of)
    return _render(pages.site_page(request.app.state.zeren.workspace, lon, lat,
                                   crs=parse_input_crs(crs, definitions=False), as_of=day,
                                   settings=_settings(request, day)))


@router.get("/maps/planner/{planner_id}", response_class=HTMLResponse,
            responses={**HTML_ANSWER, **html_errors(404, 422)},
            summary="Map page: one planner's zones and projects",
            description="The zones the planner holds on `as_of` (lead, member, consultant) and the projects they "
                        "lead or are consulted on, coloured by workflow status. Public facts only (never the "
                        "private contact). Same page as `zeren map planner`.")
def planner_map(
    request: Request,
    planner_id: Annotated[str, Path(max_length=64, description="The planner's id.", examples=["P006"])],
    as_of: AsOfQuery = None,
) -> HTMLResponse:
    day = day_in_force(request, as_of)
    return _render(pages.planner_page(request.app.state.zeren.workspace, planner_id, as_of=day,
                                      settings=_settings(request, day)))


@router.get("/maps/project/{project_id}", response_class=HTMLResponse,
            responses={**HTML_ANSWER, **html_errors(404, 422)},
            summary="Map page: one project and the planners it was assigned",
            description="The project's site, the zones it lies in and its lead and consultations as frozen "
                        "when it was created. Same page as `zeren map project`.")
def project_map(
    request: Request,
    project_id: Annotated[int, Path(ge=1, le=2**53, description="The project's id.", examples=[1])],
) -> HTMLResponse:
    return _render(pages.project_page(request.app.state.zeren.workspace, project_id,
                                      settings=_settings(request, None)))


@router.get("/maps/editions/diff", response_class=HTMLResponse, responses={**HTML_ANSWER, **html_errors(404, 422)},
            summary="Map page: what a boundary edition changed (removed, added, changed; old boundary dashed)",
            description="The diff of `GET /editions/diff` on a map. Same page as `zeren map diff`.")
def edition_diff_map(
    request: Request,
    kind: Annotated[Literal[ALL_KINDS], Query(description="Zone kind whose editions are compared.",  # type: ignore
                                              examples=["subdistrict"])],
    from_: Annotated[int, Query(alias="from", ge=1900, le=2199, examples=[2024], description="The older edition.")],
    to: Annotated[int, Query(ge=1900, le=2199, examples=[2025], description="The newer edition.")],
) -> HTMLResponse:
    return _render(pages.edition_diff_page(request.app.state.zeren.workspace, kind=kind, from_edition=from_,
                                           to_edition=to, settings=_settings(request, None)))


# -- large zone layers, loaded by the pages ------------------------------------------------------
_LAYER_CACHE: OrderedDict = OrderedDict()
_LAYER_LOCK = threading.Lock()
_LAYER_CACHE_SIZE = 16


def _zones_layer(request: Request, kind: str, day) -> bytes:
    """``maps.zones_geojson`` of the zones of ``kind`` in force on ``day``, kept for the loaded index (the
    catalogue replaces its index when zones change, which retires the cached layers)."""
    from zeren.maps import zones_geojson

    catalogue = request.app.state.zeren.catalogue
    settings = _settings(request, day)
    index = catalogue.index
    key = (kind, as_timestamp(day), settings.simplify_tolerance_m, settings.precision)
    with _LAYER_LOCK:
        hit = _LAYER_CACHE.get(key)
        if hit is not None and hit[0] is index:
            _LAYER_CACHE.move_to_end(key)
            return hit[1]
    zones = catalogue.zone_frame(day, kind)
    body = dumps(zones_geojson(zones.drop(columns="position"), settings)).encode("utf-8")
    with _LAYER_LOCK:
        _LAYER_CACHE[key] = (index, body)
        while len(_LAYER_CACHE) > _LAYER_CACHE_SIZE:
            _LAYER_CACHE.popitem(last=False)
    return body


@router.get("/maps/zones/{kind}.geojson", response_class=GeoJSONResponse,
            responses={200: {"content": {"application/geo+json": {"schema": {"type": "object"}}},
                             "description": "A GeoJSON FeatureCollection (WGS84) of the zones in force, "
                                            "simplified for display; properties kind, code, name, name_en."},
                       **errors(404, 422)},
            summary="The zones of one kind in force, simplified for drawing (the maps' large layers)",
            description="What a map page loads when a zone layer is too large to put inside the page "
                        "(over `ZEREN_MAP_MAX_INLINE_FEATURES`). Compressed with gzip when the client accepts it.")
def zones_layer(
    request: Request,
    kind: Annotated[str, Path(max_length=40, description=f"Zone kind: {', '.join(ALL_KINDS)}.",
                              examples=["subdistrict"])],
    as_of: AsOfQuery = None,
) -> Response:
    if kind not in ALL_KINDS:
        raise NotFoundError(f"no zone kind {kind[:40]!r}; kinds: {', '.join(ALL_KINDS)}")
    return Response(_zones_layer(request, kind, day_in_force(request, as_of)), media_type="application/geo+json")


# -- the index -----------------------------------------------------------------------------------
def _base_url(request: Request) -> str:
    public = request.app.state.zeren.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def embed_snippet(base: str, path: str = f"/maps/site?lon={DEMO_LON:.4f}&lat={DEMO_LAT:.4f}") -> str:
    """The documented ``<iframe>`` for a map page (README: "Embedding the maps / 嵌入地图")."""
    return (f'<iframe src="{base}{path}" width="100%" height="480" style="border:0" loading="lazy" '
            f'title="{EMBED_TITLE}"></iframe>')


def _examples(catalogue) -> dict[str, str]:
    """Example URLs that work on the loaded store (the demo city's famous point when it lies inside)."""
    bounds = catalogue.index.bounds
    lon, lat = DEMO_LON, DEMO_LAT
    if bounds is not None and not (bounds[0] <= lon <= bounds[2] and bounds[1] <= lat <= bounds[3]):
        lon, lat = round((bounds[0] + bounds[2]) / 2, 4), round((bounds[1] + bounds[3]) / 2, 4)
    out = {"coverage": "/maps/coverage", "gaps": "/maps/gaps", "site": f"/maps/site?lon={lon:.4f}&lat={lat:.4f}"}
    districts = catalogue.zone_frame(None, "district")
    if len(districts):
        code = "510105" if (districts["code"] == "510105").any() else str(districts["code"].min())
        out["coverage_within"] = f"/maps/coverage?within={code}"
    planners = catalogue.planners
    if len(planners):
        ids = planners["id"].astype(str)
        out["planner"] = "/maps/planner/" + ("P006" if (ids == "P006").any() else str(ids.min()))
    try:
        projects = catalogue.store.projects()
        if len(projects):
            out["project"] = f"/maps/project/{int(np.min(projects['id'].to_numpy()))}"
    except Exception:  # noqa: BLE001 - the index page must show even when the projects cannot be read
        pass
    return out


_INDEX_CSS = """
body{font:15px/1.55 system-ui,-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
margin:0 auto;max-width:60rem;padding:1.5rem;color:#222}
h1{font-size:1.5rem;margin:.2rem 0 1rem}h2{font-size:1.15rem;margin-top:1.8rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.45rem .5rem;text-align:left;
vertical-align:top}code,pre{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f4f4f4}
pre{padding:.7rem;white-space:pre-wrap;word-break:break-all}code{padding:0 .2rem}.en{color:#555}a{color:#0b5cad}
"""


def index_html(request: Request) -> str:
    zs = request.app.state.zeren
    settings = zs.settings
    base = _base_url(request)
    ex = _examples(zs.catalogue)
    e = html.escape
    kinds = "、".join(f"<code>{k}</code> {e(KIND_LABELS[k][0])}" for k in ALL_KINDS if k in KIND_LABELS)
    rows = [
        ("覆盖图", "Coverage", ex.get("coverage_within", ex["coverage"]),
         "/maps/coverage?kind=&amp;within=&amp;as_of=",
         "每个单元按责任规划师着色，缺口与重叠标出，叠加历史文化街区、重点地区。",
         "Each unit coloured by its lead planner; gaps and overlaps marked; historic and key areas on top."),
        ("缺口图", "Gaps", ex["gaps"], "/maps/gaps?kind=&amp;within=&amp;as_of=",
         "无责任规划师的单元、单元间缝隙与单元以外区域。",
         "Units without a lead planner, slivers between units, ground outside every unit."),
        ("选址查询", "Site", ex["site"], "/maps/site?lon=&amp;lat=&amp;crs=&amp;as_of=",
         "一个地点所在的单元、责任规划师和需征询的规划师（crs=gcj02 高德/腾讯，bd09 百度）。",
         "One site: its zones, lead planner and the planners to consult (crs=gcj02 AMap/Tencent, bd09 Baidu)."),
        ("规划师", "Planner", ex.get("planner"), "/maps/planner/{id}?as_of=",
         "一位规划师负责的单元和项目（仅公开信息）。", "One planner's zones and projects (public facts only)."),
        ("项目", "Project", ex.get("project"), "/maps/project/{id}",
         "一个项目的位置及创建时确定的责任规划师。", "One project and the planners assigned when it was created."),
    ]
    body = []
    for zh, en, example, pattern, text_zh, text_en in rows:
        link = f'<a href="{e(example)}">{e(example)}</a>' if example else "—"
        body.append(f"<tr><td><b>{zh}</b><br><span class=en>{en}</span></td><td><code>{pattern}</code><br>"
                    f"例 / e.g. {link}</td><td>{text_zh}<br><span class=en>{text_en}</span></td></tr>")
    ancestors = " ".join(settings.frame_ancestors) or "'none'"
    snippet = embed_snippet(base, ex["site"])
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>责任规划师地图 / Responsible-planner maps</title><link rel="icon" href="data:,"><style>{_INDEX_CSS}</style></head>
<body>
<h1>责任规划师地图 <span class=en>/ Responsible-planner maps</span></h1>
<p>以下地图页面可独立打开，也可通过 <code>&lt;iframe&gt;</code> 嵌入门户网站。页面只加载本服务的资源（无外部 CDN），
鼠标悬停可查看单元及其责任规划师。<br><span class=en>Each page opens on its own or inside an
<code>&lt;iframe&gt;</code> on a portal. The pages load only this server's assets (no CDN); hover a unit to see
it and its lead planner.</span></p>
<table><thead><tr><th>地图 / Map</th><th>地址 / URL</th><th>内容 / What it shows</th></tr></thead>
<tbody>{''.join(body)}</tbody></table>
<p>单元类型 <span class=en>/ unit kinds</span> (<code>kind</code>)：{kinds}。日期 <span class=en>/ date</span>
<code>as_of=YYYY-MM-DD</code>，默认今天 <span class=en>/ default today</span>。</p>
<h2>嵌入地图 <span class=en>/ Embedding the maps</span></h2>
<p>把下面的代码放进网页 <span class=en>/ put this in a web page</span>：</p>
<pre><code>{e(snippet)}</code></pre>
<p>允许嵌入本服务页面的来源 <span class=en>/ who may embed these pages</span>
(<code>Content-Security-Policy: frame-ancestors</code>)：<code>{e(ancestors)}</code>。
其他网站嵌入前，请管理员设置 <span class=en>/ before another site can embed them, the administrator sets</span>
<code>ZEREN_FRAME_ANCESTORS="'self' https://portal.example.gov.cn"</code>。</p>
<p><a href="/docs">接口文档 / API docs</a> · <a href="/coverage/summary">覆盖统计 / coverage summary (JSON)</a></p>
</body></html>
"""


@router.get("/maps", response_class=HTMLResponse, responses=HTML_ANSWER,
            summary="Index of the map pages, with the <iframe> snippet to embed them",
            description="A bilingual page (Chinese first) listing the map pages with example links that work on "
                        "the loaded store, and the `<iframe>` snippet for portals.")
def maps_index(request: Request) -> HTMLResponse:
    return _html(index_html(request))


__all__ = ["router", "embed_snippet"]
