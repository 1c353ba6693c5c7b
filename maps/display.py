"""Geometry and properties made small for drawing in a browser.

* :func:`simplify_for_display` simplifies a layer in a metric CRS. A layer that is a valid coverage
  (zones of one kind that tile the city) goes through ``shapely.coverage_simplify``, which simplifies
  every shared edge once, so neighbours stay edge-matched: no gaps, no slivers. A layer whose zones
  overlap (bad data that the coverage map is there to show) is simplified feature by feature.
* :func:`pack_polygons` writes polygons as quantised integers delta-coded along the whole layer
  (like TopoJSON's quantisation without arcs), decoded by ``Zeren.decodePolygons`` in the page.
* :func:`encode_columns` writes properties column-wise, dictionary-coding repeated values.
* :func:`script_json` dumps JSON that is safe inside a ``<script>`` element.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Iterable, Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from zeren.geo.crs import geometries_from_wgs84, metric_crs

__all__ = [
    "as_wgs84_frame",
    "DisplayCoverage",
    "simplify_for_display",
    "to_display_crs",
    "pack_polygons",
    "unpack_polygons",
    "encode_columns",
    "decode_columns",
    "plain_geojson",
    "zones_geojson",
    "script_json",
    "hilbert_order",
]

POLYGONAL = ("Polygon", "MultiPolygon")


# --- frames ---------------------------------------------------------------------------------------

def as_wgs84_frame(frame: gpd.GeoDataFrame | gpd.GeoSeries | None, what: str = "frame") -> gpd.GeoDataFrame:
    """The frame in EPSG:4326 with a clean RangeIndex, rows without geometry dropped."""
    if frame is None:
        return gpd.GeoDataFrame({"geometry": gpd.GeoSeries([], crs=4326)}, geometry="geometry", crs=4326)
    if isinstance(frame, gpd.GeoSeries):
        frame = gpd.GeoDataFrame(geometry=frame)
    if not isinstance(frame, gpd.GeoDataFrame):
        raise TypeError(f"{what} must be a GeoDataFrame, got {type(frame).__name__}")
    if frame.crs is None:
        frame = frame.set_crs(4326)
    elif frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    geoms = frame.geometry.values
    keep = ~(shapely.is_missing(np.asarray(geoms)) | shapely.is_empty(np.asarray(geoms)))
    return frame.loc[keep].reset_index(drop=True)


def hilbert_order(geoms: np.ndarray) -> np.ndarray:
    """Row order along a Hilbert curve (keeps the delta coding of neighbours small)."""
    if len(geoms) < 2:
        return np.arange(len(geoms))
    series = gpd.GeoSeries(geoms, crs=4326)
    return np.argsort(series.hilbert_distance().to_numpy(), kind="stable")


# --- simplification -------------------------------------------------------------------------------

def _metric_transformers(geoms: np.ndarray) -> tuple[Transformer, Transformer]:
    bounds = shapely.total_bounds(geoms)
    crs = metric_crs(bounds)
    fwd = Transformer.from_crs(4326, crs, always_xy=True)
    inv = Transformer.from_crs(crs, 4326, always_xy=True)
    return fwd, inv


def _transform(geoms: np.ndarray, transformer: Transformer) -> np.ndarray:
    def on_coords(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, on_coords)


class DisplayCoverage:
    """A layer in a metric CRS, made ready for repeated display simplification.

    ``coverage=None`` decides from the data: a valid coverage is simplified with
    ``shapely.coverage_simplify``; polygons that almost tile (vertices not shared along common edges,
    hairline overlaps or slivers, as digitised boundaries usually are) are first made a clean coverage
    with ``shapely.coverage_clean`` (GEOS >= 3.14; gaps narrower than ``sliver_width_m`` closed, overlaps
    given to one neighbour: for display only, real gaps/overlaps are drawn from ``geo.coverage``'s
    results). ``False`` simplifies each geometry on its own.
    """

    def __init__(self, geoms, *, coverage: bool | None = None, sliver_width_m: float = 0.05):
        self.geoms = np.asarray(geoms, dtype=object)
        self.polygonal = np.isin(shapely.get_type_id(self.geoms), (3, 6))
        self.mode = "none"
        self.metric = None
        if len(self.geoms) == 0:
            return
        self.fwd, self.inv = _metric_transformers(self.geoms)
        self.metric = _transform(self.geoms, self.fwd)
        poly = self.metric[self.polygonal]
        if coverage is False or len(poly) == 0:
            self.mode = "each"
        elif coverage is True or shapely.coverage_is_valid(poly):
            self.mode = "coverage"
        elif hasattr(shapely, "coverage_clean"):
            cleaned = shapely.coverage_clean(poly, gap_width=sliver_width_m)
            lost = shapely.is_missing(cleaned) | shapely.is_empty(cleaned)
            cleaned[lost] = poly[lost]  # a zone swallowed whole by a neighbour keeps its own shape
            self.metric = self.metric.copy()
            self.metric[self.polygonal] = cleaned
            self.mode = "cleaned" if not lost.any() else "each"
        else:  # pragma: no cover - older GEOS
            self.mode = "each"

    @property
    def is_coverage(self) -> bool:
        return self.mode in ("coverage", "cleaned")

    def simplify(self, tolerance_m: float) -> np.ndarray:
        """WGS84 geometries simplified to ``tolerance_m`` metres (neighbours edge-matched on a coverage)."""
        if self.metric is None:
            return self.geoms
        out = self.metric.copy()
        poly = self.metric[self.polygonal]
        if len(poly) and tolerance_m > 0:
            if self.is_coverage:
                out[self.polygonal] = shapely.coverage_simplify(poly, tolerance_m, simplify_boundary=True)
            else:
                out[self.polygonal] = shapely.simplify(poly, tolerance_m, preserve_topology=True)
        other = ~self.polygonal & ~shapely.is_missing(self.metric)
        if other.any() and tolerance_m > 0:
            out[other] = shapely.simplify(self.metric[other], tolerance_m, preserve_topology=True)
        if tolerance_m <= 0 and self.mode != "cleaned":
            return self.geoms
        return _transform(out, self.inv)


def simplify_for_display(geoms, tolerance_m: float = 5.0, *, coverage: bool | None = None) -> np.ndarray:
    """WGS84 geometries simplified to ``tolerance_m`` metres, neighbours kept edge-matched (see
    :class:`DisplayCoverage`)."""
    geoms = np.asarray(geoms, dtype=object)
    if tolerance_m <= 0 or len(geoms) == 0:
        return geoms
    return DisplayCoverage(geoms, coverage=coverage).simplify(tolerance_m)


def to_display_crs(geoms, gcj02: bool) -> np.ndarray:
    """WGS84 geometries as drawn: shifted to GCJ-02 for AMap/Tencent tiles, else unchanged."""
    geoms = np.asarray(geoms, dtype=object)
    if not gcj02 or len(geoms) == 0:
        return geoms
    return np.asarray(geometries_from_wgs84(geoms, "gcj02"), dtype=object)


# --- packed polygons ------------------------------------------------------------------------------

def pack_polygons(geoms, precision: int = 6) -> dict:
    """Polygons/MultiPolygons as ``{"p", "c", "r", "g", "f"}``.

    ``c`` holds the coordinates quantised to ``10**-p`` degrees as (dx, dy) deltas running through the
    whole layer (each ring drops its closing point), ``r`` the points per ring, ``g`` the rings per
    polygon, ``f`` the polygons per feature. Shared vertices quantise identically, so neighbours stay
    edge-matched after rounding.
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return {"p": int(precision), "c": [], "r": [], "g": [], "f": []}
    types = shapely.get_type_id(geoms)
    if not np.all(np.isin(types, (3, 6))):
        raise ValueError("pack_polygons takes Polygon/MultiPolygon geometries only")
    geoms = shapely.force_2d(geoms)
    _, coords, offsets = shapely.to_ragged_array(geoms)
    if len(offsets) == 2:  # all Polygons: one part per feature
        ring_off, part_off = offsets
        geom_off = np.arange(len(part_off))
    else:
        ring_off, part_off, geom_off = offsets
    ring_len = np.diff(ring_off)
    # drop each ring's closing point
    keep = np.ones(len(coords), dtype=bool)
    keep[ring_off[1:] - 1] = False
    q = np.round(coords[keep] * 10.0 ** precision).astype(np.int64)
    deltas = np.diff(q, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    return {
        "p": int(precision),
        "c": deltas.ravel().tolist(),
        "r": (ring_len - 1).tolist(),
        "g": np.diff(part_off).tolist(),
        "f": np.diff(geom_off).tolist(),
    }


def unpack_polygons(packed: Mapping) -> list:
    """The inverse of :func:`pack_polygons` (shapely Polygons/MultiPolygons), for tests and checks."""
    scale = 10.0 ** packed["p"]
    xy = np.cumsum(np.asarray(packed["c"], dtype=np.int64).reshape(-1, 2), axis=0) / scale
    out, ci, ri, gi = [], 0, 0, 0
    rings_n, parts_n = packed["r"], packed["g"]
    for nparts in packed["f"]:
        polys = []
        for _ in range(nparts):
            rings = []
            for _ in range(parts_n[gi]):
                n = rings_n[ri]
                ring = xy[ci:ci + n]
                rings.append(np.vstack([ring, ring[:1]]))
                ci += n
                ri += 1
            gi += 1
            polys.append(shapely.Polygon(rings[0], rings[1:]))
        out.append(polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys))
    return out


