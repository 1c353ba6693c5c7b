"""Colours: colour-blind-safe, stable per planner, neighbours told apart.

Planner colours come from Paul Tol's *muted* scheme (safe for the common colour-vision deficiencies)
without its two reddish members, which stay reserved for "no planner" (red hatch) and overlaps
(orange). Each planner *prefers* the colour given by a hash of its id (so the same planner keeps its
colour from page to page and day to day). Planners are then coloured greedily in id order over the
adjacency graph of their territories (zones that touch, found with an STRtree): a planner whose
preferred colour is already taken by a neighbour takes the next free one in palette order. So the
colour is stable unless a neighbour claims it, and neighbouring planners differ whenever the seven
colours suffice (almost always on real maps). Because that cannot be guaranteed, the coverage map also
draws each planner's territory with a strong dark outline, and the tooltip names the planner.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

import numpy as np
import shapely

# Tol muted without rose (#CC6677) and wine (#882255).
PLANNER_PALETTE: tuple[str, ...] = (
    "#88CCEE",  # cyan
    "#44AA99",  # teal
    "#117733",  # green
    "#999933",  # olive
    "#DDCC77",  # sand
    "#AA4499",  # purple
    "#332288",  # indigo
)
NO_PLANNER = "#D7191C"       # red: hatch of units without a planner, gaps
OVERLAP = "#EE7733"          # Tol vibrant orange
TERRITORY_OUTLINE = "#222222"
OVERLAY_COLOURS: dict[str, str] = {
    "historic_area": "#882255",  # wine
    "key_area": "#0077BB",       # Tol vibrant blue
    "renewal_area": "#009988",   # Tol vibrant teal
}
DISTRICT_OUTLINE = "#444444"

# Project status (bilingual labels in maps.builders): Tol bright, ordered along the life cycle.
STATUS_COLOURS: dict[str, str] = {
    "survey": "#66CCEE",
    "assessment": "#CCBB44",
    "consultation": "#EE6677",
    "implementation": "#228833",
    "feedback": "#AA3377",
}

# Sequential, colour-blind-safe ramp for scores 0..1 (viridis at five stops).
SCORE_RAMP: tuple[str, ...] = ("#440154", "#3B528B", "#21918C", "#5EC962", "#FDE725")


def preferred_index(planner_id: str, k: int = len(PLANNER_PALETTE)) -> int:
    """Stable palette index of a planner id (a hash that does not change between runs)."""
    digest = hashlib.blake2b(str(planner_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % k


def adjacency_pairs(geoms: Sequence, groups: Sequence[str], *, exact: bool = True) -> set[tuple[str, str]]:
    """Pairs of distinct groups (planners) whose geometries intersect (touching counts), each pair as
    ``(smaller, larger)``; groups that are None take no part.

    ``exact=False``: pairs whose geometries' bounding boxes intersect, a superset of the touching pairs
    (neighbouring planners still get different colours) found an order of magnitude faster: what the pages
    drawn from vector tiles use for hundreds of thousands of zones."""
    import pandas as pd

    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) < 2:
        return set()
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects" if exact else None)
    once = left < right
    codes, names = pd.factorize(pd.Series(np.asarray(groups, dtype=object)), use_na_sentinel=True)
    a, b = codes[left[once]], codes[right[once]]
    ok = (a >= 0) & (b >= 0) & (a != b)
    lo, hi = np.minimum(a[ok], b[ok]).astype(np.int64), np.maximum(a[ok], b[ok]).astype(np.int64)
    keys = np.unique(lo * len(names) + hi)
    names = np.asarray(names, dtype=object)
    pairs = set()
    for x, y in zip(names[keys // len(names)], names[keys % len(names)]):
        pairs.add((x, y) if x < y else (y, x))
    return pairs


def planner_colours(planner_ids: Iterable[str], pairs: Iterable[tuple[str, str]] = (),
                    palette: Sequence[str] = PLANNER_PALETTE) -> dict[str, str]:
    """Colour per planner: hash-preferred, changed only to avoid an adjacent planner's colour."""
    ids = sorted({str(p) for p in planner_ids})
    neighbours: dict[str, set[str]] = {p: set() for p in ids}
    for a, b in pairs:
        a, b = str(a), str(b)
        if a in neighbours and b in neighbours:
            neighbours[a].add(b)
            neighbours[b].add(a)
    k = len(palette)
    chosen: dict[str, int] = {}
    for pid in ids:
        start = preferred_index(pid, k)
        taken = {chosen[n] for n in neighbours[pid] if n in chosen}
        pick = start
        for step in range(k):
            candidate = (start + step) % k
            if candidate not in taken:
                pick = candidate
                break
        chosen[pid] = pick
    return {pid: palette[i] for pid, i in chosen.items()}


def score_colour(score: float | None, ramp: Sequence[str] = SCORE_RAMP) -> str | None:
    """Colour of a score in [0, 1] on ``ramp`` (linear between stops); None when missing."""
    if score is None or not np.isfinite(score):
        return None
    s = min(1.0, max(0.0, float(score))) * (len(ramp) - 1)
    i = min(int(s), len(ramp) - 2)
    f = s - i

    def rgb(h):
        return [int(h[j:j + 2], 16) for j in (1, 3, 5)]

    a, b = rgb(ramp[i]), rgb(ramp[i + 1])
    return "#" + "".join(f"{round(x + (y - x) * f):02X}" for x, y in zip(a, b))
