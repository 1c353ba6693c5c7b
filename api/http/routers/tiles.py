"""Vector tiles of the zones: ``GET /tiles/{kind}/{z}/{x}/{y}.mvt`` (Mapbox Vector Tile 2.1) and its TileJSON.

Public (no token). An empty tile is answered 200 with an empty body. Every tile carries a strong ETag (from its
bytes, so every replica gives the same; ``-gzip`` appended for the gzip-encoded bytes, sent to clients that
accept them, compressed once per tile) and ``Cache-Control: public, max-age=60, must-revalidate``; a request
with a matching ``If-None-Match`` (either ETag) gets 304. Rendering runs in a worker thread; cached tiles are
answered on the event loop.
"""
from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Path, Query, Request, Response

from zeren.api.http.deps import parse_as_of
from zeren.api.http.models import errors
from zeren.api.service.tiles import TileService, tilejson
from zeren.geo.kinds import ALL_KINDS
from zeren.geo.tiles import MAX_ZOOM

router = APIRouter(tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"
CACHE_CONTROL = "public, max-age=60, must-revalidate"

Kind = Annotated[Literal[ALL_KINDS], Path(description=f"Zone kind: {', '.join(ALL_KINDS)}.",  # type: ignore
                                          examples=["subdistrict"])]
AsOf = Annotated[str | None, Query(max_length=40, description="Date, YYYY-MM-DD (default today): the zones and "
                                                              "leads in force on it.",
                                   examples=["2025-06-30"], json_schema_extra={"format": "date"})]
TILE_RESPONSES = {
    200: {"content": {MVT: {"schema": {"type": "string", "format": "binary"}}},
          "description": "The tile: one layer named by the kind; features with `code`, `name`, `lead_planner_id` "
                         "(absent without a lead), `has_lead`, `kind`. Empty body: no zone in this tile."},
    304: {"description": "Not modified (the `If-None-Match` ETag still holds)."},
    **errors(422),
}


def _service(request: Request) -> TileService:
    state = request.app.state.zeren
    service = getattr(state, "tiles", None)
    if service is None:  # one per server process, made on the first tile
        service = state.tiles = TileService(state.workspace)
    return service


def _not_modified(request: Request, *etags: str) -> bool:
    """Whether ``If-None-Match`` names the tile (by the ETag of either of its encodings: the same tile)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or any(etag in tags for etag in etags)


def _accepts_gzip(request: Request) -> bool:
    """Whether ``Accept-Encoding`` takes gzip (``gzip`` or ``*``, not with ``q=0``)."""
    for part in request.headers.get("accept-encoding", "").lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() in ("gzip", "x-gzip", "*"):
            q = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


@router.get("/tiles/{kind}/{z}/{x}/{y}.mvt", response_class=Response, responses=TILE_RESPONSES,
            summary="A vector tile (MVT) of the zones of one kind",
            description="XYZ tile z/x/y (web mercator, extent 4096, 64-unit buffer), geometry simplified to about "
                        "one pixel. x and y run from 0 to 2^z - 1. For Leaflet/MapLibre/QGIS; see "
                        "`/tiles/{kind}.json` for the TileJSON.")
async def get_tile(
    request: Request, kind: Kind,
    z: Annotated[int, Path(ge=0, le=MAX_ZOOM, description="Zoom level, 0 to 22.", examples=[12])],
    x: Annotated[int, Path(ge=0, le=(1 << MAX_ZOOM) - 1, description="Column, 0 to 2^z - 1.", examples=[3230])],
    y: Annotated[int, Path(ge=0, le=(1 << MAX_ZOOM) - 1, description="Row from the north, 0 to 2^z - 1.",
                           examples=[1679])],
    as_of: AsOf = None,
) -> Response:
    service = _service(request)
    key = service.key(kind, z, x, y, parse_as_of(as_of))
    tile = service.cached(key) or await anyio.to_thread.run_sync(service.render, key)
    packed = tile.gzip is not None and _accepts_gzip(request)
    headers = {"ETag": tile.gzip_etag if packed else tile.etag, "Cache-Control": CACHE_CONTROL,
               "Vary": "Accept-Encoding"}
    if _not_modified(request, tile.etag, tile.gzip_etag):
        return Response(status_code=304, headers=headers)
    if packed:  # compressed once when rendered (the GZip middleware leaves an encoded answer as it is)
        return Response(tile.gzip, media_type=MVT, headers=dict(headers, **{"Content-Encoding": "gzip"}))
    return Response(tile.body, media_type=MVT, headers=headers)


@router.get("/tiles/{kind}.json", summary="TileJSON 3.0 of the vector tiles of one kind",
            responses=errors(422),
            description="The tiles URL template (with `as_of` when given), zoom range, bounds of the zones in force "
                        "and the layer's fields (`vector_layers`).")
def get_tilejson(request: Request, kind: Kind, as_of: AsOf = None) -> dict:
    day = parse_as_of(as_of)
    url = str(request.base_url).rstrip("/") + f"/tiles/{kind}/{{z}}/{{x}}/{{y}}.mvt"
    if day is not None:
        url += f"?as_of={day.isoformat()}"
    return tilejson(request.app.state.zeren.catalogue, kind, url, day)
