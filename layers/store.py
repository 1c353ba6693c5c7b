"""The store: zones, planners, appointments, projects, consultation rules, the import and audit logs.

One interface, two engines:

* a GeoPackage file (the default): a SQLite database that GDAL and QGIS open as it is; every write is
  one SQLite transaction, so a process killed mid-import leaves the file as it was;
* PostgreSQL + PostGIS, when the location is a ``postgresql://`` URL.

The SQL is shared; the small differences (placeholders, geometry encoding, DDL types) live in the two
``_Engine`` classes. Geometry is always EPSG:4326; zones are stored as MultiPolygons.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import struct
import threading
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from zeren.geo.kinds import ALL_KINDS, DEFAULT_CONSULTATION_KINDS, PROJECT_STATUSES
from zeren.layers.errors import ConflictError, NotFoundError, StoreError, ValidationError
from zeren.layers.schema import (
    appointment_problems,
    attrs_json,
    empty_zones,
    parse_date,
    planner_problems,
    split_disciplines,
)

SCHEMA_VERSION = 1
DEFAULT_STORE = "zeren.gpkg"
GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
GPKG_USER_VERSION = 10400  # GeoPackage 1.4

_WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
    'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,'
    'AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'
)

# Tables: (name, geometry type or None, columns). Types are written for SQLite; the PostGIS engine maps them.
_TABLES = {
    "zones": ("MULTIPOLYGON", [
        ("kind", "TEXT NOT NULL"), ("code", "TEXT NOT NULL"), ("name", "TEXT NOT NULL"), ("name_en", "TEXT"),
        ("parent_code", "TEXT"), ("edition", "INTEGER NOT NULL"), ("valid_from", "DATE NOT NULL"),
        ("valid_to", "DATE"), ("population", "INTEGER"), ("attrs", "TEXT NOT NULL DEFAULT '{}'"),
    ]),
    "planners": (None, [
        ("id", "TEXT NOT NULL UNIQUE"), ("name", "TEXT NOT NULL"), ("organization", "TEXT"),
        ("disciplines", "TEXT"), ("public_contact", "TEXT"), ("private_contact", "TEXT"),
    ]),
    "appointments": (None, [
        ("planner_id", "TEXT NOT NULL"), ("zone_kind", "TEXT NOT NULL"), ("zone_code", "TEXT NOT NULL"),
        ("role", "TEXT NOT NULL"), ("start_date", "DATE NOT NULL"), ("end_date", "DATE"),
    ]),
    "consultation_rules": (None, [("zone_kind", "TEXT NOT NULL UNIQUE"), ("obliges", "INTEGER NOT NULL")]),
    "projects": ("GEOMETRY", [
        ("name", "TEXT NOT NULL"), ("type", "TEXT"), ("scale", "TEXT"), ("description", "TEXT"),
        ("status", "TEXT NOT NULL"), ("created_at", "TEXT NOT NULL"), ("created_by", "TEXT"),
        ("as_of", "DATE NOT NULL"), ("lead_planner_id", "TEXT"), ("lead_zone_kind", "TEXT"),
        ("lead_zone_code", "TEXT"), ("consultation_planner_ids", "TEXT NOT NULL DEFAULT '[]'"),
        ("assignment", "TEXT NOT NULL"),
    ]),
    "project_events": (None, [
        ("project_id", "INTEGER NOT NULL"), ("at", "TEXT NOT NULL"), ("status", "TEXT NOT NULL"),
        ("actor", "TEXT"), ("note", "TEXT"),
    ]),
    "import_log": (None, [
        ("at", "TEXT NOT NULL"), ("command", "TEXT NOT NULL"), ("source", "TEXT"), ("kind", "TEXT"),
        ("edition", "INTEGER"), ("features_read", "INTEGER"), ("repaired", "INTEGER"), ("rejected", "INTEGER"),
        ("written", "INTEGER"), ("report", "TEXT"),
    ]),
    "audit": (None, [
        ("at", "TEXT NOT NULL"), ("actor", "TEXT NOT NULL"), ("action", "TEXT NOT NULL"),
        ("entity", "TEXT NOT NULL"), ("entity_id", "TEXT"), ("detail", "TEXT"),
    ]),
    "zeren_meta": (None, [("key", "TEXT NOT NULL UNIQUE"), ("value", "TEXT")]),
}
_INDEXES = [
    "CREATE UNIQUE INDEX IF NOT EXISTS zones_key ON zones (kind, code, edition)",
    "CREATE INDEX IF NOT EXISTS appointments_zone ON appointments (zone_kind, zone_code)",
    "CREATE INDEX IF NOT EXISTS appointments_planner ON appointments (planner_id)",
    "CREATE INDEX IF NOT EXISTS project_events_project ON project_events (project_id)",
]
# Append-only tables: the audit log and the project workflow events; appointments are ended, never deleted.
_NO_DELETE = ("audit", "appointments", "project_events")
_NO_UPDATE = ("audit", "project_events")

_WORKFLOW = {s: (PROJECT_STATUSES[i + 1],) if i + 1 < len(PROJECT_STATUSES) else () for i, s in
             enumerate(PROJECT_STATUSES)}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _iso(value) -> str | None:
    return None if value is None or value is pd.NaT else (value.isoformat() if hasattr(value, "isoformat") else str(value))


class _Engine:
    """What differs between SQLite/GeoPackage and PostgreSQL/PostGIS."""

    placeholder = "?"

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


class _GeoPackageEngine(_Engine):
    def __init__(self, path: Path):
        self.path = path

    def connect(self):
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA busy_timeout = 60000")
        con.execute("PRAGMA foreign_keys = ON")
        return con

    def begin(self, con):
        con.execute("BEGIN IMMEDIATE")  # take the write lock now: concurrent writers queue, none is lost

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
        for op in ("DELETE",) if name in _NO_DELETE else ():
            con.execute(f'CREATE TRIGGER IF NOT EXISTS "{name}_no_delete" BEFORE DELETE ON "{name}" '
                        f"BEGIN SELECT RAISE(ABORT, '{name} rows are never deleted'); END")
        if name in _NO_UPDATE:
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


class _PostGISEngine(_Engine):
    placeholder = "%s"

    def __init__(self, url: str):
        self.url = url

    def connect(self):
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - psycopg is a dependency
            raise StoreError("PostGIS stores need psycopg: pip install 'psycopg[binary]'") from exc
        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to {self.url}: {str(exc).strip()}") from exc

    def begin(self, con):
        con.execute("BEGIN")
        # one writer at a time, as with the GeoPackage file: read-check-write sequences stay consistent
        con.execute("SELECT pg_advisory_xact_lock(731500)")

    def check(self, con) -> None:
        row = con.execute("SELECT extname FROM pg_extension WHERE extname = 'postgis'").fetchone()
        if row is None:
            raise StoreError(f"{self.url}: PostGIS is not installed in this database; run CREATE EXTENSION postgis")

    def bootstrap(self, con):
        con.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        con.execute("""CREATE OR REPLACE FUNCTION zeren_refuse() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION '% rows are never %', TG_TABLE_NAME, lower(TG_OP) || 'd'; END $$""")

    def create_table(self, con, name, geometry_type, columns):
        types = {"INTEGER": "BIGINT", "DATE": "DATE", "TEXT": "TEXT"}
        cols = []
        for c, t in columns:
            head, _, rest = t.partition(" ")
            cols.append(f'"{c}" {types.get(head, head)} {rest}')
        geom = f", geom geometry({geometry_type.title().replace('polygon', 'Polygon')}, 4326)" if geometry_type else ""
        con.execute(f'CREATE TABLE IF NOT EXISTS "{name}" (fid BIGSERIAL PRIMARY KEY{geom}, {", ".join(cols)})')
        if geometry_type:
            con.execute(f'CREATE INDEX IF NOT EXISTS "{name}_geom" ON "{name}" USING gist (geom)')
        for op, names in (("DELETE", _NO_DELETE), ("UPDATE", _NO_UPDATE)):
            if name in names:
                con.execute(f'DROP TRIGGER IF EXISTS "{name}_no_{op.lower()}" ON "{name}"')
                con.execute(f'CREATE TRIGGER "{name}_no_{op.lower()}" BEFORE {op} ON "{name}" '
                            f"FOR EACH ROW EXECUTE FUNCTION zeren_refuse()")

    def geom_param(self) -> str:
        return "ST_GeomFromWKB(%s, 4326)"

    def geom_select(self, column="geom") -> str:
        return f"ST_AsBinary({column}) AS {column}"

    def encode(self, geoms: np.ndarray) -> list:
        return list(shapely.to_wkb(geoms, byte_order=1, flavor="iso"))

    def decode(self, blobs) -> np.ndarray:
        return shapely.from_wkb(np.array([None if b is None else bytes(b) for b in blobs], dtype=object))

    def update_extent(self, con, table):
        return None

    def insert_returning_id(self, con, sql, params) -> int:
        return con.execute(self.sql(sql) + " RETURNING fid", params).fetchone()[0]

    def read_frame(self, con, sql, params=()) -> pd.DataFrame:
        cur = con.execute(self.sql(sql), params)
        cols = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols)


class Store:
    """Zeren's data, in a GeoPackage file or a PostGIS database. Open it with :func:`open_store`."""

    def __init__(self, engine: _Engine, location: str):
        self._engine = engine
        self.location = location
        self._local = threading.local()

    # -- connections and transactions -------------------------------------------------------------
    def _con(self):
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._engine.connect()
            self._local.con = con
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    @contextmanager
    def _write(self):
        con = self._con()
        self._engine.begin(con)
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        else:
            con.execute("COMMIT")

    def _exec(self, con, sql, params=()):
        return con.execute(self._engine.sql(sql), params)

    def _read(self, sql, params=()) -> pd.DataFrame:
        return self._engine.read_frame(self._con(), sql, params)

    def _initialise(self) -> None:
        with self._write() as con:
            self._engine.bootstrap(con)
            for name, (geometry_type, columns) in _TABLES.items():
                self._engine.create_table(con, name, geometry_type, columns)
            for stmt in _INDEXES:
                con.execute(stmt)
            has_rules = self._exec(con, "SELECT count(*) FROM consultation_rules").fetchone()[0]
            if not has_rules:
                for kind in DEFAULT_CONSULTATION_KINDS:
                    self._exec(con, "INSERT INTO consultation_rules (zone_kind, obliges) VALUES (?, 1)", (kind,))
            self._exec(con, "DELETE FROM zeren_meta WHERE key = 'schema_version'")
            self._exec(con, "INSERT INTO zeren_meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _is_zeren(self) -> bool:
        try:
            row = self._exec(self._con(), "SELECT value FROM zeren_meta WHERE key = 'schema_version'").fetchone()
        except Exception:  # no zeren_meta table: sqlite3 and psycopg raise different classes
            return False
        return row is not None

    def meta(self, key: str) -> str | None:
        row = self._exec(self._con(), "SELECT value FROM zeren_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as con:
            self._exec(con, "DELETE FROM zeren_meta WHERE key = ?", (key,))
            self._exec(con, "INSERT INTO zeren_meta (key, value) VALUES (?, ?)", (key, value))

    # -- zones ------------------------------------------------------------------------------------
    def zones(self, kind: str | None = None, as_of=None, edition: int | None = None) -> gpd.GeoDataFrame:
        """Zones as a frame (see layers/CONTRACT.md); all editions unless ``as_of`` or ``edition`` narrows it."""
        where, params = [], []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if edition is not None:
            where.append("edition = ?")
            params.append(int(edition))
        if as_of is not None:
            day = parse_date(as_of, "as_of").isoformat()
            where.append("valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)")
            params += [day, day]
        sql = (f"SELECT fid, kind, code, name, name_en, parent_code, edition, valid_from, valid_to, population, attrs, "
               f"{self._engine.geom_select()} FROM zones" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY kind, code, edition")
        raw = self._read(sql, params)
        if raw.empty:
            return empty_zones()
        frame = raw.drop(columns=["geom", "fid"])
        frame["edition"] = frame["edition"].astype("Int64")
        frame["population"] = pd.array(frame["population"], dtype="Int64")
        frame["valid_from"] = pd.to_datetime(frame["valid_from"]).astype("datetime64[ns]")
        frame["valid_to"] = pd.to_datetime(frame["valid_to"]).astype("datetime64[ns]")
        frame["attrs"] = [json.loads(a) if a else {} for a in frame["attrs"]]
        for col in ("name_en", "parent_code"):
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        return gpd.GeoDataFrame(frame, geometry=self._engine.decode(raw["geom"]), crs="EPSG:4326")

    def zone_keys(self) -> set[tuple[str, str]]:
        rows = self._exec(self._con(), "SELECT DISTINCT kind, code FROM zones").fetchall()
        return {(k, c) for k, c in rows}

    def editions(self, kind: str) -> list[int]:
        rows = self._exec(self._con(), "SELECT DISTINCT edition FROM zones WHERE kind = ? ORDER BY edition",
                          (kind,)).fetchall()
        return [int(r[0]) for r in rows]

    def replace_zones(self, zones: gpd.GeoDataFrame, *, kind: str, edition: int, valid_from: dt.date,
                      report: dict, source: str) -> int:
        """Write one edition of one kind, all or nothing.

        The edition replaces any earlier import of the same (kind, edition); the previous open edition
        of the kind is closed the day this one starts, so as-of answers stay reproducible.
        """
        if kind not in ALL_KINDS:
            raise ValidationError(f"unknown zone kind {kind!r}")
        geoms = np.asarray(zones.geometry.to_numpy(), dtype=object)
        if len(geoms):
            types = shapely.get_type_id(geoms)
            if not np.isin(types, (3, 6)).all():
                bad = int(np.flatnonzero(~np.isin(types, (3, 6)))[0])
                raise ValidationError(f"zone {zones['code'].iloc[bad]!r}: geometry is not a polygon; zones are "
                                      f"(Multi)Polygons")
            single = np.flatnonzero(types == 3)
            if len(single):  # the zones table holds MultiPolygons (PostGIS enforces the column type)
                geoms = geoms.copy()
                geoms[single] = shapely.multipolygons(geoms[single], indices=np.arange(len(single)))
        blobs = self._engine.encode(geoms) if len(geoms) else []
        rows = [
            (kind, str(r["code"]), str(r["name"]), _text(r.get("name_en")), _text(r.get("parent_code")),
             int(edition), valid_from.isoformat(), None, None if pd.isna(r.get("population")) else int(r["population"]),
             attrs_json(r.get("attrs")), blob)
            for r, blob in zip(zones.drop(columns="geometry").to_dict("records"), blobs)
        ]
        geom_param = self._engine.geom_param()
        with self._write() as con:
            later = self._exec(con, "SELECT min(valid_from) FROM zones WHERE kind = ? AND edition > ?",
                               (kind, int(edition))).fetchone()[0]
            self._exec(con, "DELETE FROM zones WHERE kind = ? AND edition = ?", (kind, int(edition)))
            self._exec(con, "UPDATE zones SET valid_to = ? WHERE kind = ? AND edition < ? "
                            "AND (valid_to IS NULL OR valid_to > ?)",
                       (valid_from.isoformat(), kind, int(edition), valid_from.isoformat()))
            valid_to = _iso(later)
            insert = self._engine.sql(
                "INSERT INTO zones (kind, code, name, name_en, parent_code, edition, valid_from, valid_to, population, "
                f"attrs, geom) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {geom_param})")
            rows = [r[:7] + (valid_to,) + r[8:] for r in rows]
            cur = con.cursor()
            cur.executemany(insert, rows)
            self._engine.update_extent(con, "zones")
            self._log_import(con, "import-layer", source, kind, edition, report, written=len(rows))
        return len(rows)

    def _log_import(self, con, command, source, kind, edition, report, written):
        self._exec(con, "INSERT INTO import_log (at, command, source, kind, edition, features_read, repaired, "
                        "rejected, written, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (_now(), command, source, kind, edition, report.get("read"), report.get("repaired"),
                    report.get("rejected"), written, json.dumps(report, ensure_ascii=False, default=str)))

    def import_log(self) -> pd.DataFrame:
        return self._read("SELECT fid AS id, at, command, source, kind, edition, features_read, repaired, rejected, "
                          "written FROM import_log ORDER BY fid")

    # -- planners ---------------------------------------------------------------------------------
    def planners(self) -> pd.DataFrame:
        frame = self._read("SELECT id, name, organization, disciplines, public_contact, private_contact "
                           "FROM planners ORDER BY id")
        frame["disciplines"] = [split_disciplines(d) for d in frame["disciplines"]]
        for col in ("organization", "public_contact", "private_contact"):  # NULL reads back as None, not NaN
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        return frame

    def planner(self, planner_id: str) -> dict:
        frame = self.planners()
        row = frame[frame["id"] == str(planner_id)]
        if row.empty:
            raise NotFoundError(f"no planner {planner_id!r}")
        return row.iloc[0].to_dict()

    def upsert_planners(self, planners: pd.DataFrame, *, actor: str, source: str | None = None) -> dict:
        """Add new planners and update existing ones (by id), all or nothing. Returns counts."""
        problems = planner_problems(planners)
        if problems:
            raise ValidationError(f"{len(problems)} problem(s) in the planners; nothing was written", problems)
        counts = {"added": 0, "updated": 0}
        with self._write() as con:
            existing = {r[0] for r in self._exec(con, "SELECT id FROM planners").fetchall()}
            for row in planners.to_dict("records"):
                values = [_text(row.get(f)) for f in ("name", "organization")] + [
                    ";".join(split_disciplines(row.get("disciplines"))),
                    _text(row.get("public_contact")), _text(row.get("private_contact"))]
                if row["id"] in existing:
                    self._exec(con, "UPDATE planners SET name = ?, organization = ?, disciplines = ?, "
                                    "public_contact = ?, private_contact = ? WHERE id = ?", (*values, row["id"]))
                    counts["updated"] += 1
                    action = "update"
                else:
                    self._exec(con, "INSERT INTO planners (name, organization, disciplines, public_contact, "
                                    "private_contact, id) VALUES (?, ?, ?, ?, ?, ?)", (*values, row["id"]))
                    counts["added"] += 1
                    action = "create"
                self._audit(con, actor, action, "planner", row["id"],
                            {k: _text(row.get(k)) for k in ("name", "organization")})
            if source:
                self._log_import(con, "import-planners", source, None, None,
                                 {"read": len(planners), **counts}, written=len(planners))
        return counts

    # -- appointments -----------------------------------------------------------------------------
    def appointments(self, planner_id: str | None = None) -> pd.DataFrame:
        sql = ("SELECT fid AS id, planner_id, zone_kind, zone_code, role, start_date AS start, end_date AS \"end\" "
               "FROM appointments")
        params = []
        if planner_id is not None:
            sql += " WHERE planner_id = ?"
            params.append(str(planner_id))
        frame = self._read(sql + " ORDER BY fid", params)
        frame["id"] = frame["id"].astype("int64")
        frame["start"] = pd.to_datetime(frame["start"]).astype("datetime64[ns]")
        frame["end"] = pd.to_datetime(frame["end"]).astype("datetime64[ns]")
        return frame

    def add_appointments(self, appointments: pd.DataFrame, *, actor: str, source: str | None = None) -> list[int]:
        """Validate every row against the store, then write them all or none."""
        with self._write() as con:
            planner_ids = {r[0] for r in self._exec(con, "SELECT id FROM planners").fetchall()}
            zone_keys = {(k, c) for k, c in self._exec(con, "SELECT DISTINCT kind, code FROM zones").fetchall()}
            problems = appointment_problems(appointments, planner_ids, zone_keys)
            if problems:
                raise ValidationError(f"{len(problems)} problem(s) in the appointments; nothing was written", problems)
            ids = []
            for row in appointments.to_dict("records"):
                start = parse_date(row["start"], "start")
                end = parse_date(row.get("end"), "end")
                values = (str(row["planner_id"]).strip(), str(row["zone_kind"]).strip(),
                          str(row["zone_code"]).strip(), row["role"], start.isoformat(), _iso(end))
                new_id = self._engine.insert_returning_id(
                    con, "INSERT INTO appointments (planner_id, zone_kind, zone_code, role, start_date, end_date) "
                         "VALUES (?, ?, ?, ?, ?, ?)", values)
                ids.append(int(new_id))
                self._audit(con, actor, "create", "appointment", str(new_id),
                            dict(zip(("planner_id", "zone_kind", "zone_code", "role", "start", "end"), values)))
            if source:
                self._log_import(con, "import-appointments", source, None, None, {"read": len(appointments)},
                                 written=len(ids))
        return ids

    def end_appointment(self, appointment_id: int, end, *, actor: str) -> None:
        end = parse_date(end, "end")
        if end is None:
            raise ValidationError("end: give the date the appointment ends (exclusive), as YYYY-MM-DD")
        with self._write() as con:
            row = self._exec(con, "SELECT start_date, end_date FROM appointments WHERE fid = ?",
                             (int(appointment_id),)).fetchone()
            if row is None:
                raise NotFoundError(f"no appointment {appointment_id}")
            start = parse_date(row[0], "start")
            if end <= start:
                raise ValidationError(f"end {end} is not after the appointment's start {start}")
            self._exec(con, "UPDATE appointments SET end_date = ? WHERE fid = ?", (end.isoformat(), int(appointment_id)))
            self._audit(con, actor, "end", "appointment", str(appointment_id),
                        {"end": end.isoformat(), "previous_end": _iso(row[1])})

    # -- consultation rules -----------------------------------------------------------------------
    def consultation_kinds(self) -> tuple[str, ...]:
        rows = self._exec(self._con(), "SELECT zone_kind FROM consultation_rules WHERE obliges = 1 "
                                       "ORDER BY zone_kind").fetchall()
        return tuple(r[0] for r in rows)

    def set_consultation_kinds(self, kinds, *, actor: str) -> None:
        unknown = [k for k in kinds if k not in ALL_KINDS]
        if unknown:
            raise ValidationError(f"unknown zone kind(s) {', '.join(unknown)}; use {', '.join(ALL_KINDS)}")
        with self._write() as con:
            self._exec(con, "UPDATE consultation_rules SET obliges = 0")
            for kind in kinds:
                if self._exec(con, "UPDATE consultation_rules SET obliges = 1 WHERE zone_kind = ?", (kind,)).rowcount == 0:
                    self._exec(con, "INSERT INTO consultation_rules (zone_kind, obliges) VALUES (?, 1)", (kind,))
            self._audit(con, actor, "update", "consultation_rules", None, {"kinds": list(kinds)})

    # -- projects ---------------------------------------------------------------------------------
    def create_project(self, *, name: str, geometry, type: str | None, scale: str | None,
                       description: str | None, as_of: dt.date, assignment: dict, actor: str) -> int:
        lead = assignment.get("lead") or {}
        consult_ids = sorted({c["planner"]["id"] for c in assignment.get("consultations", [])})
        blob = self._engine.encode(np.array([geometry], dtype=object))[0]
        now = _now()
        with self._write() as con:
            pid = self._engine.insert_returning_id(
                con, "INSERT INTO projects (name, type, scale, description, status, created_at, created_by, as_of, "
                     "lead_planner_id, lead_zone_kind, lead_zone_code, consultation_planner_ids, assignment, geom) "
                     f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {self._engine.geom_param()})",
                (name, type, scale, description, PROJECT_STATUSES[0], now, actor, as_of.isoformat(),
                 (lead.get("planner") or {}).get("id"), (lead.get("zone") or {}).get("kind"),
                 (lead.get("zone") or {}).get("code"), json.dumps(consult_ids),
                 json.dumps(assignment, ensure_ascii=False), blob))
            self._exec(con, "INSERT INTO project_events (project_id, at, status, actor, note) VALUES (?, ?, ?, ?, ?)",
                       (int(pid), now, PROJECT_STATUSES[0], actor, "created"))
            self._audit(con, actor, "create", "project", str(pid), {"name": name})
        return int(pid)

    def projects(self) -> gpd.GeoDataFrame:
        raw = self._read("SELECT fid AS id, name, type, scale, description, status, created_at, created_by, as_of, "
                         "lead_planner_id, lead_zone_kind, lead_zone_code, consultation_planner_ids, assignment, "
                         f"{self._engine.geom_select()} FROM projects ORDER BY fid")
        geoms = self._engine.decode(raw["geom"]) if len(raw) else np.array([], dtype=object)
        frame = raw.drop(columns="geom")
        frame["consultation_planner_ids"] = [json.loads(v) for v in frame["consultation_planner_ids"]]
        frame["assignment"] = [json.loads(v) for v in frame["assignment"]]
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")

    def project_events(self, project_id: int) -> pd.DataFrame:
        return self._read("SELECT at, status, actor, note FROM project_events WHERE project_id = ? ORDER BY fid",
                          (int(project_id),))

    def advance_project(self, project_id: int, status: str, *, actor: str, note: str | None = None) -> None:
        """Move a project one step along 调研-评估-咨询-实施-反馈; any other move is a ConflictError."""
        if status not in PROJECT_STATUSES:
            raise ValidationError(f"unknown status {status!r}; use one of {', '.join(PROJECT_STATUSES)}")
        with self._write() as con:
            row = self._exec(con, "SELECT status FROM projects WHERE fid = ?", (int(project_id),)).fetchone()
            if row is None:
                raise NotFoundError(f"no project {project_id}")
            if status not in _WORKFLOW[row[0]]:
                allowed = ", ".join(_WORKFLOW[row[0]]) or "none (the workflow is finished)"
                raise ConflictError(f"project {project_id} is at {row[0]!r}; it can move to: {allowed}")
            self._exec(con, "UPDATE projects SET status = ? WHERE fid = ?", (status, int(project_id)))
            self._exec(con, "INSERT INTO project_events (project_id, at, status, actor, note) VALUES (?, ?, ?, ?, ?)",
                       (int(project_id), _now(), status, actor, note))
            self._audit(con, actor, "status", "project", str(project_id), {"from": row[0], "to": status, "note": note})

    # -- audit ------------------------------------------------------------------------------------
    def _audit(self, con, actor, action, entity, entity_id, detail):
        self._exec(con, "INSERT INTO audit (at, actor, action, entity, entity_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
                   (_now(), actor, action, entity, entity_id, json.dumps(detail, ensure_ascii=False, default=str)))

    def audit(self, limit: int = 100, offset: int = 0) -> pd.DataFrame:
        frame = self._read("SELECT fid AS id, at, actor, action, entity, entity_id, detail FROM audit "
                           "ORDER BY fid LIMIT ? OFFSET ?", (int(limit), int(offset)))
        frame["detail"] = [json.loads(d) if d else None for d in frame["detail"]]
        return frame

    # -- single records, filtered reads and change marks (used by the API) -----------------------
    def find_audit(self, *, entity: str | None = None, entity_id: str | None = None, actor: str | None = None,
                   action: str | None = None, limit: int = 100, offset: int = 0) -> tuple[pd.DataFrame, int]:
        """Audit rows matching every given filter, oldest first, and how many match in all."""
        where, params = [], []
        for column, value in (("entity", entity), ("entity_id", entity_id), ("actor", actor), ("action", action)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        (total,) = self._exec(self._con(), "SELECT count(*) FROM audit" + clause, params).fetchone()
        frame = self._read("SELECT fid AS id, at, actor, action, entity, entity_id, detail FROM audit" + clause
                           + " ORDER BY fid LIMIT ? OFFSET ?", (*params, int(limit), int(offset)))
        frame["id"] = frame["id"].astype("int64")
        frame["detail"] = [json.loads(d) if d else None for d in frame["detail"]]
        return frame, int(total)

    def change_marks(self) -> dict:
        """Cheap marks that move whenever the store changes: the last audit row (planners, appointments,
        projects, rules) and the last boundary import (zones). A long-running reader compares them to
        know what to reload."""
        con = self._con()
        (audit,) = self._exec(con, "SELECT max(fid) FROM audit").fetchone()
        (zones,) = self._exec(con, "SELECT max(fid) FROM import_log WHERE command = 'import-layer'").fetchone()
        return {"audit": int(audit or 0), "zones": int(zones or 0)}

    def create_planner(self, record: dict, *, actor: str) -> dict:
        """Add one planner; ConflictError when the id is taken. Returns the stored record."""
        frame = pd.DataFrame([{f: record.get(f) for f in PLANNER_FIELDS}])
        problems = planner_problems(frame)
        if problems:
            raise ValidationError("the planner was not written", [p.replace("row 2, ", "") for p in problems])
        values = _planner_values(record)
        with self._write() as con:
            if self._exec(con, "SELECT 1 FROM planners WHERE id = ?", (record["id"],)).fetchone():
                raise ConflictError(f"planner {record['id']!r} already exists; change it with PATCH /planners/"
                                    f"{record['id']} or choose another id")
            self._exec(con, "INSERT INTO planners (name, organization, disciplines, public_contact, "
                            "private_contact, id) VALUES (?, ?, ?, ?, ?, ?)", (*values, record["id"]))
            self._audit(con, actor, "create", "planner", record["id"],
                        {k: _text(record.get(k)) for k in ("name", "organization")})
        return self.planner(record["id"])

    def update_planner(self, planner_id: str, changes: dict, *, actor: str) -> dict:
        """Change some fields of one planner (the id stays); NotFoundError when there is none."""
        unknown = sorted(set(changes) - set(PLANNER_FIELDS[1:]))
        if unknown:
            raise ValidationError(f"cannot change {', '.join(unknown)}; changeable fields: "
                                  f"{', '.join(PLANNER_FIELDS[1:])}")
        with self._write() as con:
            row = self._exec(con, "SELECT id, name, organization, disciplines, public_contact, private_contact "
                                  "FROM planners WHERE id = ?", (str(planner_id),)).fetchone()
            if row is None:
                raise NotFoundError(f"no planner {planner_id!r}")
            merged = dict(zip(PLANNER_FIELDS, row))
            merged["disciplines"] = split_disciplines(merged["disciplines"])
            merged.update(changes)
            problems = planner_problems(pd.DataFrame([merged]))
            if problems:
                raise ValidationError("the planner was not changed", [p.replace("row 2, ", "") for p in problems])
            self._exec(con, "UPDATE planners SET name = ?, organization = ?, disciplines = ?, public_contact = ?, "
                            "private_contact = ? WHERE id = ?", (*_planner_values(merged), str(planner_id)))
            detail = {k: (_text(v) if k != "disciplines" else split_disciplines(v)) for k, v in changes.items()
                      if k != "private_contact"}
            if "private_contact" in changes:
                detail["private_contact"] = "(changed)"
            self._audit(con, actor, "update", "planner", str(planner_id), detail)
        return self.planner(planner_id)

    def appointment(self, appointment_id: int) -> dict:
        frame = self._read("SELECT fid AS id, planner_id, zone_kind, zone_code, role, start_date AS start, "
                           "end_date AS \"end\" FROM appointments WHERE fid = ?", (int(appointment_id),))
        if frame.empty:
            raise NotFoundError(f"no appointment {appointment_id}")
        row = frame.iloc[0].to_dict()
        row["id"] = int(row["id"])
        row["start"] = parse_date(row["start"], "start")
        row["end"] = parse_date(row["end"], "end")
        return row

    def zone_appointments(self, kind: str, code: str) -> pd.DataFrame:
        """Every appointment ever made on one zone (all roles, ended ones too), oldest first."""
        frame = self._read("SELECT fid AS id, planner_id, zone_kind, zone_code, role, start_date AS start, "
                           "end_date AS \"end\" FROM appointments WHERE zone_kind = ? AND zone_code = ? ORDER BY fid",
                           (str(kind), str(code)))
        frame["id"] = frame["id"].astype("int64")
        frame["start"] = pd.to_datetime(frame["start"])
        frame["end"] = pd.to_datetime(frame["end"])
        return frame

    def create_appointment(self, *, planner_id: str, zone_kind: str, zone_code: str, role: str, start,
                           end=None, actor: str) -> int:
        """Add one appointment, checked against the store in the same transaction.

        A second ``lead`` on a zone whose dates overlap an existing lead is a ConflictError: end the
        current lead first (the handover day is the old end = the new start).
        """
        frame = pd.DataFrame([{"planner_id": planner_id, "zone_kind": zone_kind, "zone_code": zone_code,
                               "role": role, "start": start, "end": end}])
        with self._write() as con:
            planner_ids = {r[0] for r in self._exec(con, "SELECT id FROM planners WHERE id = ?",
                                                     (str(planner_id),)).fetchall()}
            zone_keys = {(k, c) for k, c in self._exec(con, "SELECT DISTINCT kind, code FROM zones WHERE kind = ? "
                                                            "AND code = ?", (str(zone_kind), str(zone_code))).fetchall()}
            problems = appointment_problems(frame, planner_ids, zone_keys)
            if problems:
                raise ValidationError("the appointment was not written",
                                      [p.replace("row 2, ", "") for p in problems])
            start_d, end_d = parse_date(start, "start"), parse_date(end, "end")
            if role == "lead":
                for fid, pid, s, e in self._exec(
                        con, "SELECT fid, planner_id, start_date, end_date FROM appointments WHERE zone_kind = ? "
                             "AND zone_code = ? AND role = 'lead' ORDER BY fid", (zone_kind, zone_code)).fetchall():
                    s, e = parse_date(s, "start"), parse_date(e, "end")
                    if (end_d is None or s < end_d) and (e is None or start_d < e):
                        raise ConflictError(
                            f"{zone_kind} {zone_code} already has lead {pid} (appointment {fid}, {s} to "
                            f"{e or 'open'}) over these dates; end that appointment first (its end = this start)")
            values = (str(planner_id), str(zone_kind), str(zone_code), role, start_d.isoformat(), _iso(end_d))
            new_id = self._engine.insert_returning_id(
                con, "INSERT INTO appointments (planner_id, zone_kind, zone_code, role, start_date, end_date) "
                     "VALUES (?, ?, ?, ?, ?, ?)", values)
            self._audit(con, actor, "create", "appointment", str(new_id),
                        dict(zip(("planner_id", "zone_kind", "zone_code", "role", "start", "end"), values)))
        return int(new_id)

    def find_projects(self, *, status: str | None = None, planner_id: str | None = None,
                      project_id: int | None = None) -> gpd.GeoDataFrame:
        """Projects (the frame of :meth:`projects`) at ``status``, where ``planner_id`` is lead or consulted."""
        where, params = [], []
        if project_id is not None:
            where.append("fid = ?")
            params.append(int(project_id))
        if status is not None:
            where.append("status = ?")
            params.append(str(status))
        if planner_id is not None:
            escaped = json.dumps(str(planner_id)).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("(lead_planner_id = ? OR consultation_planner_ids LIKE ? ESCAPE '\\')")
            params += [str(planner_id), f"%{escaped}%"]
        raw = self._read("SELECT fid AS id, name, type, scale, description, status, created_at, created_by, as_of, "
                         "lead_planner_id, lead_zone_kind, lead_zone_code, consultation_planner_ids, assignment, "
                         f"{self._engine.geom_select()} FROM projects"
                         + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY fid", params)
        geoms = self._engine.decode(raw["geom"]) if len(raw) else np.array([], dtype=object)
        frame = raw.drop(columns="geom")
        frame["id"] = frame["id"].astype("int64")
        frame["consultation_planner_ids"] = [json.loads(v) for v in frame["consultation_planner_ids"]]
        frame["assignment"] = [json.loads(v) for v in frame["assignment"]]
        if planner_id is not None:  # LIKE found candidates; keep exact members only
            keep = [(lead == planner_id) or (planner_id in ids)
                    for lead, ids in zip(frame["lead_planner_id"], frame["consultation_planner_ids"])]
            frame, geoms = frame[keep].reset_index(drop=True), geoms[np.asarray(keep, dtype=bool)]
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")

    def project(self, project_id: int) -> dict:
        """One project as a dict (geometry a shapely geometry); NotFoundError when there is none."""
        frame = self.find_projects(project_id=int(project_id))
        if frame.empty:
            raise NotFoundError(f"no project {project_id}")
        row = frame.iloc[0].to_dict()
        row["geometry"] = frame.geometry.iloc[0]
        return row

    def add_project_note(self, project_id: int, note: str, *, actor: str) -> None:
        """Add a note to a project's events without moving its status."""
        if not isinstance(note, str) or not note.strip():
            raise ValidationError("note: empty; write the note's text")
        with self._write() as con:
            row = self._exec(con, "SELECT status FROM projects WHERE fid = ?", (int(project_id),)).fetchone()
            if row is None:
                raise NotFoundError(f"no project {project_id}")
            self._exec(con, "INSERT INTO project_events (project_id, at, status, actor, note) VALUES (?, ?, ?, ?, ?)",
                       (int(project_id), _now(), row[0], actor, note))
            self._audit(con, actor, "note", "project", str(project_id), {"status": row[0], "note": note})


PLANNER_FIELDS = ("id", "name", "organization", "disciplines", "public_contact", "private_contact")


def _planner_values(record: dict) -> list:
    """(name, organization, disciplines, public_contact, private_contact) as stored."""
    return [_text(record.get("name")), _text(record.get("organization")),
            ";".join(split_disciplines(record.get("disciplines"))),
            _text(record.get("public_contact")), _text(record.get("private_contact"))]


def _text(value):
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def open_store(location: str | os.PathLike | None = None, *, create: bool = False) -> Store:
    """Open the store at a GeoPackage path or a ``postgresql://`` URL.

    ``create`` makes a new store (file or schema) when there is none; otherwise a missing store is an error
    that says how to make one.
    """
    location = str(location or os.environ.get("ZEREN_STORE") or DEFAULT_STORE)
    if location.startswith(("postgresql://", "postgres://")):
        store = Store(_PostGISEngine(location), location)
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
        store = Store(_GeoPackageEngine(path), str(path))
        if exists:
            store._engine.check(store._con())
    if not store._is_zeren():
        if not create or (isinstance(store._engine, _GeoPackageEngine) and exists):
            raise StoreError(f"{location} holds no Zeren store; Zeren writes only to stores it made: give a new "
                             f"file name, or build the demo with `zeren demo --store NEW.gpkg`")
        store._initialise()
    return store
