"""OGC API - Features, Part 1 (Core) with GeoJSON, under ``/ogc``: QGIS, GDAL/OGR (``OAPIF:``) and other GIS
read Zeren's layers from here.

Collections: one per zone kind present in the store (zones in force; ``datetime`` picks another date),
``zone_leads`` (every zone in force with its current lead planner's public fields) and ``projects``.
Items take ``bbox``, ``datetime``, ``limit`` (clamped to the page-size cap, as the standard asks) and
``offset``; pages link to the ``next`` one and say ``numberMatched`` / ``numberReturned``.
Invalid parameters answer 400, as the standard requires.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Path, Query, Request, Response

from zeren.api.http.deps import DateOutOfRange, parse_as_of, parse_bbox
from zeren.api.http.errors import BadRequest
from zeren.api.http.models import OGCCollection, OGCCollections, OGCConformance, OGCFeature, OGCItems, OGCLanding, errors
from zeren.api.http.routers._geojson import GeoJSONResponse, collection_text, dumps, feature_text, geojson_texts
from zeren.api.service.projects import projects_extent
from zeren.api.service.zones import sorted_positions
from zeren.api.http.routers._records import (base_url, day_text, geometry_texts, plain, url_with,
                                  zone_properties)
from zeren.geo.kinds import ALL_KINDS, KIND_LABELS
from zeren.layers.errors import NotFoundError, ValidationError
from zeren.geo.kinds import PROJECT_STATUS_LABELS

router = APIRouter(prefix="/ogc", tags=["ogc"])

GEOJSON = "application/geo+json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
LEADS = "zone_leads"
PROJECTS = "projects"

CollectionId = Annotated[str, Path(max_length=40, description=f"A zone kind ({', '.join(ALL_KINDS)}), "
                                                               f"`{LEADS}` or `{PROJECTS}`.", examples=["district"])]
BBox = Annotated[str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat (CRS84).",
                                   examples=["104.0,30.6,104.1,30.7"])]
DateTime = Annotated[str | None, Query(max_length=100, description="A date (zones in force that day; default "
                                                                   "today) or an interval `start/end` (`..` open).",
                                       examples=["2025-06-30"])]
Limit = Annotated[int | None, Query(ge=1, le=1_000_000, description="Items per page; values over the server's cap are "
                                                             "lowered to it.", examples=[10])]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.", examples=[0])]
Format = Annotated[str | None, Query(max_length=20, description="Ignored: every answer is JSON / GeoJSON.",
                                     include_in_schema=False)]


def _json(value, media_type: str = "application/json") -> Response:
    return Response(dumps(value).encode("utf-8"), media_type=media_type)


def _bad(fn, *args):
    """Run a parameter parser; its ValidationError becomes 400, as OGC API - Features requires."""
    try:
        return fn(*args)
    except ValidationError as exc:
        raise BadRequest(str(exc)) from None


def _kinds(index) -> list[str]:
    present = set(index.kind.tolist())
    return [k for k in ALL_KINDS if k in present]


def _collection_ids(index) -> list[str]:
    return _kinds(index) + [LEADS, PROJECTS]


@router.get("", response_model=OGCLanding, summary="OGC API - Features landing page")
def landing(request: Request) -> Response:
    base = base_url(request)
    return _json({
        "title": "Zeren 责任 — responsible planners (OGC API - Features)",
        "description": "Zones, their lead planners and projects as OGC API - Features collections (GeoJSON).",
        "links": [
            {"href": f"{base}/ogc", "rel": "self", "type": "application/json", "title": "this document"},
            {"href": f"{base}/openapi.json", "rel": "service-desc",
             "type": "application/vnd.oai.openapi+json;version=3.0", "title": "the API definition"},
            {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html", "title": "the API documentation"},
            {"href": f"{base}/ogc/conformance", "rel": "conformance", "type": "application/json",
             "title": "conformance classes"},
            {"href": f"{base}/ogc/collections", "rel": "data", "type": "application/json", "title": "collections"},
        ]})


@router.get("/conformance", response_model=OGCConformance, summary="Conformance classes")
def conformance() -> Response:
    return _json({"conformsTo": CONFORMANCE})


def _extent(bounds, start=None, end=None) -> dict:
    spatial = [list(map(float, bounds))] if bounds is not None and all(np.isfinite(bounds)) else [[-180, -90, 180, 90]]
    return {"spatial": {"bbox": spatial, "crs": CRS84}, "temporal": {"interval": [[start, end]]}}


def _collection(request: Request, cid: str) -> dict:
    zs = request.app.state.zeren
    index = zs.catalogue.index
    base = base_url(request)
    if cid in ALL_KINDS and cid in _kinds(index):
        zh, en = KIND_LABELS[cid]
        mask = index.kind == cid
        bounds = shapely.total_bounds(index.geoms[mask])
        valid_from = pd.to_datetime(index.zones["valid_from"])[mask]
        title, description = f"{zh} / {en}", f"Zones of kind {cid} in force (all editions via datetime)"
        extent = _extent(bounds, day_text(valid_from.min()) if len(valid_from) else None)
    elif cid == LEADS:
        title = "责任规划师 / zones with their lead planner"
        description = "Every zone in force with its current lead planner (public fields)"
        extent = _extent(index.bounds)
    elif cid == PROJECTS:
        title, description = "项目 / projects", "Projects with their frozen lead and workflow status"
        extent = _extent(projects_extent(zs.workspace))
    else:
        raise NotFoundError(f"no collection {cid[:40]!r}; collections: {', '.join(_collection_ids(index))}")
    return {
        "id": cid, "title": title, "description": description, "itemType": "feature", "crs": [CRS84],
        "extent": extent,
        "links": [
            {"href": f"{base}/ogc/collections/{cid}", "rel": "self", "type": "application/json", "title": title},
            {"href": f"{base}/ogc/collections/{cid}/items", "rel": "items", "type": GEOJSON, "title": title},
        ],
    }


@router.get("/collections", response_model=OGCCollections, summary="The collections")
def collections(request: Request) -> Response:
    index = request.app.state.zeren.catalogue.index
    base = base_url(request)
    return _json({"collections": [_collection(request, c) for c in _collection_ids(index)],
                  "links": [{"href": f"{base}/ogc/collections", "rel": "self", "type": "application/json"}]})


@router.get("/collections/{collection_id}", response_model=OGCCollection, summary="One collection",
            responses=errors(400, 404))
def collection(request: Request, collection_id: CollectionId) -> Response:
    return _json(_collection(request, collection_id))


# -- time -------------------------------------------------------------------------------------------
def _datetime(value: str | None) -> tuple[dt.date | None, dt.date | None, bool]:
    """(start, end, is_interval) from an OGC ``datetime``: a date/date-time or ``start/end`` (``..`` = open)."""
    if value is None or not value.strip():
        return None, None, False

    def day(text: str, field: str) -> dt.date | None:
        text = text.strip()
        if text in ("", ".."):
            return None
        try:
            return parse_as_of(text[:10], field) if len(text) > 10 and _is_datetime(text) \
                else parse_as_of(text, field)
        except DateOutOfRange as exc:  # a date, but one the store cannot hold: say so, not "not a date"
            raise BadRequest(str(exc)) from None
        except ValidationError:
            raise BadRequest(f"datetime: {value[:60]!r} is not a date, a date-time or an interval start/end "
                             f"(RFC 3339, '..' for an open end)") from None

    if "/" in value:
        a, _, b = value.partition("/")
        start, end = day(a, "datetime"), day(b, "datetime")
        if start and end and end < start:
            raise BadRequest("datetime: the interval ends before it starts")
        return start, end, True
    return day(value, "datetime"), None, False


def _is_datetime(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def _zone_mask(index, kind, start, end, interval) -> np.ndarray:
    if not interval:
        mask = index.active(start)
    else:
        vf = pd.to_datetime(index.zones["valid_from"]).to_numpy()
        vt = pd.to_datetime(index.zones["valid_to"]).to_numpy()
        mask = np.ones(len(index), dtype=bool)
        if end is not None:
            mask &= np.isnat(vf) | (vf <= np.datetime64(end))
        if start is not None:
            mask &= np.isnat(vt) | (vt > np.datetime64(start))
    if kind is not None:
        mask &= index.kind == kind
    return mask


def _bbox_mask(index, bbox) -> np.ndarray:
    mask = np.zeros(len(index), dtype=bool)
    mask[index.tree.query(shapely.box(*bbox), predicate="intersects")] = True
    return mask


def _lead_properties(catalogue, index, pos: int, resp) -> dict:
    props = {"kind": str(index.kind[pos]), "code": str(index.code[pos]), "name": str(index.zones["name"].iat[pos]),
             "name_en": plain(index.zones["name_en"].iat[pos])}
    pid = resp.lead_planner[pos] if len(resp.lead_planner) == len(index) else None
    planner = catalogue.public_book.get(pid) if pid is not None else {}
    props.update({"lead_planner_id": plain(pid), "lead_planner_name": planner.get("name"),
                  "lead_planner_organization": planner.get("organization"),
                  "lead_planner_disciplines": ";".join(planner.get("disciplines") or []) or None,
                  "lead_planner_public_contact": planner.get("public_contact")})
    return props


def _project_properties(row: dict) -> dict:
    return {"name": plain(row["name"]), "type": plain(row.get("type")), "scale": plain(row.get("scale")),
            "status": row["status"], "status_label": PROJECT_STATUS_LABELS.get(row["status"], (row["status"],))[0],
            "created_at": str(row["created_at"]), "as_of": day_text(row["as_of"]),
            "lead_planner_id": plain(row.get("lead_planner_id")), "lead_zone_kind": plain(row.get("lead_zone_kind")),
            "lead_zone_code": plain(row.get("lead_zone_code")),
            "consultation_planner_ids": ";".join(row.get("consultation_planner_ids") or []) or None}


def _items(request: Request, cid: str, bbox, start, end, interval, fid=None):
    """(ids, geometry texts, properties, total) of the matching features, or of feature ``fid``."""
    zs = request.app.state.zeren
    catalogue = zs.catalogue
    index = catalogue.index
    if cid in ALL_KINDS and cid in _kinds(index) or cid == LEADS:
        kind = cid if cid != LEADS else None
        mask = _zone_mask(index, kind, start, end, interval)
        if bbox is not None:
            mask &= _bbox_mask(index, bbox)
        if fid is not None:
            k, code = fid.partition(".")[::2] if cid == LEADS else (cid, fid)
            mask &= (index.kind == k) & (index.code == code)
        positions = sorted_positions(index, mask)
        if fid is None and cid != LEADS and interval:
            ids = [f"{index.code[p]}@{int(index.zones['edition'].iat[p])}" for p in positions]
        elif cid == LEADS:
            ids = [f"{index.kind[p]}.{index.code[p]}" for p in positions]
        else:
            ids = [str(index.code[p]) for p in positions]
        if cid == LEADS:
            resp = catalogue.responsibility(start if not interval else None)
            make = lambda p: _lead_properties(catalogue, index, p, resp)  # noqa: E731
        else:
            make = lambda p: zone_properties(index, p)  # noqa: E731
        return positions, ids, (lambda page: geometry_texts(index, page)), make
    if cid == PROJECTS:
        pid = _project_id(fid)
        frame = zs.store.find_projects(project_id=pid)
        if fid is not None and pid is None:  # not a project id (e.g. '²' or 23 digits): no such feature, a 404
            frame = frame.iloc[0:0]
        if bbox is not None and len(frame):
            frame = frame[shapely.intersects(frame.geometry.to_numpy(), shapely.box(*bbox))]
        if (start or end) and len(frame):
            created = pd.to_datetime(frame["created_at"].astype(str).str[:10]).dt.date
            keep = np.ones(len(frame), dtype=bool)
            if start is not None:
                keep &= (created >= start).to_numpy() if interval else (created == start).to_numpy()
            if end is not None:
                keep &= (created <= end).to_numpy()
            frame = frame[keep]
        rows = frame.drop(columns="geometry").to_dict("records")
        geoms = frame.geometry.to_numpy()
        positions = np.arange(len(rows))
        ids = [int(r["id"]) for r in rows]
        return positions, ids, (lambda page: geojson_texts(geoms[page])), (lambda p: _project_properties(rows[p]))
    raise NotFoundError(f"no collection {cid[:40]!r}; collections: {', '.join(_collection_ids(index))}")


@router.get("/collections/{collection_id}/items", response_model=OGCItems, summary="Features of a collection",
            responses=errors(400, 404), response_class=GeoJSONResponse)
def items(request: Request, collection_id: CollectionId, bbox: BBox = None, datetime: DateTime = None,
          limit: Limit = None, offset: Offset = 0, f: Format = None) -> Response:
    settings = request.app.state.zeren.settings
    box = _bad(parse_bbox, bbox)
    start, end, interval = _datetime(datetime)
    limit = min(limit or settings.default_page_size, settings.max_page_size)
    positions, ids, geometries, make = _items(request, collection_id, box, start, end, interval)
    total = len(positions)
    page = positions[offset:offset + limit]
    texts = geometries(page)
    first = offset
    features = [feature_text(ids[first + i], t, make(int(p))) for i, (p, t) in enumerate(zip(page.tolist(), texts))]
    links = [{"href": url_with(request, limit=limit, offset=offset), "rel": "self", "type": GEOJSON,
              "title": "this page"},
             {"href": f"{base_url(request)}/ogc/collections/{collection_id}", "rel": "collection",
              "type": "application/json", "title": "the collection"}]
    if offset + limit < total:
        links.append({"href": url_with(request, limit=limit, offset=offset + limit), "rel": "next", "type": GEOJSON,
                      "title": "next page"})
    if offset > 0:
        links.append({"href": url_with(request, limit=limit, offset=max(0, offset - limit)), "rel": "prev",
                      "type": GEOJSON, "title": "previous page"})
    members = {"numberMatched": total, "numberReturned": len(features),
               "timeStamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
               "links": links}
    return Response(collection_text(features, members).encode("utf-8"), media_type=GEOJSON)


def _project_id(fid: str | None) -> int | None:
    """A project id from ASCII digits within the ids' range (1..2**62), else None."""
    if fid is None or not re.fullmatch(r"[0-9]{1,19}", fid):
        return None
    value = int(fid)
    return value if 1 <= value <= 2**62 else None


@router.get("/collections/{collection_id}/items/{feature_id}", response_model=OGCFeature, summary="One feature",
            responses=errors(400, 404), response_class=GeoJSONResponse)
def item(request: Request, collection_id: CollectionId,
         feature_id: Annotated[str, Path(max_length=200, description="The feature's id: a zone code, "
                                                                     "`kind.code` in zone_leads, a project id.",
                                         examples=["510104"])],
         datetime: DateTime = None, f: Format = None) -> Response:
    start, end, interval = _datetime(datetime)
    fid = feature_id.split("@", 1)[0]
    positions, ids, geometries, make = _items(request, collection_id, None, start, end, interval, fid)
    if not len(positions):
        raise NotFoundError(f"no feature {feature_id[:100]!r} in collection {collection_id[:40]!r}")
    p = positions[:1]
    base = base_url(request)
    links = [{"href": f"{base}/ogc/collections/{collection_id}/items/{feature_id}", "rel": "self", "type": GEOJSON},
             {"href": f"{base}/ogc/collections/{collection_id}", "rel": "collection", "type": "application/json"}]
    text = feature_text(ids[0], geometries(p)[0], make(int(p[0])), {"links": links})
    return Response(text.encode("utf-8"), media_type=GEOJSON)
