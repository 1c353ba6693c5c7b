"""The edition-diff page: what a new boundary edition changed. Added zones in green, removed zones in red,
changed zones in amber with their old boundary dashed over the new; unchanged zones drawn faintly for
orientation. Hover a zone for its code, name, status and what changed (IoU, successors, predecessors)."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from zeren.maps.builders import (add_zeren_layer, bilingual, bounds_of, finish_map, new_map, prepare_polygons,
                                 zone_labels)
from zeren.maps.display import as_wgs84_frame, to_display_crs
from zeren.maps.settings import MapSettings

STATUS_STYLE = {
    "added": ({"fillColor": "#1B9E77", "fillOpacity": 0.45, "color": "#0F6B50", "weight": 1.5},
              "新增 / added"),
    "changed": ({"fillColor": "#E6AB02", "fillOpacity": 0.35, "color": "#8C6500", "weight": 1.5},
                "变更 / changed (new boundary)"),
    "removed": ({"fillColor": "#D95F02", "fillOpacity": 0.12, "color": "#C0392B", "weight": 2.5, "dashArray": "6 4"},
                "撤销 / removed (old boundary)"),
}
OLD_STYLE = {"fill": False, "color": "#333333", "weight": 2, "dashArray": "5 5", "opacity": 0.9}
CONTEXT_STYLE = {"fillColor": "#BBBBBB", "fillOpacity": 0.15, "color": "#FFFFFF", "weight": 0.6}
_TIP = [["名称 / Name", "label"], ["代码 / Code", "code"], ["状态 / Status", "status"], ["变化 / Change", "change"]]


def _change_text(z: dict) -> str | None:
    if z["status"] == "changed":
        if not z.get("geometry_changed"):
            return "边界未变 / same boundary" + (f"; {', '.join(z.get('attributes_changed') or [])}" if
                                                 z.get("attributes_changed") else "")
        return (f"IoU {z['iou']:.3f}, 面积 / area {z['area_change_m2'] / 1e6:+,.3f} km², "
                f"边界最大位移 / moved up to {z['hausdorff_m']:,.0f} m")
    if z["status"] == "removed":
        succ = ", ".join(f"{s['code']} {s['share']:.0%}" for s in z.get("successors", []))
        return f"并入 / went to: {succ}" if succ else "无后继 / no successor"
    if z["status"] == "added":
        pred = ", ".join(f"{s['code']} {s['share']:.0%}" for s in z.get("predecessors", []))
        return f"来自 / made of: {pred}" if pred else "新增区域 / new ground"
    return None


def edition_diff_map(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame, zones: list[dict], *, title: str | None = None,
                     subtitle: str | None = None, settings: MapSettings = MapSettings()):
    """``old``/``new``: the two states (code, name, geometry; EPSG:4326); ``zones``: the diff's per-code
    entries (code, name, status, and iou/successors/predecessors as in ``zeren editions diff --json``)."""
    old = as_wgs84_frame(old, "old") if len(old) else old
    new = as_wgs84_frame(new, "new") if len(new) else new
    status = {z["code"]: z for z in zones}
    old_geom = dict(zip(old["code"].astype(str), old.geometry)) if len(old) else {}
    new_geom = dict(zip(new["code"].astype(str), new.geometry)) if len(new) else {}
    focus = [new_geom.get(z["code"]) if z["status"] != "removed" else old_geom.get(z["code"])
             for z in zones if z["status"] != "unchanged"]
    focus = [g for g in focus if g is not None]
    bounds = bounds_of(np.array(focus, dtype=object)) if focus else bounds_of(new.geometry.values if len(new) else None)
    if bounds is not None and settings.gcj02:
        bounds = tuple(shapely.total_bounds(to_display_crs(np.array([shapely.box(*bounds)]), True)))
    m = new_map(settings, bounds, title or bilingual("边界版本变化", "boundary edition changes"))
    items: list[dict] = []
    counts = {s: 0 for s in ("added", "removed", "changed", "unchanged")}
    for z in zones:
        counts[z["status"]] += 1

    unchanged = [c for c, z in status.items() if z["status"] == "unchanged" and c in new_geom]
    if unchanged:
        frame = new[new["code"].astype(str).isin(unchanged)]
        prep = prepare_polygons(frame.geometry.values, {"code": frame["code"].astype(str).tolist(),
                                                         "label": zone_labels(frame),
                                                         "status": ["未变 / unchanged"] * len(frame)}, settings)
        add_zeren_layer(m, "未变 / unchanged", prep.data, style=CONTEXT_STYLE, tooltip=_TIP[:3], layer_id="unchanged")
        items.append({"label": "未变 / unchanged", "fill": "#DDDDDD", "stroke": "#AAAAAA"})
    for name in ("added", "changed", "removed"):  # removed last: their dashed outlines over what replaced them
        style, label = STATUS_STYLE[name]
        entries = [z for z in zones if z["status"] == name]
        source = old_geom if name == "removed" else new_geom
        entries = [z for z in entries if z["code"] in source]
        if not entries:
            continue
        geoms = np.array([source[z["code"]] for z in entries], dtype=object)
        frame = pd.DataFrame({"name": [z["name"] for z in entries]})
        cols = {"code": [z["code"] for z in entries], "label": zone_labels(frame),
                "status": [label] * len(entries), "change": [_change_text(z) for z in entries]}
        prep = prepare_polygons(geoms, cols, settings, simplify=False)
        add_zeren_layer(m, label, prep.data, style=style, tooltip=_TIP, layer_id=f"diff-{name}")
        items.append({"label": label, "fill": style["fillColor"], "stroke": style["color"],
                      "dash": "dashArray" in style})
    changed = [z["code"] for z in zones if z["status"] == "changed" and z.get("geometry_changed")
               and z["code"] in old_geom]
    if changed:
        geoms = np.array([old_geom[c] for c in changed], dtype=object)
        frame = pd.DataFrame({"name": [status[c]["name"] for c in changed]})
        prep = prepare_polygons(geoms, {"code": changed, "label": zone_labels(frame),
                                         "status": ["旧边界 / old boundary"] * len(changed)}, settings,
                                 simplify=False)
        add_zeren_layer(m, "旧边界 / old boundary (dashed)", prep.data, style=OLD_STYLE, tooltip=_TIP[:3],
               layer_id="diff-old-boundary", interactive=False)
        items.append({"label": "旧边界 / old boundary", "stroke": "#333333", "dash": True})
    notes = [f"新增 {counts['added']}，撤销 {counts['removed']}，变更 {counts['changed']}，未变 {counts['unchanged']} / "
             f"added {counts['added']}, removed {counts['removed']}, changed {counts['changed']}, "
             f"unchanged {counts['unchanged']}"]
    if subtitle:
        notes.insert(0, subtitle)
    legend = {"title": title or bilingual("边界版本变化", "boundary edition changes"), "items": items, "notes": notes}
    return finish_map(m, legend, collapsed=False)


__all__ = ["edition_diff_map"]
