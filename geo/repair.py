"""Geometry repair, in one place: invalid polygons (bow ties, self-touching rings) made valid with
``shapely.make_valid`` and reduced to their polygonal part, for zones (importer, coverage) and for sites
(the API's GeoJSON bodies). Vectorised over arrays."""
from __future__ import annotations

import numpy as np
import shapely

from zeren.geo.errors import GeoInputError


def polygonal_part(geoms: np.ndarray) -> np.ndarray:
    """The polygons of each geometry, as one (Multi)Polygon per input; an empty Polygon when there are none."""
    geoms = np.asarray(geoms, dtype=object)
    parts, index = shapely.get_parts(geoms, return_index=True)
    while True:  # make_valid may nest a MultiPolygon inside a GeometryCollection
        multi = np.isin(shapely.get_type_id(parts), (4, 5, 6, 7))
        if not multi.any():
            break
        sub, sub_index = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        index = np.concatenate([index[~multi], index[multi][sub_index]])
    keep = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    parts, index = parts[keep], index[keep]
    out = np.array([shapely.Polygon()] * len(geoms), dtype=object)
    if len(parts):
        order = np.argsort(index, kind="stable")
        present, dense = np.unique(index[order], return_inverse=True)
        out[present] = shapely.multipolygons(parts[order], indices=dense)
    single = shapely.get_num_geometries(out) == 1
    out[single] = shapely.get_geometry(out[single], 0)
    return out


def repair_polygons(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(geometries, repaired, lost): invalid polygons replaced by their valid polygonal part; ``lost`` where
    nothing polygonal with an area is left (e.g. a ring collapsed to a line). Valid ones are kept as they are."""
    geoms = np.asarray(geoms, dtype=object)
    present = ~shapely.is_missing(geoms)
    invalid = present.copy()
    invalid[present] = ~shapely.is_valid(geoms[present])
    out = geoms.copy()
    lost = np.zeros(len(geoms), dtype=bool)
    if invalid.any():
        fixed = polygonal_part(shapely.make_valid(geoms[invalid]))
        gone = shapely.is_empty(fixed) | (shapely.area(fixed) <= 0)
        out[invalid] = np.where(gone, None, fixed)
        lost[np.flatnonzero(invalid)[gone]] = True
    return out, invalid & ~lost, lost


def repair_site(geom: shapely.Geometry, where: str = "geometry") -> tuple[shapely.Geometry, bool]:
    """One site made valid, keeping its dimension (a polygon stays polygonal); (geometry, whether repaired).
    GeoInputError when nothing usable is left."""
    if shapely.is_valid(geom):
        return geom, False
    dim = shapely.get_dimensions(geom)
    if dim == 2:
        fixed, _, lost = repair_polygons(np.array([geom], dtype=object))
        if lost[0]:
            raise GeoInputError(f"{where}: the polygon has no area (all its points on a line); send a real polygon")
        return fixed[0], True
    fixed = shapely.make_valid(geom)
    if fixed.is_empty or fixed.geom_type == "GeometryCollection":
        raise GeoInputError(f"{where}: the geometry is not valid and cannot be repaired into one part type")
    return fixed, True


__all__ = ["polygonal_part", "repair_polygons", "repair_site"]
