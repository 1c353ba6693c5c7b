"""The append-only audit log: every change, who made it and when (admins only)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from zeren.api.http.deps import AuditReader, Paging
from zeren.api.http.models import AuditPage, errors
from zeren.api.http.routers._records import plain

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=AuditPage, summary="The audit log, oldest first (admin)",
            responses=errors(401, 403, 422, 503))
def audit(
    request: Request, paging: Paging, admin: AuditReader,
    entity: Annotated[str | None, Query(max_length=40, description="Only rows about this kind of record: planner, "
                                                                   "appointment, project, ...",
                                        examples=["project"])] = None,
    entity_id: Annotated[str | None, Query(max_length=100, description="Only rows about this id (planner id, "
                                                                       "appointment or project number).",
                                           examples=["1"])] = None,
    actor: Annotated[str | None, Query(max_length=200, description="Only changes by this actor (e.g. admin:alice, "
                                                                   "planner:P006, demo).", examples=["demo"])] = None,
    action: Annotated[str | None, Query(max_length=40, description="Only this action: create, update, end, status, "
                                                                   "note, ...",
                                        examples=["status"])] = None,
) -> dict:
    frame, total = request.app.state.zeren.store.find_audit(entity=entity, entity_id=entity_id, actor=actor,
                                                            action=action, limit=paging.limit, offset=paging.offset)
    entries = [{"id": int(r["id"]), "at": str(r["at"]), "actor": str(r["actor"]), "action": str(r["action"]),
                "entity": str(r["entity"]), "entity_id": plain(r["entity_id"]), "detail": plain(r["detail"])}
               for r in frame.to_dict("records")]
    return {"entries": entries, "numberMatched": total, "numberReturned": len(entries), "limit": paging.limit,
            "offset": paging.offset}
