"""Projects: created (admins) with their assignment frozen at creation, listed, moved along the workflow
调研 survey → 评估 assessment → 咨询 consultation → 实施 implementation → 反馈 feedback.

Admins may do everything; a planner token may change the status of, and add notes to, the projects where
its planner is the lead or a consulted planner."""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import shapely
from fastapi import APIRouter, Path, Query, Request, Response

from zeren.api.http.deps import AdminActor, Caller, Paging, WriterActor, parse_as_of, parse_bbox, parse_input_crs
from zeren.api.service import projects as service
from zeren.api.service.actors import public_actor
from zeren.geo.sites import sites_to_wgs84
from zeren.api.http.models import (ProjectCollection, ProjectDetail, ProjectIn, ProjectNoteIn, ProjectStatusIn, errors)
from zeren.api.http.routers._geojson import (GeoJSONError, GeoJSONResponse, StrictJSONRoute, collection_text, feature_text,
                                  geojson_texts, geometry_from_geojson, geometry_positions, repair)
from zeren.api.http.routers._records import day_text, page_links, plain
from zeren.geo.validity import as_timestamp
from zeren.geo.kinds import PROJECT_STATUS_LABELS, PROJECT_STATUSES

router = APIRouter(tags=["projects"], route_class=StrictJSONRoute)

ProjectId = Annotated[int, Path(ge=1, le=2**62, description="The project's id.", examples=[1])]
LIST_FIELDS = ("name", "type", "scale", "description", "status")


def _properties(row: dict, detail: bool) -> dict:
    props = {f: plain(row.get(f)) for f in LIST_FIELDS}
    props["status_label"] = PROJECT_STATUS_LABELS.get(row["status"], (row["status"],))[0]
    props["created_at"] = str(row["created_at"])
    props["as_of"] = day_text(row["as_of"])
    props["lead_planner_id"] = plain(row.get("lead_planner_id"))
    props["lead_zone_kind"] = plain(row.get("lead_zone_kind"))
    props["lead_zone_code"] = plain(row.get("lead_zone_code"))
    props["consultation_planner_ids"] = [str(p) for p in (row.get("consultation_planner_ids") or [])]
    if detail:
        props["assignment"] = row.get("assignment") or {}
    return props


def _detail_text(store, project_id: int, caller, extra: dict | None = None) -> str:
    """The project as GeoJSON; actors (creator, each event's) by name for admins, who may read /audit, and
    by role only (admin, planner, system) for everyone else."""
    row = store.project(project_id)
    props = _properties(row, True)
    shown = plain if caller is not None and caller.is_admin else (lambda name: public_actor(plain(name)))
    props["created_by"] = shown(row.get("created_by"))
    events = store.project_events(project_id).to_dict("records")
    props["events"] = [{"at": str(e["at"]), "status": e["status"], "actor": shown(e.get("actor")),
                        "note": plain(e.get("note"))} for e in events]
    props.update(extra or {})
    return feature_text(int(row["id"]), geojson_texts([row["geometry"]])[0], props)


def _geo(text: str) -> Response:
    return Response(text.encode("utf-8"), media_type="application/geo+json")


@router.post("/projects", response_class=GeoJSONResponse, status_code=201, response_model=ProjectDetail,
             summary="Create a project; its assignment (lead, consultations) is frozen now (admin)",
             responses=errors(400, 401, 403, 413, 422))
