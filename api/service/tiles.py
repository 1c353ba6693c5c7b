"""Vector tiles of the zones (``GET /tiles/{kind}/{z}/{x}/{y}.mvt``, ``GET /tiles/{kind}.json``, ``zeren tiles
export``): one MVT layer named by the kind, features with ``code``, ``name``, ``lead_planner_id`` (absent when
the zone has no lead on the date), ``has_lead`` and ``kind``. A cached tile keeps its gzip-compressed bytes
too, made once when it is rendered, so a cached tile is sent without compressing it again.

Cut from the catalogue's in-memory index on both stores (``geo.tiles``); the encoded tiles are kept in a cache
bounded in bytes and keyed by (catalogue generation, kind, date, z, x, y), so a reload (a new appointment, a new
edition) never serves a stale tile. An empty tile is ``b""`` (the HTTP door answers 200 with an empty body).
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from zeren.api.service.workspace import Workspace
from zeren.geo.kinds import ALL_KINDS, KIND_LABELS
from zeren.geo.tiles import BUFFER, EXTENT, MAX_ZOOM, PROPERTIES, check_tile, encode_layer
from zeren.geo.validity import as_timestamp
from zeren.layers.catalogue import Catalogue
from zeren.layers.errors import ValidationError

CACHE_BYTES = 64 * 1024 * 1024


GZIP_MIN_BYTES = 1024  # smaller tiles are sent as they are
GZIP_LEVEL = 6  # a 300 KB tile of 2,700 zones: 10 ms, 43% of its size (level 9: 27 ms for 0.1% less)


@dataclass(frozen=True)
class Tile:
    body: bytes  # the encoded MVT; b"" for a tile with no feature
    etag: str  # quoted strong ETag, from the body (the same on every replica)
    gzip: bytes | None = None  # the body gzip-compressed once, when rendered (None under GZIP_MIN_BYTES)

    @classmethod
    def of(cls, body: bytes) -> Tile:
        # no timestamp in the gzip header: the same bytes on every replica and every render
        packed = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
        return cls(body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"', packed)

    @property
    def gzip_etag(self) -> str:
        """The ETag of the gzip-encoded representation (a strong ETag names one set of bytes)."""
        return self.etag[:-1] + '-gzip"'

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzip or b"")


def check_kind(kind: str) -> str:
    if kind not in ALL_KINDS:
        raise ValidationError(f"kind: {str(kind)[:40]!r} is not a zone kind; the kinds are {', '.join(ALL_KINDS)}")
    return kind


def render_tile(catalogue: Catalogue, kind: str, z: int, x: int, y: int, as_of: dt.date | None = None) -> bytes:
    """The MVT of one tile of the zones of ``kind`` in force on ``as_of`` (today when None); ``b""`` when empty."""
    check_kind(kind)
    check_tile(z, x, y)
    resp = catalogue.responsibility(as_of)
    index = resp.index
    if len(index) and not resp.zone_active.any():  # (the full check is O(zones): only when it will speak)
        index.require_in_force(as_of)
    cut = index.tile_source.tile(kind, z, x, y, resp.zone_active)
    if not len(cut.positions):
        return b""
    pos = cut.positions
    lead = resp.lead_planner[pos]
    has_lead = pd.notna(lead)
    props = {"code": index.code[pos], "name": index.tile_source.names[pos],
             "lead_planner_id": np.where(has_lead, lead.astype(str), None), "has_lead": has_lead.astype(object),
             "kind": np.full(len(pos), kind, dtype=object)}
    return encode_layer(kind, cut.geoms, props)


def warm_tiled_kinds(catalogue: Catalogue, inline_limit: int) -> list[str]:
    """Build now the tile layers (each kind projected to EPSG:3857 and indexed) of the kinds whose map pages are
    drawn from tiles, i.e. with more zones than ``inline_limit`` (``ZEREN_MAP_MAX_INLINE_FEATURES``), so the first
    visitor of a national page does not wait for them (0.25 s at 600,000 zones). Returns the kinds built;
    a kind already built costs nothing."""
    index = catalogue.index
    if not len(index):
        return []
    kinds, counts = np.unique(np.asarray(index.kind, dtype=object).astype(str), return_counts=True)
    tiled = [str(k) for k, n in zip(kinds, counts) if n > inline_limit]
    for kind in tiled:
        index.tile_source.layer(kind)
    if tiled:
        _ = index.tile_source.names  # read once here (tens of ms at national scale), not by the first tile
    return tiled


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
        cost = tile.size + 200  # the key and the objects around it
        if cost > self.max_bytes:
            return
        with self._lock:
            old = self._tiles.pop(key, None)
            if old is not None:
                self.size -= old.size + 200
            self._tiles[key] = tile
            self.size += cost
            while self.size > self.max_bytes:
                _, dropped = self._tiles.popitem(last=False)
                self.size -= dropped.size + 200

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


# -- the one-shot export: PMTiles v3 ---------------------------------------------------------------------------
MAX_EXPORT_TILES = 200_000  # tiles covering the export's box over its zooms; more needs --bbox or --max-tiles


@dataclass(frozen=True)
class ExportResult:
    path: str
    kind: str
    tiles: int  # tiles written (the empty ones are left out)
    considered: int  # tiles covering the box over the zooms
    min_zoom: int
    max_zoom: int
    bounds: list[float]
    bytes: int


def export_plan(catalogue: Catalogue, kind: str, min_zoom: int, max_zoom: int, as_of: dt.date | None = None,
                bbox: tuple[float, float, float, float] | None = None,
                max_tiles: int = MAX_EXPORT_TILES) -> tuple[list[float], int]:
    """(box, tile count) of an export, refused (``ValidationError`` naming the option) when the zooms are out of
    range or the tiles covering the box (``bbox``, else the zones' bounds) are more than ``max_tiles``."""
    from zeren.geo.tiles import tile_count

    check_kind(kind)
    for name, z in (("--min-zoom", min_zoom), ("--max-zoom", max_zoom)):
        if not 0 <= z <= MAX_ZOOM:
            raise ValidationError(f"{name}: {z} is outside [0, {MAX_ZOOM}]")
    if min_zoom > max_zoom:
        raise ValidationError(f"--min-zoom {min_zoom} is above --max-zoom {max_zoom}")
    catalogue.index.require_in_force(as_of)
    data = kind_bounds(catalogue, kind, as_of)
    if data is None:
        raise ValidationError(f"--kind: no {kind} zone is in force on {as_timestamp(as_of).date()}; nothing to "
                              f"export (import that layer first, or pick another kind or --as-of)")
    box = list(bbox) if bbox is not None else data
    box = [max(box[0], data[0]), max(box[1], data[1]), min(box[2], data[2]), min(box[3], data[3])]
    if box[0] > box[2] or box[1] > box[3]:
        raise ValidationError(f"--bbox: {','.join(f'{v:g}' for v in bbox)} does not meet the {kind} zones "
                              f"({','.join(f'{v:g}' for v in data)})")
    count = tile_count(tuple(box), min_zoom, max_zoom)
    if count > max_tiles:
        raise ValidationError(f"zooms {min_zoom}-{max_zoom} over {'--bbox' if bbox else 'the zones'} "
                              f"({','.join(f'{v:.4f}' for v in box)}) are {count:,} tiles, over the budget of "
                              f"{max_tiles:,}: lower --max-zoom, give a smaller --bbox, or raise --max-tiles")
    return box, count


def check_out(out, kind: str = "zones"):
    """The output path, refused (naming ``--out``) when it is a folder or its folder does not exist."""
    from pathlib import Path

    out = Path(out)
    if out.is_dir():
        raise ValidationError(f"--out: {out} is a folder; give a file name such as {out / (kind + '.pmtiles')}")
    if not out.parent.is_dir():
        raise ValidationError(f"--out: the folder {out.parent} does not exist; create it first")
    return out


def export_pmtiles(catalogue: Catalogue, kind: str, out, *, min_zoom: int = 0, max_zoom: int = 14,
                   as_of: dt.date | None = None, bbox: tuple[float, float, float, float] | None = None,
                   max_tiles: int = MAX_EXPORT_TILES, progress=None) -> ExportResult:
    """Write the tiles of ``kind`` (zooms ``min_zoom..max_zoom``, over ``bbox`` or the zones' bounds) to a PMTiles
    v3 file: MVT tiles gzip-compressed, in Hilbert order (clustered), metadata with ``vector_layers``. Written to
    a temporary file beside ``out`` and renamed at the end, so a failed run leaves nothing under ``out``.
    ``progress(n)`` is called as tiles are done."""
    import gzip
    import os
    import tempfile
    from pathlib import Path

    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import Writer

    from zeren.geo.tiles import tiles_covering

    box, count = export_plan(catalogue, kind, min_zoom, max_zoom, as_of, bbox, max_tiles)
    out = check_out(out, kind)
    order = []
    for z in range(min_zoom, max_zoom + 1):
        xs, ys = tiles_covering(tuple(box), z)
        order += [(zxy_to_tileid(z, x, y), z, x, y) for x in xs for y in ys]
    order.sort()
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    written, zooms = 0, []
    try:
        with os.fdopen(fd, "wb") as f:
            writer = Writer(f)
            for i, (tile_id, z, x, y) in enumerate(order, 1):
                body = render_tile(catalogue, kind, z, x, y, as_of)
                if body:
                    writer.write_tile(tile_id, gzip.compress(body, compresslevel=6, mtime=0))
                    written += 1
                    zooms.append(z)
                if progress is not None and (i % 64 == 0 or i == len(order)):
                    progress(i)
            if not written:
                raise ValidationError(f"no tile of zooms {min_zoom}-{max_zoom} holds a {kind} zone; nothing "
                                      f"to export (lower --min-zoom)")
            e7 = [int(round(v * 1e7)) for v in box]
            header = {"tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
                      "min_zoom": min_zoom, "max_zoom": max_zoom,
                      "min_lon_e7": e7[0], "min_lat_e7": e7[1], "max_lon_e7": e7[2], "max_lat_e7": e7[3],
                      "center_zoom": min(max_zoom, max(min_zoom, 10)),
                      "center_lon_e7": (e7[0] + e7[2]) // 2, "center_lat_e7": (e7[1] + e7[3]) // 2}
            zh, en = KIND_LABELS.get(kind, (kind, kind))
            day = as_timestamp(as_of).date().isoformat()
            metadata = {"name": f"Zeren {kind}", "description": f"{zh} / {en} in force on {day} (Zeren)",
                        "attribution": "Zeren 责任规划师", "type": "overlay", "version": "1", "as_of": day,
                        "vector_layers": [dict(vector_layer(kind), minzoom=min_zoom, maxzoom=max_zoom)]}
            writer.finalize(header, metadata)
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would have made it (mkstemp makes it private)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ExportResult(str(out), kind, written, count, min(zooms), max(zooms), box, out.stat().st_size)
