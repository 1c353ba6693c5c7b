"""Appointments: who holds which zone, when. Created and ended by admins; never deleted."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from zeren.api.http.deps import AdminActor, Caller, Paging, parse_as_of
from zeren.api.service import appointments as service
from zeren.api.http.models import AppointmentEnd, AppointmentIn, AppointmentOut, AppointmentPage, errors
from zeren.api.http.routers._geojson import StrictJSONRoute
from zeren.api.http.routers._records import appointment_out
from zeren.geo.kinds import ALL_KINDS, ROLES
from zeren.geo.validity import active_mask
from zeren.layers.errors import NotFoundError, ValidationError

router = APIRouter(tags=["appointments"], route_class=StrictJSONRoute)

AppointmentId = Annotated[int, Path(ge=1, le=2**62, description="The appointment's id.", examples=[1])]


def _book(catalogue, caller):
    return catalogue.private_book if caller is not None and caller.is_admin else catalogue.public_book


@router.get("/appointments", response_model_exclude_unset=True, response_model=AppointmentPage,
            summary="Appointments, filtered",
            responses=errors(401, 422))
def list_appointments(
    request: Request, paging: Paging, caller: Caller,
    planner_id: Annotated[str | None, Query(max_length=64, description="Only this planner's appointments.",
                                            examples=["P006"])] = None,
    zone_kind: Annotated[Literal[ALL_KINDS] | None,  # type: ignore[valid-type]
                         Query(description="Only appointments on zones of this kind.",
                               examples=["subdistrict"])] = None,
    zone_code: Annotated[str | None, Query(max_length=100, description="Only appointments on zones with this code.",
                                           examples=["510105002"])] = None,
    role: Annotated[Literal[ROLES] | None, Query(description="Only this role: lead, member or "  # type: ignore
                                                             "consultant.", examples=["lead"])] = None,
    active_on: Annotated[str | None, Query(max_length=40, description="Only appointments in force on this date "
                                                                      "(YYYY-MM-DD).", examples=["2025-06-30"],
                                           json_schema_extra={"format": "date"})] = None,
) -> dict:
    catalogue = request.app.state.zeren.catalogue
    appts = catalogue.appointments
    mask = appts["id"].notna()
    for column, value in (("planner_id", planner_id), ("zone_kind", zone_kind), ("role", role)):
        if value is not None:
            mask &= appts[column] == value
    if zone_code is not None:
        mask &= appts["zone_code"].astype(str) == zone_code
    day = parse_as_of(active_on, "active_on")
    if day is not None:
        mask &= active_mask(appts["start"], appts["end"], day)
    rows = appts.loc[mask].sort_values("id").to_dict("records")
    page = rows[paging.offset:paging.offset + paging.limit]
    book = _book(catalogue, caller)
    return {"appointments": [appointment_out(r, day, book) for r in page], "numberMatched": len(rows),
            "numberReturned": len(page), "limit": paging.limit, "offset": paging.offset}


def _one(catalogue, appointment_id: int, book) -> dict:
    appts = catalogue.appointments
    rows = appts.loc[appts["id"] == appointment_id].to_dict("records")
    if not rows:
        raise NotFoundError(f"no appointment {appointment_id}")
    return appointment_out(rows[0], None, book)


@router.get("/appointments/{appointment_id}", response_model_exclude_unset=True, response_model=AppointmentOut,
            summary="One appointment",
            responses=errors(401, 404, 422))
def get_appointment(request: Request, appointment_id: AppointmentId, caller: Caller) -> dict:
    catalogue = request.app.state.zeren.catalogue
    return _one(catalogue, appointment_id, _book(catalogue, caller))


@router.post("/appointments", response_model_exclude_unset=True, status_code=201, response_model=AppointmentOut,
             summary="Appoint a planner to a zone (admin)",
             responses={200: {"model": AppointmentOut, "description": "Already present: the same planner, zone and "
                                                                      "role over overlapping dates; the existing "
                                                                      "appointment, with `already_present: true`."},
                        **errors(400, 401, 403, 409, 413, 422)},
             description="The rules of every door (the CSV import too): the zone must be in force during the term; "
                         "an appointment that repeats one already there (same planner, zone and role, "
                         "overlapping dates) is not added again (200 with the existing one, "
                         "`already_present: true`); a second lead whose dates overlap the zone's current lead is "
                         "refused (409): end the current lead first; the handover day is the old end and the "
                         "new start.")
def create_appointment(request: Request, body: AppointmentIn, admin: AdminActor, response: Response) -> dict:
    zs = request.app.state.zeren
    start = parse_as_of(body.start, "start")
    if start is None:
        raise ValidationError("start: empty; every appointment has a start date (YYYY-MM-DD)")
    end = parse_as_of(body.end, "end")
    new_id, created = service.create_appointment(zs.workspace, {
        "planner_id": body.planner_id, "zone_kind": body.zone_kind, "zone_code": body.zone_code, "role": body.role,
        "start": start, "end": end}, actor=admin)
    response.headers["Location"] = f"/appointments/{new_id}"
    if not created:
        response.status_code = 200
    return dict(_one(zs.catalogue, new_id, zs.catalogue.private_book), already_present=not created)


def _end(request: Request, appointment_id: int, body: AppointmentEnd, admin) -> dict:
    zs = request.app.state.zeren
    end = parse_as_of(body.end, "end")
    if end is None:
        raise ValidationError("end: give the day the appointment ends (exclusive), YYYY-MM-DD")
    service.end_appointment(zs.workspace, appointment_id, end, actor=admin)
    return _one(zs.catalogue, appointment_id, zs.catalogue.private_book)


@router.patch("/appointments/{appointment_id}", response_model_exclude_unset=True, response_model=AppointmentOut,
              summary="End an appointment (admin): only `end` can change",
              responses=errors(400, 401, 403, 404, 413, 422),
              description="Appointments are ended, never deleted or rewritten: to change the planner, zone or role, "
                          "end this one and create another.")
def patch_appointment(request: Request, appointment_id: AppointmentId, body: AppointmentEnd, admin: AdminActor) -> dict:
    return _end(request, appointment_id, body, admin)


@router.post("/appointments/{appointment_id}/end", response_model_exclude_unset=True, response_model=AppointmentOut,
             summary="End an appointment (admin)", responses=errors(400, 401, 403, 404, 413, 422))
def end_appointment(request: Request, appointment_id: AppointmentId, body: AppointmentEnd, admin: AdminActor) -> dict:
    return _end(request, appointment_id, body, admin)
