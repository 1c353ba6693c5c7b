"""Mapbox Vector Tiles (MVT 2.1) of the zones, cut from the in-memory index.

Pure: no web framework, no I/O. The pieces, in the order a tile is made:

* :func:`tile_bounds` — the XYZ tile's box in EPSG:3857 (web mercator, the tiles' own CRS);
* :class:`TileSource` — per kind (on first use) a :class:`KindLayer`: an STRtree of the zones' lon/lat outlines
  and their boxes in EPSG:3857, each zone projected to EPSG:3857 (:func:`lonlat_to_mercator`, the closed
  formula on the coordinate array) the first time a tile needs it; a :class:`~geo.assign.ZoneIndex` keeps one
  (``index.tile_source``);
* :meth:`TileSource.tile` — per tile: the tree query of the box widened by ``buffer`` (64/4096 of the tile by
  default), the zones in force on the date, drop those under ``min_size_px`` pixels, keep those meeting the
  box, clip (``clip_by_rect``, vectorised), simplify with a tolerance of ``simplify_px`` pixels, quantise to the ``extent`` grid;
* :func:`encode_layer` — the protobuf, written here with numpy (the geometry commands of every ring of every
  feature built as arrays, varints encoded as arrays): several times faster than a generic encoder. Rings are
  wound as MVT 2.1 asks (exterior clockwise on screen, i.e. positive area by the surveyor's formula in tile
  coordinates whose y points down; interiors the other way); rings that collapse on the grid are dropped, and
  a polygon whose exterior collapsed is dropped with its holes.

An empty tile encodes to ``b""`` (no layer at all).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import shapely

from zeren.geo.errors import GeoInputError

EXTENT = 4096
BUFFER = 64  # in tile units: how far past its edge a tile carries the geometry, so strokes join across tiles
MAX_ZOOM = 22
WEB_MERCATOR = "EPSG:3857"
ORIGIN = 20037508.342789244  # half the width of the EPSG:3857 world, metres
MAX_LAT = 85.0511287798066  # the latitude at which the square EPSG:3857 world ends

# The properties of every feature: (key, type); ``lead_planner_id`` is absent when the zone has no lead.
PROPERTIES = (("code", "String"), ("name", "String"), ("lead_planner_id", "String"), ("has_lead", "Boolean"),
              ("kind", "String"))

_MOVE_TO, _LINE_TO, _CLOSE_PATH = 1, 2, 7
_POLYGON = 3


# -- tile arithmetic ---------------------------------------------------------------------------------------
def check_tile(z: int, x: int, y: int) -> None:
    """Refuse a tile address outside the XYZ pyramid, naming the coordinate."""
    if not 0 <= z <= MAX_ZOOM:
        raise GeoInputError(f"z: {z} is outside [0, {MAX_ZOOM}]; give a zoom level from 0 to {MAX_ZOOM}")
    n = 1 << z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < n:
            raise GeoInputError(f"{name}: {value} is outside [0, {n}) at zoom {z}; at zoom z, x and y run from 0 "
                                f"to 2^z - 1")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of XYZ tile z/x/y in EPSG:3857 metres (y counts down from the north)."""
    span = 2 * ORIGIN / (1 << z)
    return -ORIGIN + x * span, ORIGIN - (y + 1) * span, -ORIGIN + (x + 1) * span, ORIGIN - y * span


def tile_lonlat_bounds(z: int, x: int, y: int, buffer: float = 0.0) -> tuple[float, float, float, float]:
    """The tile's box (widened by ``buffer`` tile units) in lon/lat: web mercator maps boxes to boxes."""
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    pad = (maxx - minx) * buffer / EXTENT
    return (*_lonlat(minx - pad, miny - pad), *_lonlat(maxx + pad, maxy + pad))


def _lonlat(mx: float, my: float) -> tuple[float, float]:
    return math.degrees(mx / 6378137.0), math.degrees(2 * math.atan(math.exp(my / 6378137.0)) - math.pi / 2)


def tiles_covering(bounds: tuple[float, float, float, float], z: int) -> tuple[range, range]:
    """(x range, y range) of the zoom-``z`` tiles that meet a lon/lat box."""
    minlon, minlat, maxlon, maxlat = bounds
    n = 1 << z

    def tx(lon):
        return min(n - 1, max(0, int((lon + 180.0) / 360.0 * n)))

    def ty(lat):
        lat = max(-MAX_LAT, min(MAX_LAT, lat))
        r = math.radians(lat)
        return min(n - 1, max(0, int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n)))

    return range(tx(minlon), tx(maxlon) + 1), range(ty(maxlat), ty(minlat) + 1)


