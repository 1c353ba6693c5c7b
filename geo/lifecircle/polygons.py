"""Union of many small polygons grouped by row: padded ``shapely.union_all(axis=1)`` in chunks on threads.

GEOS buffers of a MultiLineString with thousands of parts are slow (seconds); buffering the parts one by
one and taking a cascaded union per circle is about 100 times faster.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import shapely

_MAX_CELLS = 2_000_000  # padded array cells per chunk (object pointers)


def _chunks(counts: np.ndarray, max_cells: int) -> list[tuple[int, int]]:
    """Row ranges whose padded size (rows x widest row) stays under ``max_cells``."""
    out, lo = [], 0
    n = len(counts)
    while lo < n:
        hi, width = lo, 0
        while hi < n:
            w = max(width, int(counts[hi]), 1)
            if (hi - lo + 1) * w > max_cells and hi > lo:
                break
            width, hi = w, hi + 1
        out.append((lo, hi))
        lo = hi
    return out


def union_by_row(polygons: np.ndarray, rows: np.ndarray, n_rows: int, workers: int | None = None) -> np.ndarray:
    """``out[i]`` = union of ``polygons[rows == i]`` (empty polygon for rows with none)."""
    order = np.argsort(rows, kind="stable")
    polygons, rows = polygons[order], rows[order]
    counts = np.bincount(rows, minlength=n_rows)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    pos = np.arange(len(rows)) - starts[rows]
    # Split big chunks further so both threads get work.
    limit = max(1, min(_MAX_CELLS, int(counts.sum()) // 8 + 1))
    chunks = _chunks(counts, limit)

    def run(chunk):
        lo, hi = chunk
        sel = slice(starts[lo], starts[hi - 1] + counts[hi - 1])
        width = max(int(counts[lo:hi].max()), 1)
        grid = np.full((hi - lo, width), None, dtype=object)
        grid[rows[sel] - lo, pos[sel]] = polygons[sel]
        return shapely.union_all(grid, axis=1)

    workers = workers or min(4, os.cpu_count() or 1)
    if workers > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(run, chunks))
    else:
        parts = [run(c) for c in chunks]
    out = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    empty = shapely.is_missing(out) | shapely.is_empty(out)
    out[empty] = shapely.Polygon()
    return out
