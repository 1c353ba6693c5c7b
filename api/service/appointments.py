"""Appointments: who holds which zone, when. Every door adds them through this module, so one set of rules
holds for a CSV import, ``POST /appointments``, the demo builder and carry-over alike:

* each row is well formed (known planner, known zone kind and code, a role, start before end);
* the zone is in force for some of the term (an edition of it is valid during [start, end));
* a row that repeats an appointment already in the store (or an earlier row) -- same planner, zone and role,
  overlapping term -- is not added again: it is reported as "already present";
* a second ``lead`` on a zone whose term overlaps a lead held by another planner is refused, naming the
  clashing appointment: end the current lead first (the handover day is the old end and the new start).

Every row is checked before anything is written, inside the store's write transaction, so two imports
running at once cannot both add the same lead.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from zeren.api.service.actors import Actor
from zeren.api.service.workspace import Workspace
from zeren.geo.kinds import KIND_LABELS
from zeren.layers.errors import ConflictError, NotFoundError, ValidationError
from zeren.layers.schema import appointment_problems, parse_date
from zeren.layers.store import APPOINTMENT_FIELDS

_FAR_FUTURE = dt.date(9999, 12, 31)


@dataclass
class Present:
    """An incoming row that is already there: the existing appointment (or earlier row) it repeats."""

    row: int
    existing_id: int | None  # None when it repeats an earlier row of the same input
    existing_row: int | None
    note: str


@dataclass
class AppointmentPlan:
    """What an input of appointments would do: the rows to add, the rows already present, what is wrong."""

    new: pd.DataFrame
    new_rows: list[int]
    present: list[Present] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    clashes: list[str] = field(default_factory=list)
    clash_rows: list[int] = field(default_factory=list)  # the row number of each clash

    def raise_for_problems(self, what: str = "appointments") -> None:
        if self.problems:
            raise ValidationError(f"{len(self.problems)} problem(s) in the {what}; nothing was written",
                                  self.problems)
        if self.clashes:
            raise ConflictError(f"{len(self.clashes)} lead appointment(s) clash with a lead over the same dates; "
                                f"nothing was written", self.clashes)


@dataclass
class AppointmentImport:
    ids: list[int]
    present: list[Present]
    read: int

    def as_dict(self) -> dict:
        return {"read": self.read, "added": len(self.ids), "already_present": len(self.present), "ids": self.ids,
                "present": [p.__dict__ for p in self.present]}

    def text(self) -> str:
        lines = [f"任命 / appointments: {len(self.ids)} added, {len(self.present)} already present "
                 f"(of {self.read} read)"]
        lines += [f"  已有 / already present: row {p.row}: {p.note}" for p in self.present[:50]]
        if len(self.present) > 50:
            lines.append(f"  ... and {len(self.present) - 50} more already present")
        return "\n".join(lines)


def _day(value) -> dt.date | None:
    if value is None or value is pd.NaT or (not isinstance(value, (str, dt.date)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    try:
        return parse_date(value, "date")
    except ValueError:
        return None


def _overlaps(s1, e1, s2, e2) -> bool:
    """Do [s1, e1) and [s2, e2) share a day? (None = open end)"""
    return s1 < (e2 or _FAR_FUTURE) and s2 < (e1 or _FAR_FUTURE)


def _term(start, end) -> str:
    return f"{start} to {end or 'open'}"


def _zone_name(kind: str, code: str) -> str:
    return f"{KIND_LABELS.get(kind, (kind,))[0]} {kind} {code}"


def check_appointments(existing: pd.DataFrame, incoming: pd.DataFrame, planner_ids, zone_periods: pd.DataFrame,
                       *, first_row: int = 2) -> AppointmentPlan:
    """Check ``incoming`` (columns of APPOINTMENT_FIELDS, text or dates) against the store's ``existing``
    appointments, its planners and its zones' periods (kind, code, valid_from, valid_to). Pure: writes nothing."""
    frame = incoming.reset_index(drop=True)
    zone_keys = set(zip(zone_periods["kind"].astype(str), zone_periods["code"].astype(str)))
    problems = appointment_problems(frame, planner_ids, zone_keys, first_row=first_row)
    plan = AppointmentPlan(new=frame.iloc[0:0], new_rows=[], problems=problems)
    if problems:
        return plan
    periods: dict[tuple[str, str], list[tuple[dt.date, dt.date | None]]] = {}
    for k, c, s, e in zip(zone_periods["kind"], zone_periods["code"].astype(str), zone_periods["valid_from"],
                          zone_periods["valid_to"]):
        periods.setdefault((k, c), []).append((_day(s), _day(e)))
    held: dict[tuple[str, str], list[tuple]] = {}  # (kind, code) -> [(planner, role, start, end, id, row)]
    for r in existing.itertuples(index=False):
        held.setdefault((r.zone_kind, str(r.zone_code)), []).append(
            (r.planner_id, r.role, _day(r.start), _day(r.end), int(r.id), None))
    keep = []
    for i, row in enumerate(frame.to_dict("records")):
        row_no = i + first_row
        pid, kind, code, role = (str(row["planner_id"]).strip(), str(row["zone_kind"]).strip(),
                                 str(row["zone_code"]).strip(), str(row["role"]).strip())
        start, end = parse_date(row["start"], "start"), parse_date(row.get("end"), "end")
        spans = periods.get((kind, code), [])
        if not any(_overlaps(start, end, s, e) for s, e in spans):
            runs = ", ".join(_term(s, e) for s, e in sorted(spans)) or "none"
            plan.problems.append(f"row {row_no}: {_zone_name(kind, code)} is not in force at any time from "
                                 f"{_term(start, end)} (its editions run {runs}); appoint on a zone in force")
            continue
        same = held.setdefault((kind, code), [])
        repeat = next((h for h in same if h[0] == pid and h[1] == role and _overlaps(start, end, h[2], h[3])), None)
        if repeat is not None:
            where = f"appointment {repeat[4]}" if repeat[4] is not None else f"row {repeat[5]}"
            note = f"{pid} {role} of {_zone_name(kind, code)} is already {where} ({_term(repeat[2], repeat[3])})"
            if (repeat[2], repeat[3]) != (start, end):
                note += f"; this row says {_term(start, end)}: to change the term, end {where} and add the new one"
            plan.present.append(Present(row_no, repeat[4], repeat[5], note))
            continue
        if role == "lead":
            other = next((h for h in same if h[1] == "lead" and _overlaps(start, end, h[2], h[3])), None)
            if other is not None:
                where = f"appointment {other[4]}" if other[4] is not None else f"row {other[5]} of this input"
                plan.clashes.append(
                    f"row {row_no}: {_zone_name(kind, code)} already has lead {other[0]} ({where}, "
                    f"{_term(other[2], other[3])}) over {_term(start, end)}; end that appointment first "
                    f"(its end = this start), or drop this row")
                plan.clash_rows.append(row_no)
                continue
        same.append((pid, role, start, end, None, row_no))
        keep.append(i)
        plan.new_rows.append(row_no)
    new = frame.iloc[keep].copy()
    for col in ("planner_id", "zone_kind", "zone_code", "role"):
        new[col] = new[col].astype(str).str.strip()
    new["start"] = [parse_date(v, "start") for v in new["start"]]
    new["end"] = [parse_date(v, "end") for v in new["end"]] if "end" in new else None
    plan.new = new[list(APPOINTMENT_FIELDS)]
    return plan


