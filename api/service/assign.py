"""Assigning many sites at once (``zeren assign FILE`` and ``POST /assign``): each site, in the CRS it came in,
is converted to WGS84 and gets the assignment columns (lead, planners, consultations, zones, nearest...), or
a reason it cannot be assigned. One set of rules for both doors:

* input columns (or feature properties) named like an added column are refused before any work, naming them,
  so nothing the user sent is overwritten;
* a site that cannot be used (no geometry, positions out of range, lat/lon swapped) is named with its reason.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from zeren.api.service.budget import geometry_vertices
from zeren.api.service.workspace import Workspace
from zeren.geo.answer import ASSIGNMENT_COLUMNS, assignment_columns
from zeren.geo.crs import InputCRS
from zeren.geo.sites import sites_to_wgs84
from zeren.layers.errors import ValidationError

# What assignment adds to each site: the assignment columns, plus ``error`` for sites that cannot be assigned
# and ``repaired`` for invalid polygons made valid on the way in.
ADDED_COLUMNS = (*ASSIGNMENT_COLUMNS, "error", "repaired")
CHUNK = 200_000
_LIST_COLUMNS = ("planners", "consultations", "zones")


def check_columns(names, where: str) -> None:
    """Refuse input columns/properties that assignment would overwrite (422 / exit 2, naming them)."""
    clashes = [c for c in ADDED_COLUMNS if c in set(names)]
    if clashes:
        raise ValidationError(f"{where} already has {', '.join(clashes)}, which assignment adds; rename "
                              f"{'it' if len(clashes) == 1 else 'them'} first (nothing was assigned)",
                              [f"{where}: {c}" for c in clashes])


@dataclass
class SiteBatch:
    """The answer for a batch: ``columns`` (one row per input site, in input order; empty lists and False
    for the sites that could not be assigned), ``wgs84`` geometries (None where unusable), ``problems``
    (None or the reason per site) and ``as_of``."""

    columns: pd.DataFrame
    wgs84: np.ndarray
    problems: list
    as_of: pd.Timestamp

    @property
    def good(self) -> np.ndarray:
        return np.array([p is None for p in self.problems], dtype=bool)

    @property
    def bad_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.good)


def _empty_columns(n: int) -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series([None] * n, dtype=object) for c in ASSIGNMENT_COLUMNS})
    out["covered"] = False
    out["split"] = False
    for c in _LIST_COLUMNS:
        out[c] = [[] for _ in range(n)]
    out["nearest_distance_m"] = np.full(n, np.nan)
    return out


def assign_sites(ws: Workspace, geoms: np.ndarray, crs: InputCRS, as_of=None, *, problems=None,
                 where: list[str] | None = None, progress=None, chunk: int = CHUNK, budget=None,
                 deadline=None) -> SiteBatch:
    """Convert ``geoms`` (in ``crs``) to WGS84 and assign the usable ones on ``as_of``. ``problems``: reasons
    already known per site (e.g. unparsable GeoJSON), kept; ``where``: how messages name each site;
    ``budget`` (:class:`~zeren.api.service.budget.WorkBudget`): vertex limits checked before any work;
    ``deadline`` (:class:`~zeren.api.service.budget.Deadline`): checked between chunks."""
    from zeren.geo.validity import as_timestamp

    catalogue = ws.catalogue
    n = len(geoms)
    where = where or [f"site {i + 1}" for i in range(n)]
    if budget is not None:
        budget.check(geometry_vertices(geoms), lambda i: where[i])
    known = list(problems) if problems is not None else [None] * n
    usable = np.array([p is None for p in known], dtype=bool)
    wgs = np.full(n, None, dtype=object)
    if usable.any():
        converted, found = sites_to_wgs84(np.asarray(geoms, dtype=object)[usable], crs, catalogue.index.bounds,
                                          [w for w, u in zip(where, usable) if u])
        wgs[usable] = converted
        for i, p in zip(np.flatnonzero(usable), found):
            known[i] = p
    good = np.flatnonzero([p is None for p in known])
    day = as_timestamp(as_of)
    out = _empty_columns(n)
    if len(good) and len(catalogue.index):
        parts = []
        for start in range(0, len(good), chunk):
            if deadline is not None:
                deadline.check()
            rows = good[start:start + chunk]
            cols = assignment_columns(catalogue.assign(wgs[rows], day))
            cols.index = rows
            parts.append(cols)
            if progress is not None:
                progress(len(rows))
        found_cols = pd.concat(parts)
        for c in ASSIGNMENT_COLUMNS:
            if c in _LIST_COLUMNS:
                values = out[c].tolist()
                for i, v in zip(found_cols.index.tolist(), found_cols[c].tolist()):
                    values[i] = v
                out[c] = values
            elif c == "nearest_distance_m":
                column = out[c].to_numpy(dtype=float).copy()
                column[found_cols.index.to_numpy()] = found_cols[c].to_numpy(dtype=float)
                out[c] = column
            else:  # object columns keep None as None (pandas would infer a string dtype with NaN)
                column = out[c].to_numpy(dtype=object).copy()
                column[found_cols.index.to_numpy()] = found_cols[c].to_numpy(dtype=object)
                out[c] = pd.Series(column, dtype=object, index=out.index)
        out["covered"] = out["covered"].astype(bool)
        out["split"] = out["split"].astype(bool)
    return SiteBatch(columns=out, wgs84=wgs, problems=known, as_of=day)


__all__ = ["ADDED_COLUMNS", "check_columns", "assign_sites", "SiteBatch", "CHUNK"]