def tile_count(bounds: tuple[float, float, float, float], min_zoom: int, max_zoom: int) -> int:
    """How many tiles of zooms ``min_zoom..max_zoom`` meet a lon/lat box."""
    total = 0
    for z in range(min_zoom, max_zoom + 1):
        xs, ys = tiles_covering(bounds, z)
        total += len(xs) * len(ys)
    return total


# -- web mercator, closed form -------------------------------------------------------------------------
EARTH_RADIUS = 6378137.0  # the sphere of EPSG:3857 (WGS84's semi-major axis), metres
_DEG = math.pi / 180.0


def lonlat_to_mercator(xy: np.ndarray) -> np.ndarray:
    """(n, 2) lon/lat degrees (latitudes within +-``MAX_LAT``) to EPSG:3857 metres by the spherical Mercator's
    closed formula, x = R lon, y = R asinh(tan lat), as PROJ's ``webmerc`` computes it: within 1e-8 m of
    pyproj (the same x to the bit), about ten times faster on a coordinate array, nothing per point."""
    xy = np.asarray(xy, dtype=float)
    out = np.empty(xy.shape, dtype=float)
    np.multiply(EARTH_RADIUS, xy[..., 0] * _DEG, out=out[..., 0])
    np.multiply(EARTH_RADIUS, np.arcsinh(np.tan(xy[..., 1] * _DEG)), out=out[..., 1])
    return out


def mercator_to_lonlat(xy: np.ndarray) -> np.ndarray:
    """The inverse of :func:`lonlat_to_mercator`: (n, 2) EPSG:3857 metres to lon/lat degrees."""
    xy = np.asarray(xy, dtype=float)
    out = np.empty(xy.shape, dtype=float)
    out[..., 0] = xy[..., 0] / EARTH_RADIUS / _DEG
    out[..., 1] = np.arctan(np.sinh(xy[..., 1] / EARTH_RADIUS)) / _DEG
    return out


def to_mercator(geoms: np.ndarray) -> np.ndarray:
    """Lon/lat geometries (within the square mercator world) in EPSG:3857, by :func:`lonlat_to_mercator` on
    their coordinate array."""
    return shapely.transform(np.asarray(geoms, dtype=object), lonlat_to_mercator)


# -- the zones as tiles see them --------------------------------------------------------------------------
_QUERY_SLACK_DEG = 1e-7  # the lon/lat box a tile queries is this much wider than its own: a superset, exact after


class KindLayer:
    """The zones of one kind as tiles cut them (``positions``: their positions in the index).

    Built in a fraction of a second even at national scale (600,000 zones): the outlines stay in lon/lat (only
    the zones leaving the square mercator world, beyond +-``MAX_LAT``, are clipped to it), the tree is the
    STRtree of those outlines, ``bounds`` are their boxes in EPSG:3857 (web mercator maps boxes to boxes), and a
    zone is projected to EPSG:3857 the first time a tile needs it, then kept. Shareable between threads: two
    tiles projecting the same zone at once store equal outlines."""

    def __init__(self, positions: np.ndarray, zones: np.ndarray):
        zones = np.asarray(zones, dtype=object)
        b = shapely.bounds(zones) if len(zones) else np.zeros((0, 4))
        with np.errstate(invalid="ignore"):
            outside = (b[:, 0] < -180.0) | (b[:, 1] < -MAX_LAT) | (b[:, 2] > 180.0) | (b[:, 3] > MAX_LAT)
        if outside.any():
            zones = zones.copy()
            zones[outside] = shapely.clip_by_rect(zones[outside], -180.0, -MAX_LAT, 180.0, MAX_LAT)
            b[outside] = shapely.bounds(zones[outside])
        self.positions = positions
        self.lonlat = zones
        self.bounds = np.column_stack([lonlat_to_mercator(b[:, :2]), lonlat_to_mercator(b[:, 2:])]) \
            if len(b) else np.zeros((0, 4))  # (n, 4) minx, miny, maxx, maxy in metres
        self.tree = shapely.STRtree(zones) if len(zones) else None
        self._mercator = np.full(len(zones), None, dtype=object)
        self._projected = np.zeros(len(zones), dtype=bool)

    def __len__(self) -> int:
        return len(self.positions)

    def mercator(self, at: np.ndarray) -> np.ndarray:
        """The outlines in EPSG:3857 of the zones at layer offsets ``at`` (projected now if not yet)."""
        at = np.asarray(at, dtype=np.int64)
        todo = at[~self._projected[at]]
        if len(todo):
            self._mercator[todo] = to_mercator(self.lonlat[todo])
            self._projected[todo] = True
        return self._mercator[at]

    def candidates(self, minx: float, miny: float, maxx: float, maxy: float) -> np.ndarray:
        """Sorted layer offsets of the zones whose box meets the EPSG:3857 box (a superset of those meeting it:
        the tree is in lon/lat, queried with the box's lon/lat image widened by a hair)."""
        if self.tree is None:
            return np.zeros(0, dtype=np.int64)
        (w, s), (e, n) = mercator_to_lonlat(np.array([[minx, miny], [maxx, maxy]]))
        d = _QUERY_SLACK_DEG
        return np.sort(self.tree.query(shapely.box(w - d, s - d, e + d, n + d)))