# --- properties -----------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """A JSON-able Python value (None for missing, floats rounded)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return None if not math.isfinite(f) else round(f, 6)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value if isinstance(value, (int, str)) else str(value)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def encode_columns(columns: Mapping[str, Iterable], n: int) -> dict:
    """Columns for ``Zeren.rows``: a plain list, ``{"v": value}`` when constant, or ``{"d": values,
    "i": indexes}`` (dictionary-coded, ``-1`` = missing) when values repeat."""
    out: dict[str, Any] = {}
    for name, values in columns.items():
        vals = [_plain(v) for v in values]
        if len(vals) != n:
            raise ValueError(f"column {name!r} has {len(vals)} values for {n} features")
        if n == 0:
            out[name] = []
            continue
        keys = [_key(v) for v in vals]
        distinct: dict[str, int] = {}
        for k in keys:
            distinct.setdefault(k, len(distinct))
        if len(distinct) == 1:
            out[name] = {"v": vals[0]}
        elif len(distinct) <= max(1, n // 2):
            values_by_index: list[Any] = [None] * len(distinct)
            for k, v in zip(keys, vals):
                values_by_index[distinct[k]] = v
            out[name] = {"d": values_by_index, "i": [distinct[k] for k in keys]}
        else:
            out[name] = vals
    return out


def decode_columns(columns: Mapping[str, Any], n: int) -> list[dict]:
    """The inverse of :func:`encode_columns` (rows as dicts), for tests and checks."""
    rows: list[dict] = [{} for _ in range(n)]
    for name, col in columns.items():
        if isinstance(col, list):
            for row, v in zip(rows, col):
                row[name] = v
        elif "v" in col:
            for row in rows:
                row[name] = col["v"]
        else:
            for row, i in zip(rows, col["i"]):
                row[name] = None if i < 0 else col["d"][i]
    return rows


# --- GeoJSON --------------------------------------------------------------------------------------

def _round_coords(geoms: np.ndarray, precision: int) -> np.ndarray:
    return shapely.transform(geoms, lambda xy: np.round(xy, precision))


def plain_geojson(geoms, properties: list[dict] | None = None, precision: int = 6) -> dict:
    """A FeatureCollection of (few) geometries of any type, coordinates rounded to ``precision``."""
    geoms = _round_coords(np.asarray(geoms, dtype=object), precision)
    props = properties if properties is not None else [{} for _ in range(len(geoms))]
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {k: _plain(v) for k, v in p.items()},
             "geometry": json.loads(shapely.to_geojson(g))}
            for g, p in zip(geoms, props)
        ],
    }


