"""A spatial index that changes in place: for layers that grow request by request (projects), where
rebuilding an STRtree on every write would cost more than the query it serves.

Backed by rtree (libspatialindex), the design card's mutable index; bulk, read-only layers use shapely's
STRtree instead (see README, "Indexes").
"""
from __future__ import annotations

import threading

import numpy as np
import shapely
from rtree import index as rtree_index


class LiveIndex:
    """Geometries by integer id, with bounding-box search refined by a real intersection test."""

    def __init__(self, ids=(), geoms=()):
        self._lock = threading.Lock()
        self._geoms: dict[int, shapely.Geometry] = {}
        ids = [int(i) for i in ids]
        geoms = list(geoms)
        if ids:
            bounds = shapely.bounds(np.asarray(geoms, dtype=object))
            stream = ((i, tuple(b), None) for i, b in zip(ids, bounds))
            self._tree = rtree_index.Index(stream)  # bulk load: faster and better packed than inserts
        else:
            self._tree = rtree_index.Index()
        self._geoms.update(zip(ids, geoms))

    def __len__(self) -> int:
        return len(self._geoms)

    def insert(self, item_id: int, geom) -> None:
        with self._lock:
            if item_id in self._geoms:
                self._tree.delete(item_id, self._geoms[item_id].bounds)
            self._geoms[item_id] = geom
            self._tree.insert(item_id, geom.bounds)

    def delete(self, item_id: int) -> None:
        with self._lock:
            geom = self._geoms.pop(item_id, None)
            if geom is not None:
                self._tree.delete(item_id, geom.bounds)

    def bounds(self) -> tuple[float, float, float, float] | None:
        """(minx, miny, maxx, maxy) of every geometry held; None when empty."""
        with self._lock:
            if not self._geoms:
                return None
            return tuple(float(v) for v in self._tree.bounds)

    def query(self, bbox: tuple[float, float, float, float]) -> list[int]:
        """Ids of the geometries that intersect the box, ascending."""
        box = shapely.box(*bbox)
        with self._lock:
            candidates = list(self._tree.intersection(bbox))
            geoms = [self._geoms[i] for i in candidates]
        if not candidates:
            return []
        hits = shapely.intersects(np.asarray(geoms, dtype=object), box)
        return sorted(int(i) for i, h in zip(candidates, hits) if h)
