"""The store: zones, planners, appointments, projects, resident feedback, teams and discipline requirements, consultation rules, the import and audit logs.

One interface, two engines:

* a GeoPackage file (the default): a SQLite database that GDAL and QGIS open as it is; every write is
  one SQLite transaction, so a process killed mid-import leaves the file as it was;
* PostgreSQL + PostGIS, when the location is a ``postgresql://`` URL.

The SQL is shared; the small differences (placeholders, geometry encoding, DDL types) live in the engines
(``gpkg.py``, ``postgis.py``). Geometry is always EPSG:4326; zones are stored as MultiPolygons. The store
checks types and keeps the logs; the rules of the domain are the use cases' (zeren.api.service), which run
them inside :meth:`Store.transaction`.
"""
from __future__ import annotations

import os
from pathlib import Path

from zeren.layers.errors import StoreError
from zeren.layers.store.base import StoreBase
from zeren.layers.store.feedback import FeedbackTables
from zeren.layers.store.gpkg import GeoPackageEngine
from zeren.layers.store.people import APPOINTMENT_FIELDS, PLANNER_FIELDS, PeopleTables
from zeren.layers.store.postgis import PostGISEngine
from zeren.layers.store.projects import ProjectTables
from zeren.layers.store.tables import DEFAULT_STORE, SCHEMA_VERSION
from zeren.layers.store.teams import TeamTables
from zeren.layers.store.zones import ZoneTables


class Store(ZoneTables, PeopleTables, ProjectTables, FeedbackTables, TeamTables, StoreBase):
    """Zeren's data, in a GeoPackage file or a PostGIS database. Open it with :func:`open_store`."""


def is_database_url(location) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def open_store(location: str | os.PathLike, *, create: bool = False) -> Store:
    """Open the store at a GeoPackage path or a ``postgresql://`` URL.

    ``create`` makes a new store (file or schema) when there is none; otherwise a missing store is an error
    that says how to make one.
    """
    if location is None or not str(location).strip():
        raise StoreError("no store given: pass a GeoPackage path or a postgresql:// URL (--store or ZEREN_STORE)")
    location = str(location)
    if is_database_url(location):
        store = Store(PostGISEngine(location), location)
        if not create:
            store._engine.check(store._con())
    else:
        path = Path(location)
        if path.is_dir():
            raise StoreError(f"{path} is a folder; give the store as a .gpkg file path")
        exists = path.exists() and path.stat().st_size > 0
        if not exists and not create:
            raise StoreError(f"no store at {path}; create one with `zeren demo --store {path}` or "
                             f"`zeren import-layer FILE --kind district --store {path}`")
        if exists:
            with open(path, "rb") as fh:
                if fh.read(16) != b"SQLite format 3\x00":
                    raise StoreError(f"{path} is not a GeoPackage (not an SQLite file); give a .gpkg made by Zeren, "
                                     f"or a new file name")
        store = Store(GeoPackageEngine(path), str(path))
        if exists:
            store._engine.check(store._con())
    if not store._is_zeren():
        if not create or (isinstance(store._engine, GeoPackageEngine) and exists):
            raise StoreError(f"{location} holds no Zeren store; Zeren writes only to stores it made: give a new "
                             f"file name, or build the demo with `zeren demo --store NEW.gpkg`")
        store._initialise()
    else:
        store._migrate()
    return store

__all__ = ["Store", "open_store", "is_database_url", "DEFAULT_STORE", "SCHEMA_VERSION", "PLANNER_FIELDS",
           "APPOINTMENT_FIELDS"]
