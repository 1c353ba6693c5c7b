"""Coordinate reference systems: parsing what users give us, getting it to WGS84 lon/lat, and the
Chinese web-map offsets GCJ-02 (AMap/Gaode, Tencent) and BD-09 (Baidu).

Everything is vectorised over numpy arrays; nothing here reads files or the environment.

GCJ-02 is the published "Mars coordinates" algorithm (Krasovsky ellipsoid, the transformLat /
transformLon polynomials). As in every published implementation it is applied only inside a rough
box around mainland China (lon 72.004–137.8347, lat 0.8293–55.8271); outside that box GCJ-02 equals
WGS84. The box is coarse: it includes neighbouring countries and excludes nothing in China, so near
its edges the "China or not" decision is only as good as the box. BD-09 is GCJ-02 plus Baidu's small
rotation and offset, which the published implementations apply everywhere; so do we.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import LambertAzimuthalEqualAreaConversion
from pyproj.exceptions import CRSError, ProjError

from zeren.geo.errors import CoordinateError, GeoInputError, UnknownCRSError

__all__ = [
    "InputCRS",
    "parse_crs",
    "is_crs_name",
    "epsg_code",
    "to_wgs84_xy",
    "from_wgs84_xy",
    "geometries_to_wgs84",
    "geometries_from_wgs84",
    "project_geometries",
    "geometry_projector",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "metric_crs",
    "lonlat_problems",
    "check_lonlat",
]

WGS84 = CRS.from_epsg(4326)
CGCS2000 = CRS.from_epsg(4490)

ACCEPTED_FORMS = (
    "an EPSG code (4326, 'EPSG:4490', '32648'), 'wgs84', 'cgcs2000', "
    "'gcj02' (also 'gcj-02', 'amap', 'gaode', 'tencent'), 'bd09' (also 'bd-09', 'bd09ll', 'baidu'), "
    "or a WKT / PROJ definition such as 'OGC:CRS84' or '+proj=utm +zone=48 +datum=WGS84'"
)

# Keys are lower-cased with spaces, hyphens and underscores removed.
_ALIASES: dict[str, tuple[int, str | None]] = {
    "wgs84": (4326, None),
    "cgcs2000": (4490, None),
    "gcj02": (4326, "gcj02"),
    "amap": (4326, "gcj02"),
    "gaode": (4326, "gcj02"),
    "tencent": (4326, "gcj02"),
    "bd09": (4326, "bd09"),
    "bd09ll": (4326, "bd09"),
    "baidu": (4326, "bd09"),
}


# ASCII digits only: str.isdigit() also accepts '²' or '٣', which int() then refuses (a 500, not a 422)
_EPSG = re.compile(r"(?:epsg:)?([0-9]{1,9})", re.IGNORECASE | re.ASCII)


def _alias_key(text: str) -> str:
    return text.strip().lower().replace(" ", "").replace("-", "").replace("_", "")


def epsg_code(text: str) -> int | None:
    """The code of ``'4490'`` or ``'EPSG:4490'`` (ASCII digits, at most 9), else None."""
    found = _EPSG.fullmatch(text.strip())
    return int(found.group(1)) if found else None


def is_crs_name(text: str) -> bool:
    """True for the CRS forms that are cheap to parse and bounded in number: a known name (wgs84, cgcs2000,
    gcj02, bd09 and their aliases) or an EPSG code. PROJ strings and WKT are not (each new one costs PROJ
    tens to hundreds of milliseconds), so interactive endpoints may refuse them."""
    return _alias_key(text) in _ALIASES or epsg_code(text) is not None


@dataclass(frozen=True)
class InputCRS:
    """A parsed input CRS: ``crs`` is the datum/projection, ``shift`` the web-map offset on top of it."""

    label: str
    crs: CRS
    shift: str | None = None  # None | "gcj02" | "bd09"

    def __str__(self) -> str:
        return self.label

    @functools.cached_property
    def is_lonlat_wgs84(self) -> bool:
        """True when coordinates in this CRS are WGS84 lon/lat as they are (WGS84 or CGCS2000 lon/lat in any axis
        order, no web-map shift): ``to_wgs84_xy`` returns them unchanged. Worked out once per instance."""
        return self.shift is None and _to_wgs84_transformer(self.crs.to_wkt()) is None


def _unknown(value: Any, why: str = "") -> UnknownCRSError:
    shown = value if isinstance(value, (int, type(None))) else repr(value)[:120]
    reason = f" ({why})" if why else ""
    return UnknownCRSError(f"unknown CRS {shown}{reason}; accepted: {ACCEPTED_FORMS}")


def parse_crs(value: Any) -> InputCRS:
    """Turn an EPSG code, a known name or a pyproj-readable definition into an ``InputCRS``.

    Raises UnknownCRSError for anything else, and for CRSs that are not horizontal 2D or that
    PROJ cannot transform to WGS84.
    """
    if isinstance(value, InputCRS):
        return value
    if value is None or isinstance(value, (bool, np.bool_, float, np.floating)):
        raise _unknown(value)
    if isinstance(value, (int, np.integer)):
        return _from_crs(value, _crs_from_epsg(value, int(value)))
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise _unknown(value, "empty")
        key = _alias_key(text)
        if key in _ALIASES:
            code, shift = _ALIASES[key]
            if shift is not None:
                return InputCRS(label=shift, crs=WGS84, shift=shift)
            return _from_crs(value, CRS.from_epsg(code))
        code = epsg_code(text)
        if code is not None:
            return _from_crs(value, _crs_from_epsg(value, code))
        value_for_pyproj: Any = text
    elif isinstance(value, CRS):
        return _from_crs(value, value)
    else:
        value_for_pyproj = value
    try:
        crs = CRS.from_user_input(value_for_pyproj)
    except (CRSError, TypeError, ValueError) as exc:
        raise _unknown(value) from exc
    return _from_crs(value, crs)


def _crs_from_epsg(value: Any, code: int) -> CRS:
    try:
        return CRS.from_epsg(code)
    except (CRSError, TypeError, ValueError, OverflowError) as exc:
        raise _unknown(value, f"no EPSG:{code}") from exc


def _from_crs(value: Any, crs: CRS) -> InputCRS:
    if crs.is_vertical or len(crs.axis_info) != 2 or not (crs.is_geographic or crs.is_projected):
        raise _unknown(value, f"{crs.type_name} is not a horizontal 2D CRS")
    try:
        _to_wgs84_transformer(crs.to_wkt())
    except (CRSError, ProjError) as exc:
        raise _unknown(value, "cannot be transformed to WGS84") from exc
    return InputCRS(label=crs.to_string(), crs=crs, shift=None)


@functools.lru_cache(maxsize=128)
def _transformer(src_wkt: str, dst_wkt: str) -> Transformer:
    # pyproj >= 3.1 Transformers are safe to share between threads.
    return Transformer.from_crs(CRS.from_wkt(src_wkt), CRS.from_wkt(dst_wkt), always_xy=True)


@functools.lru_cache(maxsize=128)
def _to_wgs84_transformer(crs_wkt: str) -> Transformer | None:
    """None when ``crs_wkt`` already is lon/lat on WGS84 or CGCS2000 (any axis order).

    CGCS2000 (EPSG:4490) and WGS84 agree to a few centimetres, far below anything Zeren measures,
    so CGCS2000 lon/lat are used as WGS84 unchanged.
    """
    crs = CRS.from_wkt(crs_wkt)
    if crs.equals(WGS84, ignore_axis_order=True) or crs.equals(CGCS2000, ignore_axis_order=True):
        return None
    return _transformer(crs_wkt, WGS84.to_wkt())


@functools.lru_cache(maxsize=128)
def _from_wgs84_transformer(crs_wkt: str) -> Transformer | None:
    if _to_wgs84_transformer(crs_wkt) is None:
        return None
    return _transformer(WGS84.to_wkt(), crs_wkt)


def _as_xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        xa = np.asarray(x, dtype=float)
        ya = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as exc:
        raise CoordinateError(f"coordinates must be numbers: {exc}") from exc
    return np.broadcast_arrays(xa, ya)


def to_wgs84_xy(x: Any, y: Any, crs: InputCRS | Any) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in ``crs`` as WGS84 (lon, lat) float arrays.

    Points PROJ cannot transform come back as inf.
    """
    crs = parse_crs(crs)
    x, y = _as_xy(x, y)
    transformer = _to_wgs84_transformer(crs.crs.to_wkt())
    if transformer is not None:
        x, y = (np.asarray(a, dtype=float) for a in transformer.transform(x, y))
    if crs.shift == "gcj02":
        return gcj02_to_wgs84(x, y)
    if crs.shift == "bd09":
        return bd09_to_wgs84(x, y)
    return x.copy(), y.copy()


