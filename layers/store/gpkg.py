"""The GeoPackage engine: a SQLite file that GDAL and QGIS open as it is (OGC GeoPackage: application id,
SRS table, contents, geometry columns, GeoPackage binary geometries). Every write is one SQLite transaction
taken with BEGIN IMMEDIATE, so concurrent writers queue and a killed process leaves the file as it was.

Version and index, for desktop GIS:

* the file says GeoPackage 1.3 (user_version 10300): the newest version GDAL 3.6 (Debian 12, QGIS 3.22 LTR)
  opens without a "may only be partially supported" warning; the store uses nothing GeoPackage 1.4 added;
* every geometry table has the ``gpkg_rtree_index`` extension: an SQLite R*Tree ``rtree_<table>_geom`` kept
  right by the standard triggers (GeoPackage 1.3, Annex F.3, as GDAL 3.6 writes them), so an insert, update
  or delete by Zeren, GDAL or QGIS updates it. The triggers call ST_IsEmpty / ST_MinX / ST_MaxX / ST_MinY /
  ST_MaxY: GDAL registers those on its connections, and so does :meth:`GeoPackageEngine.connect` (read from
  the geometry blob's header envelope). Other plain-SQLite tools can read the file but not write geometry;
* gpkg_contents holds each geometry table's current extent (min_x...), recomputed after every write.

Stores made by an older Zeren (GeoPackage 1.4, no R*Tree) are brought to this form when opened writable.
"""
from __future__ import annotations

import math
import os
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
GPKG_USER_VERSION = 10300  # GeoPackage 1.3: what GDAL 3.6 (QGIS 3.22 LTR) reads without a warning
GEOMETRY_COLUMN = "geom"
BULK_ROWS = 200  # from this many rows, an insert loads the R*Tree in one statement instead of per-row triggers
RTREE_EXTENSION = ("gpkg_rtree_index", "http://www.geopackage.org/spec120/#extension_rtree", "write-only")

_WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
    'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,'
    'AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'
)


# -- the SQL functions the R*Tree triggers call ------------------------------------------------------
# Bytes of the envelope after the 8-byte header, by the envelope indicator (flags bits 1-3).
_ENVELOPE_BYTES = (0, 32, 48, 48, 64)


def _gpkg_header(blob):
    """(flags, envelope bytes) of a GeoPackage binary geometry, None when ``blob`` is not one."""
    if not isinstance(blob, (bytes, memoryview)) or len(blob) < 8 or bytes(blob[:2]) != b"GP":
        return None
    flags = blob[3]
    indicator = (flags >> 1) & 0b111
    if indicator >= len(_ENVELOPE_BYTES) or len(blob) < 8 + _ENVELOPE_BYTES[indicator]:
        return None
    return flags, _ENVELOPE_BYTES[indicator]


def _st_isempty(blob):
    head = _gpkg_header(blob)
    if head is None:
        return None
    return 1 if head[0] & 0b00010000 else 0


def _st_bounds(blob):
    """(minx, maxx, miny, maxy) from the header envelope (the WKB when there is none); None when empty."""
    head = _gpkg_header(blob)
    if head is None or head[0] & 0b00010000:
        return None
    flags, size = head
    try:
        if size:
            box = struct.unpack_from("<4d" if flags & 1 else ">4d", blob, 8)
        else:
            geom = shapely.from_wkb(bytes(blob[8:]))
            if geom.is_empty:
                return None
            minx, miny, maxx, maxy = geom.bounds
            box = (minx, maxx, miny, maxy)
    except Exception:  # a malformed blob: no bounds (SQL NULL), never an error inside a trigger
        return None
    return None if any(math.isnan(v) for v in box) else box


def _bound(i):
    def fn(blob):
        box = _st_bounds(blob)
        return None if box is None else box[i]
    return fn


def envelopes(blobs) -> np.ndarray:
    """(minx, maxx, miny, maxy) per blob, as the SQL functions give them (NaN rows: NULL, empty or not a
    GeoPackage geometry). Vectorised for the common header (xy envelope, little-endian)."""
    out = np.full((len(blobs), 4), np.nan)
    common = [i for i, b in enumerate(blobs) if b is not None and len(b) >= 40 and bytes(b[:4]) == b"GP\x00\x03"]
    if common:
        out[common] = np.frombuffer(b"".join(bytes(blobs[i][8:40]) for i in common), dtype="<f8").reshape(-1, 4)
    for i in sorted(set(range(len(blobs))) - set(common)):
        box = _st_bounds(blobs[i])
        if box is not None:
            out[i] = box
    return out


