"""Map builders: frames and results in, an offline-safe ``folium.Map`` out.

Every builder takes a :class:`~maps.settings.MapSettings`; pages reference only the assets under
``settings.asset_url_prefix`` (see :mod:`maps.assets`). Nothing here computes coverage, assignments or
distances: the callers pass the results of ``geo`` (gaps, overlaps, assignment answers) and the maps
draw them. Private contacts are never read.
"""
from __future__ import annotations

import html
import logging
from typing import Any, Mapping, Sequence

import folium
from branca.element import Element
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from zeren.geo.coverage import REASON_LABELS
from zeren.geo.crs import metric_crs
from zeren.geo.kinds import BASE_KINDS, KIND_LABELS, OVERLAY_KINDS, PROJECT_STATUS_LABELS, ROLE_LABELS
from zeren.maps import palette
from zeren.maps.assets import use_offline_assets, use_vector_tiles
from zeren.maps.display import (DisplayCoverage, as_wgs84_frame, encode_columns, hilbert_order, pack_polygons, plain_geojson,
                          isolate, script_json, to_display_crs)
from zeren.maps.elements import Legend, PageSetup, ZerenLayer
from zeren.maps.reference import add_reference
from zeren.maps.settings import MapSettings

log = logging.getLogger("zeren.maps")

__all__ = ["coverage_map", "gap_map", "tiled_layer", "site_map", "planner_map", "life_circle_layer", "life_circle_map",
           "STATUS_LABELS"]

STATUS_LABELS = PROJECT_STATUS_LABELS
GAP_REASON_LABELS = REASON_LABELS

PUBLIC_PLANNER_FIELDS = ("name", "organization", "public_contact")

# Tooltip rows: [label, property path]; the page skips empty values.
F_NAME = ["名称 / Name", "label"]
F_CODE = ["编码 / Code", "code"]
F_KIND = ["类型 / Kind", "kind_label"]
F_PLANNER = ["责任规划师 / Lead planner", "planner.name"]
F_ORG = ["所属单位 / Organisation", "planner.org"]
F_CONTACT = ["公开联系方式 / Public contact", "planner.contact"]
F_STATUS = ["状态 / Status", "status"]
F_AREA = ["面积 / Area", "area"]

NO_LEAD_TEXT = "无责任规划师 / no lead planner"

STYLE_ZONE = {"weight": 0.8, "color": "#FFFFFF", "opacity": 1, "fillOpacity": 0.62}
STYLE_NO_PLANNER = {"fillColor": "hatch:red", "fillOpacity": 1, "color": palette.NO_PLANNER, "weight": 1.6,
                    "dashArray": "4 3"}
STYLE_TERRITORY = {"fill": False, "color": palette.TERRITORY_OUTLINE, "weight": 2.2, "opacity": 0.9}
STYLE_GAP = {"fillColor": palette.NO_PLANNER, "fillOpacity": 0.5, "color": palette.NO_PLANNER, "weight": 2}
STYLE_OVERLAP = {"fillColor": palette.OVERLAP, "fillOpacity": 0.65, "color": "#B84A00", "weight": 1.5}
STYLE_PLANNER_LEAD = {"fillColor": "#0077BB", "fillOpacity": 0.25, "color": "#0077BB", "weight": 2}
STYLE_PLANNER_OTHER = {"fillColor": "#88CCEE", "fillOpacity": 0.2, "color": "#0077BB", "weight": 1.5,
                       "dashArray": "5 4"}
STYLE_CONTEXT = {"fillColor": "#BBBBBB", "fillOpacity": 0.25, "color": "#FFFFFF", "weight": 0.6}
STYLE_DISTRICT = {"fill": False, "color": palette.DISTRICT_OUTLINE, "weight": 2.4, "opacity": 0.85,
                  "dashArray": "10 5"}


# --- small helpers ---------------------------------------------------------------------------------
# The page kit, shared by the other page modules (maps.diff, maps.feedback, maps.embed) and named without an
# underscore for that: bilingual, zone_labels, new_map, finish_map, bounds_of, prepare_polygons, point_data,
# add_zeren_layer. They are not in __all__: pages are built from maps' page functions, not from these.

def bilingual(zh: str, en: str) -> str:
    return f"{zh} / {en}"


def _kind_label(kind: str) -> str:
    zh, en = KIND_LABELS.get(kind, (kind, kind))
    return bilingual(zh, en)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str | None:
    return None if _missing(value) or str(value) == "" else str(value)


def _shown(value: Any) -> str | None:
    """User text (a name, an organisation, a contact) as shown on a page: bidi-isolated (``display.isolate``)."""
    return isolate(_text(value))


def zone_label(name: Any, name_en: Any = None) -> str | None:
    """The zone's Chinese name, with the English one after a slash when known (each bidi-isolated)."""
    zh, en = _shown(name), _shown(name_en)
    if zh and en and en != zh:
        return f"{zh} / {en}"
    return zh or en


def _column(frame: pd.DataFrame, name: str, default=None) -> list:
    if name in frame.columns:
        return frame[name].tolist()
    return [default] * len(frame)


def zone_labels(frame: pd.DataFrame) -> list:
    return [zone_label(n, e) for n, e in zip(_column(frame, "name"), _column(frame, "name_en"))]


def format_area(area_m2: Any) -> str | None:
    if _missing(area_m2):
        return None
    a = float(area_m2)
    if a >= 100_000:
        return f"{a / 1e6:,.2f} km²"
    return f"{a:,.0f} m²"


def format_distance(distance_m: Any) -> str | None:
    if _missing(distance_m):
        return None
    d = float(distance_m)
    return f"{d / 1000:,.2f} km" if d >= 1000 else f"{d:,.0f} m"


def _areas_m2(frame: gpd.GeoDataFrame) -> np.ndarray:
    """``area_m2`` when the frame has it, else measured in a metric CRS (for display only)."""
    if "area_m2" in frame.columns:
        return frame["area_m2"].to_numpy(dtype=float, na_value=np.nan)
    if len(frame) == 0:
        return np.zeros(0)
    crs = metric_crs(frame.total_bounds)
    return frame.geometry.to_crs(crs).area.to_numpy()


class PlannerBook:
    """Public planner facts by id: name, organisation, public contact (never the private contact)."""

    def __init__(self, planners: pd.DataFrame | None):
        self._by_id: dict[str, dict] = {}
        if planners is None or len(planners) == 0:
            return
        if "id" not in planners.columns:
            raise ValueError("planners frame needs an 'id' column")
        cols = {f: _column(planners, f) for f in PUBLIC_PLANNER_FIELDS}
        for i, pid in enumerate(planners["id"].tolist()):
            self._by_id[str(pid)] = {
                "name": _shown(cols["name"][i]) or _shown(pid),
                "org": _shown(cols["organization"][i]),
                "contact": _shown(cols["public_contact"][i]),
            }

    def get(self, planner_id: Any) -> dict | None:
        if _missing(planner_id):
            return None
        return self._by_id.get(str(planner_id)) or {"name": _shown(planner_id), "org": None, "contact": None}


def _planner_from_answer(p: Mapping | None) -> dict | None:
    """Public facts of a planner dict from an assignment answer."""
    if not p:
        return None
    return {"name": _shown(p.get("name")) or _shown(p.get("id")), "org": _shown(p.get("organization")),
            "contact": _shown(p.get("public_contact"))}


