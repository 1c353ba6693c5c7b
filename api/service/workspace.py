"""The workspace every use case works on: one store, and the catalogue loaded from it.

A CLI command makes one for its run; a server process makes one in its lifespan and keeps it. The catalogue
(the zone index, planners, appointments) is built on first use. Use cases that write call :meth:`changed`,
so the process that wrote answers from the new state at once; :meth:`refresh` picks up what other processes
(server workers, the CLI) wrote, by comparing the store's change marks.
"""
from __future__ import annotations

import threading

from zeren.layers.catalogue import Catalogue
from zeren.layers.store import Store, open_store


class Workspace:
    def __init__(self, store: Store, *, catalogue: Catalogue | None = None):
        self.store = store
        self._catalogue: Catalogue | None = catalogue
        self._lock = threading.RLock()
        self._marks = store.change_marks()

    @classmethod
    def open(cls, location, *, create: bool = False) -> "Workspace":
        return cls(open_store(location, create=create))

    @property
    def catalogue(self) -> Catalogue:
        """The loaded store (zone index, planners, appointments), built on first use."""
        catalogue = self._catalogue
        if catalogue is None:
            with self._lock:
                if self._catalogue is None:
                    self._catalogue = Catalogue(self.store)
                    self._marks = self._catalogue.marks
                catalogue = self._catalogue
        return catalogue

    @property
    def marks(self) -> dict:
        """The store's change marks that the loaded catalogue reflects (what batch worker processes compare
        with theirs, to know they must refresh)."""
        return dict(self._marks)

    @property
    def loaded(self) -> bool:
        return self._catalogue is not None

    def changed(self, *, zones: bool = False) -> None:
        """After a write by this process: reload the people (and the zones when they changed), once the
        write has committed."""
        self.store.after_commit(self._reload_zones if zones else self._reload_people)

    def _reload_zones(self) -> None:
        self._reload(zones=True)

    def _reload_people(self) -> None:
        self._reload(zones=False)

    def _reload(self, zones: bool) -> None:
        with self._lock:
            if self._catalogue is not None:
                self._marks = self._catalogue.reload(zones=zones)
            else:
                self._marks = self.store.change_marks()

    def refresh(self) -> str | None:
        """Reload what changed in the store since the last look (another worker, replica or the CLI wrote);
        returns what was reloaded, or None. What is loaded comes from one snapshot of the store."""
        with self._lock:
            marks = self.store.change_marks()
            if marks == self._marks or self._catalogue is None:
                self._marks = marks
                return None
            zones = marks["zones"] != self._marks.get("zones")
            self._marks = self._catalogue.reload(zones=zones)
            what = "zones" if zones else "people"
        self._catalogue.warm()
        return what

    def close(self) -> None:
        self.store.close()