def _plain_wkb(blobs) -> list:
    """The WKB inside each GeoPackage binary geometry (None stays None)."""
    out = []
    for b in blobs:
        if b is None:
            out.append(None)
            continue
        b = bytes(b)
        out.append(b[8 + _ENVELOPE_BYTES[(b[3] >> 1) & 0b111]:])
    return out


SQL_FUNCTIONS = {"ST_IsEmpty": _st_isempty, "ST_MinX": _bound(0), "ST_MaxX": _bound(1), "ST_MinY": _bound(2),
                 "ST_MaxY": _bound(3)}


def rtree_table(table: str, column: str = GEOMETRY_COLUMN) -> str:
    return f"rtree_{table}_{column}"


def rtree_sql(table: str, column: str = GEOMETRY_COLUMN, pk: str = "fid") -> list[str]:
    """The R*Tree virtual table and its triggers (GeoPackage 1.3 Annex F.3; GDAL 3.6 writes the same)."""
    t, c, i, r = f'"{table}"', f'"{column}"', f'"{pk}"', f'"{rtree_table(table, column)}"'
    name = f"rtree_{table}_{column}"
    values = (f"NEW.{i}, ST_MinX(NEW.{c}), ST_MaxX(NEW.{c}), ST_MinY(NEW.{c}), ST_MaxY(NEW.{c})")
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {r} USING rtree(id, minx, maxx, miny, maxy)",
        (f'CREATE TRIGGER IF NOT EXISTS "{name}_insert" AFTER INSERT ON {t} '
         f"WHEN (NEW.{c} NOT NULL AND NOT ST_IsEmpty(NEW.{c})) "
         f"BEGIN INSERT OR REPLACE INTO {r} VALUES ({values}); END"),
        (f'CREATE TRIGGER IF NOT EXISTS "{name}_update1" AFTER UPDATE OF {c} ON {t} '
         f"WHEN OLD.{i} = NEW.{i} AND (NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c})) "
         f"BEGIN INSERT OR REPLACE INTO {r} VALUES ({values}); END"),
        (f'CREATE TRIGGER IF NOT EXISTS "{name}_update2" AFTER UPDATE OF {c} ON {t} '
         f"WHEN OLD.{i} = NEW.{i} AND (NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c})) "
         f"BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END"),
        (f'CREATE TRIGGER IF NOT EXISTS "{name}_update3" AFTER UPDATE ON {t} '
         f"WHEN OLD.{i} != NEW.{i} AND (NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c})) "
         f"BEGIN DELETE FROM {r} WHERE id = OLD.{i}; INSERT OR REPLACE INTO {r} VALUES ({values}); END"),
        (f'CREATE TRIGGER IF NOT EXISTS "{name}_update4" AFTER UPDATE ON {t} '
         f"WHEN OLD.{i} != NEW.{i} AND (NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c})) "
         f"BEGIN DELETE FROM {r} WHERE id IN (OLD.{i}, NEW.{i}); END"),
        (f'CREATE TRIGGER IF NOT EXISTS "{name}_delete" AFTER DELETE ON {t} WHEN OLD.{c} NOT NULL '
         f"BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END"),
    ]


# min_x, min_y, max_x, max_y: (function, aggregate, R*Tree column, how near the tree's extent, margin sign)
_EXTENT_PARTS = (("ST_MinX", "min", "minx", "<=", 1), ("ST_MinY", "min", "miny", "<=", 1),
                 ("ST_MaxX", "max", "maxx", ">=", -1), ("ST_MaxY", "max", "maxy", ">=", -1))

RTREE_TRIGGERS = ("insert", "update1", "update2", "update3", "update4", "delete")


