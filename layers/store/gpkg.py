"""The GeoPackage engine: a SQLite file that GDAL and QGIS open as it is (OGC GeoPackage: application id,
SRS table, contents, geometry columns, GeoPackage binary geometries). Every write is one SQLite transaction
taken with BEGIN IMMEDIATE, so concurrent writers queue and a killed process leaves the file as it was."""
from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from zeren.layers.errors import StoreError
from zeren.layers.store.engine import Engine
from zeren.layers.store.tables import NO_DELETE, NO_UPDATE

GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
GPKG_USER_VERSION = 10400  # GeoPackage 1.4

_WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
    'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,'
    'AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'
)


class GeoPackageEngine(Engine):
    def __init__(self, path: Path):
        self.path = path

    def connect(self):
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA busy_timeout = 60000")
        con.execute("PRAGMA foreign_keys = ON")
        return con

    def begin(self, con):
        con.execute("BEGIN IMMEDIATE")  # take the write lock now: concurrent writers queue, none is lost

    def begin_snapshot(self, con):
        con.execute("BEGIN")  # deferred: the first read takes a shared lock, and every later read sees the same file
        con.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()

    def check(self, con) -> None:
        head = self.path.read_bytes()[:16] if self.path.exists() else b""
        if head != b"SQLite format 3\x00":
            raise StoreError(f"{self.path} is not a GeoPackage (not an SQLite file); give a .gpkg store made by "
                             f"Zeren, or a new file name to create one")
        (app_id,) = con.execute("PRAGMA application_id").fetchone()
        if app_id != GPKG_APPLICATION_ID:
            raise StoreError(f"{self.path} is an SQLite file but not a GeoPackage")

    def create_table(self, con, name, geometry_type, columns):
        cols = ", ".join(f'"{c}" {t}' for c, t in columns)
        geom = ", geom BLOB" if geometry_type else ""
        con.execute(f'CREATE TABLE IF NOT EXISTS "{name}" (fid INTEGER PRIMARY KEY AUTOINCREMENT{geom}, {cols})')
        data_type = "features" if geometry_type else "attributes"
        con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, srs_id) "
                    "VALUES (?, ?, ?, ?)", (name, data_type, name, 4326 if geometry_type else None))
        if geometry_type:
            con.execute("INSERT OR IGNORE INTO gpkg_geometry_columns VALUES (?, 'geom', ?, 4326, 0, 0)",
                        (name, geometry_type))
        for op in ("DELETE",) if name in NO_DELETE else ():
            con.execute(f'CREATE TRIGGER IF NOT EXISTS "{name}_no_delete" BEFORE DELETE ON "{name}" '
                        f"BEGIN SELECT RAISE(ABORT, '{name} rows are never deleted'); END")
        if name in NO_UPDATE:
            con.execute(f'CREATE TRIGGER IF NOT EXISTS "{name}_no_update" BEFORE UPDATE ON "{name}" '
                        f"BEGIN SELECT RAISE(ABORT, '{name} is append-only'); END")

    def bootstrap(self, con):
        con.execute(f"PRAGMA application_id = {GPKG_APPLICATION_ID}")
        con.execute(f"PRAGMA user_version = {GPKG_USER_VERSION}")
        con.execute("""CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (srs_name TEXT NOT NULL,
            srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL,
            definition TEXT NOT NULL, description TEXT)""")
        con.executemany("INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", [
            ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian coordinate reference system"),
            ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic coordinate reference system"),
            ("WGS 84 geodetic", 4326, "EPSG", 4326, _WGS84_WKT, "longitude/latitude coordinates in decimal degrees"),
        ])
        con.execute("""CREATE TABLE IF NOT EXISTS gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY,
            data_type TEXT NOT NULL, identifier TEXT UNIQUE, description TEXT DEFAULT '',
            last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
            CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id))""")
        con.execute("""CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (table_name TEXT NOT NULL,
            column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL,
            z TINYINT NOT NULL, m TINYINT NOT NULL, CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
            CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
            CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id))""")

    def geom_param(self) -> str:
        return "?"

    def geom_select(self, column="geom") -> str:
        return column

    def encode(self, geoms: np.ndarray) -> list:
        """GeoPackage binary: a header (magic, version, flags, srs id, xy envelope) then little-endian WKB."""
        wkb = shapely.to_wkb(geoms, byte_order=1, flavor="iso")
        bounds = shapely.bounds(geoms)
        out = []
        for blob, (minx, miny, maxx, maxy) in zip(wkb, bounds):
            out.append(struct.pack("<2sBBidddd", b"GP", 0, 0b00000011, 4326, minx, maxx, miny, maxy) + blob)
        return out

    def decode(self, blobs) -> np.ndarray:
        envelope_bytes = (0, 32, 48, 48, 64)
        wkb = []
        for b in blobs:
            if b is None:
                wkb.append(None)
                continue
            b = bytes(b)
            wkb.append(b[8 + envelope_bytes[(b[3] >> 1) & 0b111]:])
        return shapely.from_wkb(np.array(wkb, dtype=object))

    def update_extent(self, con, table):
        (fids,) = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        con.execute("UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now') "
                    "WHERE table_name = ?", (table,))
        return fids

    def insert_returning_id(self, con, sql, params) -> int:
        cur = con.execute(sql, params)
        return cur.lastrowid

    def read_frame(self, con, sql, params=()) -> pd.DataFrame:
        cur = con.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols)

    def columns(self, con, table) -> list[str]:
        return [row[1] for row in con.execute(f'PRAGMA table_info("{table}")').fetchall()]

    def add_column(self, con, table, column, sql_type) -> None:
        con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {sql_type}')
