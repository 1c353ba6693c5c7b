"""``POST /assign``: many sites at once (a GeoJSON Feature or FeatureCollection, up to the feature cap).

Each feature comes back with the columns of ``zeren assign`` added to its properties (input properties
named like them are refused with 422, as ``zeren assign`` refuses such columns). A feature that
cannot be assigned (no or bad geometry, coordinates out of range...) gets an ``error`` property and a null
geometry; it does not fail the batch. The work runs in a worker thread of a bounded pool (``ZEREN_BATCH_WORKERS``),
so lookups keep flowing meanwhile, within the vertex budget (``ZEREN_MAX_VERTICES``, ``ZEREN_MAX_FEATURE_VERTICES``)
and a deadline (``ZEREN_REQUEST_TIMEOUT``: then 503 with ``Retry-After``, and the work stops at its next check).
"""
from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import shapely
from fastapi import APIRouter, Query, Request, Response

from zeren.api.http.deps import parse_as_of, parse_input_crs, run_batch
from zeren.api.http.errors import TooManyFeatures
from zeren.api.http.models import DEMO_LAT, DEMO_LON, DEMO_POLYGON, AssignedCollection, errors
from zeren.api.http.routers._geojson import (GeoJSONResponse, GeoJSONError, dumps_bytes, geojson_texts,
                                             feature_positions, geometry_from_geojson, parse_json, repair)
from zeren.api.service import assign as service
from zeren.geo.answer import ASSIGNMENT_COLUMNS, json_members
from zeren.geo.errors import GeoInputError

router = APIRouter(tags=["lookup"])