def create_project(
    request: Request, body: ProjectIn, admin: AdminActor,
    crs: Annotated[str, Query(max_length=2000, examples=["wgs84"],
                              description="CRS of the geometry: `wgs84` (default), `cgcs2000`, `gcj02`, `bd09` or "
                                          "`EPSG:n`.")] = "wgs84",
    as_of: Annotated[str | None, Query(max_length=40, description="Date the assignment is made for (default today).",
                                       examples=["2025-06-30"], json_schema_extra={"format": "date"})] = None,
) -> Response:
    zs = request.app.state.zeren
    zs.settings.work_budget().check([geometry_positions(body.geometry)], lambda i: "geometry")
    input_crs = parse_input_crs(crs)
    day = as_timestamp(parse_as_of(as_of)).date()
    geom, repaired = repair(geometry_from_geojson(body.geometry, "geometry"), "geometry")
    wgs, problems = sites_to_wgs84(np.array([geom], dtype=object), input_crs, zs.catalogue.index.bounds, ["geometry"])
    if problems[0]:
        raise GeoJSONError(problems[0])
    site = wgs[0]
    if not shapely.is_valid(site):  # a conversion can make a thin polygon invalid: repair again
        site, _ = repair(site, "geometry")
    project_id = service.create_project(zs.workspace, name=body.name, geometry=site, type=body.type,
                                        scale=body.scale, description=body.description, as_of=day, actor=admin)
    response = _geo(_detail_text(zs.store, project_id, admin, {"repaired": True} if repaired else None))
    response.status_code = 201
    response.headers["Location"] = f"/projects/{project_id}"
    return response


@router.get("/projects", response_class=GeoJSONResponse, response_model=ProjectCollection,
            summary="Projects, as a paginated FeatureCollection",
            responses=errors(422, 503))
def list_projects(
    request: Request, paging: Paging,
    planner_id: Annotated[str | None, Query(max_length=64, description="Only projects where this planner is lead or "
                                                                       "consulted.", examples=["P006"])] = None,
    status: Annotated[Literal[PROJECT_STATUSES] | None,  # type: ignore[valid-type]
                      Query(description="Only projects at this workflow step.", examples=["assessment"])] = None,
    bbox: Annotated[str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat (WGS84).",
                                      examples=["104.0,30.6,104.1,30.7"])] = None,
) -> Response:
    box = parse_bbox(bbox)
    zs = request.app.state.zeren
    frame = zs.store.find_projects(status=status, planner_id=planner_id)
    if box is not None and len(frame):
        frame = frame[frame["id"].isin(zs.catalogue.projects_in(box))]
    total = len(frame)
    page = frame.iloc[paging.offset:paging.offset + paging.limit]
    texts = geojson_texts(page.geometry.to_numpy())
    features = [feature_text(int(row["id"]), t, _properties(row, False))
                for row, t in zip(page.drop(columns="geometry").to_dict("records"), texts)]
    members = {"numberMatched": total, "numberReturned": len(features),
               "links": page_links(request, paging.limit, paging.offset, total, "application/geo+json")}
    return _geo(collection_text(features, members))


@router.get("/projects/{project_id}", response_class=GeoJSONResponse, response_model=ProjectDetail,
            summary="One project, with its frozen assignment and its events", responses=errors(401, 404, 422, 503),
            description="`created_by` and each event's `actor` name who acted for an admin token (as /audit "
                        "does); anyone else sees only their role: `admin`, `planner` or `system`.")
def get_project(request: Request, project_id: ProjectId, caller: Caller) -> Response:
    return _geo(_detail_text(request.app.state.zeren.store, project_id, caller))


@router.post("/projects/{project_id}/status", response_class=GeoJSONResponse, response_model=ProjectDetail,
             summary="Move a project to its next workflow step (admin, or its lead/consulted planner)",
             responses=errors(400, 401, 403, 404, 409, 413, 422),
             description="survey 调研 → assessment 评估 → consultation 咨询 → implementation 实施 → feedback 反馈, one "
                         "step at a time; any other move is refused with 409.")
def advance_project(request: Request, project_id: ProjectId, body: ProjectStatusIn, writer: WriterActor) -> Response:
    zs = request.app.state.zeren
    service.advance_project(zs.workspace, project_id, body.status, actor=writer, note=body.note)
    return _geo(_detail_text(zs.store, project_id, writer))


@router.post("/projects/{project_id}/notes", response_class=GeoJSONResponse, response_model=ProjectDetail,
             status_code=201,
             summary="Add a note to a project (admin, or its lead/consulted planner)",
             responses=errors(400, 401, 403, 404, 413, 422))
def add_note(request: Request, project_id: ProjectId, body: ProjectNoteIn, writer: WriterActor) -> Response:
    zs = request.app.state.zeren
    service.add_note(zs.workspace, project_id, body.note, actor=writer)
    response = _geo(_detail_text(zs.store, project_id, writer))
    response.status_code = 201
    return response