@dataclass(frozen=True)
class TileFeatures:
    """What one tile holds before encoding: per feature its zone position and its geometry in tile units."""

    positions: np.ndarray
    geoms: np.ndarray  # polygons / multipolygons in tile coordinates (0..extent, y down), not yet rounded


class TileSource:
    """The zones of an index ready for cutting tiles: each kind projected to EPSG:3857 and indexed on first use,
    then kept (read-only, shareable between threads)."""

    def __init__(self, index):
        self.index = index
        self._lock = threading.Lock()
        self._layers: dict[str, KindLayer] = {}

    @cached_property
    def names(self) -> np.ndarray:
        """Every zone's name (object array on the index's positions), taken from the frame once: reading the
        column costs O(zones) (tens of ms at national scale), a tile needs a handful."""
        return np.asarray(self.index.zones["name"].to_numpy(dtype=object), dtype=object)

    def built(self) -> list[str]:
        """The kinds whose layer is ready (built by a tile or by warming)."""
        with self._lock:
            return sorted(self._layers)

    def layer(self, kind: str) -> KindLayer:
        with self._lock:
            found = self._layers.get(kind)
            if found is None:
                found = self._layers[kind] = self._build(kind)
            return found

    def _build(self, kind: str) -> KindLayer:
        index = self.index
        positions = np.flatnonzero(index.kind == kind) if len(index) else np.zeros(0, dtype=np.int64)
        return KindLayer(positions, index.zones.geometry.to_numpy()[positions])  # the unprepared frame: no lock

    def tile(self, kind: str, z: int, x: int, y: int, active: np.ndarray, *, extent: int = EXTENT,
             buffer: float = BUFFER, simplify_px: float = 1.0, min_size_px: float = 1.0) -> TileFeatures:
        """The zones of ``kind`` in force (``active``: bool per index position) that tile z/x/y shows, clipped
        to the tile widened by ``buffer``, simplified and in tile units (floats; :func:`encode_layer` rounds)."""
        check_tile(z, x, y)
        layer = self.layer(kind)
        empty = TileFeatures(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object))
        if layer.tree is None:
            return empty
        minx, miny, maxx, maxy = tile_bounds(z, x, y)
        px = (maxx - minx) / extent
        pad = buffer * px
        hits = layer.candidates(minx - pad, miny - pad, maxx + pad, maxy + pad)
        if len(hits):
            b = layer.bounds[hits]
            big = ((b[:, 2] - b[:, 0]) >= min_size_px * px) | ((b[:, 3] - b[:, 1]) >= min_size_px * px)
            hits = hits[active[layer.positions[hits]] & big]
        if not len(hits):
            return empty
        # the zones that meet the widened tile (as an STRtree "intersects" query would find them), in EPSG:3857
        box = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
        shapely.prepare(box)
        geoms = layer.mercator(hits)
        meets = shapely.intersects(box, geoms)
        hits, geoms = hits[meets], geoms[meets]
        if not len(hits):
            return empty
        cut = shapely.clip_by_rect(geoms, minx - pad, miny - pad, maxx + pad, maxy + pad)
        if simplify_px > 0:
            # only the zones with more vertices than pixels round their outline gain from Douglas-Peucker (the
            # grid merges the others' repeated points in the encoder): at low zoom most zones are skipped
            b = shapely.bounds(cut)
            outline_px = 2 * ((b[:, 2] - b[:, 0]) + (b[:, 3] - b[:, 1])) / (simplify_px * px)
            dense = shapely.get_num_coordinates(cut) > outline_px
            if dense.any():
                simple = shapely.simplify(cut[dense], simplify_px * px, preserve_topology=False)
                collapsed = shapely.is_empty(simple)  # a zone of a few pixels: keep it as it is
                simple[collapsed] = cut[dense][collapsed]
                cut[dense] = simple
        keep = ~shapely.is_empty(cut)
        hits, cut = hits[keep], cut[keep]
        # to tile units: x from the west edge, y down from the north edge, one unit per pixel of the grid
        scale = extent / (maxx - minx)

        def to_tile(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(((xy[:, 0] - minx) * scale, (maxy - xy[:, 1]) * scale))

        return TileFeatures(layer.positions[hits], shapely.transform(cut, to_tile))


# -- encoding -----------------------------------------------------------------------------------------------
def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, length per value) of the protobuf varints of non-negative integers below 2^35."""
    v = np.asarray(values, dtype=np.uint64)
    if not len(v):
        return np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.int64)
    top = int(v.max())
    nbytes = np.ones(len(v), dtype=np.int64)
    for k in (7, 14, 21, 28):
        if top < (1 << k):
            break
        nbytes += v >= (1 << k)
    if top < 128:  # one byte each: the values themselves
        return v.astype(np.uint8), nbytes
    ends = np.cumsum(nbytes)
    out = np.zeros(int(ends[-1]), dtype=np.uint8)
    starts = ends - nbytes
    for k in range(int(nbytes.max())):
        has = nbytes > k
        byte = (v[has] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (nbytes[has] > k + 1).astype(np.uint64) << np.uint64(7)
        out[starts[has] + k] = (byte | more).astype(np.uint8)
    return out, nbytes


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _zigzag(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint64)


def geometry_commands(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The MVT polygon commands of each geometry (tile units, rounded here), as one flat uint array.

    Returns (commands, offsets, kept): feature ``i`` of ``geoms[kept]`` has ``commands[offsets[i]:offsets[i+1]]``.
    Winding follows MVT 2.1; rings that collapse on the integer grid are dropped (a polygon with them)."""
    polys, feature = shapely.get_parts(geoms, return_index=True)
    is_poly = shapely.get_type_id(polys) == 3
    polys, feature = polys[is_poly], feature[is_poly]
    rings, poly_of_ring = shapely.get_rings(polys, return_index=True)
    coords, ring_of_pt = shapely.get_coordinates(rings, return_index=True)
    xy = np.rint(coords).astype(np.int64)
    # drop each ring's closing point and repeated points (after rounding)
    ring_start = np.r_[True, ring_of_pt[1:] != ring_of_pt[:-1]]
    ring_last = np.r_[ring_of_pt[1:] != ring_of_pt[:-1], True]
    same_as_prev = np.r_[False, (xy[1:] == xy[:-1]).all(axis=1)] & ~ring_start
    keep = ~ring_last & ~same_as_prev
    xy, ring_of_pt = xy[keep], ring_of_pt[keep]
    n_rings = len(rings)
    counts = np.bincount(ring_of_pt, minlength=n_rings)
    # the last kept point may still equal the first (a ring that closed on a repeated point)
    first = np.searchsorted(ring_of_pt, np.arange(n_rings))
    last = first + counts - 1
    ok = counts > 0
    dup = np.zeros(n_rings, dtype=bool)
    dup[ok] = (xy[last[ok]] == xy[first[ok]]).all(axis=1) & (counts[ok] > 1)
    if dup.any():
        drop = np.zeros(len(xy), dtype=bool)
        drop[last[dup]] = True
        xy, ring_of_pt = xy[~drop], ring_of_pt[~drop]
        counts = np.bincount(ring_of_pt, minlength=n_rings)
        first = np.searchsorted(ring_of_pt, np.arange(n_rings))
    # signed area (surveyor's formula, y down: positive = clockwise on screen)
    nxt = np.arange(len(xy)) + 1
    wrap = np.r_[ring_of_pt[1:] != ring_of_pt[:-1], True] if len(xy) else np.zeros(0, dtype=bool)
    nxt[wrap] = first[ring_of_pt[wrap]]
    cross = xy[:, 0] * xy[nxt, 1] - xy[nxt, 0] * xy[:, 1] if len(xy) else np.zeros(0, dtype=np.int64)
    area2 = np.bincount(ring_of_pt, weights=cross, minlength=n_rings)
    exterior = np.r_[True, poly_of_ring[1:] != poly_of_ring[:-1]] if n_rings else np.zeros(0, dtype=bool)
    good_ring = (counts >= 3) & (area2 != 0)
    poly_ok = np.zeros(len(polys), dtype=bool)
    poly_ok[poly_of_ring[exterior & good_ring]] = True
    good_ring &= poly_ok[poly_of_ring]
    flip = good_ring & np.where(exterior, area2 < 0, area2 > 0)
    # reverse the rings that wind the wrong way (index arithmetic, no loop)
    order = np.arange(len(xy))
    in_flip = flip[ring_of_pt]
    s = first[ring_of_pt[in_flip]]
    order[in_flip] = s + (counts[ring_of_pt[in_flip]] - 1 - (order[in_flip] - s))
    kept_pt = good_ring[ring_of_pt[order]]
    order = order[kept_pt]
    xy, ring_of_pt = xy[order], ring_of_pt[order]
    feature_of_ring = feature[poly_of_ring]
    # per point: delta from the previous point of the same feature (the cursor starts at 0,0 per feature)
    feat_of_pt = feature_of_ring[ring_of_pt]
    prev = np.vstack([np.zeros((1, 2), dtype=np.int64), xy[:-1]]) if len(xy) else xy
    new_feat = np.r_[True, feat_of_pt[1:] != feat_of_pt[:-1]] if len(xy) else np.zeros(0, dtype=bool)
    prev[new_feat] = 0
    delta = _zigzag(xy - prev)
    # layout: per ring [MoveTo(1), dx, dy, LineTo(n-1), (dx, dy) * (n-1), ClosePath]
    kept_rings = np.flatnonzero(good_ring)
    n = counts[kept_rings]
    ring_len = 2 * n + 3
    ring_out = np.cumsum(ring_len) - ring_len
    out = np.zeros(int(ring_len.sum()), dtype=np.uint64)
    out[ring_out] = (1 << 3) | _MOVE_TO
    out[ring_out + 3] = ((n - 1) << 3) | _LINE_TO
    out[ring_out + ring_len - 1] = (1 << 3) | _CLOSE_PATH
    # point k of a ring sits at 1 + 2k, shifted by one for k >= 1 (the LineTo command)
    ring_rank = np.searchsorted(kept_rings, ring_of_pt)
    k = np.arange(len(xy)) - np.repeat(np.cumsum(n) - n, n)
    at = ring_out[ring_rank] + 1 + 2 * k + (k >= 1)
    out[at] = delta[:, 0]
    out[at + 1] = delta[:, 1]
    # per feature offsets
    ring_feat = feature_of_ring[kept_rings]
    kept = np.unique(ring_feat)
    per_feat = np.bincount(ring_feat, weights=ring_len, minlength=len(geoms)).astype(np.int64)[kept]
    offsets = np.r_[0, np.cumsum(per_feat)]
    return out, offsets, kept