def from_wgs84_xy(lon: Any, lat: Any, target: InputCRS | Any) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 (lon, lat) as coordinates in ``target`` (the inverse of ``to_wgs84_xy``)."""
    target = parse_crs(target)
    lon, lat = _as_xy(lon, lat)
    if target.shift == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if target.shift == "bd09":
        return wgs84_to_bd09(lon, lat)
    transformer = _from_wgs84_transformer(target.crs.to_wkt())
    if transformer is None:
        return lon.copy(), lat.copy()
    x, y = transformer.transform(lon, lat)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _as_geometry_array(geoms: Any) -> np.ndarray:
    arr = np.asarray(geoms, dtype=object)
    ok = shapely.is_geometry(arr) | shapely.is_missing(arr)
    if not np.all(ok):
        raise GeoInputError("expected shapely geometries (or None)")
    return arr


def _transform_geometries(geoms: Any, func: Callable[[np.ndarray, np.ndarray], tuple]) -> np.ndarray:
    def on_coords(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(func(xy[:, 0], xy[:, 1]))

    # include_z=False: the result is 2D; Zeren's geometries have no meaningful Z.
    return shapely.transform(_as_geometry_array(geoms), on_coords, include_z=False)


def geometries_to_wgs84(geoms: Any, crs: InputCRS | Any) -> np.ndarray:
    """Shapely geometries in ``crs`` as geometries in WGS84 lon/lat (structure kept, Z dropped)."""
    crs = parse_crs(crs)
    return _transform_geometries(geoms, lambda x, y: to_wgs84_xy(x, y, crs))


def geometries_from_wgs84(geoms: Any, target: InputCRS | Any) -> np.ndarray:
    """WGS84 shapely geometries in ``target`` (e.g. "gcj02" to draw on AMap/Tencent tiles)."""
    target = parse_crs(target)
    return _transform_geometries(geoms, lambda x, y: from_wgs84_xy(x, y, target))


def geometry_projector(src: Any, dst: Any) -> Callable[[Any], np.ndarray]:
    """``project_geometries`` from ``src`` to ``dst`` as a function of the geometries alone, with the CRS work
    (parsing, WKT, the transformer) done once: for callers that project small batches many times."""
    transformer = _transformer(CRS.from_user_input(src).to_wkt(), CRS.from_user_input(dst).to_wkt())

    def on_coords(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    def project(geoms: Any) -> np.ndarray:
        return shapely.transform(_as_geometry_array(geoms), on_coords, include_z=False)

    return project


def project_geometries(geoms: Any, src: Any, dst: Any) -> np.ndarray:
    """Shapely geometries reprojected from ``src`` to ``dst`` (pyproj-readable CRSs; no GCJ-02/BD-09 here:
    this is for moving between WGS84 and the metric CRS that areas and distances are measured in)."""
    return geometry_projector(src, dst)(geoms)


# --- GCJ-02 / BD-09 -------------------------------------------------------------------------------

_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
_CHINA_BOX = (72.004, 0.8293, 137.8347, 55.8271)  # min lon, min lat, max lon, max lat
_INVERSE_TOL = 1e-10  # degrees
_INVERSE_MAX_ITER = 10


def _in_china_box(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    minx, miny, maxx, maxy = _CHINA_BOX
    return (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)


def in_china_box(lon: Any, lat: Any) -> np.ndarray:
    """Whether each WGS84 position lies in the coarse box around China (the box the GCJ-02 shift uses)."""
    return _in_china_box(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))


def _gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS84 at WGS84 (lon, lat), in degrees; zero outside the China box."""
    inside = _in_china_box(lon, lat)
    # Evaluate the polynomials at a harmless point outside the box so NaN/inf raise no warnings.
    lon_in = np.where(inside, lon, 105.0)
    lat_in = np.where(inside, lat, 35.0)
    x = lon_in - 105.0
    y = lat_in - 35.0
    pi = math.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    dlat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
        + common
        + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
        + common
        + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    )
    rad_lat = np.radians(lat_in)
    magic = 1.0 - _KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * pi)
    dlon = dlon * 180.0 / (_KRASOVSKY_A / sqrt_magic * np.cos(rad_lat) * pi)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _invert(
    forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    u: np.ndarray,
    v: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve forward(x, y) = (u, v) by fixed-point iteration from the guess (x, y).

    The offsets vary slowly (their Jacobian is within ~1e-3 of the identity), so each step gains
    about three digits; the loop stops when the largest correction is below 1e-10 degrees.
    """
    for _ in range(_INVERSE_MAX_ITER):
        fx, fy = forward(x, y)
        dx = fx - u
        dy = fy - v
        x = x - dx
        y = y - dy
        corrections = np.abs(np.concatenate([dx.ravel(), dy.ravel()]))
        if np.max(corrections, initial=0.0, where=np.isfinite(corrections)) < _INVERSE_TOL:
            break
    return x, y


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat to GCJ-02 (AMap, Tencent); unchanged outside the China box."""
    lon, lat = _as_xy(lon, lat)
    dlon, dlat = _gcj02_offset(lon, lat)
    return lon + dlon, lat + dlat


def _finite_only(func: Callable) -> Callable:
    """Apply an element-wise (lon, lat) function to finite points; others pass through unchanged."""

    @functools.wraps(func)
    def wrapper(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = _as_xy(lon, lat)
        finite = np.isfinite(lon) & np.isfinite(lat)
        out_lon, out_lat = func(np.where(finite, lon, 0.0), np.where(finite, lat, 0.0))
        return np.where(finite, out_lon, lon), np.where(finite, out_lat, lat)

    return wrapper


@_finite_only
def gcj02_to_wgs84(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 lon/lat to WGS84, iterated to better than 1e-9 degrees (about 0.1 mm)."""
    dlon, dlat = _gcj02_offset(lon, lat)
    return _invert(wgs84_to_gcj02, lon, lat, lon - dlon, lat - dlat)


@_finite_only
def gcj02_to_bd09(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 lon/lat to BD-09 (Baidu); applied everywhere, as Baidu's published formula is."""
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


@_finite_only
def bd09_to_gcj02(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 lon/lat to GCJ-02: the usual closed-form approximation (~1 m), then iterated."""
    x = lon - 0.0065
    y = lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _invert(gcj02_to_bd09, lon, lat, z * np.cos(theta), z * np.sin(theta))


def wgs84_to_bd09(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat to BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 lon/lat to WGS84 (via GCJ-02), both steps iterated."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


# --- metric CRS and coordinate sanity ------------------------------------------------------------


def _lonlat_bounds(bounds: Any, what: str = "bounds") -> tuple[float, float, float, float]:
    try:
        values = np.asarray(bounds, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise GeoInputError(f"{what} must be four numbers (minx, miny, maxx, maxy), got {bounds!r}") from exc
    if values.size != 4:
        raise GeoInputError(f"{what} must be four numbers (minx, miny, maxx, maxy), got {bounds!r}")
    if not np.all(np.isfinite(values)):
        raise GeoInputError(f"{what} are empty or not finite ({bounds!r}); is there any geometry?")
    minx, miny, maxx, maxy = (float(v) for v in values)
    if minx > maxx or miny > maxy:
        raise GeoInputError(f"{what} {bounds!r} have min > max")
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise CoordinateError(f"{what} {bounds!r} are not lon/lat degrees in WGS84")
    return minx, miny, maxx, maxy


def metric_crs(bounds: Any) -> CRS:
    """A metre-based CRS for data with lon/lat ``bounds`` (minx, miny, maxx, maxy).

    The WGS 84 / UTM zone of the centre when the data spans at most 6 degrees of longitude
    (one zone's width); otherwise a Lambert azimuthal equal-area projection centred on the data,
    in which areas are exact and distances near the centre close.
    """
    minx, miny, maxx, maxy = _lonlat_bounds(bounds)
    cx = (minx + maxx) / 2.0
    cy = (miny + maxy) / 2.0
    if maxx - minx <= 6.0:
        zone = min(int(math.floor((cx + 180.0) / 6.0)) + 1, 60)
        return CRS.from_epsg((32600 if cy >= 0 else 32700) + zone)
    lon0 = round(cx, 6)
    lat0 = round(cy, 6)
    conversion = LambertAzimuthalEqualAreaConversion(latitude_natural_origin=lat0, longitude_natural_origin=lon0)
    return ProjectedCRS(
        conversion=conversion,
        geodetic_crs=WGS84,
        name=f"WGS 84 / Lambert azimuthal equal-area at {lon0}E {lat0}N",
    )


def lonlat_problems(lon: Any, lat: Any, data_bounds: Any = None) -> np.ndarray:
    """Element-wise diagnosis of lon/lat pairs: "ok", "not_finite", "out_of_range" or "swapped".

    "swapped": lat is out of range but (lat, lon) is a valid pair, or, given ``data_bounds``
    (minx, miny, maxx, maxy), the point lies outside them while (lat, lon) lies inside.
    """
    lon, lat = _as_xy(lon, lat)
    finite = np.isfinite(lon) & np.isfinite(lat)
    in_range = (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    swap_in_range = (np.abs(lat) <= 180) & (np.abs(lon) <= 90)
    swapped = (np.abs(lat) > 90) & swap_in_range
    if data_bounds is not None:
        minx, miny, maxx, maxy = _lonlat_bounds(data_bounds, "data_bounds")
        inside = (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)
        swap_inside = (lat >= minx) & (lat <= maxx) & (lon >= miny) & (lon <= maxy)
        swapped |= ~inside & swap_inside
    return np.select(
        [~finite, swapped, ~in_range],
        ["not_finite", "swapped", "out_of_range"],
        default="ok",
    )


def _fmt(value: float) -> str:
    return f"{value:.10g}"


def check_lonlat(lon: Any, lat: Any, data_bounds: Any = None) -> None:
    """Raise CoordinateError explaining what is wrong with one lon/lat pair; return None if fine."""
    try:
        lon_f = float(lon)
        lat_f = float(lat)
    except (TypeError, ValueError) as exc:
        raise CoordinateError(f"lon and lat must be numbers, got lon={lon!r}, lat={lat!r}") from exc
    problem = str(lonlat_problems(lon_f, lat_f, data_bounds))
    if problem == "ok":
        return
    if problem == "not_finite":
        raise CoordinateError(f"lon and lat must be finite numbers, got lon={lon_f}, lat={lat_f}")
    lon_s, lat_s = _fmt(lon_f), _fmt(lat_f)
    out_of_range = []
    if abs(lon_f) > 180:
        out_of_range.append(f"longitude {lon_s} is out of range [-180, 180]")
    if abs(lat_f) > 90:
        out_of_range.append(f"latitude {lat_s} is out of range [-90, 90]")
    if problem == "out_of_range":
        raise CoordinateError("; ".join(out_of_range))
    # swapped
    what = "; ".join(out_of_range) or f"lon={lon_s}, lat={lat_s} lies outside the data"
    swap_inside = False
    if data_bounds is not None:
        minx, miny, maxx, maxy = _lonlat_bounds(data_bounds, "data_bounds")
        swap_inside = minx <= lat_f <= maxx and miny <= lon_f <= maxy
    where = "lies inside the data" if swap_inside else "would be valid"
    raise CoordinateError(f"{what}; did you swap lon and lat? lon={lat_s}, lat={lon_s} {where}")