class GeoPackageEngine(Engine):
    def __init__(self, path: Path):
        self.path = path

    def connect(self):
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA busy_timeout = 60000")
        con.execute("PRAGMA foreign_keys = ON")
        for name, fn in SQL_FUNCTIONS.items():  # what the R*Tree triggers call (GDAL has its own)
            con.create_function(name, 1, fn, deterministic=True)
        return con

    def begin(self, con):
        con.execute("BEGIN IMMEDIATE")  # take the write lock now: concurrent writers queue, none is lost

    def begin_snapshot(self, con):
        con.execute("BEGIN")  # deferred: the first read takes a shared lock, and every later read sees the same file
        con.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()

    def check(self, con) -> None:
        head = b""
        if self.path.exists():
            with open(self.path, "rb") as fh:  # the header only: the file may hold gigabytes
                head = fh.read(16)
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
            self._add_rtree(con, name)
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
        self._create_extensions(con)

    @staticmethod
    def _create_extensions(con):
        con.execute("""CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT,
            extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL,
            CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))""")

    def _add_rtree(self, con, table, column=GEOMETRY_COLUMN):
        """The R*Tree, its triggers and its gpkg_extensions row; filled from the rows already there."""
        (had,) = con.execute("SELECT count(*) FROM sqlite_master WHERE name = ?", (rtree_table(table, column),)
                             ).fetchone()
        for stmt in rtree_sql(table, column):
            con.execute(stmt)
        con.execute("INSERT OR IGNORE INTO gpkg_extensions VALUES (?, ?, ?, ?, ?)",
                    (table, column, *RTREE_EXTENSION))
        if not had:  # one bulk load for an existing table (a new one is empty)
            con.execute(f'INSERT OR REPLACE INTO "{rtree_table(table, column)}" '
                        f'SELECT fid, ST_MinX("{column}"), ST_MaxX("{column}"), ST_MinY("{column}"), '
                        f'ST_MaxY("{column}") FROM "{table}" '
                        f'WHERE "{column}" NOT NULL AND NOT ST_IsEmpty("{column}")')

    def _geometry_tables(self, con) -> list[tuple[str, str]]:
        return con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns ORDER BY table_name"
                           ).fetchall()

    def _missing_rtree(self, con) -> list[tuple[str, str]]:
        triggers = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        registered = set()
        if "gpkg_extensions" in tables:
            registered = {(t, c) for t, c in con.execute(
                "SELECT table_name, column_name FROM gpkg_extensions WHERE extension_name = 'gpkg_rtree_index'")}
        out = []
        for table, column in self._geometry_tables(con):
            name = rtree_table(table, column)
            # either trigger set counts: GDAL >= 3.7 replaces update1/update3 by update5/6/7 (GeoPackage 1.4)
            has_triggers = {f"{name}_insert", f"{name}_update2", f"{name}_update4", f"{name}_delete"} <= triggers
            if name not in tables or (table, column) not in registered or not has_triggers:
                out.append((table, column))
        return out

    def needs_upgrade(self, con) -> bool:
        """True when this store (made by an older Zeren) lacks the version or index this Zeren writes, and the
        file can be written (a read-only store is read as it is)."""
        (version,) = con.execute("PRAGMA user_version").fetchone()
        if version == GPKG_USER_VERSION and not self._missing_rtree(con):
            return False
        return self.writable()

    def writable(self) -> bool:
        # a file marked read-only (no write bit: even root would write it) is left as it is
        return bool(self.path.stat().st_mode & 0o222) and os.access(self.path, os.W_OK) \
            and os.access(self.path.parent, os.W_OK)

    def upgrade(self, con) -> None:
        """Inside a write transaction: set GeoPackage 1.3 (safe both ways between 1.2 and 1.4: the store uses
        no 1.4 addition), add the R*Tree index where one is missing, and refresh the extents."""
        (version,) = con.execute("PRAGMA user_version").fetchone()
        if version != GPKG_USER_VERSION:
            con.execute(f"PRAGMA user_version = {GPKG_USER_VERSION}")
        missing = self._missing_rtree(con)
        if missing:
            self._create_extensions(con)
        for table, column in missing:
            self._add_rtree(con, table, column)
            self.update_extent(con, table)

    def geom_param(self) -> str:
        return "?"

    def geom_select(self, column="geom") -> str:
        return column

    def encode(self, geoms: np.ndarray) -> list:
        """GeoPackage binary: a header (magic, version, flags, srs id, xy envelope) then little-endian WKB."""
        wkb = shapely.to_wkb(geoms, byte_order=1, flavor="iso")
        bounds = shapely.bounds(geoms)
        empty = shapely.is_empty(geoms)
        out = []
        for blob, (minx, miny, maxx, maxy), is_empty in zip(wkb, bounds, empty):
            if is_empty:  # flags: empty, no envelope, little-endian
                out.append(struct.pack("<2sBBi", b"GP", 0, 0b00010001, 4326) + blob)
            else:  # flags: xy envelope, little-endian
                out.append(struct.pack("<2sBBidddd", b"GP", 0, 0b00000011, 4326, minx, maxx, miny, maxy) + blob)
        return out

    def decode(self, blobs) -> np.ndarray:
        return shapely.from_wkb(np.array(_plain_wkb(blobs), dtype=object))

    def insert_rows(self, con, table, sql, rows) -> None:
        """Insert many rows into ``table`` (inside the caller's transaction). A large batch into a table with an
        R*Tree skips the per-row insert trigger: it is dropped, the rows written, their boxes loaded in one
        statement from the blobs' headers, and the trigger created again, all in the same transaction (no
        other connection ever sees the table without it)."""
        if len(rows) < BULK_ROWS or not self._has_rtree(con, table):
            con.cursor().executemany(sql, rows)
            return
        trigger = f"{rtree_table(table)}_insert"
        (before,) = con.execute(f'SELECT coalesce(max(fid), 0) FROM "{table}"').fetchone()
        con.execute(f'DROP TRIGGER IF EXISTS "{trigger}"')
        con.cursor().executemany(sql, rows)
        new = con.execute(f'SELECT fid, "{GEOMETRY_COLUMN}" FROM "{table}" WHERE fid > ? ORDER BY fid',
                          (before,)).fetchall()
        boxes = envelopes([g for _, g in new])
        keep = ~np.isnan(boxes).any(axis=1)
        fids = np.array([f for f, _ in new], dtype="int64")[keep]
        con.cursor().executemany(f'INSERT OR REPLACE INTO "{rtree_table(table)}" VALUES (?, ?, ?, ?, ?)',
                                 zip(fids.tolist(), *boxes[keep].T.tolist()))
        con.execute(rtree_sql(table)[1])

    @staticmethod
    def _has_rtree(con, table) -> bool:
        return con.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                           (rtree_table(table),)).fetchone()[0] == 1

    def _extent(self, con, table, column):
        """The exact extent of ``table``'s geometries. With an R*Tree (float32 boxes rounded outwards) only the
        rows whose box reaches the tree's own extent are read exactly; without one, every row."""
        c, t = f'"{column}"', f'"{table}"'
        if not self._has_rtree(con, table):
            return con.execute(f"SELECT min(ST_MinX({c})), min(ST_MinY({c})), max(ST_MaxX({c})), "
                               f"max(ST_MaxY({c})) FROM {t}").fetchone()
        r = f'"{rtree_table(table, column)}"'
        rough = con.execute(f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM {r}").fetchone()
        if rough[0] is None:
            return (None, None, None, None)
        out = []
        for (fn, agg, col, op, sign), value in zip(_EXTENT_PARTS, rough):
            margin = sign * (abs(value) * 1e-6 + 1e-9)  # several float32 steps
            (exact,) = con.execute(f"SELECT {agg}({fn}(t.{c})) FROM {r} AS r JOIN {t} AS t ON t.fid = r.id "
                                   f"WHERE r.{col} {op} ?", (value + margin,)).fetchone()
            out.append(exact)
        return tuple(out)

    def update_extent(self, con, table):
        """Record a write to ``table`` in gpkg_contents: last_change, and the current extent of its geometries
        (exact, from the geometries' envelopes; NULL when it has none)."""
        (fids,) = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (table,)).fetchone()
        extent = (None, None, None, None) if row is None else self._extent(con, table, row[0])
        con.execute("UPDATE gpkg_contents SET last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now'), "
                    "min_x = ?, min_y = ?, max_x = ?, max_y = ? WHERE table_name = ?", (*extent, table))
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
