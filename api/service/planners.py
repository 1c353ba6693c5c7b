"""Planners: imported from a CSV, created and changed one at a time. One rule set for every door: each record
is checked (``layers.schema.planner_problems``); a planner whose stored fields already equal the input is left
alone (no write, no audit row), so re-importing the same file changes nothing and says so."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from zeren.api.service.actors import Actor
from zeren.api.service.workspace import Workspace
from zeren.layers.errors import ConflictError, NotFoundError, ValidationError
from zeren.layers.schema import planner_problems, split_disciplines
from zeren.layers.store import PLANNER_FIELDS
from zeren.layers.store.people import planner_values


@dataclass
class PlannerImport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"added": len(self.added), "updated": len(self.updated), "unchanged": len(self.unchanged),
                "added_ids": self.added, "updated_ids": self.updated}

    def text(self) -> str:
        line = (f"规划师 / planners: {len(self.added)} added, {len(self.updated)} updated, "
                f"{len(self.unchanged)} unchanged")
        if not self.added and not self.updated:
            line += " — nothing to write: the store already holds these planners as given"
        return line


def _detail(old: dict | None, new: dict) -> dict:
    """What the audit log keeps of a change: the public fields that changed; a private contact only as '(changed)'."""
    out = {}
    for f in PLANNER_FIELDS[1:]:
        before = None if old is None else planner_values(old)[PLANNER_FIELDS.index(f) - 1]
        after = planner_values(new)[PLANNER_FIELDS.index(f) - 1]
        if before != after:
            out[f] = "(changed)" if f == "private_contact" else after
    return out


def check_planners(planners: pd.DataFrame) -> None:
    """Every problem in the records (ids, names, disciplines), all at once; nothing is written then."""
    problems = planner_problems(planners)
    if problems:
        raise ValidationError(f"{len(problems)} problem(s) in the planners; nothing was written", problems)


def save_planners(ws: Workspace, planners: pd.DataFrame, *, actor: Actor, source: str | None = None) -> PlannerImport:
    """Add new planners and update changed ones (by id), all or nothing; unchanged ones are not written."""
    check_planners(planners)
    result = PlannerImport()
    store = ws.store
    with store.transaction():
        existing = {str(r["id"]): r for r in store.planners().to_dict("records")}
        add, change = [], []
        for row in planners.to_dict("records"):
            record = {f: row.get(f) for f in PLANNER_FIELDS}
            record["id"] = str(record["id"]).strip()
            old = existing.get(record["id"])
            if old is None:
                add.append(record)
                result.added.append(record["id"])
            elif planner_values(old) != planner_values(record):
                change.append((record, _detail(old, record)))
                result.updated.append(record["id"])
            else:
                result.unchanged.append(record["id"])
        if add or change:
            store.write_planners(add=add, change=change, actor=actor.name)
        if source is not None and (add or change):  # an import that changes nothing leaves no trace
            store.log_import("import-planners", source=source, actor=actor.name, written=len(add) + len(change),
                             report={"read": len(planners), **result.as_dict()},
                             audit={"read": len(planners), "added": len(add), "updated": len(change),
                                    "unchanged": len(result.unchanged)})
    if add or change:
        ws.changed()
    return result


def create_planner(ws: Workspace, record: dict, *, actor: Actor) -> dict:
    """One new planner (``POST /planners``); ConflictError when the id is taken."""
    frame = pd.DataFrame([{f: record.get(f) for f in PLANNER_FIELDS}])
    problems = planner_problems(frame)
    if problems:
        raise ValidationError("the planner was not written", [p.replace("row 2, ", "") for p in problems])
    with ws.store.transaction():
        if str(record["id"]) in set(ws.store.planners()["id"].astype(str)):
            raise ConflictError(f"planner {record['id']!r} already exists; change it with PATCH /planners/"
                                f"{record['id']} or choose another id")
        save_planners(ws, frame, actor=actor)
    return ws.store.planner(record["id"])


def update_planner(ws: Workspace, planner_id: str, changes: dict, *, actor: Actor) -> dict:
    """Change some fields of one planner (the id stays); NotFoundError when there is none."""
    unknown = sorted(set(changes) - set(PLANNER_FIELDS[1:]))
    if unknown:
        raise ValidationError(f"cannot change {', '.join(unknown)}; changeable fields: {', '.join(PLANNER_FIELDS[1:])}")
    with ws.store.transaction():
        merged = dict(ws.store.planner(planner_id))
        merged["disciplines"] = split_disciplines(merged.get("disciplines"))
        merged.update(changes)
        problems = planner_problems(pd.DataFrame([merged]))
        if problems:
            raise ValidationError("the planner was not changed", [p.replace("row 2, ", "") for p in problems])
        save_planners(ws, pd.DataFrame([merged]), actor=actor)
    return ws.store.planner(planner_id)


def planner(ws: Workspace, planner_id: str) -> dict:
    rows = ws.catalogue.planners
    row = rows[rows["id"].astype(str) == str(planner_id)]
    if row.empty:
        raise NotFoundError(f"no planner {str(planner_id)[:64]!r}")
    return row.iloc[0].to_dict()
