"""Resident feedback (居民留言): ``POST /feedback`` (public), ``GET /feedback/{ref}`` (public, by reference), the
rating of a reply (public), the planners' list and workflow steps (token), the editable categories, and the
feedback map page ``/maps/feedback``. Every rule is the use case's (zeren.api.service.feedback); this door
parses, calls it, renders, and keeps the per-client rate limit of ``POST /feedback``."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import Field, field_validator

from zeren.api.http.deps import (ANONYMOUS_WRITE_RESPONSES, AdminActor, AnonymousWrite, Caller, Paging, WriterActor,
                                 parse_as_of)
from zeren.api.http.models import DEMO_LAT, DEMO_LON, _In, _Out, errors
from zeren.api.http.routers._geojson import (GeoJSONResponse, StrictJSONRoute, collection_text, dumps, feature_text,
                                             geojson_texts, geometry_from_geojson, repair)
from zeren.api.http.routers._records import page_links
from zeren.api.http.routers.maps import HTML_ANSWER, html_errors
from zeren.api.service import feedback as service
from zeren.geo.kinds import FEEDBACK_STATUSES

router = APIRouter(tags=["feedback"], route_class=StrictJSONRoute)

Ref = Annotated[str, Path(max_length=40, description="The case's reference, as given to the resident.",
                          examples=["FB-2026-7KQ4M2"])]


class FeedbackIn(_In):
    lon: float | None = Field(None, description="Longitude (or x in `crs`); or send `geometry`.", examples=[DEMO_LON])
    lat: float | None = Field(None, description="Latitude (or y in `crs`).", examples=[DEMO_LAT])
    geometry: dict | None = Field(None, description="A GeoJSON Point or Polygon instead of lon/lat.")
    crs: str = Field("wgs84", max_length=2000, description="CRS of the position: `wgs84` (default), `cgcs2000`, "
                                                           "`gcj02` (AMap, Tencent), `bd09` (Baidu) or `EPSG:n`.")
    category: str = Field(max_length=80, description="A category code of `GET /feedback/categories` (or its "
                                                     "label).", examples=["heritage"])
    # declared as the service checks them (its messages name the limit): not blank, no NUL, 2,000 / 200 characters
    text: str = Field(max_length=20_000, description="1 to 2,000 characters, stored as text.",
                      json_schema_extra={"pattern": r"^[^\x00]*[^\x00\s][^\x00]*$", "maxLength": service.MAX_TEXT},
                      examples=["院墙有裂缝，希望修缮 / the courtyard wall is cracked"])
    contact: str | None = Field(None, max_length=2000, json_schema_extra={"maxLength": service.MAX_CONTACT},
                                description="How the planner may reach you: kept private (never shown by "
                                            "`GET /feedback/{ref}`).")


class StepIn(_In):
    status: str = Field(max_length=40, description="The next step: accepted, replied, closed or transferred.",
                        json_schema_extra={"enum": [s for s in FEEDBACK_STATUSES if s != "received"]},
                        examples=["accepted"])
    note: str | None = Field(None, max_length=20_000, description="A note (the reason, for a transfer).")
    reply: str | None = Field(None, max_length=20_000, description="The public reply (with `replied`).")
    to_planner: str | None = Field(None, max_length=64, description="Transfer to this planner id.")
    to_zone: dict | None = Field(None, description="Transfer to the lead planner of this zone: {kind, code}.")


class RatingIn(_In):
    rating: int = Field(ge=1, le=5, description="1 (poor) to 5 (very good).", examples=[5])

    @field_validator("rating", mode="before")
    @classmethod
    def _whole_number(cls, value):
        """A JSON integer (``4.0`` is one, as JSON Schema counts); not text, not true/false, not 4.5."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ValueError("give a whole number from 1 to 5")
        return int(value)


class CategoryIn(_In):
    name: str = Field(max_length=200, examples=["噪声"])
    name_en: str | None = Field(None, max_length=200, examples=["noise"])
    active: bool = True


