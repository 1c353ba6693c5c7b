"""The feedback map: residents' feedback cases as points (polygons at their centre), coloured by workflow
status, over the zones they lie in. Only public facts are drawn (category, status, zone, dates, response
time); never the text's author contact. Texts from data are written by the page runtime with textContent."""
from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from zeren.geo.kinds import FEEDBACK_STATUS_LABELS
from zeren.maps.builders import (add_zeren_layer, bilingual, bounds_of, finish_map, new_map, point_data,
                                 prepare_polygons, zone_labels)
from zeren.maps.display import as_wgs84_frame, to_display_crs
from zeren.maps.settings import MapSettings

__all__ = ["feedback_map", "FEEDBACK_STATUS_COLOURS"]

# Colour-blind-safe (Tol vibrant): open cases warm, answered cool, closed grey.
FEEDBACK_STATUS_COLOURS: dict[str, str] = {
    "received": "#CC3311",
    "accepted": "#EE7733",
    "transferred": "#EE3377",
    "replied": "#0077BB",
    "closed": "#888888",
}


def feedback_map(cases: gpd.GeoDataFrame, zones: gpd.GeoDataFrame | None = None, *, categories: dict | None = None,
                 title: str | None = None, settings: MapSettings = MapSettings()) -> Any:
    """``cases``: the feedback frame (ref, status, category, created_at, zone label columns optional:
    ``zone_name``, ``response_hours``); ``zones``: outlines to draw under them; ``categories``: code ->
    label."""
    cases = as_wgs84_frame(cases, "feedback") if cases is not None and len(cases) else None
    zones = as_wgs84_frame(zones, "zones") if zones is not None and len(zones) else None
    parts = [g.geometry.values for g in (zones, cases) if g is not None]
    raw = bounds_of(*parts)
    bounds = raw
    if raw is not None and settings.gcj02:
        bounds = tuple(shapely.total_bounds(to_display_crs(np.array([shapely.box(*raw)]), True)))
    m = new_map(settings, bounds, title or bilingual("居民留言", "resident feedback"))
    if zones is not None:
        cols = {"code": [str(c) for c in zones["code"]], "label": zone_labels(zones),
                "_s": [{} for _ in range(len(zones))]}
        prep = prepare_polygons(zones.geometry.values, cols, settings, simplify=False)
        add_zeren_layer(m, "单元 / zones", prep.data, style={"fill": True, "fillColor": "#DDDDDD", "fillOpacity": 0.15,
                                                    "color": "#555555", "weight": 1}, layer_id="feedback-zones",
               tooltip=[["单元 / Zone", "label"], ["编码 / Code", "code"]])
    items = [{"label": bilingual(*FEEDBACK_STATUS_LABELS[s]), "fill": c, "stroke": "#333333", "circle": True}
             for s, c in FEEDBACK_STATUS_COLOURS.items()]
    counts: dict[str, int] = {}
    if cases is not None:
        labels = categories or {}
        rows = []
        for rec in cases.drop(columns="geometry").to_dict("records"):
            status = str(rec.get("status"))
            counts[status] = counts.get(status, 0) + 1
            hours = rec.get("response_hours")
            rows.append({
                "ref": rec.get("ref"), "status": bilingual(*FEEDBACK_STATUS_LABELS.get(status, (status, status))),
                "category": labels.get(rec.get("category"), rec.get("category")),
                "zone": rec.get("zone_name"), "received": str(rec.get("created_at"))[:10],
                "response": None if hours is None or pd.isna(hours) else f"{hours / 24:.1f} 天 / days",
                "outside": (bilingual("辖区外，转最近单元", "outside every zone: nearest zone") if rec.get("outside")
                            else None),
                "_s": {"fillColor": FEEDBACK_STATUS_COLOURS.get(status, "#BBBBBB")},
            })
        points = shapely.point_on_surface(cases.geometry.values)
        fields = [["编号 / Ref", "ref"], ["状态 / Status", "status"], ["类别 / Category", "category"],
                  ["单元 / Zone", "zone"], ["收到 / Received", "received"], ["答复用时 / Response", "response"],
                  ["备注 / Note", "outside"]]
        add_zeren_layer(m, "留言 / feedback", point_data(points, rows, settings),
               style={"radius": 6, "fillOpacity": 0.85, "color": "#333333", "weight": 1}, layer_id="feedback",
               tooltip=fields, popup=fields)
    total = sum(counts.values())
    notes = [f"留言 {total} 条 / {total} cases: " + ", ".join(f"{FEEDBACK_STATUS_LABELS[s][0]} {n}"
                                                             for s, n in counts.items() if s in FEEDBACK_STATUS_LABELS)]
    return finish_map(m, {"title": bilingual("居民留言", "resident feedback"), "items": items, "notes": notes},
                   collapsed=True)
