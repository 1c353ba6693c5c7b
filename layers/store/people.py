"""Planners, appointments and consultation rules: the store's side only (reading, writing rows, the audit
trail). The rules a write must obey (no duplicate appointment, one lead at a time, planners re-imported
unchanged) are the use cases' (zeren.api.service), checked inside :meth:`transaction` before these run."""
from __future__ import annotations

import pandas as pd

from zeren.geo.kinds import ALL_KINDS
from zeren.layers.errors import NotFoundError, ValidationError
from zeren.layers.schema import split_disciplines
from zeren.layers.store.tables import dates, iso, text

PLANNER_FIELDS = ("id", "name", "organization", "disciplines", "public_contact", "private_contact")
APPOINTMENT_FIELDS = ("planner_id", "zone_kind", "zone_code", "role", "start", "end")
_APPOINTMENT_COLUMNS = ("fid AS id, planner_id, zone_kind, zone_code, role, start_date AS start, "
                        "end_date AS \"end\"")
_APPOINTMENT_SELECT = f"SELECT {_APPOINTMENT_COLUMNS} FROM appointments"


def planner_values(record: dict) -> tuple:
    """(name, organization, disciplines, public_contact, private_contact) as stored."""
    return (text(record.get("name")), text(record.get("organization")),
            ";".join(split_disciplines(record.get("disciplines"))),
            text(record.get("public_contact")), text(record.get("private_contact")))


