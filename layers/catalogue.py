"""A store loaded for answering questions: zones indexed once, planners and appointments in memory.

The CLI makes one per command; the API makes one in its lifespan and reloads the parts a write changed.

Threads: the API answers from several threads while a reload may run. A reload builds the new state outside
the lock and swaps it in under it, bumping ``generation``; a responsibility computed from the state before a
reload is returned to its caller but never cached after the reload. Each answer works from one
:class:`~geo.assign.Responsibility` and the index it was computed for (``resp.index``), so a zone reload in the
middle of a question cannot mix two indexes.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from zeren.geo.answer import MAX_SUGGESTION_M, PlannerBook, explain_uncovered, site_answer
from zeren.geo.assign import Assignment, Responsibility, ZoneIndex, assign
from zeren.geo.crs import InputCRS, check_lonlat, parse_crs, to_wgs84_xy
from zeren.geo.live_index import LiveIndex
from zeren.geo.validity import as_timestamp
from zeren.layers.store import Store

_RESPONSIBILITY_CACHE = 32


@dataclass(frozen=True)
class Site:
    """A point as the user gave it and as Zeren understood it."""

    lon: float
    lat: float
    given: tuple[float, float]
    crs: str

    def as_dict(self) -> dict:
        return {"lon": round(self.lon, 8), "lat": round(self.lat, 8), "given": list(self.given), "crs": self.crs}


class Catalogue:
    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._generation = 0  # bumped (under the lock) by every reload
        self._projects: LiveIndex | None = None  # built on the first bbox question, then kept up to date in place
        self._responsibility: OrderedDict = OrderedDict()
        self.marks = self.reload(zones=True)  # the store's change marks of what was loaded

    def reload(self, *, zones: bool) -> dict:
        """Reload the people (and the zones, with ``zones``) from one snapshot of the store, so the catalogue
        never pairs one process's half-written change with the rest (another replica's edition import, say);
        the index is built after the snapshot is released. Returns the store's change marks of that snapshot."""
        with self.store.snapshot():
            marks = self.store.change_marks()
            frame = self.store.zones() if zones else None
            people = (self.store.planners(), self.store.appointments(), self.store.consultation_kinds())
        if zones:
            index = ZoneIndex(frame)
            with self._lock:
                self.index = index
                self._generation += 1
                self._responsibility = OrderedDict()
        self._set_people(*people)
        return marks

    def reload_zones(self) -> None:
        index = ZoneIndex(self.store.zones())
        with self._lock:
            self.index = index
            self._generation += 1
            self._responsibility: OrderedDict = OrderedDict()

    def reload_people(self) -> None:
        """Planners, appointments and consultation rules: cheap to reload after every write."""
        with self.store.snapshot():
            people = (self.store.planners(), self.store.appointments(), self.store.consultation_kinds())
        self._set_people(*people)

    def _set_people(self, planners, appointments, kinds) -> None:
        with self._lock:
            self.planners = planners
            self.appointments = appointments
            self.consultation_kinds = kinds
            self.public_book = PlannerBook(planners)
            self.private_book = PlannerBook(planners, include_private=True)
            self._projects = None  # another process may have added projects: rebuild on the next question
            self._generation += 1
            self._responsibility = OrderedDict()

    @property
    def generation(self) -> int:
        """How many times the zones or the people were (re)loaded."""
        return self._generation

    def responsibility(self, as_of=None) -> Responsibility:
        """Who holds which zone on ``as_of`` (cached per date; ``resp.index`` is the index it belongs to)."""
        key = as_timestamp(as_of)
        with self._lock:
            cached = self._responsibility.get(key)
            if cached is not None:
                self._responsibility.move_to_end(key)
                return cached
            index, appointments, kinds = self.index, self.appointments, self.consultation_kinds
            generation = self._generation
        resp = index.responsibility(appointments, key, kinds)
        with self._lock:
            if self._generation == generation:  # else a reload ran meanwhile: answer with it, do not keep it
                self._responsibility[key] = resp
                while len(self._responsibility) > _RESPONSIBILITY_CACHE:
                    self._responsibility.popitem(last=False)
        return resp

    def warm(self, as_of=None) -> None:
        """Build now what the first lookups would otherwise wait for: the responsibility of ``as_of`` (today)
        and its lon/lat tree of the zones with a lead, which the nearest-zone search of a lookup queries (once
        per date; nothing is projected: batches with many uncovered sites build the metric trees they need)."""
        self.responsibility(as_of).lead_lonlat_tree

    # -- questions --------------------------------------------------------------------------------
    def site(self, x: float, y: float, crs: str | InputCRS = "wgs84") -> Site:
        """Convert a point given in any supported CRS to WGS84, refusing impossible or swapped coordinates."""
        crs = crs if isinstance(crs, InputCRS) else parse_crs(crs)
        bounds = self.index.bounds
        if crs.is_lonlat_wgs84 and _plainly_valid(x, y, bounds):  # nothing to convert or to explain
            return Site(float(x), float(y), (x, y), crs.label)
        if crs.crs.is_geographic:
            check_lonlat(x, y, self.index.bounds)
        lon, lat = to_wgs84_xy(np.array([x], float), np.array([y], float), crs)
        check_lonlat(float(lon[0]), float(lat[0]), self.index.bounds)
        return Site(float(lon[0]), float(lat[0]), (x, y), crs.label)

    def assign(self, geoms, as_of=None, **options) -> Assignment:
        resp = self.responsibility(as_of)
        return assign(resp.index, resp, geoms, **options)

    def lookup(self, x: float, y: float, crs: str | InputCRS = "wgs84", as_of=None, *,
               include_private: bool = False, max_suggestion_m: float = MAX_SUGGESTION_M) -> dict:
        """The full answer for one point (the shape of ``zeren lookup --json`` and ``GET /lookup``; the API's
        hot path: a tree query, a few array operations and the answer built from precomputed zone references).
        An uncovered point says why (``geo.answer.explain_uncovered``): outside the service area and how far
        (no nearest zone offered beyond ``max_suggestion_m``), or no edition in force on the date."""
        site = self.site(x, y, crs)
        day = as_timestamp(as_of)
        point = shapely.points([site.lon], [site.lat])
        result = self.assign(point, day)
        book = self.private_book if include_private else self.public_book
        answer = site_answer(result, 0, book, max_suggestion_m=max_suggestion_m)
        if not answer["covered"] and len(result.index):
            explain_uncovered(answer, result, 0, result.index.to_metric(point)[0], max_suggestion_m=max_suggestion_m)
        else:
            answer.update(outside_service_area=False if answer["zones"] else None,
                          service_area_distance_m=0.0 if answer["zones"] else None,
                          notice=None if answer["covered"] else "尚未导入任何区域 / no zones have been imported yet")
        answer["site"] = site.as_dict()
        answer["as_of"] = day.date().isoformat()
        return answer

    def projects_in(self, bbox: tuple[float, float, float, float]) -> list[int]:
        """Ids of the projects whose geometry meets ``bbox`` (lon/lat), ascending.

        Projects arrive one request at a time, so their index is an rtree updated in place
        (:meth:`project_added`) rather than an STRtree rebuilt on every write.
        """
        return self._project_index().query(bbox)

    def projects_bounds(self) -> tuple[float, float, float, float] | None:
        """(minx, miny, maxx, maxy) in lon/lat of every project; None when there is none."""
        return self._project_index().bounds()

    def _project_index(self) -> LiveIndex:
        with self._lock:
            index = self._projects
        if index is None:
            projects = self.store.projects()
            index = LiveIndex(projects["id"].to_numpy(), projects.geometry.to_numpy())
            with self._lock:
                self._projects = index
        return index

    def project_added(self, project_id: int, geometry) -> None:
        with self._lock:
            index = self._projects
        if index is not None:
            index.insert(int(project_id), geometry)

    def zone_frame(self, as_of=None, kind: str | None = None):
        """Zones in force on ``as_of`` (optionally one kind), with their positions in the index."""
        mask = self.index.active(as_of)
        if kind is not None:
            mask &= self.index.kind == kind
        frame = self.index.zones.loc[mask].copy()
        frame["position"] = np.flatnonzero(mask)
        return frame

    def leads(self, as_of=None) -> pd.DataFrame:
        """DataFrame[zone_kind, zone_code, planner_id] of the zones in force that have a lead on ``as_of``."""
        resp = self.responsibility(as_of)
        has = pd.notna(resp.lead_planner) & resp.zone_active
        return pd.DataFrame({"zone_kind": resp.index.kind[has], "zone_code": resp.index.code[has],
                             "planner_id": resp.lead_planner[has]})


def _plainly_valid(x: float, y: float, bounds) -> bool:
    """A finite lon/lat pair in range that does not look swapped against the data's ``bounds``: the cases
    in which ``check_lonlat`` has nothing to say (anything else takes the full check and its message)."""
    try:
        x, y = float(x), float(y)
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(x) and math.isfinite(y) and abs(x) <= 180 and abs(y) <= 90):
        return False
    if bounds is None:
        return True
    minx, miny, maxx, maxy = bounds
    inside = minx <= x <= maxx and miny <= y <= maxy
    return inside or not (minx <= y <= maxx and miny <= x <= maxy)
