"""Teams, discipline requirements, and the zones short of a discipline (``GET /coverage/disciplines``).

Reads are public; writing a team or a requirement needs an admin token."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field

from zeren.api.http.deps import AdminActor, day_in_force
from zeren.api.http.models import _In, errors
from zeren.api.http.routers._geojson import StrictJSONRoute, dumps
from zeren.api.service import teams as service

router = APIRouter(tags=["coverage"], route_class=StrictJSONRoute)

TeamId = Annotated[str, Path(max_length=64, description="The team's id.", examples=["T05"])]


class MemberIn(_In):
    planner_id: str = Field(max_length=64, examples=["P006"])
    discipline: str | None = Field(None, max_length=40, examples=["heritage"])
    role: str = Field("member", max_length=20, description="lead 负责人, member 成员 or adviser 专家顾问.")


class TeamIn(_In):
    name: str = Field(max_length=200, examples=["青羊区责任规划师团队"])
    organization: str | None = Field(None, max_length=200)
    lead_planner_id: str | None = Field(None, max_length=64, examples=["P004"])
    members: list[MemberIn] = Field(default_factory=list, max_length=500)
    appointments: list[int] = Field(default_factory=list, max_length=10_000,
                                    description="Ids of the appointments that name this team.")


class RequirementIn(_In):
    groups: list[list[str]] = Field(max_length=50, description="Each group is met by any one of its disciplines.",
                                    examples=[[["heritage"], ["architecture"]]])


def _json(value: Any, status: int = 200) -> Response:
    return Response(dumps(value).encode("utf-8"), status_code=status, media_type="application/json")


@router.get("/teams", tags=["planners"], summary="Teams, with their members' disciplines and roles",
            responses=errors(503))
def list_teams(request: Request,
               planner_id: Annotated[str | None, Query(max_length=64, description="Only the teams this planner "
                                                                                  "leads or belongs to.",
                                                       examples=["P006"])] = None) -> Response:
    return _json(service.teams(request.app.state.zeren.workspace, planner_id=planner_id or None))


@router.get("/teams/{team_id}", tags=["planners"], summary="One team", responses=errors(404, 422, 503))
def get_team(request: Request, team_id: TeamId) -> Response:
    return _json(request.app.state.zeren.store.team(team_id))


@router.put("/teams/{team_id}", tags=["planners"], summary="Write a team whole: members and the appointments "
                                                           "naming it (admin)",
            responses={201: {"description": "A new team, written."}, **errors(400, 401, 403, 413, 422)})
def put_team(request: Request, team_id: TeamId, body: TeamIn, admin: AdminActor) -> Response:
    team, new = service.save_team(request.app.state.zeren.workspace, {"id": team_id, **body.model_dump()},
                                  actor=admin)
    return _json(team, 201 if new else 200)


@router.get("/disciplines/requirements", summary="What each zone kind's appointed people must cover",
            responses=errors(503))
def get_requirements(request: Request) -> Response:
    return _json(service.requirements(request.app.state.zeren.workspace))


@router.put("/disciplines/requirements/{kind}", summary="Set what zones of one kind need (admin)",
            responses=errors(400, 401, 403, 404, 413, 422))
def put_requirements(request: Request, body: RequirementIn, admin: AdminActor,
                     kind: Annotated[str, Path(max_length=40, description="The zone kind.", examples=["historic_area"])]) -> Response:
    return _json(service.set_requirements(request.app.state.zeren.workspace, kind, body.groups, actor=admin))


@router.get("/coverage/disciplines", summary="Zones whose appointed people lack a required discipline",
            responses=errors(422, 503),
            description="Every zone of a kind with requirements: its people (appointed planners and the members "
                        "of the teams their appointments name) and the disciplines none of them brings; `short` "
                        "lists the zones missing one, `districts` the share fully staffed per district. Same "
                        "answer as `zeren coverage disciplines --json`.")
def coverage_disciplines(
    request: Request,
    as_of: Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD (default today).",
                                       examples=["2025-06-30"], json_schema_extra={"format": "date"})] = None,
) -> Response:
    return _json(service.discipline_gaps(request.app.state.zeren.workspace, day_in_force(request, as_of)))
