"""Connections, transactions, the schema, and the logs every write leaves (the audit log, the import log).

A transaction is re-entrant: inside ``with store.transaction():`` every read and write of the store (on this
thread) belongs to it, so a use case can read, check its rules and write as one all-or-nothing step.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager

import pandas as pd

from zeren.geo.kinds import DEFAULT_CONSULTATION_KINDS
from zeren.layers.store.engine import Engine
from zeren.layers.store.tables import IMPORTED, INDEXES, MIGRATIONS, NEW_TABLES, SCHEMA_VERSION, TABLES, now


class StoreBase:
    def __init__(self, engine: Engine, location: str):
        self._engine = engine
        self.location = location
        self._local = threading.local()

    # -- connections and transactions -------------------------------------------------------------
    def _con(self):
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._engine.connect()
            self._local.con = con
            self._local.depth = 0
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
            self._local.depth = 0

    def transaction(self):
        """One all-or-nothing write (re-entrant: a transaction inside another joins it). The write lock is
        taken at the start, so what is read inside stays true until the commit."""
        return self._outermost(self._engine.begin, commit=True)

    def snapshot(self):
        """A consistent view for a series of reads (a reload of the in-memory catalogue): every read inside sees
        the store as of one instant, never half of another process's write. Inside a transaction it joins it.
        Read-only: nothing may be written inside (on PostGIS the database refuses)."""
        return self._outermost(self._engine.begin_snapshot, commit=False)

    @contextmanager
    def _outermost(self, begin, *, commit: bool):
        """The one place a store transaction starts and ends: joined when one is open on this thread, else begun
        with ``begin``, then committed (running the ``after_commit`` callbacks) or, for a read-only snapshot,
        rolled back; rolled back on any error either way."""
        con = self._con()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield con
            finally:
                self._local.depth -= 1
            return
        begin(con)
        self._local.depth = 1
        self._local.after = []
        try:
            yield con
        except BaseException:
            self._local.depth = 0
            self._local.after = []
            con.execute("ROLLBACK")
            raise
        self._local.depth = 0
        after, self._local.after = self._local.after, []
        if not commit:
            con.execute("ROLLBACK")
            return
        con.execute("COMMIT")
        for fn in after:
            fn()

    def after_commit(self, fn) -> None:
        """Run ``fn`` once the current transaction has committed (at once outside one; never on a rollback):
        how a reader's caches learn of a write only when it is really there."""
        if self.in_transaction:
            if fn not in self._local.after:
                self._local.after.append(fn)
        else:
            fn()

    @property
    def in_transaction(self) -> bool:
        return bool(getattr(self._local, "depth", 0))

    def _exec(self, con, sql, params=()):
        return con.execute(self._engine.sql(sql), params)

    def _read(self, sql, params=()) -> pd.DataFrame:
        return self._engine.read_frame(self._con(), sql, params)

    # -- schema -----------------------------------------------------------------------------------
    def _initialise(self) -> None:
        with self.transaction() as con:
            self._engine.bootstrap(con)
            for name, (geometry_type, columns) in TABLES.items():
                self._engine.create_table(con, name, geometry_type, columns)
            for stmt in INDEXES:
                con.execute(stmt)
            has_rules = self._exec(con, "SELECT count(*) FROM consultation_rules").fetchone()[0]
            if not has_rules:
                for kind in DEFAULT_CONSULTATION_KINDS:
                    self._exec(con, "INSERT INTO consultation_rules (zone_kind, obliges) VALUES (?, 1)", (kind,))
            self._seed(con)
            self._put_meta(con, "schema_version", str(SCHEMA_VERSION))

    def _seed(self, con) -> None:
        """Default rows of the editable lists (each part of the store that has one adds it here)."""
        for name in ("_seed_feedback_categories", "_seed_discipline_requirements"):
            seed = getattr(self, name, None)
            if seed is not None:
                seed(con)

    def _schema_version(self) -> int | None:
        try:
            row = self._exec(self._con(), "SELECT value FROM zeren_meta WHERE key = 'schema_version'").fetchone()
        except Exception:  # no zeren_meta table: sqlite3 and psycopg raise different classes
            return None
        return None if row is None else int(row[0])

    def _is_zeren(self) -> bool:
        return self._schema_version() is not None

    def _migrate(self) -> None:
        """Bring a store made by an older Zeren up to this schema (columns added; nothing rewritten)."""
        if self._engine.needs_upgrade(self._con()):
            with self.transaction() as con:
                self._engine.upgrade(con)
        version = self._schema_version() or SCHEMA_VERSION
        if version >= SCHEMA_VERSION or not self._engine.writable():  # a read-only store is read as it is
            return
        with self.transaction() as con:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for table in NEW_TABLES.get(step, []):
                    self._engine.create_table(con, table, *TABLES[table])
                for table, column, sql_type in MIGRATIONS.get(step, []):
                    if column not in self._engine.columns(con, table):
                        self._engine.add_column(con, table, column, sql_type)
            for stmt in INDEXES:  # IF NOT EXISTS: those of the new tables
                con.execute(stmt)
            self._seed(con)
            self._put_meta(con, "schema_version", str(SCHEMA_VERSION))

    def meta(self, key: str) -> str | None:
        row = self._exec(self._con(), "SELECT value FROM zeren_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as con:
            self._put_meta(con, key, value)

    def _put_meta(self, con, key: str, value: str) -> None:
        self._exec(con, "DELETE FROM zeren_meta WHERE key = ?", (key,))
        self._exec(con, "INSERT INTO zeren_meta (key, value) VALUES (?, ?)", (key, value))

    # -- the audit log ----------------------------------------------------------------------------
    def audit_event(self, actor: str, action: str, entity: str, entity_id, detail) -> None:
        """Append one row to the audit log (inside the caller's transaction when there is one)."""
        with self.transaction() as con:
            self._exec(con, "INSERT INTO audit (at, actor, action, entity, entity_id, detail) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                       (now(), str(actor), action, entity, None if entity_id is None else str(entity_id),
                        json.dumps(detail, ensure_ascii=False, default=str)))

    def audit_events(self, actor: str, action: str, entity: str, events) -> None:
        """Append one audit row per (entity_id, detail) of ``events``, in one bulk insert (inside the caller's
        transaction when there is one): what a bulk write leaves instead of one :meth:`audit_event` per row."""
        at, actor = now(), str(actor)
        rows = [(at, actor, action, entity, None if entity_id is None else str(entity_id),
                 json.dumps(detail, ensure_ascii=False, default=str)) for entity_id, detail in events]
        if not rows:
            return
        with self.transaction() as con:
            self._engine.insert_many(con, "audit", ("at", "actor", "action", "entity", "entity_id", "detail"), rows)

    def audit(self, limit: int = 100, offset: int = 0) -> pd.DataFrame:
        frame, _ = self.find_audit(limit=limit, offset=offset)
        return frame

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

    # -- the import log ---------------------------------------------------------------------------
    def log_import(self, command: str, *, source: str | None, report: dict, written: int, actor: str,
                   kind: str | None = None, edition: int | None = None, audit: dict | None = None) -> int:
        """Record one import (a boundary layer, planners, appointments, a carry-over) in the import log and,
        in the same transaction, in the audit log (action ``import``, or ``carry-over``), with its id, its
        source and ``audit`` (the counts the import changed), so /audit lists every import with its actor."""
        with self.transaction() as con:
            import_id = int(self._engine.insert_returning_id(
                con, "INSERT INTO import_log (at, command, source, kind, edition, features_read, repaired, "
                     "rejected, written, report, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now(), command, source, kind, edition, report.get("read"), report.get("repaired"),
                 report.get("rejected"), int(written), json.dumps(report, ensure_ascii=False, default=str),
                 str(actor))))
            entity = IMPORTED.get(command, "appointments")
            entity_id = f"{kind}/{edition}" if entity == "zones" else str(import_id)
            action = "carry-over" if command == "carry-over" else "import"
            self.audit_event(actor, action, entity, entity_id,
                             {"command": command, "import_id": import_id, "source": source,
                              **(audit if audit is not None else {"written": int(written)})})
            return import_id

    def import_log(self) -> pd.DataFrame:
        return self._read("SELECT fid AS id, at, command, source, kind, edition, features_read, repaired, rejected, "
                          "written, actor FROM import_log ORDER BY fid")

    def change_marks(self) -> dict:
        """Cheap marks that move whenever the store changes: the last audit row (planners, appointments,
        projects, rules) and the last boundary import (zones). A long-running reader compares them to
        know what to reload."""
        con = self._con()
        (audit,) = self._exec(con, "SELECT max(fid) FROM audit").fetchone()
        (zones,) = self._exec(con, "SELECT max(fid) FROM import_log WHERE command = 'import-layer'").fetchone()
        return {"audit": int(audit or 0), "zones": int(zones or 0)}
