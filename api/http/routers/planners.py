"""Planners: list, get, create, update (admins). Public fields for everyone; private contacts for admins."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from zeren.api.http.deps import AdminActor, Caller, Paging, parse_as_of
from zeren.api.service import planners as service
from zeren.api.http.models import PlannerDetail, PlannerIn, PlannerPage, PlannerPatch, PlannerRef, errors
from zeren.api.http.routers._geojson import StrictJSONRoute
from zeren.api.http.routers._records import appointment_out, planner_out
from zeren.layers.errors import NotFoundError
from zeren.layers.schema import DISCIPLINES

router = APIRouter(tags=["planners"], route_class=StrictJSONRoute)

PlannerId = Annotated[str, Path(description="The planner's id.", examples=["P006"], max_length=64)]


def _rows(catalogue) -> list[dict]:
    return catalogue.planners.to_dict("records")


def _find(catalogue, planner_id: str) -> dict:
    for row in _rows(catalogue):
        if str(row["id"]) == planner_id:
            return row
    raise NotFoundError(f"no planner {planner_id[:64]!r}")


@router.get("/planners", response_model_exclude_unset=True, response_model=PlannerPage,
            summary="Planners (filter by discipline or text)",
            responses=errors(401, 422))
def list_planners(
    request: Request, paging: Paging, caller: Caller,
    discipline: Annotated[Literal[DISCIPLINES] | None,  # type: ignore[valid-type]
                          Query(description="Only planners with this discipline.", examples=["heritage"])] = None,
    q: Annotated[str | None, Query(max_length=100, description="Text in the id, name or organization.",
                                   examples=["青羊"])] = None,
) -> dict:
    catalogue = request.app.state.zeren.catalogue
    rows = _rows(catalogue)
    if discipline:
        rows = [r for r in rows if discipline in (r.get("disciplines") or [])]
    if q:
        needle = q.casefold()
        rows = [r for r in rows
                if any(needle in str(r.get(f) or "").casefold() for f in ("id", "name", "organization"))]
    private = caller is not None and caller.is_admin
    page = rows[paging.offset:paging.offset + paging.limit]
    return {"planners": [planner_out(r, private) for r in page], "numberMatched": len(rows),
            "numberReturned": len(page), "limit": paging.limit, "offset": paging.offset}


def _detail(catalogue, planner_id: str, private: bool, as_of=None) -> dict:
    out = planner_out(_find(catalogue, planner_id), private)
    appts = catalogue.appointments
    rows = appts.loc[appts["planner_id"] == planner_id].sort_values("id").to_dict("records")
    out["appointments"] = [appointment_out(r, as_of) for r in rows]
    return out


@router.get("/planners/{planner_id}", response_model_exclude_unset=True, response_model=PlannerDetail,
            summary="One planner and all their appointments",
            responses=errors(401, 404, 422))
def get_planner(
    request: Request, planner_id: PlannerId, caller: Caller,
    as_of: Annotated[str | None, Query(max_length=40, description="Date for the appointments' `active` flag "
                                                                  "(default today).", examples=["2025-06-30"],
                                       json_schema_extra={"format": "date"})] = None,
) -> dict:
    return _detail(request.app.state.zeren.catalogue, planner_id, caller is not None and caller.is_admin,
                   parse_as_of(as_of))


@router.post("/planners", response_model_exclude_unset=True, status_code=201, response_model=PlannerDetail,
             summary="Add a planner (admin)",
             responses=errors(400, 401, 403, 409, 413, 422))
def create_planner(request: Request, body: PlannerIn, admin: AdminActor, response: Response) -> dict:
    zs = request.app.state.zeren
    service.create_planner(zs.workspace, body.model_dump(), actor=admin)
    response.headers["Location"] = f"/planners/{body.id}"
    return _detail(zs.catalogue, body.id, True)


@router.patch("/planners/{planner_id}", response_model_exclude_unset=True, response_model=PlannerDetail,
              summary="Change a planner's name, organization, disciplines or contacts (admin)",
              responses=errors(400, 401, 403, 404, 413, 422))
def update_planner(request: Request, planner_id: PlannerId, body: PlannerPatch, admin: AdminActor) -> dict:
    zs = request.app.state.zeren
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        _find(zs.catalogue, planner_id)
        return _detail(zs.catalogue, planner_id, True)
    service.update_planner(zs.workspace, planner_id, changes, actor=admin)
    return _detail(zs.catalogue, planner_id, True)


__all__ = ["router", "PlannerRef"]
