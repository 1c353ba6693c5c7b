"""Comparing two versions of a boundary layer: which zones are the same, how a changed zone changed, and
which new zones took the ground of an old one (its successors) -- the geometry behind edition imports,
edition diffs and carry-over of appointments. Pure functions over arrays of shapely geometries in EPSG:4326;
areas and distances are measured through ``to_metric`` (a projector to a metric CRS, ``geo.crs``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

# Two versions of a zone are the same shape when their normalised vertices agree to 1e-9 degrees (0.1 mm):
# what a re-read of the same file through the same CRS conversion gives, not a redrawn boundary.
SAME_TOLERANCE_DEG = 1e-9


def _as_multi(geoms: np.ndarray) -> np.ndarray:
    """Polygons as one-part MultiPolygons (the store keeps zones as MultiPolygons)."""
    single = np.flatnonzero(shapely.get_type_id(geoms) == 3)
    if not len(single):
        return geoms
    out = geoms.copy()
    out[single] = shapely.multipolygons(geoms[single], indices=np.arange(len(single)))
    return out


def same_geometry(old: np.ndarray, new: np.ndarray, tolerance: float = SAME_TOLERANCE_DEG) -> np.ndarray:
    """Element-wise: is ``new`` the same shape as ``old``? Vertex order, ring starts and a Polygon given as a
    one-part MultiPolygon do not matter."""
    old = np.asarray(old, dtype=object)
    new = np.asarray(new, dtype=object)
    if not len(old):
        return np.zeros(0, dtype=bool)
    return np.asarray(shapely.equals_exact(shapely.normalize(_as_multi(old)), shapely.normalize(_as_multi(new)),
                                           tolerance=tolerance), dtype=bool)


def shape_change(old: np.ndarray, new: np.ndarray, to_metric) -> pd.DataFrame:
    """Per pair (old[i], new[i]): ``iou`` (intersection over union of the areas), ``area_old_m2``,
    ``area_new_m2``, ``area_change_m2`` (new - old) and ``hausdorff_m`` (the farthest a boundary moved)."""
    old_m = to_metric(np.asarray(old, dtype=object))
    new_m = to_metric(np.asarray(new, dtype=object))
    area_old = shapely.area(old_m)
    area_new = shapely.area(new_m)
    inter = shapely.area(shapely.intersection(old_m, new_m))
    union = area_old + area_new - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 1.0)
    return pd.DataFrame({"iou": np.round(iou, 6), "area_old_m2": np.round(area_old, 1),
                         "area_new_m2": np.round(area_new, 1), "area_change_m2": np.round(area_new - area_old, 1),
                         "hausdorff_m": np.round(shapely.hausdorff_distance(old_m, new_m), 1)})


def overlap_pairs(old: np.ndarray, new: np.ndarray, to_metric, min_share: float = 0.001) -> pd.DataFrame:
    """Every (old, new) pair of zones sharing ground: ``old``/``new`` positions, ``area_m2`` shared,
    ``share_of_old`` (the part of the old zone that lies in the new one) and ``share_of_new`` (the part of the
    new zone that came from the old one). Pairs whose shares are both under ``min_share`` (slivers along a
    shared border) are left out. Sorted by old position, then by share_of_old descending."""
    columns = ["old", "new", "area_m2", "share_of_old", "share_of_new"]
    old_m = to_metric(np.asarray(old, dtype=object))
    new_m = to_metric(np.asarray(new, dtype=object))
    if not len(old_m) or not len(new_m):
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("old", "new") else float) for c in columns})
    new_pos, old_pos = shapely.STRtree(old_m).query(new_m, predicate="intersects")
    shared = shapely.area(shapely.intersection(old_m[old_pos], new_m[new_pos]))
    area_old = shapely.area(old_m)[old_pos]
    area_new = shapely.area(new_m)[new_pos]
    with np.errstate(invalid="ignore", divide="ignore"):
        share_old = np.where(area_old > 0, shared / area_old, 0.0)
        share_new = np.where(area_new > 0, shared / area_new, 0.0)
    frame = pd.DataFrame({"old": old_pos.astype("int64"), "new": new_pos.astype("int64"), "area_m2": shared,
                          "share_of_old": share_old, "share_of_new": share_new})
    frame = frame[(frame["share_of_old"] >= min_share) | (frame["share_of_new"] >= min_share)]
    return frame.sort_values(["old", "share_of_old", "new"], ascending=[True, False, True],
                             kind="stable").reset_index(drop=True)


def largest_overlap(geoms: np.ndarray, containers: np.ndarray, to_metric) -> np.ndarray:
    """For each geometry, the position of the container holding most of its area (-1 when none meets it)."""
    out = np.full(len(geoms), -1, dtype=np.int64)
    pairs = overlap_pairs(geoms, containers, to_metric, min_share=0.0)
    if len(pairs):
        best = pairs.sort_values(["old", "area_m2"], ascending=[True, False], kind="stable").drop_duplicates("old")
        best = best[best["area_m2"] > 0]
        out[best["old"].to_numpy()] = best["new"].to_numpy()
    return out


__all__ = ["SAME_TOLERANCE_DEG", "same_geometry", "shape_change", "overlap_pairs", "largest_overlap"]