class CaseOut(_Out):
    ref: str
    status: str
    category: str
    routed_to: list[str]


def _json(value: Any, status: int = 200) -> Response:
    return Response(dumps(value).encode("utf-8"), status_code=status, media_type="application/json")


# -- the resident's side --------------------------------------------------------------------------
@router.post("/feedback", status_code=201, response_model=CaseOut,
             summary="Leave feedback for the responsible planner of a site (public, no token)",
             responses={**errors(400, 409, 413, 422, 503), **ANONYMOUS_WRITE_RESPONSES},
             dependencies=[AnonymousWrite],
             description="A point (`lon`/`lat`, in `crs`) or a GeoJSON `geometry`, a `category`, a `text` of 1 to "
                         "2,000 characters and an optional private `contact`. The case is routed to the site's "
                         "lead planner and the planners to consult, as of today (frozen in the case); a site "
                         "outside every zone goes to the nearest zone's planner and is flagged (`outside`). "
                         "Answers the resident's reference `ref`. Rate-limited per client, with every other write "
                         "that takes no token (`ZEREN_ANONYMOUS_WRITE_LIMIT` per `ZEREN_ANONYMOUS_WRITE_WINDOW` "
                         "seconds).")
def post_feedback(request: Request, body: FeedbackIn) -> Response:
    zs = request.app.state.zeren
    geometry = None
    if body.geometry is not None:
        geometry, _ = repair(geometry_from_geojson(body.geometry, "geometry"), "geometry")
    receipt = service.submit_feedback(zs.workspace, category=body.category, text=body.text, lon=body.lon,
                                      lat=body.lat, geometry=geometry, crs=body.crs, contact=body.contact,
                                      max_distance_m=zs.settings.feedback_max_distance_m)
    response = _json(receipt, 201)
    response.headers["Location"] = f"/feedback/{receipt['ref']}"
    return response


@router.get("/feedback/categories", summary="The feedback categories residents choose from (public)",
            responses=errors(503))
def list_categories(request: Request) -> Response:
    return _json(service.categories(request.app.state.zeren.workspace))


@router.put("/feedback/categories/{code}", summary="Add, rename or retire a feedback category (admin)",
            responses=errors(400, 401, 403, 413, 422))
def put_category(request: Request, body: CategoryIn, admin: AdminActor,
                 code: Annotated[str, Path(max_length=40, description="The category's code.",
                                           examples=["noise"])]) -> Response:
    return _json(service.put_category(request.app.state.zeren.workspace, code, name=body.name,
                                      name_en=body.name_en, active=body.active, actor=admin))


@router.get("/feedback/{ref}", summary="Follow a case by its reference (public: status and reply, never the "
                                       "contact)", responses=errors(401, 404, 422, 503),
            description="Without a token: status, category, text, the public reply, the response time. With the "
                        "token of an admin or of a planner the case is routed to: also the contact and the events.")
def get_feedback(request: Request, ref: Ref, caller: Caller) -> Response:
    actor = caller.as_actor() if caller is not None else None
    return _json(service.get_case(request.app.state.zeren.workspace, ref, actor=actor))


@router.post("/feedback/{ref}/rating", summary="Rate the reply 1-5, once (public, by reference)",
             responses={**errors(400, 404, 409, 413, 422), **ANONYMOUS_WRITE_RESPONSES},
             dependencies=[AnonymousWrite])
def rate(request: Request, ref: Ref, body: RatingIn) -> Response:
    return _json(service.rate_feedback(request.app.state.zeren.workspace, ref.strip().upper(), body.rating))


# -- the planner's side ---------------------------------------------------------------------------
@router.post("/feedback/{ref}/status", summary="Take the next workflow step on a case (its planner, or an admin)",
             responses=errors(400, 401, 403, 404, 409, 413, 422),
             description="received → accepted → replied (with the public `reply`) → closed; a received, accepted "
                         "or transferred case may be `transferred` (with a `note` saying why) `to_planner` or "
                         "`to_zone`'s lead. Any other step is refused with 409; a planner the case is not routed "
                         "to gets 403.")
