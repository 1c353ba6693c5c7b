"""A reference map drawn from the store's own boundaries, for pages without a basemap.

With ``ZEREN_BASEMAP=none`` (the default: no tile requests, works on an intranet) the zones would float on a
blank background. The reference layer draws the coarsest boundaries the store has (districts) as a paper-like
land fill with grey boundaries, in a pane under every other layer, and their names in a label pane above
them, like a basemap's annotation layer. It is built offline from the data, so it needs no tile server.
"""
from __future__ import annotations

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from zeren.geo.kinds import BASE_KINDS
from zeren.maps.display import (
    DisplayCoverage,
    encode_columns,
    hilbert_order,
    pack_polygons,
    plain_geojson,
    to_display_crs,
)
from zeren.maps.elements import ZerenLayer
from zeren.maps.settings import MapSettings

REFERENCE_PANE = ("zerenReference", 350)  # under the overlay pane (400), over tiles (200)
REFERENCE_LABEL_PANE = ("zerenReferenceLabels", 450)  # names above the zones, as a basemap's annotation layer
REFERENCE_NAME = "参考底图（本库边界）/ reference map (boundaries from the store)"
STYLE_COARSE = {"fillColor": "#FFFFFF", "fillOpacity": 0.85, "color": "#8C8C8C", "weight": 1.2, "opacity": 0.9,
                "dashArray": "5 4"}  # districts: paper-white land, grey dashed boundaries
STYLE_FINE = {"fillColor": "#FFFFFF", "fillOpacity": 0.0, "color": "#B4B4B4", "weight": 0.7, "opacity": 0.9,
              "dashArray": ""}  # subdistricts: thin light lines
FINE_LABEL_ZOOM = 12  # the finer boundaries' names show from this zoom on
REFERENCE_TOLERANCE_M = 30.0  # a background: coarser than the zones' own display simplification


def reference_frame(zones: gpd.GeoDataFrame, *, max_fine: int = 5000) -> gpd.GeoDataFrame | None:
    """The boundaries a reference map shows: the coarsest base kind present among ``zones`` (districts when
    there are any), and the next finer one (subdistricts) when it has at most ``max_fine`` zones, whose
    names show only when zoomed in. Columns code, name, level (0 coarse, 1 fine), geometry; None when
    ``zones`` has no base kind."""
    if zones is None or not len(zones):
        return None
    kinds = zones["kind"].astype(str)
    present = [k for k in reversed(BASE_KINDS) if (kinds == k).any()]  # district first
    if not present:
        return None
    levels = [present[0]] + ([present[1]] if len(present) > 1 and (kinds == present[1]).sum() <= max_fine else [])
    parts = []
    for level, kind in enumerate(levels):
        frame = zones[(kinds == kind).to_numpy(dtype=bool)]
        parts.append(gpd.GeoDataFrame({"code": frame["code"].astype(str).to_numpy(object),
                                       "name": frame["name"].to_numpy(object), "level": level},
                                      geometry=gpd.GeoSeries(frame.geometry.to_numpy(), crs=zones.crs),
                                      crs=zones.crs))
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=zones.crs)


def add_reference(m: folium.Map, settings: MapSettings) -> None:
    """Draw ``settings.reference`` under the page's layers (nothing when it is unset or a basemap is set):
    the coarse level as land with dashed boundaries and every name, the fine level as thin lines over it,
    shown and hidden with it (one entry in the layer control)."""
    frame = settings.reference
    if settings.basemap != "none" or frame is None or not len(frame):
        return
    geoms = np.asarray(frame.geometry.to_numpy(), dtype=object)
    names = [None if pd.isna(n) else str(n) for n in frame["name"]] if "name" in frame else [None] * len(frame)
    level = (pd.to_numeric(frame["level"], errors="coerce").fillna(0).to_numpy(dtype=int) if "level" in frame
             else np.zeros(len(frame), dtype=int))
    ok = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms) & np.isin(shapely.get_type_id(geoms), (3, 6))
    named = ok & np.array([n is not None for n in names], dtype=bool)
    rows = [{"_text": names[i], **({"_minzoom": FINE_LABEL_ZOOM} if level[i] else {})} for i in np.flatnonzero(named)]
    points = to_display_crs(shapely.point_on_surface(geoms[named]), settings.gcj02)
    labels = plain_geojson(points, rows, settings.precision) if named.any() else None
    for lv, style, layer_id in ((0, STYLE_COARSE, "reference"), (1, STYLE_FINE, "reference-fine")):
        mine = ok & (level == lv)
        if not mine.any():
            continue
        spec = {"id": layer_id, "style": style, "interactive": False,
                "pane": [REFERENCE_PANE[0] + ("Fine" if lv else ""), REFERENCE_PANE[1] + lv * 10],
                **_packed(geoms[mine], settings)}
        if lv == 0:
            spec["labelPane"] = list(REFERENCE_LABEL_PANE)
            if labels is not None:
                spec["labels"] = labels
        else:
            spec["follows"] = "reference"
        ZerenLayer(spec, REFERENCE_NAME, control=lv == 0).add_to(m)


def _packed(geoms: np.ndarray, settings: MapSettings) -> dict:
    """One level's polygons simplified on their own (a coverage of one kind, never mixed with another level),
    in the page's packed form."""
    shapes = DisplayCoverage(geoms).simplify(REFERENCE_TOLERANCE_M)
    keep = ~shapely.is_missing(shapes) & ~shapely.is_empty(shapes)
    display = to_display_crs(shapes[keep], settings.gcj02)
    order = hilbert_order(display)
    return {"packed": pack_polygons(display[order], settings.precision),
            "columns": encode_columns({"n": [int(i) for i in np.flatnonzero(keep)[order]]}, len(order))}


__all__ = ["REFERENCE_NAME", "add_reference", "reference_frame"]
