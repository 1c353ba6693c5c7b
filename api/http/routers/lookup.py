"""``GET /lookup``: who is responsible for one point. The hot path.

It is ``async`` and does no blocking I/O: the catalogue is in memory, and the answer is
:func:`zeren.api.service.lookup.lookup` (the same dict as ``zeren lookup --json``), which is fast enough to
run on the event loop: a tree query over the zones, a few array operations, and ``geo.answer.site_answer``
built from the zone references the index precomputed; an uncovered point queries the per-date tree of the
zones that have a lead. Being on the event loop, lookups never run two at a time; they share the index with
the endpoints that run in threads, and the single-point path never touches the prepared zones (see
``geo.assign``, "Threads").
"""
from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request, Response

from zeren.api.http.deps import WWW_AUTHENTICATE, check_token, parse_as_of, parse_input_crs_async
from zeren.api.service.lookup import lookup as lookup_answer
from zeren.api.http.models import DEMO_LAT, DEMO_LON, LookupAnswer, errors
from zeren.layers.errors import ValidationError

router = APIRouter(tags=["lookup"])


LOOKUP_PARAMETERS = [
    {"name": "lon", "in": "query", "required": True, "description": "Longitude (or x in `crs`).",
     "schema": {"type": "number", "examples": [DEMO_LON]}, "example": DEMO_LON},
    {"name": "lat", "in": "query", "required": True, "description": "Latitude (or y in `crs`).",
     "schema": {"type": "number", "examples": [DEMO_LAT]}, "example": DEMO_LAT},
    {"name": "crs", "in": "query", "required": False,
     "description": "CRS of lon/lat: `wgs84` (default), `cgcs2000`, `gcj02` (AMap, Tencent), `bd09` (Baidu) or "
                    "`EPSG:n`. PROJ strings and WKT are accepted only by `POST /assign` and `POST /projects`.",
     "schema": {"type": "string", "maxLength": 2000, "default": "wgs84", "examples": ["wgs84"]}, "example": "wgs84"},
    {"name": "as_of", "in": "query", "required": False,
     "description": "Date of the answer, YYYY-MM-DD (default today).",
     "schema": {"type": "string", "format": "date", "maxLength": 40, "examples": ["2025-06-30"]},
     "example": "2025-06-30"},
]


def _number(query, name: str) -> float:
    text = query.get(name)
    if text is None:
        raise ValidationError(f"query.{name}: required", [f"query.{name}: Field required"])
    try:
        return float(text)
    except ValueError:
        raise ValidationError(f"query.{name}: {text[:40]!r} is not a number",
                              [f"query.{name}: Input should be a valid number (got {text[:40]!r})"]) from None


@router.get(
    "/lookup", response_model=LookupAnswer, summary="Who is the responsible planner for this point?",
    responses=errors(401, 422),  # reads the token itself: optional bearer (api/http/openapi.py)
    openapi_extra={"parameters": LOOKUP_PARAMETERS, "security": [{}, {"bearer": []}]},
    description="The lead planner (and the zone that makes them lead: a fall-back to the district shows), every "
                "planner appointed to the zones here, the planners that must be consulted (historic and key areas), "
                "the zones with their share, and, for an uncovered point, the nearest zone that has a lead. The "
                "same answer as `zeren lookup --json`. Send an admin token to see private contacts.")
async def lookup(request: Request) -> Response:
    # The hot path reads its four parameters itself (documented above): FastAPI's per-parameter machinery
    # costs more than the answer. The checks are the same: numbers, a CRS of at most 2,000 characters, a date.
    query = request.query_params
    lon, lat = _number(query, "lon"), _number(query, "lat")
    crs = query.get("crs") or "wgs84"
    if len(crs) > 2000:
        raise ValidationError("query.crs: at most 2,000 characters; give an EPSG code or a name")
    as_of = query.get("as_of")
    if as_of is not None and len(as_of) > 40:
        raise ValidationError("query.as_of: write the date as YYYY-MM-DD")
    include_private = False
    if "authorization" in request.headers:
        include_private = _is_admin(request)
    body = lookup_answer(request.app.state.zeren.workspace, lon, lat, await parse_input_crs_async(crs),
                         parse_as_of(as_of), include_private=include_private)
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), media_type="application/json")


def _is_admin(request: Request) -> bool:
    scheme, _, token = request.headers["authorization"].partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "the Authorization header must be `Bearer <token>`", headers=WWW_AUTHENTICATE)
    return check_token(request, token.strip()).is_admin
