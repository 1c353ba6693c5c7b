"""Who is responsible for one point (``zeren lookup`` and ``GET /lookup``): the same answer for both doors."""
from __future__ import annotations

import functools

from zeren.api.service.workspace import Workspace
from zeren.geo.crs import InputCRS, parse_crs
from zeren.geo.errors import GeoInputError

MAX_CRS_TEXT = 2000


@functools.lru_cache(maxsize=256)
def _crs_cached(text: str) -> InputCRS:
    return parse_crs(text)


def input_crs(value: str | InputCRS | None) -> InputCRS:
    """The CRS a user's coordinates are in: a name (wgs84, cgcs2000, gcj02, bd09), an EPSG code, or a PROJ/WKT
    definition; parsed once per distinct text."""
    if isinstance(value, InputCRS):
        return value
    text = (value or "wgs84").strip()
    if len(text) > MAX_CRS_TEXT:
        raise GeoInputError(f"crs: too long (over {MAX_CRS_TEXT:,} characters); give an EPSG code or one of wgs84, "
                            f"cgcs2000, gcj02, bd09")
    return _crs_cached(text)


def lookup(ws: Workspace, x: float, y: float, crs="wgs84", as_of=None, *, include_private: bool = False) -> dict:
    """The full answer for one point: lead (and the zone that makes them lead), every planner appointed to
    the zones here, the planners to consult, the zones with their share, and the nearest zone with a lead
    when no lead covers the point."""
    return ws.catalogue.lookup(x, y, input_crs(crs), as_of, include_private=include_private)
