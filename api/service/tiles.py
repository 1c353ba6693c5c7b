"""Vector tiles of the zones (``GET /tiles/{kind}/{z}/{x}/{y}.mvt``, ``GET /tiles/{kind}.json``, ``zeren tiles
export``): one MVT layer named by the kind, features with ``code``, ``name``, ``lead_planner_id`` (absent when
the zone has no lead on the date), ``has_lead`` and ``kind``.

Cut from the catalogue's in-memory index on both stores (``geo.tiles``); the encoded tiles are kept in a cache
bounded in bytes and keyed by (catalogue generation, kind, date, z, x, y), so a reload (a new appointment, a new
edition) never serves a stale tile. An empty tile is ``b""`` (the HTTP door answers 200 with an empty body).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from zeren.api.service.workspace import Workspace
from zeren.geo.kinds import ALL_KINDS, KIND_LABELS
from zeren.geo.tiles import BUFFER, EXTENT, MAX_ZOOM, PROPERTIES, check_tile, encode_layer
from zeren.geo.validity import as_timestamp
from zeren.layers.catalogue import Catalogue
from zeren.layers.errors import ValidationError

CACHE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Tile:
    body: bytes  # the encoded MVT; b"" for a tile with no feature
    etag: str  # quoted strong ETag, from the body (the same on every replica)

    @classmethod
    def of(cls, body: bytes) -> Tile:
        return cls(body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')


def check_kind(kind: str) -> str:
    if kind not in ALL_KINDS:
        raise ValidationError(f"kind: {str(kind)[:40]!r} is not a zone kind; the kinds are {', '.join(ALL_KINDS)}")
    return kind


def render_tile(catalogue: Catalogue, kind: str, z: int, x: int, y: int, as_of: dt.date | None = None) -> bytes:
    """The MVT of one tile of the zones of ``kind`` in force on ``as_of`` (today when None); ``b""`` when empty."""
    check_kind(kind)
    check_tile(z, x, y)
    catalogue.index.require_in_force(as_of)
    resp = catalogue.responsibility(as_of)
    index = resp.index
    cut = index.tile_source.tile(kind, z, x, y, resp.zone_active)
    if not len(cut.positions):
        return b""
    refs = index.zone_refs
    lead = resp.lead_planner
    props = []
    for pos in cut.positions.tolist():
        planner = lead[pos]
        props.append({"code": index.code[pos], "name": refs[pos]["name"],
                      "lead_planner_id": None if planner is None else str(planner),
                      "has_lead": planner is not None, "kind": kind})
    return encode_layer(kind, cut.geoms, props)


class TileCache:
    """Encoded tiles, least recently used dropped first once they hold more than ``max_bytes``."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._tiles: OrderedDict[tuple, Tile] = OrderedDict()
        self.size = 0

    def get(self, key: tuple) -> Tile | None:
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
            return tile

    def put(self, key: tuple, tile: Tile) -> None:
        cost = len(tile.body) + 200  # the key and the objects around it
        if cost > self.max_bytes:
            return
        with self._lock:
            old = self._tiles.pop(key, None)
            if old is not None:
                self.size -= len(old.body) + 200
            self._tiles[key] = tile
            self.size += cost
            while self.size > self.max_bytes:
                _, dropped = self._tiles.popitem(last=False)
                self.size -= len(dropped.body) + 200

    def __len__(self) -> int:
        return len(self._tiles)


class TileService:
    """Tiles of one workspace's catalogue, cached (one per server process)."""

    def __init__(self, workspace: Workspace, cache_bytes: int = CACHE_BYTES):
        self.workspace = workspace
        self.cache = TileCache(cache_bytes)

    def key(self, kind: str, z: int, x: int, y: int, as_of: dt.date | None) -> tuple:
        """The cache key; the generation is read first, so a tile rendered from a later state is at worst kept
        under an older key (never a stale tile under the current one)."""
        return (self.workspace.catalogue.generation, kind, as_timestamp(as_of).date(), z, x, y)

    def cached(self, key: tuple) -> Tile | None:
        return self.cache.get(key)

    def render(self, key: tuple) -> Tile:
        _, kind, day, z, x, y = key
        tile = Tile.of(render_tile(self.workspace.catalogue, kind, z, x, y, day))
        self.cache.put(key, tile)
        return tile

    def tile(self, kind: str, z: int, x: int, y: int, as_of: dt.date | None = None) -> Tile:
        key = self.key(check_kind(kind), z, x, y, as_of)
        return self.cached(key) or self.render(key)


def vector_layer(kind: str) -> dict:
    """The TileJSON / PMTiles ``vector_layers`` entry of a kind."""
    zh, en = KIND_LABELS.get(kind, (kind, kind))
    return {"id": kind, "description": f"{zh} / {en}", "minzoom": 0, "maxzoom": MAX_ZOOM,
            "fields": {name: kind_ for name, kind_ in PROPERTIES}}


def kind_bounds(catalogue: Catalogue, kind: str, as_of: dt.date | None = None) -> list[float] | None:
    """[minlon, minlat, maxlon, maxlat] of the zones of ``kind`` in force on ``as_of``; None when there is none."""
    index = catalogue.index
    mask = index.active(as_of) & (index.kind == kind) if len(index) else np.zeros(0, dtype=bool)
    if not mask.any():
        return None
    import shapely

    return [round(float(v), 7) for v in shapely.total_bounds(index.zones.geometry.to_numpy()[mask])]


def tilejson(catalogue: Catalogue, kind: str, tiles_url: str, as_of: dt.date | None = None) -> dict:
    """TileJSON 3.0.0 of the tiles of ``kind`` (``tiles_url``: the URL template, with ``{z}/{x}/{y}``)."""
    check_kind(kind)
    catalogue.index.require_in_force(as_of)
    zh, en = KIND_LABELS.get(kind, (kind, kind))
    bounds = kind_bounds(catalogue, kind, as_of) or [-180.0, -85.0511287798066, 180.0, 85.0511287798066]
    return {"tilejson": "3.0.0", "name": f"Zeren {kind}", "description": f"{zh} / {en} (Zeren)",
            "scheme": "xyz", "tiles": [tiles_url], "minzoom": 0, "maxzoom": MAX_ZOOM, "bounds": bounds,
            "center": [round((bounds[0] + bounds[2]) / 2, 7), round((bounds[1] + bounds[3]) / 2, 7), 10],
            "vector_layers": [vector_layer(kind)],
            "attribution": "Zeren 责任规划师", "extent": EXTENT, "buffer": BUFFER}