EXAMPLE = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": "a", "properties": {"name": "宽窄巷子"},
     "geometry": {"type": "Point", "coordinates": [DEMO_LON, DEMO_LAT]}},
    {"type": "Feature", "id": "b", "properties": {"name": "院落"}, "geometry": DEMO_POLYGON},
]}
REQUEST_SCHEMA = {
    "description": "A GeoJSON Feature or FeatureCollection (RFC 7946), coordinates in `crs` (default WGS84 lon/lat).",
    # Any geometry, properties or item: one that is not usable (properties not an object or null, a bad
    # geometry) comes back as that row's error in a 200 answer, and the batch goes on.
    "anyOf": [{"type": "object", "required": ["type"], "properties": {"type": {"const": "Feature"}}},
              {"type": "object", "required": ["type", "features"],
               "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}}}],
}
COLUMNS = ASSIGNMENT_COLUMNS
HTTP_CHUNK = 2_000  # sites assigned between two deadline checks


def _features(data: Any, max_features: int) -> list:
    if not isinstance(data, dict):
        raise GeoJSONError(f"expected a GeoJSON Feature or FeatureCollection object, got a JSON "
                           f"{type(data).__name__}")
    kind = data.get("type")
    if kind == "Feature":
        return [data]
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise GeoJSONError("a FeatureCollection needs 'features': an array of Feature objects")
        if len(features) > max_features:
            raise TooManyFeatures(f"{len(features):,} features is over the cap of {max_features:,} per request; "
                                  f"send them in batches of {max_features:,}")
        return features
    if kind in ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"):
        raise GeoJSONError(f"got a bare {kind} geometry; wrap it in a Feature: "
                           f'{{"type": "Feature", "properties": {{}}, "geometry": {{...}}}}')
    raise GeoJSONError(f"'type' is {str(kind)[:40]!r}; expected 'Feature' or 'FeatureCollection' (GeoJSON)")


def _read(features: list, deadline=None) -> tuple[np.ndarray, list, list, list, list]:
    """Geometries (None where unusable), properties, ids, per-feature problems, whether repaired."""
    n = len(features)
    geoms = np.full(n, None, dtype=object)
    props: list = [None] * n
    ids: list = [None] * n
    problems: list = [None] * n
    repaired: list = [False] * n
    for i, f in enumerate(features):
        where = f"feature {i}"
        if deadline is not None and i % 500 == 499:
            deadline.check()
        if not isinstance(f, dict) or f.get("type") != "Feature":
            problems[i] = f"{where}: not a GeoJSON Feature (an object with \"type\": \"Feature\")"
            continue
        fid = f.get("id")
        ids[i] = fid if isinstance(fid, (str, int, float)) and not isinstance(fid, bool) else None
        p = f.get("properties")
        if p is not None and not isinstance(p, dict):
            problems[i] = f"{where}: 'properties' must be an object or null"
            continue
        props[i] = p or {}
        g = f.get("geometry")
        if g is None:
            problems[i] = f"{where}: no geometry (null); give the site's Point, LineString or Polygon"
            continue
        try:
            if isinstance(g, dict) and g.get("type") == "Point" and isinstance(g.get("coordinates"), list) \
                    and len(g["coordinates"]) == 2:
                geoms[i] = g["coordinates"]  # points are built at once below
                continue
            geom = geometry_from_geojson(g, f"{where}, geometry")
            geoms[i], repaired[i] = repair(geom, f"{where}, geometry")
        except GeoJSONError as exc:
            problems[i] = str(exc)
    # points in one go (checked like any other position)
    pts = [i for i in range(n) if isinstance(geoms[i], list)]
    if pts:
        coords = [geoms[i] for i in pts]
        ok = [all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in c) for c in coords]
        good = [i for i, k in zip(pts, ok) if k]
        for i, k in zip(pts, ok):
            if not k:
                geoms[i] = None
                problems[i] = f"feature {i}, geometry: a position is [lon, lat] (2 finite numbers)"
        if good:
            xy = np.array([geoms[i] for i in good], dtype=float)
            finite = np.isfinite(xy).all(axis=1)
            made = shapely.points(xy)
            for i, pt, fin in zip(good, made, finite):
                geoms[i] = pt if fin else None
                if not fin:
                    problems[i] = f"feature {i}, geometry: coordinates must be finite numbers"
    return geoms, props, ids, problems, repaired


def _check_crs_member(data: Any, crs) -> None:
    """RFC 7946 dropped the ``crs`` member; a body that still carries one must agree with the ``crs``
    parameter, rather than have its coordinates silently read in another CRS."""
    member = data.get("crs") if isinstance(data, dict) else None
    if member is None:
        return
    name = member.get("properties", {}).get("name") if isinstance(member, dict) and isinstance(
        member.get("properties"), dict) else None
    try:
        declared = parse_input_crs(str(name)) if name else None
    except GeoInputError:  # an unknown name: it cannot agree
        declared = None
    if declared is not None and declared.shift == crs.shift and declared.crs.equals(crs.crs, ignore_axis_order=True):
        return
    shown = str(name)[:80] if name else "an unreadable one"
    raise GeoJSONError(f"the body's 'crs' member names {shown}, but the coordinates are read in {crs.label}: "
                       f"GeoJSON is WGS84 lon/lat (RFC 7946); give the CRS as the crs query parameter "
                       f"(e.g. ?crs=EPSG:4490) and drop the member")


def assign_collection(workspace, data: Any, crs_text: str, as_of, max_features: int, budget=None,
                      deadline=None) -> bytes:
    """The answer of ``POST /assign``: each feature with the assignment columns added to its properties.
    ``budget`` (a :class:`~zeren.api.service.budget.WorkBudget`) is checked on the positions counted in the
    JSON, before any geometry is built; ``deadline`` between the steps and chunks of the work."""
    features = _features(data, max_features)
    if budget is not None:
        budget.check(feature_positions(features), lambda i: f"feature {i}")
    crs = parse_input_crs(crs_text)
    _check_crs_member(data, crs)
    geoms, props, ids, problems, repaired = _read(features, deadline)
    service.check_columns({k for p in props if p for k in p}, "the features' properties")
    batch = service.assign_sites(workspace, geoms, crs, as_of, problems=problems,
                                 where=[f"feature {i}, geometry" for i in range(len(features))], deadline=deadline,
                                 chunk=HTTP_CHUNK, lists="json")
    if deadline is not None:
        deadline.check()
    return _collection(batch, features, props, ids, repaired)


def _collection(batch, features: list, props: list, ids: list, repaired: list) -> bytes:
    """The FeatureCollection as bytes: each feature's own properties (orjson), then the assignment columns
    as JSON members made by ``zeren assign``'s vectorised encoder (``geo.answer.json_members``), spliced in."""
    good = batch.good
    members = json_members(batch.columns.iloc[np.flatnonzero(good)]) if good.any() else []
    geometries = _geometry_texts(batch.wgs84[good]) if good.any() else []
    parts = [dumps_bytes({"type": "FeatureCollection", "as_of": batch.as_of.date().isoformat(),
                          "assigned": int(good.sum()), "errors": int(len(features) - good.sum())})[:-1],
             b',"features":[']
    k = 0
    for i in range(len(features)):
        own = dumps_bytes(props[i] or {})[1:-1]
        if good[i]:
            geometry, added = geometries[k].encode(), members[k].encode()
            k += 1
            if repaired[i]:
                added += b',"repaired":true'
        else:
            geometry = b"null"
            added = b'"error":' + dumps_bytes(batch.problems[i] or f"feature {i}: cannot be assigned")
        parts += [b"," if i else b"", b'{"type":"Feature","id":', dumps_bytes(ids[i]), b',"geometry":', geometry,
                  b',"properties":{', own, b"," if own else b"", added, b"}}"]
    parts.append(b"]}")
    return b"".join(parts)


def _geometry_texts(geoms: np.ndarray) -> list[str]:
    """GeoJSON geometry texts: points written directly (coordinates rounded to 7 decimals, Python's shortest
    float text), other types by shapely's GeoJSON writer (:func:`geojson_texts`)."""
    out = np.full(len(geoms), None, dtype=object)
    points = shapely.get_type_id(geoms) == 0
    if points.any():
        xy = np.round(shapely.get_coordinates(geoms[points]), 7)
        out[points] = ['{"type":"Point","coordinates":[' + repr(x) + "," + repr(y) + "]}"
                       for x, y in xy.tolist()]
    if (~points).any():
        out[~points] = geojson_texts(geoms[~points])
    return out.tolist()


def assign_job(workspace, body: bytes, deadline, *, crs: str, as_of, max_features: int, budget) -> bytes:
    """The whole of ``POST /assign`` after the query is read, as a batch job (run in a batch worker process,
    or in a thread with ``ZEREN_BATCH_IN_PROCESS``): the raw body in, the answer's bytes out."""
    parse_input_crs(crs)  # an unknown CRS fails the request before the body is read
    return assign_collection(workspace, parse_json(body), crs, as_of, max_features, budget, deadline)


@router.post(
    "/assign", response_class=GeoJSONResponse, response_model=AssignedCollection,
    summary="Assign many sites (points, lines, polygons) at once",
    responses=errors(400, 413, 422, 503),
    description="Send a GeoJSON Feature or FeatureCollection (up to 10,000 features by default). Every feature "
                "comes back with the columns of `zeren assign` in its properties (covered, lead_planner_id, "
                "lead_zone_kind, lead_zone_code, split, planners, consultations, zones, nearest_*) and its geometry "
                "in WGS84. A feature that cannot be assigned gets an `error` property and does not fail the batch. "
                "Invalid polygons (bow ties) are repaired and marked `repaired`.",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": REQUEST_SCHEMA, "example": EXAMPLE},
        "application/geo+json": {"schema": REQUEST_SCHEMA, "example": EXAMPLE}}}})
async def assign_sites(
    request: Request,
    crs: Annotated[str, Query(max_length=2000, examples=["wgs84"],
                              description="CRS of the coordinates: `wgs84` (default), `cgcs2000`, `gcj02`, `bd09` or "
                                          "`EPSG:n`.")] = "wgs84",
    as_of: Annotated[str | None, Query(max_length=40, description="Date of the answer, YYYY-MM-DD (default today).",
                                       examples=["2025-06-30"], json_schema_extra={"format": "date"})] = None,
) -> Response:
    body = await request.body()
    zs = request.app.state.zeren
    params = dict(crs=crs, as_of=parse_as_of(as_of), max_features=zs.settings.max_features,
                  budget=zs.settings.work_budget())
    answer, encoding = await run_batch(request, assign_job, body, params)
    headers = {"Content-Encoding": encoding, "Vary": "Accept-Encoding"} if encoding else None
    return Response(answer, media_type="application/geo+json", headers=headers)