def add_appointments(ws: Workspace, rows: pd.DataFrame, *, actor: Actor, source: str | None = None,
                     first_row: int = 2, what: str = "appointments", reason: str | None = None,
                     command: str = "import-appointments") -> AppointmentImport:
    """Check every row against the store, then add the new ones, all in one transaction (the rules above).
    Raises ValidationError / ConflictError naming every bad row; nothing is written then. With a ``source``
    the import is logged (import log and one audit row, as ``command``) besides each appointment's row."""
    store = ws.store
    with store.transaction():
        planner_ids = set(store.planners()["id"].astype(str))
        plan = check_appointments(store.appointments(), rows, planner_ids, store.zone_periods(), first_row=first_row)
        plan.raise_for_problems(what)
        ids = store.insert_appointments(plan.new, actor=actor.name, reason=reason)
        if source is not None and ids:  # an import that adds nothing leaves no trace: it changed nothing
            counts = {"read": len(rows), "added": len(ids), "already_present": len(plan.present)}
            store.log_import(command, source=source, actor=actor.name, written=len(ids), report=counts,
                             audit={**counts, "appointment_ids": ids})
    ws.changed()
    return AppointmentImport(ids=ids, present=plan.present, read=len(rows))


def create_appointment(ws: Workspace, record: dict, *, actor: Actor) -> tuple[int, bool]:
    """One appointment (``POST /appointments``): its id, and whether it was created (False: it was already
    present, and the id is the existing appointment's)."""
    frame = pd.DataFrame([{f: record.get(f) for f in APPOINTMENT_FIELDS}])
    try:
        result = add_appointments(ws, frame, actor=actor, what="appointment")
    except (ValidationError, ConflictError) as exc:
        problems = [p.replace("row 2: ", "").replace("row 2, ", "") for p in exc.problems]
        raise type(exc)(f"the appointment was not written: {problems[0]}" if len(problems) == 1 else exc.summary,
                        problems) from None
    if result.ids:
        return result.ids[0], True
    return int(result.present[0].existing_id), False


def end_appointment(ws: Workspace, appointment_id: int, end, *, actor: Actor) -> None:
    """End an appointment on ``end`` (exclusive). Appointments are ended, never deleted."""
    end = parse_date(end, "end")
    if end is None:
        raise ValidationError("end: give the date the appointment ends (exclusive), as YYYY-MM-DD")
    store = ws.store
    with store.transaction():
        current = store.appointment(appointment_id)
        start = _day(current["start"])
        if end <= start:
            raise ValidationError(f"end {end} is not after the appointment's start {start}")
        store.set_appointment_end(appointment_id, end, actor=actor.name)
    ws.changed()


def appointment(ws: Workspace, appointment_id: int) -> dict:
    appts = ws.catalogue.appointments
    rows = appts.loc[appts["id"] == int(appointment_id)].to_dict("records")
    if not rows:
        raise NotFoundError(f"no appointment {appointment_id}")
    return rows[0]
