"""The nesting of base zones: which zone of the coarser kind holds each zone."""
from __future__ import annotations

import numpy as np
import shapely

from zeren.geo.kinds import BASE_KINDS

# community and village sit in a subdistrict/township; a subdistrict in a district
PARENT_KIND = {"community": "subdistrict", "village": "subdistrict", "subdistrict": "district"}


def parent_kind(kind: str) -> str | None:
    return PARENT_KIND.get(kind)


def derive_parent_codes(children, parents, parent_codes) -> np.ndarray:
    """For each child geometry, the code of the parent that holds its representative point (None if none).

    A point on the surface (not the centroid, which may fall outside a concave zone) decides; where it
    lies on a shared border the lowest parent code wins, so the answer does not depend on row order.
    """
    children = np.asarray(children, dtype=object)
    parent_codes = np.asarray(parent_codes, dtype=object)
    out = np.full(len(children), None, dtype=object)
    if not len(children) or not len(parent_codes):
        return out
    points = shapely.point_on_surface(children)
    child, parent = shapely.STRtree(np.asarray(parents, dtype=object)).query(points, predicate="covered_by")
    order = np.lexsort((parent_codes[parent].astype(str), child))
    child, parent = child[order], parent[order]
    first = np.r_[True, child[1:] != child[:-1]]
    out[child[first]] = parent_codes[parent[first]]
    return out


__all__ = ["BASE_KINDS", "PARENT_KIND", "parent_kind", "derive_parent_codes"]
