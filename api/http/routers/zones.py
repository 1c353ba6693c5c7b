"""Zones: paginated GeoJSON lists, one zone with its parents, children, overlays and appointments.

Served from the catalogue's in-memory index (every kind, every edition), so these reads touch no disk.
"""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import shapely
from fastapi import APIRouter, Path, Query, Request, Response

from zeren.api.http.deps import Caller, Paging, parse_as_of, parse_bbox
from zeren.api.http.models import ZoneCollection, ZoneDetail, ZonePlanners, errors
from zeren.api.http.routers._geojson import GeoJSONResponse, collection_text, feature_text
from zeren.api.http.routers._records import (appointment_out, day_text, geometry_texts, page_links, sorted_positions,
                                  zone_properties)
from zeren.geo.hierarchy import PARENT_KIND
from zeren.geo.kinds import ALL_KINDS, BASE_KINDS
from zeren.geo.validity import active_mask, as_timestamp
from zeren.layers.errors import NotFoundError

router = APIRouter(tags=["zones"])

KindParam = Annotated[str, Path(description=f"Zone kind: {', '.join(ALL_KINDS)}.", examples=["subdistrict"],
                                max_length=40)]
CodeParam = Annotated[str, Path(description="Zone code (unique within its kind).", examples=["510105002"],
                                max_length=100)]
AsOf = Annotated[str | None, Query(max_length=40, description="Date, YYYY-MM-DD (default today).",
                                   examples=["2025-06-30"], json_schema_extra={"format": "date"})]


def _positions_in_force(index, as_of, kind=None, code=None, bbox=None) -> np.ndarray:
    mask = index.active(as_of)
    if kind is not None:
        mask &= index.kind == kind
    if code is not None:
        mask &= index.code == code
    if bbox is not None:
        hits = index.tree.query(shapely.box(*bbox), predicate="intersects")
        inside = np.zeros(len(index), dtype=bool)
        inside[hits] = True
        mask &= inside
    return sorted_positions(index, mask)


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
    positions = _positions_in_force(index, parse_as_of(as_of), kind, code, parse_bbox(bbox))
    page = positions[paging.offset:paging.offset + paging.limit]
    texts = geometry_texts(index, page)
    features = [feature_text(f"{index.kind[p]}/{index.code[p]}", t, zone_properties(index, int(p)))
                for p, t in zip(page.tolist(), texts)]
    members = {"numberMatched": int(len(positions)), "numberReturned": len(features),
               "links": page_links(request, paging.limit, paging.offset, len(positions), "application/geo+json")}
    return Response(collection_text(features, members).encode("utf-8"), media_type="application/geo+json")


def find_zone(index, kind: str, code: str, as_of) -> tuple[int, bool]:
    """(position, in force on as_of) of the edition in force, else of the latest edition; 404 otherwise."""
    if kind not in ALL_KINDS:
        raise NotFoundError(f"no zone kind {kind[:40]!r}; kinds: {', '.join(ALL_KINDS)}")
    positions = index.positions(kind, code)
    if not len(positions):
        raise NotFoundError(f"no {kind} with code {code[:100]!r}")
    active = index.active(as_of)[positions]
    if active.any():
        return int(positions[np.flatnonzero(active)[0]]), True
    editions = index.zones["edition"].to_numpy()[positions]
    return int(positions[int(np.argmax(editions))]), False


def _ancestors(index, pos: int, active: np.ndarray) -> list[dict]:
    out, kind, seen = [], str(index.kind[pos]), set()
    parent_code = index.zones["parent_code"].iat[pos]
    while kind in PARENT_KIND and parent_code is not None and parent_code == parent_code and len(out) < 8:
        kind = PARENT_KIND[kind]
        cands = index.positions(kind, str(parent_code))
        if not len(cands) or (kind, str(parent_code)) in seen:
            break
        seen.add((kind, str(parent_code)))
        in_force = cands[active[cands]]
        p = int(in_force[0] if len(in_force) else cands[-1])
        out.append(index.zone_ref(p))
        parent_code = index.zones["parent_code"].iat[p]
    return out


