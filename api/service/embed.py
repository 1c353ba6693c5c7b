"""The embeddable find-my-planner page (``GET /embed/find``): the city the map opens on and the zone outlines it
draws, from the loaded store; the page itself asks ``/lookup`` and ``/feedback`` (see maps/embed.py)."""
from __future__ import annotations

from zeren.api.service.pages import page_settings
from zeren.api.service.workspace import Workspace
from zeren.geo.validity import as_timestamp
from zeren.maps import MapSettings


def find_page(ws: Workspace, *, settings: MapSettings, start: tuple[float, float] | None = None):
    from zeren.maps.embed import find_page as build

    catalogue = ws.catalogue
    settings = page_settings(catalogue, settings)
    day = as_timestamp(None).date().isoformat()
    kinds = set(catalogue.zone_frame(None)["kind"])
    outlines = [f"/maps/zones/{kind}.geojson?as_of={day}" for kind in ("district", "subdistrict") if kind in kinds]
    return build(settings, catalogue.index.bounds, outline_urls=outlines, start=start)