def _interleave(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, its pieces one after another: ``pieces`` are (bytes of every feature, length per feature).
    Returns (bytes, length per feature)."""
    lengths = np.column_stack([n for _, n in pieces]).astype(np.int64)
    per_feature = lengths.sum(axis=1)
    start = np.cumsum(per_feature) - per_feature
    before = np.cumsum(lengths, axis=1) - lengths  # offset of each piece inside its feature
    out = np.empty(int(per_feature.sum()), dtype=np.uint8)
    for p, (data, n) in enumerate(pieces):
        if not len(data):
            continue
        first = np.cumsum(n) - n
        out[np.repeat(start + before[:, p] - first, n) + np.arange(len(data))] = data
    return out, per_feature


def _const(byte_values: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tile(np.frombuffer(byte_values, dtype=np.uint8), n), np.full(n, len(byte_values), dtype=np.int64)


def _len_prefixed(tag: int, data: np.ndarray, lengths: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The pieces of a length-delimited field per feature: its tag byte, the length varint, the payload."""
    n = len(lengths)
    size, size_n = _varints(lengths)
    return [_const(bytes([tag]), n), (size, size_n), (data, lengths)]


def _value_table(values: list) -> bytes:
    """The layer's ``values`` fields (each a str or a bool), vectorised over the values."""
    if not values:
        return b""
    is_bool = np.fromiter((isinstance(v, bool) for v in values), dtype=bool, count=len(values))
    text = [b"" if b else v.encode("utf-8") for v, b in zip(values, is_bool.tolist())]
    text_n = np.fromiter(map(len, text), dtype=np.int64, count=len(values))
    text_bytes = np.frombuffer(b"".join(text), dtype=np.uint8)
    # a string Value: 0x0a (string_value), its length, its bytes; a bool Value: 0x38 (bool_value), 0 or 1
    size, size_n = _varints(text_n)
    keep = np.repeat(~is_bool, size_n)
    size_n = np.where(is_bool, 0, size_n)
    head = (~is_bool).astype(np.int64)
    flags = np.array([v for v, b in zip(values, is_bool.tolist()) if b], dtype=np.uint8)
    bool_bytes = np.column_stack([np.full(len(flags), 0x38, dtype=np.uint8), flags]).ravel()
    msg, msg_n = _interleave([(np.full(int(head.sum()), 0x0A, dtype=np.uint8), head), (size[keep], size_n),
                              (text_bytes, text_n), (bool_bytes, np.where(is_bool, 2, 0))])
    out, _ = _interleave(_len_prefixed(0x22, msg, msg_n))
    return out.tobytes()


def _number_values(column: np.ndarray) -> tuple[np.ndarray, list]:
    """(per value its rank among the distinct values in order of first appearance, -1 for None; those values).
    A hash table in C (pandas' factorize), the pure-Python pass only for a column with a NaN (factorize would
    leave it out like None, the encoder writes it as the string "nan")."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    missing = codes < 0
    if not missing.any() or all(v is None for v in column[missing].tolist()):
        return codes.astype(np.int64, copy=False), uniques.tolist()
    seen: dict = {}
    codes = np.fromiter((-1 if v is None else seen.setdefault(v, len(seen)) for v in column.tolist()),
                        dtype=np.int64, count=len(column))
    return codes, list(seen)


def encode_layer(name: str, geoms: np.ndarray, properties: dict[str, np.ndarray], *, extent: int = EXTENT) -> bytes:
    """One MVT layer (a whole tile of one layer) from geometries in tile units and their properties as columns
    (one array per key, aligned on ``geoms``; str or bool values; None leaves the key out of that feature).
    ``b""`` when no feature survives. Vectorised throughout."""
    if not len(geoms):
        return b""
    commands, offsets, kept = geometry_commands(np.asarray(geoms, dtype=object))
    if not len(kept):
        return b""
    n = len(kept)
    blob, nbytes = _varints(commands)
    geom_len = np.add.reduceat(nbytes, offsets[:-1]) if len(nbytes) else np.zeros(n, dtype=np.int64)
    # the keys and values tables, and each feature's tags (key index, value index) in key order
    keys, value_msgs, tag_cols = [], [], []
    for key, column in properties.items():
        column = np.asarray(column, dtype=object)[kept]
        codes, uniques = _number_values(column)
        if not uniques:
            continue
        k = len(keys)
        keys.append(key)
        base = len(value_msgs)
        value_msgs += [bool(v) if isinstance(v, (bool, np.bool_)) else str(v) for v in uniques]
        tag_cols.append((np.where(codes >= 0, k, -1), np.where(codes >= 0, codes + base, -1)))
    if tag_cols:
        tags = np.column_stack([c for pair in tag_cols for c in pair])  # (n, 2 * keys), -1 where absent
        present = tags >= 0
        tag_bytes, tag_n = _varints(tags[present])
        per_tag = np.zeros(tags.shape, dtype=np.int64)
        per_tag[present] = tag_n
        tags_len = per_tag.sum(axis=1)
    else:
        tag_bytes, tags_len = np.zeros(0, dtype=np.uint8), np.zeros(n, dtype=np.int64)
    ids, ids_n = _varints(kept + 1)  # id: the feature's rank in the tile, 1-based
    body, body_len = _interleave([_const(b"\x08", n), (ids, ids_n),
                                  *_len_prefixed(0x12, tag_bytes, tags_len),
                                  _const(b"\x18\x03", n),  # type: POLYGON
                                  *_len_prefixed(0x22, blob, geom_len)])
    features, _ = _interleave(_len_prefixed(0x12, body, body_len))
    parts = [b"\x78\x02", _field(1, name.encode("utf-8")), features.tobytes()]  # version 2, name, features
    parts += [_field(3, key.encode("utf-8")) for key in keys]
    parts.append(_value_table(value_msgs))
    parts.append(b"\x28" + _varint(extent))
    return _field(3, b"".join(parts))