def _children(index, pos: int, active: np.ndarray) -> list[dict]:
    kind, code = str(index.kind[pos]), str(index.code[pos])
    child_kinds = [k for k, parent in PARENT_KIND.items() if parent == kind]
    if not child_kinds:
        return []
    parent = index.zones["parent_code"].to_numpy(dtype=object)
    mask = active & np.isin(index.kind, child_kinds) & (parent == code)
    return [index.zone_ref(int(p)) for p in sorted_positions(index, mask)]


def _overlays(index, pos: int, active: np.ndarray) -> list[dict]:
    """For a base zone: overlays and life circles across it; for the others: the base zones they lie across."""
    geom = index.zones.geometry.iat[pos]  # the frame's unprepared copy: safe from any thread
    hits = index.tree.query(geom, predicate="intersects")
    hits = hits[active[hits] & (hits != pos)]
    base = np.isin(index.kind[hits], BASE_KINDS)
    hits = hits[~base] if index.kind[pos] in BASE_KINDS else hits[base]
    if len(hits):
        hits = hits[~shapely.touches(index.zones.geometry.to_numpy()[hits], geom)]
    mask = np.zeros(len(index), dtype=bool)
    mask[hits] = True
    return [index.zone_ref(int(p)) for p in sorted_positions(index, mask)]


def _appointments(catalogue, kind: str, code: str, as_of, history: bool, book) -> list[dict]:
    appts = catalogue.appointments
    mask = (appts["zone_kind"] == kind) & (appts["zone_code"].astype(str) == code)
    if not history:
        mask &= active_mask(appts["start"], appts["end"], as_of)
    rows = appts.loc[mask].sort_values(["role", "start", "id"]).to_dict("records")
    return [appointment_out(r, as_of, book) for r in rows]


@router.get("/zones/{kind}/{code}", response_class=GeoJSONResponse, response_model=ZoneDetail,
            summary="One zone, with its parents, children, overlays and current appointments",
            responses=errors(401, 404, 422),
            description="The edition in force on `as_of` (or, when none is, the latest edition with "
                        "`in_force: false`).")
def get_zone(request: Request, kind: KindParam, code: CodeParam, caller: Caller, as_of: AsOf = None) -> Response:
    catalogue = request.app.state.zeren.catalogue
    index = catalogue.index
    day = parse_as_of(as_of)
    pos, in_force = find_zone(index, kind, code, day)
    active = index.active(day)
    book = catalogue.private_book if caller is not None and caller.is_admin else catalogue.public_book
    props = zone_properties(index, pos)
    props.update({
        "in_force": in_force,
        "editions": sorted(int(e) for e in index.zones["edition"].to_numpy()[index.positions(kind, code)]),
        "as_of": as_timestamp(day).date().isoformat(),
        "parents": _ancestors(index, pos, active),
        "children": _children(index, pos, active),
        "overlays": _overlays(index, pos, active),
        "appointments": _appointments(catalogue, kind, code, day, False, book),
    })
    text = feature_text(f"{kind}/{code}", geometry_texts(index, [pos])[0], props)
    return Response(text.encode("utf-8"), media_type="application/geo+json")


@router.get("/zones/{kind}/{code}/planners", response_model=ZonePlanners, response_model_exclude_unset=True,
            summary="The planners of one zone: its lead and every appointment",
            responses=errors(401, 404, 422))
def zone_planners(
    request: Request, kind: KindParam, code: CodeParam, caller: Caller, as_of: AsOf = None,
    history: Annotated[bool, Query(description="Include ended and future appointments too.")] = False,
) -> dict:
    catalogue = request.app.state.zeren.catalogue
    day = parse_as_of(as_of)
    index = catalogue.index
    pos, in_force = find_zone(index, kind, code, day)
    book = catalogue.private_book if caller is not None and caller.is_admin else catalogue.public_book
    appointments = _appointments(catalogue, kind, code, day, history, book)
    resp = catalogue.responsibility(day)
    lead_id = resp.lead_planner[pos] if in_force and len(resp.lead_planner) == len(index) else None
    return {"zone": index.zone_ref(pos), "as_of": as_timestamp(day).date().isoformat(),
            "lead": book.get(lead_id) if lead_id is not None else None, "appointments": appointments}


__all__ = ["router", "find_zone", "day_text"]
