"""Sites as users send them: geometries in their own CRS, converted to WGS84, each one that cannot be used
given a reason (a position out of range, lat/lon swapped, not convertible) instead of failing the batch.
Both doors use this (``zeren assign`` files and ``POST /assign`` bodies)."""
from __future__ import annotations

import numpy as np
import shapely

from zeren.geo.crs import InputCRS, geometries_to_wgs84, lonlat_problems, to_wgs84_xy


def lonlat_reasons(geoms: np.ndarray, bounds, where: list[str]) -> list[str | None]:
    """Per geometry: None when every position is a valid lon/lat, else what is wrong (with a swap hint).
    ``bounds`` (the data's lon/lat bounds) lets a swap be recognised when both orders are in range."""
    out: list[str | None] = [None] * len(geoms)
    if not len(geoms):
        return out
    xy, owner = shapely.get_coordinates(np.asarray(geoms, dtype=object), return_index=True)
    if not len(xy):
        return out
    found = lonlat_problems(xy[:, 0], xy[:, 1], bounds)
    bad = np.flatnonzero(found != "ok")
    for i in bad[::-1]:  # the first bad position of each geometry wins
        out[owner[i]] = _reason(where[owner[i]], float(xy[i, 0]), float(xy[i, 1]), str(found[i]))
    return out


def _reason(where: str, lon: float, lat: float, problem: str) -> str:
    if problem == "swapped":
        return (f"{where}: position [{lon:.10g}, {lat:.10g}] looks like lat/lon swapped; GeoJSON and "
                f"Zeren want [lon, lat]: did you swap them? [{lat:.10g}, {lon:.10g}] would be valid")
    if problem == "out_of_range":
        return (f"{where}: position [{lon:.10g}, {lat:.10g}] is out of range (lon within "
                f"[-180, 180], lat within [-90, 90]); is the CRS right?")
    return f"{where}: position [{lon:.10g}, {lat:.10g}] cannot be converted to WGS84 lon/lat"


def _plainly_fine(lon: np.ndarray, lat: np.ndarray, bounds) -> np.ndarray:
    """Points that ``lonlat_problems`` certainly finds "ok" (finite, in range, and with ``bounds`` inside them or
    not inside them once swapped), by a few comparisons: only the others are diagnosed, in words."""
    fine = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    if bounds is not None:
        lonlat_problems(np.zeros(0), np.zeros(0), bounds)  # the same refusal of unusable bounds
        minx, miny, maxx, maxy = (float(b) for b in np.asarray(bounds, dtype=float).ravel())
        inside = (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)
        swap_inside = (lat >= minx) & (lat <= maxx) & (lon >= miny) & (lon <= maxy)
        fine &= inside | ~swap_inside
    return fine


def points_to_wgs84(x: np.ndarray, y: np.ndarray, crs: InputCRS, bounds,
                    where) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Points given as coordinate arrays in ``crs``: (lon, lat) in WGS84 (NaN where unusable) and the reason
    per unusable point ({position: reason}; ``where(i)`` names point ``i``), with the rules and the words of
    ``sites_to_wgs84`` for the same points as geometries (a NaN coordinate is a missing geometry), but
    without making a geometry or a message for the points that are fine."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    problems: dict[int, str] = {}
    ok = np.isfinite(x) & np.isfinite(y)
    for i in np.flatnonzero(~ok).tolist():
        problems[i] = f"{where(i)}: empty or missing geometry"
    if crs.crs.is_geographic and ok.any():
        rows = np.flatnonzero(ok & ~_plainly_fine(x, y, None))
        found = lonlat_problems(x[rows], y[rows], None)
        for j in np.flatnonzero(found != "ok").tolist():
            i = int(rows[j])
            problems[i] = _reason(where(i), float(x[i]), float(y[i]), str(found[j]))
            ok[i] = False
    lon, lat = np.full(len(x), np.nan), np.full(len(x), np.nan)
    if ok.any():
        rows = np.flatnonzero(ok)
        lon[rows], lat[rows] = to_wgs84_xy(x[rows], y[rows], crs)
        rows = rows[~_plainly_fine(lon[rows], lat[rows], bounds)]
        found = lonlat_problems(lon[rows], lat[rows], bounds)
        for j in np.flatnonzero(found != "ok").tolist():
            i = int(rows[j])
            problems[i] = _reason(where(i), float(lon[i]), float(lat[i]), str(found[j]))
            lon[i] = lat[i] = np.nan
    return lon, lat, problems


def sites_to_wgs84(geoms: np.ndarray, crs: InputCRS, bounds, where: list[str]) -> tuple[np.ndarray, list[str | None]]:
    """Geometries given in ``crs`` as WGS84, and per geometry the reason it is unusable (or None). Missing or
    empty geometries get a reason too."""
    geoms = np.asarray(geoms, dtype=object)
    problems: list[str | None] = [None] * len(geoms)
    missing = shapely.is_missing(geoms) if len(geoms) else np.zeros(0, dtype=bool)
    empty = missing.copy()
    if len(geoms) and (~missing).any():
        empty[~missing] = shapely.is_empty(geoms[~missing])
    for i in np.flatnonzero(empty):
        problems[i] = f"{where[i]}: empty or missing geometry"
    if crs.crs.is_geographic:
        pre = lonlat_reasons(np.where(empty, None, geoms), None, where)
        problems = [p or q for p, q in zip(problems, pre)]
    ok = np.array([p is None for p in problems], dtype=bool)
    wgs = np.full(len(geoms), None, dtype=object)
    if ok.any():
        wgs[ok] = geometries_to_wgs84(geoms[ok], crs)
        after = lonlat_reasons(wgs[ok], bounds, [w for w, k in zip(where, ok) if k])
        for i, p in zip(np.flatnonzero(ok), after):
            if p is not None:
                problems[i], wgs[i] = p, None
    return wgs, problems


__all__ = ["lonlat_reasons", "sites_to_wgs84", "points_to_wgs84"]