def _lead_lookup(leads: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    if leads is None or len(leads) == 0:
        return {}
    missing = {"zone_kind", "zone_code", "planner_id"} - set(leads.columns)
    if missing:
        raise ValueError(f"leads frame lacks columns {sorted(missing)} (expected zone_kind, zone_code, planner_id)")
    out: dict[tuple[str, str], str] = {}
    for k, c, p in zip(leads["zone_kind"].tolist(), leads["zone_code"].tolist(), leads["planner_id"].tolist()):
        if not _missing(p):
            out.setdefault((str(k), str(c)), str(p))
    return out


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Polygon/MultiPolygon per row (polygon parts of collections kept; others become None)."""
    geoms = np.asarray(geoms, dtype=object).copy()
    types = shapely.get_type_id(geoms)
    for i in np.flatnonzero(types == 7):
        parts = shapely.get_parts(geoms[i])
        parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
        geoms[i] = shapely.union_all(parts) if len(parts) else None
    types = shapely.get_type_id(geoms)
    geoms[~np.isin(types, (3, 6))] = None
    return geoms


# --- the map and its layers ------------------------------------------------------------------------

_BASEMAPS = {
    "osm": dict(tiles="https://tile.openstreetmap.org/{z}/{x}/{y}.png", name="OpenStreetMap",
                attr='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
                max_zoom=19),
    "amap": dict(tiles="https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
                       "&x={x}&y={y}&z={z}",
                 name="高德地图 / AMap", attr="&copy; 高德地图 AutoNavi", subdomains="1234", max_zoom=18),
    "tencent": dict(tiles="https://rt{s}.map.gtimg.com/tile?z={z}&x={x}&y={-y}&type=vector&styleid=0",
                    name="腾讯地图 / Tencent Maps", attr="&copy; 腾讯地图 Tencent", subdomains="0123", max_zoom=18),
}


def _add_basemap(m: folium.Map, settings: MapSettings) -> None:
    from urllib.parse import quote

    b = settings.basemap
    if b == "none":
        return
    if b in _BASEMAPS:
        folium.TileLayer(overlay=False, control=False, **_BASEMAPS[b]).add_to(m)
    elif b == "tianditu":
        key = quote(settings.tianditu_key or "", safe="")
        for layer, name in (("vec", "天地图 / Tianditu"), ("cva", "天地图注记 / Tianditu labels")):
            url = (f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                   f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
                   f"&TILECOL={{x}}&tk={key}")
            folium.TileLayer(tiles=url, name=name, attr="&copy; 天地图 Tianditu", subdomains="01234567",
                             max_zoom=18, overlay=layer == "cva", control=False).add_to(m)
    elif b == "custom":
        folium.TileLayer(tiles=settings.tile_url, name="basemap", attr=" ", max_zoom=19, overlay=False,
                         control=False).add_to(m)


def new_map(settings: MapSettings, bounds: Sequence[float] | None, title: str | None) -> folium.Map:
    if bounds is None or not np.all(np.isfinite(bounds)):
        bounds = (73.5, 18.0, 134.8, 53.6)  # China, when there is nothing to draw
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=10, tiles=None,
                   control_scale=True, max_zoom=19, min_zoom=3, prefer_canvas=False)
    use_offline_assets(m, settings.asset_url_prefix)
    if title:
        m.get_root().title = html.escape(title)
    # no favicon request (it would 404 on a bare static server and log a console error)
    m.get_root().header.add_child(Element('<link rel="icon" href="data:,">'), name="zeren_favicon")
    _add_basemap(m, settings)
    add_reference(m, settings)
    setup: dict[str, Any] = {"gcj02": settings.gcj02}
    if settings.attribution:
        setup["attribution"] = settings.attribution
    if settings.approval_number:
        number = settings.approval_number.strip()
        setup["approval"] = number if number.startswith("审图号") else f"审图号：{number}"
    PageSetup(setup).add_to(m)
    if maxx - minx < 1e-9 and maxy - miny < 1e-9:
        pad = 0.005
        minx, maxx, miny, maxy = minx - pad, maxx + pad, miny - pad, maxy + pad
    # fitted at once: Leaflet animates a first fit of up to 4 zooms away from zoom_start, and the layers added
    # meanwhile ask for the tiles of the zoom it leaves (30 vector tiles thrown away on a 22,500-zone page)
    fit = folium.map.FitBounds([[miny, minx], [maxy, maxx]])
    fit.options["animate"] = False
    m.add_child(fit)
    m._zeren_settings = settings
    return m


def finish_map(m: folium.Map, legend: dict | None, collapsed: bool) -> folium.Map:
    if legend:
        Legend(legend).add_to(m)
    folium.LayerControl(position="topright", collapsed=collapsed).add_to(m)
    return m


def bounds_of(*geom_arrays) -> tuple | None:
    arrays = [np.asarray(g, dtype=object) for g in geom_arrays if g is not None and len(g)]
    if not arrays:
        return None
    b = shapely.total_bounds(np.concatenate(arrays))
    return tuple(b) if np.all(np.isfinite(b)) else None


class _Prepared:
    """A polygon layer ready for the page (display geometries in row order, and the spec data)."""

    def __init__(self, data: dict, display: np.ndarray | None, order: np.ndarray | None, coverage: bool,
                 keep: np.ndarray):
        self.keep = keep
        self.data = data
        self.display = display
        self.order = order
        self.coverage = coverage


def prepare_polygons(geoms: np.ndarray, columns: Mapping[str, list], settings: MapSettings, *,
                      kind: str | None = None, simplify: bool = True, allow_url: bool = False,
                      fit_budget: bool = False, url_drops: Sequence[str] = ()) -> _Prepared:
    """Simplify, shift and pack polygons with their columns.

    ``allow_url``: a layer over ``max_inline_features`` is loaded from ``settings.geojson_url`` when set
    (the columns in ``url_drops`` are left out: the URL's features carry them). ``fit_budget``: a large
    layer that must be inlined is simplified harder until it fits ``settings.max_inline_bytes``.
    """
    geoms = _polygonal(np.asarray(geoms, dtype=object))
    keep = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    geoms = geoms[keep]
    columns = {k: [v for v, ok in zip(vals, keep) if ok] for k, vals in columns.items()}
    n = len(geoms)
    large = n > settings.max_inline_features
    if allow_url and settings.geojson_url and large:
        url = settings.geojson_url.replace("{kind}", kind or "")
        cols = {k: v for k, v in columns.items() if k not in url_drops}
        data = {"url": url, "columns": encode_columns(cols, n), "count": n, "key": "code",
                "gcj02": settings.gcj02}
        return _Prepared(data, None, None, False, keep)
    layer = DisplayCoverage(geoms) if simplify and n else None
    coverage = layer is not None and layer.is_coverage
    tol = settings.simplify_tolerance_m if simplify else 0.0
    precision = settings.precision
    budget = settings.max_inline_bytes
    if fit_budget and large:
        budget -= len(script_json(encode_columns(columns, n)))
    while True:
        simplified = layer.simplify(tol) if layer is not None and tol > 0 else geoms
        display = to_display_crs(simplified, settings.gcj02)
        order = hilbert_order(display)
        packed = pack_polygons(display[order], precision)
        if not (fit_budget and large):
            break
        size = len(script_json(packed))
        if size <= budget or tol >= 500:
            if tol > settings.simplify_tolerance_m or size > budget:
                log.warning("layer of %d features inlined at %.0f m tolerance, %d decimals (%d bytes of "
                            "geometry); set MapSettings.geojson_url to load it by URL instead",
                            n, tol, precision, size)
            break
        precision = min(precision, 5)
        tol = max(tol * 2, 10.0) if size < 2 * max(budget, 1) else max(tol * 4, 20.0)
    cols = {k: [vals[i] for i in order] for k, vals in columns.items()}
    data = {"packed": packed, "columns": encode_columns(cols, n)}
    return _Prepared(data, display[order], order, coverage, keep)


def point_data(geoms: np.ndarray, rows: list[dict], settings: MapSettings) -> dict:
    display = to_display_crs(np.asarray(geoms, dtype=object), settings.gcj02)
    return {"geojson": plain_geojson(display, rows, settings.precision)}


def tiled_layer(settings: MapSettings, n: int) -> bool:
    """Whether a zone layer of ``n`` features is drawn from the vector tiles (``settings.zone_tiles_url``):
    only over the inline limit, and not on a GCJ-02 basemap (tiles are WGS84 web mercator, never shifted)."""
    return bool(settings.zone_tiles_url) and n > settings.max_inline_features and not settings.gcj02


def tile_min_zoom(geoms: np.ndarray, min_px: float = 4.0) -> int:
    """The lowest zoom at which the median zone of ``geoms`` (WGS84) is ``min_px`` pixels across: below it a
    tiled layer draws nothing (a national layer of 600,000 zones would be one-pixel specks in megabyte tiles),
    and a page opening below it opens at it instead, on the middle of its view."""
    b = shapely.bounds(np.asarray(geoms, dtype=object))
    size = np.nanmedian(np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])) if len(b) else np.nan
    if not np.isfinite(size) or size <= 0:
        return 0
    return int(min(18, max(0, np.ceil(np.log2(min_px * 360.0 / (256.0 * size))))))


def _tile_data(m: folium.Map, settings: MapSettings, kind: str, tile_style: dict, min_zoom: int = 0) -> dict:
    """The spec of a zone layer drawn from vector tiles (``Zeren.layer`` with ``tiles``): the tile URL of
    ``kind`` (one MVT layer named by the kind), the zone-details URL the popup fetches, and the style rules
    (``tile_style``: ``colours`` {planner id: fill} and ``noLead`` for the coverage page, or ``byCode``
    {code: index into ``styles``} with every other zone hidden, for the planner page)."""
    use_vector_tiles(m)
    return {"tiles": {"url": settings.zone_tiles_url.replace("{kind}", kind), "layer": kind, "minZoom": min_zoom,
                      "details": settings.zone_details_url.replace("{kind}", kind),
                      "kindLabel": _kind_label(kind), "noLeadText": NO_LEAD_TEXT},
            "tileStyle": tile_style}


TILED_NOTE = ("单元较多，按矢量瓦片显示，点击单元查看责任规划师 / many units: drawn from vector tiles, click a unit for "
              "its planner")
TILED_COVERAGE_NOTE = ("单元间缝隙见缺口图，重叠见 /coverage/overlaps / slivers between units: the gaps page; overlaps: "
                       "/coverage/overlaps")


def add_zeren_layer(m: folium.Map, name: str, data: dict, *, style: dict, tooltip=None, popup=None,
           interactive: bool = True, show: bool = True, control: bool = True, layer_id: str | None = None,
           extra: dict | None = None) -> ZerenLayer:
    spec = {"style": style, "styleKey": "_s", "interactive": interactive, **data}
    if tooltip:
        spec["tooltip"] = tooltip
    if popup:
        spec["popup"] = popup
    if layer_id:
        spec["id"] = layer_id
    if extra:
        spec.update(extra)
    layer = ZerenLayer(spec, name, show=show, control=control)
    layer.add_to(m)
    return layer


def _territories(prepared: _Prepared, planner_ids: list) -> np.ndarray:
    """Union of each planner's display polygons (their territory outline)."""
    pids = np.asarray(planner_ids, dtype=object)
    geoms = prepared.display
    out = []
    for pid in sorted({p for p in pids if p is not None}):
        group = geoms[pids == pid]
        try:
            merged = shapely.coverage_union_all(group) if prepared.coverage else shapely.union_all(group)
        except shapely.errors.GEOSException:
            merged = shapely.union_all(group)
        out.append(merged)
    return np.asarray(out, dtype=object)


def _pick_kind(zones: gpd.GeoDataFrame, kind: str | None) -> str:
    if kind is not None:
        return kind
    if "kind" not in zones.columns or len(zones) == 0:
        return "zone"
    kinds = [k for k in pd.unique(zones["kind"].astype(str)) if k not in OVERLAY_KINDS]
    for k in BASE_KINDS:  # most specific base kind present
        if k in kinds:
            return k
    return kinds[0] if kinds else str(zones["kind"].iloc[0])


def _overlay_layers(m, overlays: gpd.GeoDataFrame, lead_of: dict, book: PlannerBook, settings) -> list[dict]:
    """One outlined layer per overlay kind; returns legend items."""
    items = []
    if overlays is None or len(overlays) == 0:
        return items
    kinds = overlays["kind"].astype(str).to_numpy() if "kind" in overlays else np.full(len(overlays), "key_area")
    for kind in [k for k in OVERLAY_KINDS if k in set(kinds)] + sorted(set(kinds) - set(OVERLAY_KINDS)):
        part = overlays.loc[kinds == kind]
        colour = palette.OVERLAY_COLOURS.get(kind, "#555555")
        codes = [str(c) for c in _column(part, "code")]
        cols = {
            "code": codes, "label": zone_labels(part), "kind_label": [_kind_label(kind)] * len(part),
            "planner": [book.get(lead_of.get((kind, c))) for c in codes],
        }
        prep = prepare_polygons(part.geometry.values, cols, settings, kind=kind)
        style = {"fill": False, "color": colour, "weight": 3, "opacity": 0.95,
                 "dashArray": "2 6" if kind == "key_area" else ("10 4" if kind == "historic_area" else None)}
        style = {k: v for k, v in style.items() if v is not None}
        tooltip = [F_NAME, F_KIND, ["须征询规划师 / Planner to consult", "planner.name"], F_ORG, F_CONTACT]
        add_zeren_layer(m, _kind_label(kind), prep.data, style=style, tooltip=tooltip, layer_id=f"overlay-{kind}")
        items.append({"label": _kind_label(kind), "stroke": colour, "weight": 3, "dash": kind != "renewal_area",
                      "line": True})
    return items


def _district_layer(m, districts, settings) -> dict | None:
    if districts is None or len(districts) == 0:
        return None
    cols = {"code": [str(c) for c in _column(districts, "code")], "label": zone_labels(districts),
            "kind_label": [_kind_label("district")] * len(districts)}
    prep = prepare_polygons(districts.geometry.values, cols, settings, kind="district")
    add_zeren_layer(m, "区县界 / district boundaries", prep.data, style=STYLE_DISTRICT, tooltip=[F_NAME, F_CODE],
           layer_id="districts")
    return {"label": "区县界 / district boundary", "stroke": palette.DISTRICT_OUTLINE, "weight": 2, "dash": True,
            "line": True}


def _frame_codes_text(frame: pd.DataFrame, i: int) -> dict:
    """Code-like columns of a gap/overlap row as tooltip text."""
    out = {}
    for col in frame.columns:
        if col == "geometry" or "code" not in col:
            continue
        v = frame[col].iloc[i]
        if isinstance(v, (list, tuple, np.ndarray)):
            v = ", ".join(map(str, v))
        out[col] = _text(v)
    return out


def _gap_rows(gaps: gpd.GeoDataFrame) -> tuple[np.ndarray, dict, list]:
    areas = _areas_m2(gaps)
    reasons = [_text(r) for r in _column(gaps, "reason")]
    cols = {
        "label": [bilingual(*GAP_REASON_LABELS[r]) if r in GAP_REASON_LABELS else ("缺口 / gap" if r is None else r)
                  for r in reasons],
        "area": [format_area(a) for a in areas],
        "width": [None if _missing(w) else f"{float(w):,.1f} m" for w in _column(gaps, "width_m")],
        "districts": [_text(v) for v in _column(gaps, "district_codes")],
        "units": [_text(v) for v in _column(gaps, "unit_codes")],
    }
    tooltip = [["缺口 / Gap", "label"], F_AREA, ["平均宽度 / Mean width", "width"],
               ["区县 / Districts", "districts"], ["单元 / Units", "units"]]
    return gaps.geometry.values, cols, tooltip


def _without_unit_gaps(gaps: gpd.GeoDataFrame | None, units_drawn: bool) -> gpd.GeoDataFrame | None:
    """Gap pieces that are whole units without a planner are drawn as those units (hatched), not twice."""
    if gaps is None or len(gaps) == 0 or not units_drawn or "reason" not in gaps.columns:
        return gaps
    return gaps.loc[gaps["reason"].astype(str) != "unit_without_planner"].reset_index(drop=True)


# --- coverage map -----------------------------------------------------------------------------------

def coverage_map(zones: gpd.GeoDataFrame, leads: pd.DataFrame, planners: pd.DataFrame, *,
                 kind: str | None = None, overlays: gpd.GeoDataFrame | None = None,
                 gaps: gpd.GeoDataFrame | None = None, overlaps: gpd.GeoDataFrame | None = None,
                 districts: gpd.GeoDataFrame | None = None, title: str | None = None,
                 settings: MapSettings = MapSettings()) -> folium.Map:
    """Zones of one kind coloured by their lead planner, units without a planner hatched red.

    ``zones``: zones frame (layers/CONTRACT.md); the layer drawn is ``kind`` (default: the most specific base
    kind present). ``leads``: DataFrame[zone_kind, zone_code, planner_id] (``geo.appointments.leads_as_of``).
    ``overlays``: overlay zones (historic_area, key_area, ...) drawn as outlines; default: the overlay
    rows of ``zones``. ``gaps`` / ``overlaps``: frames from ``geo.coverage`` (geometry, optional
    ``area_m2``, ``reason``, code columns), red / orange. ``districts``: boundaries drawn on top.
    Colouring: see :mod:`maps.palette` (hash-preferred colour per planner, greedy over the planners'
    adjacency, plus a strong outline of each planner's territory).
    """
    zones = as_wgs84_frame(zones, "zones")
    kind = _pick_kind(zones, kind)
    if overlays is None and "kind" in zones.columns:
        overlays = zones.loc[zones["kind"].astype(str).isin(OVERLAY_KINDS)]
    overlays = as_wgs84_frame(overlays, "overlays") if overlays is not None and len(overlays) else None
    base = zones.loc[zones["kind"].astype(str) == kind].reset_index(drop=True) if "kind" in zones else zones
    gaps = as_wgs84_frame(gaps, "gaps") if gaps is not None and len(gaps) else None
    overlaps = as_wgs84_frame(overlaps, "overlaps") if overlaps is not None and len(overlaps) else None
    districts = as_wgs84_frame(districts, "districts") if districts is not None and len(districts) else None

    geoms = np.asarray(base.geometry.values, dtype=object)
    if tiled_layer(settings, int((~shapely.is_missing(geoms)).sum())):
        return _tiled_coverage_map(base, geoms, kind, leads, planners, overlays, districts, title, settings)
    book = PlannerBook(planners)
    lead_of = _lead_lookup(leads)
    codes = [str(c) for c in _column(base, "code")]
    pids = [lead_of.get((kind, c)) for c in codes]
    assigned = np.array([p is not None for p in pids], dtype=bool)
    pairs = palette.adjacency_pairs(geoms[assigned], np.asarray(pids, dtype=object)[assigned])
    colours = palette.planner_colours({p for p in pids if p is not None}, pairs)
    n_unassigned = int((~assigned).sum())

    cols = {
        "code": codes,
        "name": [_shown(v) for v in _column(base, "name")],
        "name_en": [_shown(v) for v in _column(base, "name_en")],
        "kind_label": [_kind_label(kind)] * len(base),
        "planner": [book.get(p) for p in pids],
        "status": [None if p is not None else NO_LEAD_TEXT for p in pids],
        "_s": [{"fillColor": colours[p]} if p is not None else STYLE_NO_PLANNER for p in pids],
    }
    prep = prepare_polygons(geoms, cols, settings, kind=kind, allow_url=True, fit_budget=True,
                             url_drops=("name", "name_en"))
    bounds = bounds_of(prep.display) if prep.display is not None else None
    if bounds is None:
        b = shapely.total_bounds(geoms) if len(geoms) else None
        bounds = tuple(b) if b is not None else None
        if bounds is not None and settings.gcj02:
            shifted = to_display_crs(np.array([shapely.box(*bounds)], dtype=object), True)
            bounds = tuple(shapely.total_bounds(shifted))
    m = new_map(settings, bounds, title or bilingual("责任规划师覆盖", "responsible-planner coverage"))

    zh, en = KIND_LABELS.get(kind, (kind, kind))
    add_zeren_layer(m, f"{zh} · 责任规划师 / {en} · lead planners", prep.data, style=STYLE_ZONE,
           tooltip=[F_NAME, F_CODE, F_KIND, F_PLANNER, F_ORG, F_CONTACT, F_STATUS], layer_id="zones",
           extra={"label": ["name", "name_en"]})
    # territory outlines: only for layers small enough to inline (large ones rely on the colouring)
    territories_drawn = False
    if prep.display is not None and assigned.any() and len(prep.display) <= settings.max_inline_features:
        pids_kept = np.asarray(pids, dtype=object)[prep.keep][prep.order]
        terr = _polygonal(_territories(prep, list(pids_kept)))
        terr = terr[~shapely.is_missing(terr)]
        if len(terr):
            # unions of already simplified and shifted display polygons: packed as they are
            add_zeren_layer(m, "规划师辖区边界 / planners' territories",
                   {"packed": pack_polygons(terr, prep.data["packed"]["p"]), "columns": {}},
                   style=STYLE_TERRITORY, interactive=False, layer_id="territories")
            territories_drawn = True
    return _coverage_rest(m, settings, kind, book, colours, lead_of, n_unassigned, len(base), territories_drawn,
                          gaps, overlaps, overlays, districts, title)


def _coverage_rest(m, settings, kind, book, colours, lead_of, n_unassigned, n, territories_drawn, gaps, overlaps,
                   overlays, districts, title, notes=(), extra_items=()) -> folium.Map:
    """The coverage page after its zone layer (inline or tiled): gaps, overlaps, overlays, districts, legend."""
    zh, en = KIND_LABELS.get(kind, (kind, kind))
    items: list[dict] = []
    n_planners = len(colours)
    if 0 < n_planners <= 12:
        for pid in sorted(colours, key=lambda p: (book.get(p)["name"], p)):
            items.append({"label": book.get(pid)["name"], "fill": colours[pid], "stroke": "#222222"})
    elif n_planners:
        items.append({"label": "有责任规划师（颜色区分相邻辖区）/ has a lead planner (colours tell neighbours apart)",
                      "fill": palette.PLANNER_PALETTE[0], "stroke": "#222222"})
    items.append({"label": "无责任规划师 / no lead planner", "hatch": palette.NO_PLANNER,
                  "stroke": palette.NO_PLANNER, "dash": True})
    if territories_drawn:
        items.append({"label": "规划师辖区边界 / planner's territory", "stroke": palette.TERRITORY_OUTLINE,
                      "weight": 2, "line": True})

    gaps = _without_unit_gaps(gaps, True)
    if gaps is not None and len(gaps):
        g, gcols, gtip = _gap_rows(gaps)
        gprep = prepare_polygons(g, gcols, settings, simplify=False)
        add_zeren_layer(m, "缺口 / gaps", gprep.data, style=STYLE_GAP, tooltip=gtip, layer_id="gaps")
        items.append({"label": "缺口（无单元覆盖）/ gap (no unit)", "fill": palette.NO_PLANNER})
    if overlaps is not None and len(overlaps):
        areas = _areas_m2(overlaps)
        ocols = {"label": ["重叠 / overlap"] * len(overlaps), "area": [format_area(a) for a in areas],
                 "codes": [", ".join(v for v in _frame_codes_text(overlaps, i).values() if v) or None
                           for i in range(len(overlaps))]}
        oprep = prepare_polygons(overlaps.geometry.values, ocols, settings, simplify=False)
        add_zeren_layer(m, "重叠 / overlaps", oprep.data, style=STYLE_OVERLAP,
               tooltip=[["重叠 / Overlap", "label"], ["单元 / Units", "codes"], F_AREA], layer_id="overlaps")
        items.append({"label": "重叠 / overlap", "fill": palette.OVERLAP, "stroke": "#B84A00"})
    items += _overlay_layers(m, overlays, lead_of, book, settings)
    district_item = _district_layer(m, districts, settings)
    if district_item:
        items.append(district_item)
    items += [i for i in extra_items if i]

    legend = {
        "title": title or bilingual(f"{zh}责任规划师", f"lead planners by {en}"),
        "items": items,
        "notes": [f"共 {n} 个单元，{n_unassigned} 个无责任规划师 / {n} units, {n_unassigned} without a lead planner",
                  *notes],
    }
    return finish_map(m, legend, collapsed=False)


# Tiled pages: up to this many zones the planners are coloured over their zones' bounding-box adjacency (a
# superset of touching: about 1 s per 100,000 zones); above it, each planner keeps its hash-preferred colour
# (a national layer's random neighbourhoods need millions of pairs for a colouring seven colours cannot
# honour anyway: the hatch, the tooltip and the popup name the planner).
TILED_ADJACENCY_MAX = 50_000
# Tiled pages draw the reference map (the store's districts, inline) only up to this many boundaries, and
# the district boundaries from the district tiles above it (2,700 districts of a nation inline: 13 MB).
TILED_INLINE_BOUNDARIES = 1_000
STYLE_DISTRICT_TILES = {**STYLE_DISTRICT, "fill": False}


def _tiled_settings(settings: MapSettings) -> MapSettings:
    """A tiled page's settings: its reference map only when small (a nation's districts come from tiles)."""
    reference = settings.reference
    if reference is not None and len(reference) > TILED_INLINE_BOUNDARIES:
        return settings.replace(reference=None)
    return settings


def _boundaries(m: folium.Map, districts, settings: MapSettings, tiled: bool) -> dict | None:
    """The district boundaries of a page, from the district tiles on a tiled page with many of them, else
    inline; their legend item."""
    if not (tiled and districts is not None and len(districts) > TILED_INLINE_BOUNDARIES):
        return _district_layer(m, districts, settings)
    data = _tile_data(m, settings, "district", {})
    data["tiles"].pop("details")
    add_zeren_layer(m, "区县界 / district boundaries", data, style=STYLE_DISTRICT_TILES, interactive=False,
           layer_id="districts", extra={"pane": ["zerenBoundaryTiles", 397]})
    return {"label": "区县界 / district boundary", "stroke": palette.DISTRICT_OUTLINE, "weight": 2, "dash": True,
            "line": True}


def _isin(values: pd.Series, among: pd.Series) -> np.ndarray:
    """``values.isin(among)`` for text columns of 10^5..10^6 rows through Arrow's hash set (pandas' isin of
    Arrow strings runs a Python loop: 4 s at 600,000 rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def arrow(s: pd.Series):
        return pa.array(s, from_pandas=True).cast(pa.string())

    return pc.is_in(arrow(values), value_set=arrow(among)).to_numpy(zero_copy_only=False).astype(bool)


def _tiled_coverage_map(base, geoms, kind, leads, planners, overlays, districts, title, settings):
    """The coverage page of a layer drawn from vector tiles: vectorised (10^5..10^6 zones), nothing per zone
    goes into the page but the planners' colours."""
    book = PlannerBook(planners)
    leads = leads if leads is not None else pd.DataFrame(columns=["zone_kind", "zone_code", "planner_id"])
    mine = leads[(leads["zone_kind"].astype(str) == kind).to_numpy() & leads["planner_id"].notna().to_numpy()]
    codes = base["code"].astype(str)
    assigned = _isin(codes, mine["zone_code"].astype(str))
    if len(geoms) <= TILED_ADJACENCY_MAX:
        mine = mine.drop_duplicates("zone_code")  # the first lead of a code, as _lead_lookup
        by_code = pd.Series(mine["planner_id"].astype(str).to_numpy(), index=mine["zone_code"].astype(str).to_numpy())
        pids = codes.map(by_code)
        pairs = palette.adjacency_pairs(geoms[assigned], pids[assigned].to_numpy(dtype=object), exact=False)
        leaders = set(pd.unique(pids[assigned]))
    else:
        pairs = ()
        leaders = set(pd.unique(mine.loc[_isin(mine["zone_code"].astype(str), codes), "planner_id"].astype(str)))
    colours = palette.planner_colours(leaders, pairs)
    lead_of = _lead_lookup(leads[leads["zone_kind"].astype(str).isin(OVERLAY_KINDS).to_numpy()])
    b = shapely.total_bounds(geoms) if len(geoms) else None
    bounds = tuple(b) if b is not None and np.all(np.isfinite(b)) else None
    m = new_map(_tiled_settings(settings), bounds,
                title or bilingual("责任规划师覆盖", "responsible-planner coverage"))
    data = _tile_data(m, settings, kind, {"colours": colours, "noLead": STYLE_NO_PLANNER},
                      min_zoom=tile_min_zoom(geoms))
    zh, en = KIND_LABELS.get(kind, (kind, kind))
    add_zeren_layer(m, f"{zh} · 责任规划师 / {en} · lead planners", data, style=STYLE_ZONE,
           tooltip=[F_NAME, F_CODE, F_KIND, F_STATUS],
           popup=[F_NAME, F_CODE, F_KIND, F_PLANNER, F_ORG, F_CONTACT, F_STATUS], layer_id="zones")
    district_item = None
    if districts is not None and len(districts) > TILED_INLINE_BOUNDARIES:
        district_item, districts = _boundaries(m, districts, settings, True), None
    m = _coverage_rest(m, settings, kind, book, colours, lead_of, int((~assigned).sum()), len(base), False,
                       None, None, overlays, districts, title, notes=[TILED_NOTE, TILED_COVERAGE_NOTE],
                       extra_items=[district_item])
    return m


# --- gap map --------------------------------------------------------------------------------------

def gap_map(gaps: Any = None, units_without_planner: gpd.GeoDataFrame | None = None, *,
            districts: gpd.GeoDataFrame | None = None, context: gpd.GeoDataFrame | None = None,
            title: str | None = None, settings: MapSettings = MapSettings()) -> folium.Map:
    """Gaps and units without a planner, with their areas, over the district boundaries.

    ``gaps`` is a gaps frame (geometry, ``reason``, ``area_m2``, ``width_m``, ``district_codes``,
    ``unit_codes``) or a ``geo.coverage`` gaps result (anything with ``.gaps`` and
    ``.units_without_planner``; its totals go into the legend). ``units_without_planner``: code, name,
    district_name, area_m2, population, geometry. ``context``: other zones drawn faintly for orientation.
    """
    notes: list[str] = []
    if gaps is not None and hasattr(gaps, "gaps") and hasattr(gaps, "units_without_planner"):
        result = gaps
        gaps = result.gaps
        if units_without_planner is None:
            units_without_planner = result.units_without_planner
        try:
            notes.append(f"单元 {result.units_total} 个，有责任规划师 {result.units_with_lead} 个 / "
                         f"{result.units_total} units, {result.units_with_lead} with a lead planner")
            notes.append(f"缺口面积 {format_area(result.gap_area_m2)}，覆盖率 {result.covered_pct:.1f}% / "
                         f"gap area {format_area(result.gap_area_m2)}, {result.covered_pct:.1f}% covered")
        except (AttributeError, TypeError, ValueError):
            pass
    units = as_wgs84_frame(units_without_planner, "units_without_planner") \
        if units_without_planner is not None and len(units_without_planner) else None
    gaps = as_wgs84_frame(gaps, "gaps") if gaps is not None and len(gaps) else None
    gaps = _without_unit_gaps(gaps, units is not None)
    districts = as_wgs84_frame(districts, "districts") if districts is not None and len(districts) else None
    context = as_wgs84_frame(context, "context") if context is not None and len(context) else None

    parts = [f.geometry.values for f in (units, gaps, districts, context) if f is not None]
    raw_bounds = bounds_of(*parts)
    bounds = raw_bounds
    if raw_bounds is not None and settings.gcj02:
        bounds = tuple(shapely.total_bounds(to_display_crs(np.array([shapely.box(*raw_bounds)]), True)))
    tiled = context is not None and tiled_layer(settings, len(context))
    units_tiled = False
    m = new_map(_tiled_settings(settings) if tiled else settings, bounds,
                 title or bilingual("责任规划师缺口", "planner coverage gaps"))
    items: list[dict] = []

    if tiled:
        # the units from the tiles: grey with a lead, hatched red without one (the inline layer of the units
        # without a planner, with their areas and populations, stays when it is small enough)
        geoms = np.asarray(context.geometry.values, dtype=object)
        data = _tile_data(m, settings, _pick_kind(context, None), {"lead": STYLE_CONTEXT, "noLead": STYLE_NO_PLANNER},
                          min_zoom=tile_min_zoom(geoms))
        add_zeren_layer(m, "单元 / units", data, style=STYLE_CONTEXT, tooltip=[F_NAME, F_CODE, F_KIND, F_STATUS],
               popup=[F_NAME, F_CODE, F_KIND, F_PLANNER, F_ORG, F_CONTACT, F_STATUS], layer_id="zones")
        items.append({"label": "有责任规划师的单元 / unit with a planner", "fill": "#DDDDDD", "stroke": "#AAAAAA"})
        notes.append(TILED_NOTE)
        if units is not None and len(units) > settings.max_inline_features:
            items.append({"label": "无责任规划师的单元 / unit without a planner", "hatch": palette.NO_PLANNER,
                          "stroke": palette.NO_PLANNER, "dash": True})
            notes.insert(0, f"无责任规划师单元 {len(units)} 个 / {len(units)} units without a planner")
            units, units_tiled = None, True
    elif context is not None:
        ccols = {"code": [str(c) for c in _column(context, "code")], "label": zone_labels(context)}
        cprep = prepare_polygons(context.geometry.values, ccols, settings)
        add_zeren_layer(m, "其他单元 / other units", cprep.data, style=STYLE_CONTEXT, tooltip=[F_NAME, F_CODE],
               layer_id="context")
        items.append({"label": "有责任规划师的单元 / unit with a planner", "fill": "#DDDDDD", "stroke": "#AAAAAA"})
    if units is not None:
        areas = _areas_m2(units)
        ucols = {
            "code": [str(c) for c in _column(units, "code")],
            "label": zone_labels(units),
            "district": [_shown(v) for v in _column(units, "district_name")],
            "area": [format_area(a) for a in areas],
            "population": [None if _missing(p) else f"{int(p):,}" for p in _column(units, "population")],
            "status": [NO_LEAD_TEXT] * len(units),
        }
        uprep = prepare_polygons(units.geometry.values, ucols, settings)
        add_zeren_layer(m, "无责任规划师的单元 / units without a planner", uprep.data, style=STYLE_NO_PLANNER,
               tooltip=[F_NAME, F_CODE, ["区县 / District", "district"], F_AREA,
                        ["人口 / Population", "population"], F_STATUS], layer_id="units-without-planner")
        total = float(np.nansum(areas))
        items.append({"label": "无责任规划师的单元 / unit without a planner", "hatch": palette.NO_PLANNER,
                      "stroke": palette.NO_PLANNER, "dash": True})
        notes.insert(0, f"无责任规划师单元 {len(units)} 个，共 {format_area(total)} / "
                        f"{len(units)} units without a planner, {format_area(total)}")
    if gaps is not None and len(gaps):
        g, gcols, gtip = _gap_rows(gaps)
        gprep = prepare_polygons(g, gcols, settings, simplify=False)
        add_zeren_layer(m, "缺口 / gaps", gprep.data, style=STYLE_GAP, tooltip=gtip, layer_id="gaps")
        total = float(np.nansum(_areas_m2(gaps)))
        items.append({"label": "缺口（无单元覆盖）/ gap (no unit)", "fill": palette.NO_PLANNER})
        notes.append(f"缺口 {len(gaps)} 处，共 {format_area(total)} / {len(gaps)} gaps, {format_area(total)}")
    district_item = _boundaries(m, districts, settings, tiled)
    if district_item:
        items.append(district_item)
    if units is None and not units_tiled and (gaps is None or len(gaps) == 0):
        notes.insert(0, "没有缺口 / no gaps")
    legend = {"title": title or bilingual("覆盖缺口", "coverage gaps"), "items": items, "notes": notes}
    return finish_map(m, legend, collapsed=False)


# --- site map -------------------------------------------------------------------------------------

def _as_site(site: Any) -> shapely.Geometry:
    if isinstance(site, shapely.Geometry):
        geom = site
    elif isinstance(site, (tuple, list)) and len(site) == 2:
        geom = shapely.Point(float(site[0]), float(site[1]))
    else:
        raise TypeError("site must be a shapely geometry (WGS84) or a (lon, lat) pair")
    if geom.is_empty:
        raise ValueError("site geometry is empty")
    return geom


def _zone_key(z: Mapping | None) -> tuple[str, str] | None:
    if not z:
        return None
    return str(z.get("kind")), str(z.get("code"))


def _ref_label(z: Mapping | None) -> str:
    if not z:
        return ""
    return zone_label(z.get("name"), z.get("name_en")) or str(z.get("code"))


def _planner_line(p: dict | None) -> str:
    if not p:
        return ""
    extra = "，".join(v for v in (p.get("org"), p.get("contact")) if v)
    return f"{p['name']}（{extra}）" if extra else p["name"]


def site_map(site: Any, answer: Mapping, zones: gpd.GeoDataFrame | None = None, *,
             site_name: str | None = None, title: str | None = None,
             settings: MapSettings = MapSettings()) -> folium.Map:
    """A site, the zones it lies in, its lead planner and consultations; when uncovered, the nearest
    planner's zone and the distance (from the answer, not recomputed).

    ``site``: WGS84 shapely geometry or (lon, lat). ``answer``: one site answer of
    ``geo.answer.site_answer`` (``covered``, ``lead``, ``planners``, ``consultations``, ``zones``,
    ``nearest``). ``zones``: geometries of the zones the answer names (kind, code, name, geometry).
    """
    geom = _as_site(site)
    zones = as_wgs84_frame(zones, "zones") if zones is not None and len(zones) else None
    lead = answer.get("lead") or None
    site_name = _shown(site_name)
    lead_key = _zone_key(lead.get("zone")) if lead else None
    lead_planner = _planner_from_answer(lead.get("planner")) if lead else None
    consult: dict[tuple[str, str], list[dict]] = {}
    for c in answer.get("consultations") or []:
        key = _zone_key(c.get("zone"))
        if key:
            consult.setdefault(key, []).append(_planner_from_answer(c.get("planner")) or {})
    nearest = answer.get("nearest") or None
    nearest_key = _zone_key(nearest.get("zone")) if nearest else None
    covered = bool(answer.get("covered"))
    answer_keys = [_zone_key(z) for z in answer.get("zones") or []]

    site_display = to_display_crs(np.array([geom], dtype=object), settings.gcj02)
    drawn = []
    if zones is not None:
        keys = list(zip(zones["kind"].astype(str), zones["code"].astype(str)))
        wanted = set(answer_keys) | ({nearest_key} if nearest_key and not covered else set())
        sel = np.array([k in wanted for k in keys], dtype=bool)
        drawn = [k for k, s in zip(keys, sel) if s]
        zsel = zones.loc[sel].reset_index(drop=True)
    else:
        zsel = None
    # fit the view to what the answer is about (lead, consultation or nearest zones), not to every zone
    # drawn: a district around a small site would leave the site a speck at the edge
    focus = None
    if zsel is not None and len(zsel):
        focus_keys = {lead_key, *consult, nearest_key if not covered else None} - {None}
        in_focus = np.array([k in focus_keys for k in zip(zsel["kind"].astype(str), zsel["code"].astype(str))])
        focus = zsel.geometry.values[in_focus] if in_focus.any() else zsel.geometry.values
    bounds = bounds_of(site_display, to_display_crs(focus, settings.gcj02) if focus is not None else None)
    m = new_map(settings, bounds, title or bilingual("选址查询", "site check"))

    items: list[dict] = []
    if zsel is not None and len(zsel):
        kinds = zsel["kind"].astype(str).tolist()
        rank = [(-(BASE_KINDS.index(k)) if k in BASE_KINDS else 1) for k in kinds]
        order = np.argsort(np.array(rank), kind="stable")  # coarser first, overlays last
        zsel = zsel.iloc[order].reset_index(drop=True)
        drawn = [drawn[i] for i in order]
        roles, planners_col, styles = [], [], []
        for key in drawn:
            if key == lead_key:
                roles.append(bilingual("责任规划师所在单元", "lead planner's unit"))
                planners_col.append(lead_planner)
                styles.append({"fillColor": "#0077BB", "fillOpacity": 0.22, "color": "#0077BB", "weight": 3})
            elif key in consult:
                roles.append(bilingual("须征询", "consultation required"))
                ps = consult[key]
                planners_col.append({"name": "、".join(p.get("name") or "" for p in ps),
                                     "org": "、".join(p.get("org") or "" for p in ps if p.get("org")) or None,
                                     "contact": "、".join(p.get("contact") or "" for p in ps if p.get("contact")) or None})
                styles.append({"fill": False, "color": palette.OVERLAY_COLOURS["historic_area"], "weight": 3,
                               "dashArray": "10 4"})
            elif key == nearest_key and not covered:
                roles.append(bilingual("最近的责任规划师辖区", "nearest planner's zone"))
                planners_col.append(_planner_from_answer(nearest.get("planner")))
                styles.append({"fillColor": "#0077BB", "fillOpacity": 0.12, "color": "#0077BB", "weight": 2.5,
                               "dashArray": "6 4"})
            else:
                roles.append(None)
                planners_col.append(None)
                styles.append({"fillColor": "#BBBBBB", "fillOpacity": 0.12, "color": "#777777", "weight": 1.2})
        cols = {"code": [k[1] for k in drawn], "label": zone_labels(zsel),
                "kind_label": [_kind_label(k[0]) for k in drawn], "role": roles, "planner": planners_col,
                "_s": styles}
        prep = prepare_polygons(zsel.geometry.values, cols, settings, simplify=False)
        add_zeren_layer(m, "相关单元 / zones", prep.data, style={"weight": 1.5, "opacity": 1}, layer_id="site-zones",
               tooltip=[F_NAME, F_KIND, ["关系 / Relation", "role"], ["规划师 / Planner", "planner.name"],
                        F_ORG, F_CONTACT],
               popup=[F_NAME, F_KIND, ["关系 / Relation", "role"], ["规划师 / Planner", "planner.name"],
                      F_ORG, F_CONTACT])
        if lead_key in drawn:
            items.append({"label": "责任规划师所在单元 / lead planner's unit", "fill": "#0077BB",
                          "stroke": "#0077BB", "weight": 2})
        if any(k in consult for k in drawn):
            items.append({"label": "须征询的区域 / consultation area",
                          "stroke": palette.OVERLAY_COLOURS["historic_area"], "weight": 3, "dash": True, "line": True})
        if not covered and nearest_key in drawn:
            items.append({"label": "最近的责任规划师辖区 / nearest planner's zone", "fill": "#CFE3F1",
                          "stroke": "#0077BB", "weight": 2, "dash": True})
            zone_geom = zones.geometry.values[[k == nearest_key for k in zip(
                zones["kind"].astype(str), zones["code"].astype(str))].index(True)]
            line = shapely.shortest_line(geom, zone_geom)
            dist = format_distance(nearest.get("distance_m"))
            add_zeren_layer(m, "到最近辖区的距离 / distance to the nearest zone",
                   point_data(np.array([line], dtype=object),
                                   [{"label": _ref_label(nearest.get("zone")), "distance": dist}], settings),
                   style={"color": "#0077BB", "weight": 2.5, "dashArray": "2 6"}, layer_id="nearest-line",
                   tooltip=[["最近辖区 / Nearest zone", "label"], ["距离 / Distance", "distance"]])

    site_row = {"label": site_name or "选址 / site", "covered": bilingual("有责任规划师", "covered") if covered
                else bilingual("无责任规划师", "not covered")}
    is_point = geom.geom_type in ("Point", "MultiPoint")
    site_style = ({"radius": 8, "fillColor": "#FFD400", "fillOpacity": 1, "color": "#000000", "weight": 2}
                  if is_point else {"fillColor": "#FFD400", "fillOpacity": 0.35, "color": "#000000", "weight": 3})
    add_zeren_layer(m, "选址 / site", point_data(np.array([geom], dtype=object), [site_row], settings),
           style=site_style, tooltip=[["选址 / Site", "label"], ["责任规划师 / Lead planner", "covered"]],
           layer_id="site")
    items.insert(0, {"label": "选址 / site", "fill": "#FFD400", "stroke": "#000000", "weight": 2,
                     "circle": is_point})

    lines: list[str] = []
    if site_name:
        lines.append(site_name)
    if covered and lead:
        lines.append(f"责任规划师 / Lead planner：{_planner_line(lead_planner)}")
        lines.append(f"所在单元 / Unit：{_ref_label(lead.get('zone'))}")
    else:
        lines.append("该位置无责任规划师 / No lead planner here")
        if nearest:
            lines.append(f"最近 / Nearest：{_ref_label(nearest.get('zone'))}，"
                         f"{_planner_line(_planner_from_answer(nearest.get('planner')))}，"
                         f"距离 / distance {format_distance(nearest.get('distance_m'))}")
    for c in answer.get("consultations") or []:
        p = _planner_from_answer(c.get("planner"))
        lines.append(f"须征询 / Consult：{_planner_line(p)} — {_ref_label(c.get('zone'))}")
    legend = {"title": title or bilingual("选址查询", "site check"), "lines": lines, "items": items}
    return finish_map(m, legend, collapsed=True)


# --- planner map ------------------------------------------------------------------------------------

def planner_map(planner: Mapping | pd.Series, zones: gpd.GeoDataFrame | None,
                projects: gpd.GeoDataFrame | None = None, *, title: str | None = None,
                settings: MapSettings = MapSettings()) -> folium.Map:
    """One planner's zones and projects, the projects coloured by status (调研/评估/咨询/实施/反馈).

    ``planner``: a planners row (id, name, organization, public_contact). ``zones``: the zones they serve
    (an optional ``role`` column: lead/member/consultant). ``projects``: projects frame; only the ones the
    planner leads or is consulted on are drawn when those columns are present.
    """
    if isinstance(planner, pd.Series):
        planner = planner.to_dict()
    pid = str(planner.get("id"))
    me = {"name": _shown(planner.get("name")) or _shown(pid), "org": _shown(planner.get("organization")),
          "contact": _shown(planner.get("public_contact"))}
    zones = as_wgs84_frame(zones, "zones") if zones is not None and len(zones) else None
    projects = as_wgs84_frame(projects, "projects") if projects is not None and len(projects) else None
    if projects is not None:
        mine = np.zeros(len(projects), dtype=bool)
        has_cols = False
        if "lead_planner_id" in projects.columns:
            has_cols = True
            mine |= projects["lead_planner_id"].astype(str).to_numpy() == pid
        if "consultation_planner_ids" in projects.columns:
            has_cols = True
            mine |= np.array([pid in [str(x) for x in (v if isinstance(v, (list, tuple, np.ndarray)) else [])]
                              for v in projects["consultation_planner_ids"]], dtype=bool)
        if has_cols:
            projects = projects.loc[mine].reset_index(drop=True)
    parts = []
    if zones is not None:
        parts.append(zones.geometry.values)
    if projects is not None and len(projects):
        parts.append(projects.geometry.values)
    raw = bounds_of(*parts)
    bounds = raw
    if raw is not None and settings.gcj02:
        bounds = tuple(shapely.total_bounds(to_display_crs(np.array([shapely.box(*raw)]), True)))
    m = new_map(settings, bounds,
                title or bilingual(f"{me['name']}的辖区与项目", f"zones and projects of {me['name']}"))

    items: list[dict] = []
    if zones is not None:
        roles = [(_text(r) or "lead") for r in _column(zones, "role", "lead")]
        kinds = [str(k) for k in _column(zones, "kind", "zone")]
        styles = [STYLE_PLANNER_LEAD if r == "lead" else STYLE_PLANNER_OTHER for r in roles]
        cols = {"code": [str(c) for c in _column(zones, "code")], "label": zone_labels(zones),
                "kind_label": [_kind_label(k) for k in kinds],
                "role": [bilingual(*ROLE_LABELS.get(r, (r, r))) for r in roles], "_s": styles}
        if tiled_layer(settings, len(zones)):
            # from the tiles of each kind: this planner's zones styled by role, every other zone not drawn
            codes = cols["code"]
            for kind in sorted(set(kinds), key=lambda k: -BASE_KINDS.index(k) if k in BASE_KINDS else 1):
                mine = [i for i, k in enumerate(kinds) if k == kind]
                data = _tile_data(m, settings, kind, {
                    "byCode": {codes[i]: 0 if roles[i] == "lead" else 1 for i in mine},
                    "styles": [STYLE_PLANNER_LEAD, STYLE_PLANNER_OTHER],
                    "roles": {codes[i]: cols["role"][i] for i in mine}},
                    min_zoom=0)
                data["tiles"].pop("details")
                add_zeren_layer(m, f"辖区 / zones · {_kind_label(kind)}", data, style={"opacity": 1},
                       layer_id=f"planner-zones-{kind}", tooltip=[F_NAME, F_CODE, F_KIND, ["角色 / Role", "role"]],
                       popup=[F_NAME, F_CODE, F_KIND, ["角色 / Role", "role"]])
        else:
            # zones of several kinds nest; simplify each kind as its own coverage
            prep = prepare_polygons(zones.geometry.values, cols, settings,
                                     simplify=len(set(kinds)) == 1)
            add_zeren_layer(m, "辖区 / zones", prep.data, style={"opacity": 1}, layer_id="planner-zones",
                   tooltip=[F_NAME, F_CODE, F_KIND, ["角色 / Role", "role"]])
        if "lead" in roles:
            items.append({"label": "责任规划师辖区 / zone as lead planner", "fill": "#BFD9EC", "stroke": "#0077BB",
                          "weight": 2})
        if any(r != "lead" for r in roles):
            items.append({"label": "参与的单元 / zone as member or consultant", "fill": "#E1F2FA",
                          "stroke": "#0077BB", "dash": True})

    for status, (zh, en) in STATUS_LABELS.items():
        items.append({"label": bilingual(zh, en), "fill": palette.STATUS_COLOURS[status], "stroke": "#333333",
                      "circle": True})
    if projects is not None and len(projects):
        rows = []
        for rec in projects.drop(columns="geometry").to_dict("records"):
            status = _text(rec.get("status"))
            zh, en = STATUS_LABELS.get(status, (status or "", status or ""))
            role = None
            if str(rec.get("lead_planner_id")) == pid:
                role = bilingual("牵头", "lead")
            elif "consultation_planner_ids" in rec:
                role = bilingual("征询", "consulted")
            created = rec.get("created_at")
            rows.append({
                "label": _shown(rec.get("name")), "status": bilingual(zh, en) if status else None,
                "type": _shown(rec.get("type")), "scale": _shown(rec.get("scale")),
                "created": None if _missing(created) else str(pd.Timestamp(created).date()),
                "role": role,
                "_s": {"fillColor": palette.STATUS_COLOURS.get(status, "#BBBBBB")},
            })
        add_zeren_layer(m, "项目 / projects", point_data(projects.geometry.values, rows, settings),
               style={"radius": 7, "fillOpacity": 0.85, "color": "#333333", "weight": 1.5}, layer_id="projects",
               tooltip=[["项目 / Project", "label"], F_STATUS, ["类型 / Type", "type"], ["规模 / Scale", "scale"],
                        ["创建 / Created", "created"], ["角色 / Role", "role"]],
               popup=[["项目 / Project", "label"], F_STATUS, ["类型 / Type", "type"], ["规模 / Scale", "scale"],
                      ["创建 / Created", "created"], ["角色 / Role", "role"]])
    lines = [v for v in (me["org"], me["contact"]) if v]
    n_proj = 0 if projects is None else len(projects)
    legend = {"title": me["name"], "lines": lines, "items": items,
              "notes": [f"单元 {0 if zones is None else len(zones)} 个，项目 {n_proj} 个 / "
                        f"{0 if zones is None else len(zones)} zones, {n_proj} projects"]}
    return finish_map(m, legend, collapsed=True)


# --- life circles -----------------------------------------------------------------------------------

def life_circle_layer(circles: gpd.GeoDataFrame, *, score: str = "score", radius_m: float | None = None,
                      name: str = "15分钟社区生活圈 / 15-minute life circles",
                      settings: MapSettings = MapSettings(), show: bool = True) -> ZerenLayer:
    """A layer of life circles coloured by ``score`` (0..1, colour-blind-safe viridis ramp), with its
    gradient legend shown while the layer is on. Polygons are drawn as they are; points as circles of
    ``radius_m`` metres (default 1,000). Add it with :func:`maps.add_layer` to keep the layer control."""
    circles = as_wgs84_frame(circles, "circles")
    if score not in circles.columns:
        raise ValueError(f"circles frame has no {score!r} column")
    scores = circles[score].to_numpy(dtype=float, na_value=np.nan)
    colours = [palette.score_colour(s) for s in scores]
    labels = zone_labels(circles) if "name" in circles.columns else [None] * len(circles)
    codes = [str(c) for c in _column(circles, "code", "")]
    geoms = np.asarray(circles.geometry.values, dtype=object)
    # Overlapping circles are told apart by their outline: one colour per circle, different from every circle
    # it meets (the planners' palette and its greedy colouring); the score is the (light) fill.
    keys = [f"{c}#{i}" for i, c in enumerate(codes)]
    present = ~shapely.is_missing(geoms)
    outline = palette.planner_colours(keys, palette.adjacency_pairs(geoms[present],
                                                                    np.asarray(keys, dtype=object)[present]))
    cols = {
        "code": codes,
        "label": labels,
        "score": [None if not np.isfinite(s) else f"{s:.2f}" for s in scores],
        "population": [None if _missing(p) else f"{int(p):,}" for p in _column(circles, "population")],
        "_s": [{"fillColor": c or "#BBBBBB", "color": outline[k]} for c, k in zip(colours, keys)],
    }
    style = {"fillOpacity": 0.22, "weight": 2.6, "opacity": 1}
    tooltip = [F_NAME, ["评分 / Score", "score"], ["人口 / Population", "population"]]
    legend = {"title": name, "position": "bottomleft",
              "items": [{"label": "评分 / score 0 → 1 (填充 / fill)", "gradient": list(palette.SCORE_RAMP)}],
              "notes": ["0 = 差 / poor, 1 = 好 / good",
                        "每个生活圈一种边线颜色，重叠处可区分 / one outline colour per circle, so overlapping circles "
                        "can be told apart"]}
    types = shapely.get_type_id(geoms)
    if len(geoms) and np.all(np.isin(types, (3, 6))):
        # never as a coverage: circles overlap by design, and cleaning them into a tiling for display would
        # hand each overlap to one circle and hide the others' edges
        data = prepare_polygons(geoms, cols, settings, simplify=False).data
        extra = None
    else:
        rows = decode_rows(cols, len(circles))
        data = point_data(geoms, rows, settings)
        extra = {"radiusM": float(radius_m or 1000.0)}
    spec = {"id": "life-circles", "style": style, "styleKey": "_s", "tooltip": tooltip, "legend": legend, **data,
            **(extra or {}), "labels": _circle_labels(circles, geoms, labels, codes, settings)}
    return ZerenLayer(spec, name, show=show)


def _circle_labels(circles: gpd.GeoDataFrame, geoms: np.ndarray, labels: list, codes: list,
                   settings: MapSettings) -> dict:
    """Each circle's name at its centre (``centre_lon``/``centre_lat`` when known, else a point inside it)."""
    points = np.full(len(geoms), None, dtype=object)
    ok = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    points[ok] = shapely.point_on_surface(geoms[ok])
    if {"centre_lon", "centre_lat"} <= set(circles.columns):
        lon = pd.to_numeric(circles["centre_lon"], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(circles["centre_lat"], errors="coerce").to_numpy(dtype=float)
        known = np.isfinite(lon) & np.isfinite(lat)
        points[known] = shapely.points(lon[known], lat[known])
    keep = ~shapely.is_missing(points)
    rows = [{"_text": label or code} for label, code, k in zip(labels, codes, keep) if k]
    return point_data(points[keep], rows, settings)["geojson"]


def decode_rows(columns: Mapping[str, list], n: int) -> list[dict]:
    return [{k: v[i] for k, v in columns.items()} for i in range(n)]


def life_circle_map(circles: gpd.GeoDataFrame, *, score: str = "score", title: str | None = None,
                    settings: MapSettings = MapSettings()) -> folium.Map:
    """A page of life circles coloured by their health-check ``score`` (生活圈体检)."""
    circles = as_wgs84_frame(circles, "circles")
    m = new_map(settings, bounds_of(np.asarray(circles.geometry.to_numpy(), dtype=object)),
                 title or "生活圈体检 / life-circle health check")
    life_circle_layer(circles, score=score, settings=settings).add_to(m)
    return finish_map(m, None, collapsed=False)