class PeopleTables:
    # -- planners ---------------------------------------------------------------------------------
    def planners(self) -> pd.DataFrame:
        frame = self._read("SELECT id, name, organization, disciplines, public_contact, private_contact "
                           "FROM planners ORDER BY id")
        frame["disciplines"] = [split_disciplines(d) for d in frame["disciplines"]]
        for col in ("organization", "public_contact", "private_contact"):  # NULL reads back as None, not NaN
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        return frame

    def planner(self, planner_id: str) -> dict:
        frame = self._read("SELECT id, name, organization, disciplines, public_contact, private_contact "
                           "FROM planners WHERE id = ?", (str(planner_id),))
        if frame.empty:
            raise NotFoundError(f"no planner {str(planner_id)[:64]!r}")
        row = frame.iloc[0].to_dict()
        row["disciplines"] = split_disciplines(row["disciplines"])
        return {k: (None if (v is not None and not isinstance(v, list) and pd.isna(v)) else v) for k, v in row.items()}

    def write_planners(self, *, add: list[dict], change: list[tuple[dict, dict]], actor: str) -> None:
        """Insert new planners and overwrite changed ones; ``change`` holds (record, audit detail) pairs."""
        with self.transaction() as con:
            for record in add:
                self._exec(con, "INSERT INTO planners (name, organization, disciplines, public_contact, "
                                "private_contact, id) VALUES (?, ?, ?, ?, ?, ?)",
                           (*planner_values(record), str(record["id"])))
                self.audit_event(actor, "create", "planner", record["id"],
                                 {k: text(record.get(k)) for k in ("name", "organization")})
            for record, detail in change:
                self._exec(con, "UPDATE planners SET name = ?, organization = ?, disciplines = ?, "
                                "public_contact = ?, private_contact = ? WHERE id = ?",
                           (*planner_values(record), str(record["id"])))
                self.audit_event(actor, "update", "planner", record["id"], detail)

    # -- appointments -----------------------------------------------------------------------------
    def appointments(self, planner_id: str | None = None) -> pd.DataFrame:
        tail, params = "FROM appointments", []
        if planner_id is not None:
            tail += " WHERE planner_id = ?"
            params.append(str(planner_id))
        frame, _ = self._engine.read_columns(self._con(), _APPOINTMENT_COLUMNS, tail, "fid", params)
        return _appointment_frame(frame)

    def appointment(self, appointment_id: int) -> dict:
        frame = _appointment_frame(self._read(_APPOINTMENT_SELECT + " WHERE fid = ?", (int(appointment_id),)))
        if frame.empty:
            raise NotFoundError(f"no appointment {appointment_id}")
        row = frame.iloc[0].to_dict()
        row["id"] = int(row["id"])
        return row

    def zone_appointments(self, kind: str, code: str) -> pd.DataFrame:
        """Every appointment ever made on one zone (all roles, ended ones too), oldest first."""
        return _appointment_frame(self._read(_APPOINTMENT_SELECT + " WHERE zone_kind = ? AND zone_code = ? "
                                             "ORDER BY fid", (str(kind), str(code))))

    def insert_appointments(self, rows: pd.DataFrame, *, actor: str, reason: str | None = None) -> list[int]:
        """Insert checked appointment rows (APPOINTMENT_FIELDS), each audited; returns their ids in order.
        In bulk: one insert of every appointment and one of their audit rows (a COPY each on PostGIS), in one
        transaction, so 10^5 rows take seconds and a killed import leaves the store as it was."""
        ends = rows["end"].tolist() if "end" in rows else [None] * len(rows)  # by column: no dict per row
        values = [(str(p), str(k), str(c), str(r), iso(s), iso(e)) for p, k, c, r, s, e in
                  zip(*(rows[f].tolist() for f in ("planner_id", "zone_kind", "zone_code", "role", "start")), ends)]
        with self.transaction() as con:
            ids = self._engine.insert_many(con, "appointments", ("planner_id", "zone_kind", "zone_code", "role",
                                                                 "start_date", "end_date"), values, ids=True)
            details = []
            for v in values:
                detail = dict(zip(APPOINTMENT_FIELDS, v))
                if reason:
                    detail["reason"] = reason
                details.append(detail)
            self.audit_events(actor, "create", "appointment", list(zip(ids, details)))
        return ids

    def set_appointment_end(self, appointment_id: int, end, *, actor: str) -> None:
        """Set (or move) an appointment's end day; the caller has checked it against the start."""
        with self.transaction() as con:
            row = self._exec(con, "SELECT end_date FROM appointments WHERE fid = ?", (int(appointment_id),)).fetchone()
            if row is None:
                raise NotFoundError(f"no appointment {appointment_id}")
            self._exec(con, "UPDATE appointments SET end_date = ? WHERE fid = ?", (iso(end), int(appointment_id)))
            self.audit_event(actor, "end", "appointment", appointment_id,
                             {"end": iso(end), "previous_end": iso(row[0])})

    # -- consultation rules -----------------------------------------------------------------------
    def consultation_kinds(self) -> tuple[str, ...]:
        rows = self._exec(self._con(), "SELECT zone_kind FROM consultation_rules WHERE obliges = 1 "
                                       "ORDER BY zone_kind").fetchall()
        return tuple(r[0] for r in rows)

    def set_consultation_kinds(self, kinds, *, actor: str) -> None:
        unknown = [k for k in kinds if k not in ALL_KINDS]
        if unknown:
            raise ValidationError(f"unknown zone kind(s) {', '.join(unknown)}; use {', '.join(ALL_KINDS)}")
        with self.transaction() as con:
            self._exec(con, "UPDATE consultation_rules SET obliges = 0")
            for kind in kinds:
                if self._exec(con, "UPDATE consultation_rules SET obliges = 1 WHERE zone_kind = ?", (kind,)).rowcount == 0:
                    self._exec(con, "INSERT INTO consultation_rules (zone_kind, obliges) VALUES (?, 1)", (kind,))
            self.audit_event(actor, "update", "consultation_rules", None, {"kinds": list(kinds)})


def _appointment_frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame["id"] = frame["id"].astype("int64")
    frame["zone_code"] = frame["zone_code"].astype(str)
    frame["start"] = dates(frame["start"])
    frame["end"] = dates(frame["end"])
    return frame
