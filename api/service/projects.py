"""Projects: created with their assignment frozen (lead and consultations as of a date), then moved along
the workflow 调研 survey → 评估 assessment → 咨询 consultation → 实施 implementation → 反馈 feedback, one step
at a time, with notes. An admin may act on every project; a planner only on the projects where they are the
lead or a consulted planner."""
from __future__ import annotations

import numpy as np
import pandas as pd

from zeren.api.service.actors import Actor
from zeren.api.service.workspace import Workspace
from zeren.geo.answer import site_answer
from zeren.geo.kinds import PROJECT_STATUSES
from zeren.geo.validity import as_timestamp
from zeren.layers.errors import ConflictError, ForbiddenError, ValidationError

NEXT_STATUS = {s: (PROJECT_STATUSES[i + 1],) if i + 1 < len(PROJECT_STATUSES) else ()
               for i, s in enumerate(PROJECT_STATUSES)}


def create_project(ws: Workspace, *, name: str, geometry, as_of=None, actor: Actor, type: str | None = None,
                   scale: str | None = None, description: str | None = None, at=None) -> int:
    """Store a project (WGS84 geometry) with its assignment as of ``as_of`` frozen in it; ``at`` (a datetime,
    default now) dates its creation (the demo's year of projects)."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name: empty; every project has a name")
    catalogue = ws.catalogue
    day = as_timestamp(as_of).date()
    result = catalogue.assign(np.array([geometry], dtype=object), day)
    answer = site_answer(result, 0, catalogue.public_book)
    answer["as_of"] = day.isoformat()
    project_id = ws.store.create_project(name=name.strip(), geometry=geometry, type=type, scale=scale,
                                         description=description, as_of=day, assignment=answer, actor=actor.name,
                                         at=_at(at))
    catalogue.project_added(project_id, geometry)
    return project_id


def projects_extent(ws: Workspace) -> tuple[float, float, float, float] | None:
    """The lon/lat box of every stored project (what the OGC ``projects`` collection advertises); None when
    there are none."""
    return ws.catalogue.projects_bounds()


def check_may_act(project: dict, actor: Actor) -> None:
    """An admin may act on any project; a planner on those where they are lead or consulted."""
    if actor.is_admin:
        return
    involved = actor.planner_id == project.get("lead_planner_id") or actor.planner_id in (
        project.get("consultation_planner_ids") or [])
    if not involved:
        raise ForbiddenError(f"planner {actor.planner_id} is neither the lead nor a consulted planner of "
                             f"project {project['id']}")


def _at(at) -> str | None:
    """An event time as stored (ISO 8601 UTC, to the second), or None for now."""
    if at is None:
        return None
    ts = pd.Timestamp(at)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat(timespec="seconds")


def advance_project(ws: Workspace, project_id: int, status: str, *, actor: Actor, note: str | None = None,
                    at=None) -> None:
    """Move a project one step along the workflow; any other move is a ConflictError. ``at`` (a datetime,
    default now) dates the move."""
    if status not in PROJECT_STATUSES:
        raise ValidationError(f"unknown status {status!r}; use one of {', '.join(PROJECT_STATUSES)}")
    store = ws.store
    with store.transaction():
        check_may_act(store.project(project_id), actor)
        current = store.project_status(project_id)
        if status not in NEXT_STATUS[current]:
            allowed = ", ".join(NEXT_STATUS[current]) or "none (the workflow is finished)"
            raise ConflictError(f"project {project_id} is at {current!r}; it can move to: {allowed}")
        store.add_project_event(project_id, status=status, actor=actor.name, note=note, moved_from=current,
                                at=_at(at))


def add_note(ws: Workspace, project_id: int, note: str, *, actor: Actor) -> None:
    """A note on a project's events, without moving its status."""
    if not isinstance(note, str) or not note.strip():
        raise ValidationError("note: empty; write the note's text")
    store = ws.store
    with store.transaction():
        check_may_act(store.project(project_id), actor)
        store.add_project_event(project_id, status=store.project_status(project_id), actor=actor.name, note=note)