def step(request: Request, ref: Ref, body: StepIn, writer: WriterActor) -> Response:
    return _json(service.advance_feedback(request.app.state.zeren.workspace, ref.strip().upper(), body.status,
                                          actor=writer, note=body.note, reply=body.reply,
                                          to_planner=body.to_planner, to_zone=body.to_zone))


StatusQuery = Annotated[str | None, Query(max_length=40, description=f"One of {', '.join(FEEDBACK_STATUSES)}.",
                                          json_schema_extra={"enum": list(FEEDBACK_STATUSES)},
                                          examples=["received"])]
ZoneQuery = Annotated[str | None, Query(max_length=100, description="Only cases in (or routed to) this zone code.",
                                        examples=["510105002"])]
CategoryQuery = Annotated[str | None, Query(max_length=40, description="Only this category code.",
                                            examples=["heritage"])]
SinceQuery = Annotated[str | None, Query(max_length=40, description="Received on or after, YYYY-MM-DD.",
                                         examples=["2025-01-01"], json_schema_extra={"format": "date"})]
UntilQuery = Annotated[str | None, Query(max_length=40, description="Received on or before, YYYY-MM-DD.",
                                         examples=["2025-12-31"], json_schema_extra={"format": "date"})]


@router.get("/feedback", response_class=GeoJSONResponse,
            summary="Cases, as a FeatureCollection (a planner token: the cases routed to them; admin: all)",
            responses={200: {"content": {"application/geo+json": {"schema": {"type": "object"}}},
                             "description": "A GeoJSON FeatureCollection of cases (WGS84)."},
                       **errors(401, 422, 503)})
def list_cases(request: Request, writer: WriterActor, paging: Paging, status: StatusQuery = None,
               zone: ZoneQuery = None, category: CategoryQuery = None, since: SinceQuery = None,
               until: UntilQuery = None) -> Response:
    zs = request.app.state.zeren
    frame = service.list_feedback(zs.workspace, actor=writer, status=status or None, zone=zone or None,
                                  category=category or None, since=parse_as_of(since, "since"),
                                  until=parse_as_of(until, "until"))
    total = len(frame)
    page = frame.iloc[paging.offset:paging.offset + paging.limit]
    texts = geojson_texts(page.geometry.to_numpy())
    features = []
    for row, text in zip(page.drop(columns="geometry").to_dict("records"), texts):
        view = service.case_view(row, private=True)
        view.pop("assignment", None)
        features.append(feature_text(row["ref"], text, view))
    members = {"numberMatched": total, "numberReturned": len(features),
               "links": page_links(request, paging.limit, paging.offset, total, "application/geo+json")}
    return Response(collection_text(features, members).encode("utf-8"), media_type="application/geo+json")


# -- the map page ---------------------------------------------------------------------------------
@router.get("/maps/feedback", response_class=HTMLResponse, tags=["maps"],
            responses={**HTML_ANSWER, **html_errors(404, 422)},
            summary="Map page: feedback cases coloured by status (per zone with `zone=`)",
            description="Public facts only: reference, status, category, zone, dates, response time (never the "
                        "contact or the text).")
def feedback_map(request: Request, status: StatusQuery = None, zone: ZoneQuery = None,
                 category: CategoryQuery = None, since: SinceQuery = None, until: UntilQuery = None) -> HTMLResponse:
    zs = request.app.state.zeren
    m = service.feedback_page(zs.workspace, settings=zs.settings.map_settings(), status=status or None,
                              category=category or None, zone=zone or None, since=parse_as_of(since, "since"),
                              until=parse_as_of(until, "until"))
    return HTMLResponse(m.get_root().render(), headers={"Cache-Control": "no-cache"})


__all__ = ["router"]
