"""A store loaded for answering questions: zones indexed once, planners and appointments in memory.

The CLI makes one per command; the API makes one in its lifespan and reloads the parts a write changed.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from geo.answer import PlannerBook, site_answer
from geo.assign import Assignment, Responsibility, ZoneIndex, assign
from geo.crs import InputCRS, check_lonlat, parse_crs, to_wgs84_xy
from geo.validity import as_timestamp
from layers.store import Store

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
        self.reload_zones()
        self.reload_people()

    def reload_zones(self) -> None:
        index = ZoneIndex(self.store.zones())
        with self._lock:
            self.index = index
            self._responsibility: OrderedDict = OrderedDict()

    def reload_people(self) -> None:
        """Planners, appointments and consultation rules: cheap to reload after every write."""
        planners = self.store.planners()
        appointments = self.store.appointments()
        kinds = self.store.consultation_kinds()
        with self._lock:
            self.planners = planners
            self.appointments = appointments
            self.consultation_kinds = kinds
            self.public_book = PlannerBook(planners)
            self.private_book = PlannerBook(planners, include_private=True)
            self._responsibility = OrderedDict()

    def responsibility(self, as_of=None) -> Responsibility:
        key = as_timestamp(as_of)
        with self._lock:
            cached = self._responsibility.get(key)
            if cached is not None:
                self._responsibility.move_to_end(key)
                return cached
            index, appointments, kinds = self.index, self.appointments, self.consultation_kinds
        resp = index.responsibility(appointments, key, kinds)
        with self._lock:
            self._responsibility[key] = resp
            while len(self._responsibility) > _RESPONSIBILITY_CACHE:
                self._responsibility.popitem(last=False)
        return resp

    # -- questions --------------------------------------------------------------------------------
    def site(self, x: float, y: float, crs: str | InputCRS = "wgs84") -> Site:
        """Convert a point given in any supported CRS to WGS84, refusing impossible or swapped coordinates."""
        crs = crs if isinstance(crs, InputCRS) else parse_crs(crs)
        if crs.crs.is_geographic:
            check_lonlat(x, y, self.index.bounds)
        lon, lat = to_wgs84_xy(np.array([x], float), np.array([y], float), crs)
        check_lonlat(float(lon[0]), float(lat[0]), self.index.bounds)
        return Site(float(lon[0]), float(lat[0]), (x, y), crs.label)

    def assign(self, geoms, as_of=None, **options) -> Assignment:
        return assign(self.index, self.responsibility(as_of), geoms, **options)

    def lookup(self, x: float, y: float, crs: str | InputCRS = "wgs84", as_of=None, *,
               include_private: bool = False) -> dict:
        """The full answer for one point (the shape of ``zeren lookup --json`` and ``GET /lookup``)."""
        site = self.site(x, y, crs)
        result = self.assign(np.array([shapely.Point(site.lon, site.lat)], dtype=object), as_of)
        book = self.private_book if include_private else self.public_book
        answer = site_answer(result, 0, book)
        answer["site"] = site.as_dict()
        answer["as_of"] = as_timestamp(as_of).date().isoformat()
        return answer

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
        return pd.DataFrame({"zone_kind": self.index.kind[has], "zone_code": self.index.code[has],
                             "planner_id": resp.lead_planner[has]})
