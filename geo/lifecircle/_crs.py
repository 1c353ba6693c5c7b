"""The metric CRS used for measuring (``geo.crs.metric_crs``: UTM of the data's centre, LAEA when wider)."""
from __future__ import annotations

import numpy as np
import pyproj

from zeren.geo.crs import metric_crs as shared_metric_crs
from zeren.geo.lifecircle.errors import LifeCircleError

WGS84 = pyproj.CRS.from_epsg(4326)


def metric_crs(bounds_wgs84) -> pyproj.CRS:
    """A metric CRS for data with these (minx, miny, maxx, maxy) bounds in EPSG:4326 (``geo.crs.metric_crs``)."""
    bounds = np.asarray(bounds_wgs84, dtype=float)
    if bounds.shape != (4,) or not np.isfinite(bounds).all():
        raise LifeCircleError(f"无法确定投影坐标系：数据范围无效 / cannot pick a metric CRS: bad bounds {bounds_wgs84!r}")
    return shared_metric_crs(tuple(bounds))


def require_crs(frame, what: str) -> pyproj.CRS:
    """The frame's CRS, or a clear error naming the input."""
    crs = getattr(frame, "crs", None)
    if crs is None:
        raise LifeCircleError(f"{what}没有坐标系 / {what} has no CRS: set one (e.g. EPSG:4326) before use")
    return pyproj.CRS.from_user_input(crs)


def bounds_wgs84(geoseries) -> np.ndarray:
    """Total bounds of a GeoSeries in EPSG:4326."""
    return np.asarray(geoseries.to_crs(WGS84).total_bounds, dtype=float)