def zones_geojson(zones: gpd.GeoDataFrame, settings=None, *, simplify: bool = True) -> dict:
    """The FeatureCollection an API should serve at ``MapSettings.geojson_url`` for large layers:
    WGS84 (the page shifts to GCJ-02 itself when needed), display-simplified, properties limited to
    ``kind``, ``code``, ``name`` and ``name_en``."""
    from zeren.maps.settings import MapSettings

    settings = settings or MapSettings()
    zones = as_wgs84_frame(zones, "zones")
    geoms = zones.geometry.values
    if simplify:
        kinds = zones["kind"].astype(str).to_numpy() if "kind" in zones else np.zeros(len(zones), dtype=object)
        geoms = np.asarray(geoms, dtype=object).copy()
        for kind in pd.unique(kinds):
            sel = kinds == kind
            geoms[sel] = simplify_for_display(geoms[sel], settings.simplify_tolerance_m)
    props = []
    for row in zones.drop(columns="geometry").to_dict("records"):
        props.append({k: row.get(k) for k in ("kind", "code", "name", "name_en")})
    return plain_geojson(geoms, props, settings.precision)


# --- script-safe JSON ------------------------------------------------------------------------------

_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


# Bidirectional-text controls. A name holding U+202E (RIGHT-TO-LEFT OVERRIDE) would otherwise reverse the text
# shown after it (the organisation, the contact) in legends and tooltips.
FSI, PDI = "\u2068", "\u2069"
_ISOLATE_OPENERS = ("\u2066", "\u2067", "\u2068")


# What can change the order of the text around it: direction controls and right-to-left letters
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefe"
                   "\U00010800-\U00010fff\U0001e800-\U0001efff]")


def isolate(text: Any) -> Any:
    """User text that holds direction controls or right-to-left letters, wrapped as a bidi isolate (FSI ...
    PDI, what the browser's ``<bdi>`` does), so it cannot reorder the text shown after it; other text (all of
    a Chinese or English name) is returned as it is. A PDI in the text that closes nothing of its own is
    dropped (it would close our isolate early), and isolates it opens are closed; the closing PDI also ends
    any embedding or override (U+202A-U+202E) opened inside. None and non-text values are returned as is."""
    if not isinstance(text, str) or not _BIDI.search(text):
        return text
    out, depth = [], 0
    for c in text:
        if c in _ISOLATE_OPENERS:
            depth += 1
        elif c == PDI:
            if not depth:
                continue
            depth -= 1
        out.append(c)
    return FSI + "".join(out) + PDI * depth + PDI


def script_json(value: Any) -> str:
    """Compact JSON that cannot close a ``<script>`` element nor open markup: ``<``, ``>`` and ``&``
    are written as ``\\u`` escapes (only strings can hold them, so the JSON means the same)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch, esc in _SCRIPT_ESCAPES.items():
        if ch in text:
            text = text.replace(ch, esc)
    return text
