"""Vectorised helpers on arrays of LineStrings (shapely 2): pieces by distance along each line."""
from __future__ import annotations

import numpy as np
import shapely


def vertex_offsets(coords: np.ndarray, line_index: np.ndarray) -> np.ndarray:
    """Distance along its own line of every vertex (``coords``/``line_index`` as from ``get_coordinates``)."""
    step = np.zeros(len(coords))
    if len(coords) > 1:
        step[1:] = np.hypot(*np.diff(coords, axis=0).T)
        step[1:][line_index[1:] != line_index[:-1]] = 0.0
    total = np.cumsum(step)
    first = np.r_[0, np.flatnonzero(line_index[1:] != line_index[:-1]) + 1]
    offset = np.repeat(total[first], np.diff(np.r_[first, len(coords)]))
    return total - offset


def substrings(lines, start, end) -> np.ndarray:
    """The part of each LineString between distances ``start`` and ``end`` along it (arrays, vectorised).

    Distances are clipped to the line; ``start == end`` gives a zero-length line (callers drop those).
    """
    lines = np.asarray(lines, dtype=object)
    n = len(lines)
    if n == 0:
        return np.empty(0, dtype=object)
    length = shapely.length(lines)
    start = np.clip(np.broadcast_to(np.asarray(start, dtype=float), (n,)), 0.0, length)
    end = np.clip(np.broadcast_to(np.asarray(end, dtype=float), (n,)), start, length)
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    along = vertex_offsets(coords, idx)
    inner = (along > start[idx]) & (along < end[idx])
    first = shapely.get_coordinates(shapely.line_interpolate_point(lines, start))
    last = shapely.get_coordinates(shapely.line_interpolate_point(lines, end))
    ids = np.arange(n)
    all_xy = np.concatenate([first, coords[inner], last])
    all_line = np.concatenate([ids, idx[inner], ids])
    group = np.concatenate([np.zeros(n), np.ones(inner.sum()), np.full(n, 2.0)])
    key = np.concatenate([start, along[inner], end])
    order = np.lexsort((key, group, all_line))
    return shapely.linestrings(all_xy[order], indices=all_line[order])
