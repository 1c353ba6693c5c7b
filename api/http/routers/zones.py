"""Zones: paginated GeoJSON lists, one zone with its parents, children, overlays and appointments.

Served from the catalogue's in-memory index (every kind, every edition), so these reads touch no disk.
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from zeren.api.http.deps import Caller, Paging, parse_as_of, parse_bbox
from zeren.api.http.models import ZoneCollection, ZoneDetail, ZonePlanners, errors
from zeren.api.http.routers._geojson import GeoJSONResponse, collection_text, feature_text
from zeren.api.http.routers._records import appointment_out, day_text, geometry_texts, page_links, zone_properties
from zeren.api.service.zones import positions_in_force, zone_appointments, zone_detail, zone_lead
from zeren.geo.kinds import ALL_KINDS
from zeren.geo.validity import as_timestamp

router = APIRouter(tags=["zones"])

KindParam = Annotated[str, Path(description=f"Zone kind: {', '.join(ALL_KINDS)}.", examples=["subdistrict"],
                                max_length=40)]
CodeParam = Annotated[str, Path(description="Zone code (unique within its kind).", examples=["510105002"],
                                max_length=100)]
AsOf = Annotated[str | None, Query(max_length=40, description="Date, YYYY-MM-DD (default today).",
                                   examples=["2025-06-30"], json_schema_extra={"format": "date"})]


@router.get("/zones", response_class=GeoJSONResponse, response_model=ZoneCollection,
            summary="Zones in force, as a paginated GeoJSON FeatureCollection",
            responses=errors(422),
            description="Filter by kind, code and bounding box; `numberMatched` counts every match and `links` "
                        "holds the `next`/`prev` pages. Geometries are lon/lat WGS84 (RFC 7946).")
def list_zones(
    request: Request, paging: Paging,
    kind: Annotated[Literal[ALL_KINDS] | None, Query(description="Only zones of this kind.",  # type: ignore
                                                     examples=["subdistrict"])] = None,
    code: Annotated[str | None, Query(max_length=100, description="Only the zone with this code.",
                                      examples=["510105002"])] = None,
    bbox: Annotated[str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat (WGS84).",
                                      examples=["104.0,30.6,104.1,30.7"])] = None,
    as_of: AsOf = None,
) -> Response:
    index = request.app.state.zeren.catalogue.index
    positions = positions_in_force(index, parse_as_of(as_of), kind, code, parse_bbox(bbox))
    page = positions[paging.offset:paging.offset + paging.limit]
    texts = geometry_texts(index, page)
    features = [feature_text(f"{index.kind[p]}/{index.code[p]}", t, zone_properties(index, int(p)))
                for p, t in zip(page.tolist(), texts)]
    members = {"numberMatched": int(len(positions)), "numberReturned": len(features),
               "links": page_links(request, paging.limit, paging.offset, len(positions), "application/geo+json")}
    return Response(collection_text(features, members).encode("utf-8"), media_type="application/geo+json")


@router.get("/zones/{kind}/{code}", response_class=GeoJSONResponse, response_model=ZoneDetail,
            summary="One zone, with its parents, children, overlays and current appointments",
            responses=errors(401, 404, 422),
            description="The edition in force on `as_of` (or, when none is, the latest edition with "
                        "`in_force: false`).")
def get_zone(request: Request, kind: KindParam, code: CodeParam, caller: Caller, as_of: AsOf = None) -> Response:
    zs = request.app.state.zeren
    catalogue = zs.catalogue
    day = parse_as_of(as_of)
    pos, context = zone_detail(zs.workspace, kind, code, day)
    book = catalogue.private_book if caller is not None and caller.is_admin else catalogue.public_book
    props = zone_properties(catalogue.index, pos)
    context["appointments"] = [appointment_out(r, day, book) for r in context["appointments"]]
    props.update(context)
    text = feature_text(f"{kind}/{code}", geometry_texts(catalogue.index, [pos])[0], props)
    return Response(text.encode("utf-8"), media_type="application/geo+json")


@router.get("/zones/{kind}/{code}/planners", response_model=ZonePlanners, response_model_exclude_unset=True,
            summary="The planners of one zone: its lead and every appointment",
            responses=errors(401, 404, 422))
def zone_planners(
    request: Request, kind: KindParam, code: CodeParam, caller: Caller, as_of: AsOf = None,
    history: Annotated[bool, Query(description="Include ended and future appointments too.")] = False,
) -> dict:
    zs = request.app.state.zeren
    catalogue = zs.catalogue
    day = parse_as_of(as_of)
    pos, lead_id = zone_lead(zs.workspace, kind, code, day)
    book = catalogue.private_book if caller is not None and caller.is_admin else catalogue.public_book
    appointments = [appointment_out(r, day, book) for r in zone_appointments(catalogue, kind, code, day, history)]
    return {"zone": catalogue.index.zone_ref(pos), "as_of": as_timestamp(day).date().isoformat(),
            "lead": book.get(lead_id) if lead_id is not None else None, "appointments": appointments}


__all__ = ["router", "day_text"]
