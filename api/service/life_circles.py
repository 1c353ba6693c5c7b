"""15-minute community life circles (15分钟社区生活圈): make them around centre points, and check their daily
services (体检). ``zeren life-circles generate|check`` (files) and ``POST /life-circles/generate``,
``GET /life-circles/check`` (the stored circles) come here.

Without a walking network, circles are the GB 50180-2018 straight-line radii (5/10/15 minutes: 300/500/1000 m);
every result says how it was made (its provenance).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from zeren.api.service.workspace import Workspace
from zeren.geo.coverage import life_circle_planners
from zeren.geo.kinds import LIFE_CIRCLE
from zeren.geo.lifecircle import GB50180_RADII_M, health_check, life_circles
from zeren.geo.validity import as_timestamp
from zeren.layers.errors import NotFoundError, ValidationError
from zeren.layers.facilities import load_categories
from zeren.layers.network import is_osm
from zeren.maps import MapSettings, life_circle_map

STANDARD = "GB 50180-2018"


@dataclass
class Generated:
    circles: gpd.GeoDataFrame
    skipped: pd.DataFrame
    streets: gpd.GeoDataFrame | None
    provenance: dict = field(default_factory=dict)


def clip_zone(ws: Workspace, kind: str, code: str, as_of=None) -> gpd.GeoDataFrame:
    """The stored zone to cut circles to (in force on ``as_of``)."""
    clip = ws.catalogue.zone_frame(as_of, kind)
    clip = clip[clip["code"].astype(str) == str(code)]
    if clip.empty:
        raise NotFoundError(f"clip: no {kind} with code {code!r} in force on {as_timestamp(as_of).date()}; see "
                            f"GET /zones?kind={kind}")
    return clip[["geometry"]]


def generate(centres: gpd.GeoDataFrame, *, network=None, network_name: str | None = None, minutes=15.0,
             speed_kmh: float | None = None, radius_m: float | None = None, clip=None, clip_ref: dict | None = None,
             as_of=None, **options) -> Generated:
    """Circles around ``centres`` (WGS84 points with code and name), with their provenance; ValidationError
    when not one circle could be made (each centre's reason listed)."""
    minutes_list = list(minutes) if isinstance(minutes, (list, tuple)) else [minutes]
    if not 1 <= len(minutes_list) <= 6:
        raise ValidationError("minutes: give one to six values, e.g. 15 or [5, 10, 15]")
    kwargs = dict(options)
    if speed_kmh is not None:
        kwargs["speed_kmh"] = speed_kmh
    result = life_circles(centres, network, minutes=minutes_list if len(minutes_list) > 1 else minutes_list[0],
                          radius_m=radius_m, clip=clip, **kwargs)
    if not len(result.circles):
        reasons = [f"{s.code} {s.name}: {s.reason}" for s in result.skipped.itertuples(index=False)]
        raise ValidationError("no life circle could be made from these centres", reasons)
    if network is not None:
        provenance = {"method": "network", "network_file": network_name, "speed_kmh": kwargs.get("speed_kmh")}
        standard = None
    elif radius_m is not None:
        provenance = {"method": "buffer", "radius_m": radius_m, "standard": None}
        standard = None
    else:
        provenance = {"method": "buffer", "standard": STANDARD,
                      "radii_m": {str(k): v for k, v in GB50180_RADII_M.items()},
                      "note": "没有步行路网（服务器 ZEREN_NETWORK_FILE，命令行 --network），使用 GB 50180-2018 直线半径 / "
                              "no walking network (ZEREN_NETWORK_FILE on the server, --network on the command "
                              "line): GB 50180-2018 straight-line radii"}
        standard = STANDARD
    provenance.update({"minutes": minutes_list, "as_of": as_timestamp(as_of).date().isoformat(), "clip": clip_ref,
                       "centres": int(len(centres)), "circles": int(len(result.circles))})
    circles = result.circles.copy()
    circles["standard"] = standard
    circles["clip_kind"] = None if clip_ref is None else clip_ref.get("kind")
    circles["clip_code"] = None if clip_ref is None else clip_ref.get("code")
    return Generated(circles=circles, skipped=result.skipped, streets=getattr(result, "streets", None),
                     provenance=provenance)


@dataclass
class StoredCheck:
    result: object  # geo.lifecircle.HealthResult
    planners: pd.DataFrame  # code, has_planner, via, planner_id, base_code
    planner_names: pd.Series
    as_of: dt.date


def check_stored(ws: Workspace, pois, *, network=None, as_of=None) -> StoredCheck:
    """The health check of the stored life circles in force on ``as_of``, with the planner covering each."""
    catalogue = ws.catalogue
    in_force = catalogue.zone_frame(as_of, LIFE_CIRCLE)
    planners = life_circle_planners(catalogue.index.zones, catalogue.appointments, as_of=as_of) if len(in_force) \
        else []
    if not len(planners):
        raise NotFoundError(f"no life circles (kind life_circle) are in force on {as_timestamp(as_of).date()}; make them with POST "
                            "/life-circles/generate or `zeren life-circles generate`, then import them with "
                            "`zeren import-layer FILE --kind life_circle`")
    circles = catalogue.zone_frame(as_of, LIFE_CIRCLE).sort_values("code", kind="stable")
    circles = circles.drop_duplicates("code", keep="last")[["code", "name", "geometry"]]
    result = health_check(gpd.GeoDataFrame(circles, geometry="geometry", crs="EPSG:4326"), pois,
                          load_categories(), network=network)
    names = catalogue.planners.assign(id=catalogue.planners["id"].astype(str)).set_index("id")["name"]
    return StoredCheck(result=result, planners=planners, planner_names=names, as_of=as_timestamp(as_of).date())


def check_file(circles: gpd.GeoDataFrame, pois, *, categories=None, network=None, search_m=None):
    """The health check of circles read from a file (no store needed)."""
    kwargs = {} if search_m is None else {"search_m": search_m}
    return health_check(circles, pois, categories if categories is not None else load_categories(),
                        network=network, **kwargs)


OSM_ATTRIBUTION = ("设施与路网数据 © OpenStreetMap 贡献者，ODbL 1.0 / facilities and streets © OpenStreetMap "
                   "contributors, ODbL 1.0 (openstreetmap.org/copyright)")


def data_attribution(*sources) -> str | None:
    """What a page drawn from these input files must credit: OpenStreetMap (ODbL) when any is an OSM extract."""
    return OSM_ATTRIBUTION if any(s is not None and is_osm(s) for s in sources) else None


def check_map(result, *, sources=(), settings=None):
    """The page of a health check (``zeren life-circles check --map``): circles coloured by score, each with
    its own outline and name, crediting the data they were checked against (OpenStreetMap's ODbL)."""
    settings = settings or MapSettings()
    credit = data_attribution(*sources)
    if credit:
        settings = settings.replace(attribution=f"{settings.attribution}; {credit}" if settings.attribution
                                    else credit)
    return life_circle_map(result.circles, settings=settings)


def file_name(path) -> str | None:
    """How answers name a configured file: its name, never the server's folders."""
    return None if path is None else Path(path).name
