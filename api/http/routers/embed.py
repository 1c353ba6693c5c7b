"""``GET /embed/find``: the find-my-planner page for portals and WeChat web views (an ``<iframe>`` or a link).

A full-height map: a resident taps it, uses the browser's location or types coordinates; the page asks
``/lookup`` and shows the planner card, with a "留言 / leave a message" form that posts to ``/feedback``.
It tells its parent window ``{type: "zeren:planner", ...}`` (``window.postMessage``). Who may frame it is the
app's ``Content-Security-Policy: frame-ancestors`` (``ZEREN_FRAME_ANCESTORS``); its assets are the server's own
(``/static/maps/``), so it works offline. Public."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from zeren.api.http.deps import parse_input_crs
from zeren.api.http.routers.maps import HTML_ANSWER, html_errors
from zeren.api.service.embed import find_page
from zeren.api.service.lookup import lookup
from zeren.layers.errors import ValidationError

router = APIRouter(tags=["maps"])


@router.get("/embed/find", response_class=HTMLResponse, responses={**HTML_ANSWER, **html_errors(422)},
            summary="Embeddable page: find my responsible planner, and leave them a message",
            description="Tap the map, use your location or type coordinates: the page shows the planner card "
                        "(name, team, organisation, disciplines, public contact, the zone and why, the planners "
                        "to consult) and a message form (`POST /feedback`). Give `lon`/`lat` (in `crs`) to open "
                        "on a point. Posts `{type: \"zeren:planner\", ...}` to the parent window.")
def embed_find(
    request: Request,
    lon: Annotated[float | None, Query(allow_inf_nan=False, description="Open on this point (or x in `crs`).",
                                       examples=[104.053])] = None,
    lat: Annotated[float | None, Query(allow_inf_nan=False, description="Latitude (or y in `crs`).",
                                       examples=[30.6695])] = None,
    crs: Annotated[str, Query(max_length=2000, description="CRS of lon/lat (default wgs84).",
                              examples=["wgs84"])] = "wgs84",
) -> HTMLResponse:
    zs = request.app.state.zeren
    start = None
    if (lon is None) != (lat is None):
        raise ValidationError("give both lon and lat, or neither")
    if lon is None:
        parse_input_crs(crs, definitions=False)  # a bad crs is refused even without a point, as declared
    else:
        site = lookup(zs.workspace, lon, lat, crs)["site"]  # checked and converted to WGS84 as /lookup does
        start = (site["lon"], site["lat"])
    m = find_page(zs.workspace, settings=zs.settings.map_settings(), start=start)
    return HTMLResponse(m.get_root().render(), headers={"Cache-Control": "no-cache"})
