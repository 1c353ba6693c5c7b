"""15-minute community life circles (15分钟社区生活圈): make them from centre points, and check the stored
ones (体检: which daily services each has or lacks, and which planner covers it).

The API has no street network unless ``ZEREN_NETWORK_FILE`` names one: without it circles are the
GB 50180-2018 straight-line radii (5/10/15 minutes: 300/500/1000 m). The health check needs facilities:
``ZEREN_POIS_FILE``. Both files are read once per process (again when they change on disk).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from zeren.api.jsonable import jsonable, records
from zeren.api.service import life_circles as service
from zeren.api.http.deps import parse_as_of, parse_input_crs, run_batch
from zeren.api.http.errors import TooManyFeatures
from zeren.api.http.models import DEMO_LAT, DEMO_LON, errors
from zeren.api.http.routers._geojson import GeoJSONError, GeoJSONResponse, StrictJSONRoute, dumps, geojson_texts, \
    geometry_from_geojson
from zeren.geo.sites import sites_to_wgs84
from zeren.geo.kinds import ALL_KINDS
from zeren.geo.lifecircle import DEFAULT_SPEED_KMH
from zeren.layers.errors import ConflictError, ValidationError

router = APIRouter(prefix="/life-circles", tags=["life circles"], route_class=StrictJSONRoute)

MAX_MINUTES = 60.0
MAX_SPEED_KMH = 30.0
MAX_RADIUS_M = 10_000.0


# -- request and answers -------------------------------------------------------------------------
class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ClipZone(_In):
    kind: Literal[ALL_KINDS] = Field(description="Kind of the stored zone.", examples=["district"])  # type: ignore
    code: str = Field(min_length=1, max_length=100, description="Its code.", examples=["510105"])


Minutes = Annotated[float, Field(gt=0, le=MAX_MINUTES)]

EXAMPLE = {
    "centres": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "KZ", "name": "宽窄巷子社区"},
         "geometry": {"type": "Point", "coordinates": [DEMO_LON, DEMO_LAT]}},
        {"type": "Feature", "properties": {"code": "RM", "name": "人民公园社区"},
         "geometry": {"type": "Point", "coordinates": [104.0610, 30.6590]}}]},
    "minutes": 15,
    "clip": {"kind": "district", "code": "510105"},
}


class GenerateIn(_In):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True,
                              json_schema_extra={"examples": [EXAMPLE]})

    centres: dict[str, Any] = Field(
        json_schema_extra={"required": ["type", "features"],
                           "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}}},
        description="Centre points as a GeoJSON FeatureCollection (coordinates in the `crs` parameter, default "
                    "WGS84 lon/lat). Each feature's `properties.code` (else its `id`) and `properties.name` "
                    "name its circle.")
    minutes: Minutes | Annotated[list[Minutes], Field(min_length=1, max_length=6)] = Field(
        15.0, description=f"Walking minutes, one value or several (each > 0 and at most {MAX_MINUTES:g}; at most "
                          f"6). Without a network and without `radius_m` only 5, 10 and 15 have a standard radius.",
        examples=[15])
    speed_kmh: float = Field(DEFAULT_SPEED_KMH, gt=0, le=MAX_SPEED_KMH,
                             description="Walking speed (km/h) along the network (default 4.5).")
    radius_m: float | None = Field(None, gt=0, le=MAX_RADIUS_M,
                                   description="A straight-line radius in metres instead of the GB 50180-2018 "
                                               "one (used even when a network is configured; one value of "
                                               "`minutes` only).")
    clip: ClipZone | None = Field(None, description="Cut the circles to this stored zone (in force on `as_of`).")


class CircleCollection(_Out):
    type: Literal["FeatureCollection"]
    provenance: dict = Field(description="How the circles were made: method, standard, radii or walking speed, "
                                         "network file, clip zone, as_of.")
    skipped: list[dict] = Field(description="Centres that got no circle, with why (e.g. too far from any street).")
    features: list[dict] = Field(description="One circle per centre and value of minutes; properties kind, code, "
                                             "name, centre_code, method, method_label, minutes, speed_kmh, walk_m, "
                                             "radius_m, buffer_m, snap_m, centre_lon, centre_lat, area_km2, "
                                             "standard, clip_kind, clip_code.")


class CheckCollection(_Out):
    type: Literal["FeatureCollection"]
    as_of: str
    summary: dict = Field(description="Circles complete and lacking each service, POIs used, distance method.")
    planners: dict = Field(description="Circles with and without a planner.")
    categories: list[dict]
    features: list[dict] = Field(description="Each stored life circle: counts and nearest distance per category, "
                                             "missing services, score, complete; and has_planner, via, planner_id, "
                                             "planner_name, base_code.")


# -- configured files, read once per process ----------------------------------------------------
_FILES: dict = {}
_FILES_LOCK = threading.Lock()


def _cached(what: str, path: str, load):
    """``load(path)`` once per (file, size, mtime)."""
    stat = os.stat(path)
    key = (what, os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    with _FILES_LOCK:  # one reader at a time: a network is built once, not once per waiting request
        if key not in _FILES:
            for old in [k for k in _FILES if k[0] == what]:
                del _FILES[old]
            _FILES[key] = load(path)
        return _FILES[key]


def _configured(path: str | None, var: str, load, what: str):
    if path is None:
        return None
    name = FilePath(path).name  # the public message names the file, not the server's folders
    try:
        return _cached(var, path, load)
    except (OSError, ValueError) as exc:  # InputFileError, GeoInputError are ValueErrors
        text = str(exc).replace(str(path), name)
        raise ConflictError(f"the {what} configured by {var} ({name}) cannot be used: {text}; the administrator "
                            f"should fix the file or the setting") from None


def _network(settings):
    from zeren.geo.lifecircle import build_network
    from zeren.layers.network import read_network

    return _configured(settings.network_file, "ZEREN_NETWORK_FILE", lambda p: build_network(read_network(p)),
                       "walking network")


def _pois(settings):
    from zeren.layers.facilities import read_pois

    return _configured(settings.pois_file, "ZEREN_POIS_FILE", read_pois, "facility (POI) file")


# -- generate ------------------------------------------------------------------------------------
def read_centres(data: dict, crs_text: str, bounds, max_features: int) -> gpd.GeoDataFrame:
    """The centre points of a GeoJSON FeatureCollection (or one Feature) in WGS84, with code and name."""
    kind = data.get("type")
    if kind == "Feature":
        features = [data]
    elif kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise GeoJSONError("centres: a FeatureCollection needs 'features': an array of Feature objects")
    else:
        raise GeoJSONError(f"centres: 'type' is {str(kind)[:40]!r}; send a GeoJSON FeatureCollection of points")
    if not features:
        raise GeoJSONError("centres: the FeatureCollection has no features; send at least one point")
    if len(features) > max_features:
        raise TooManyFeatures(f"{len(features):,} centres is over the cap of {max_features:,} per request; "
                              f"send them in batches of {max_features:,}")
    geoms, rows, problems = [], [], []
    for i, f in enumerate(features):
        where = f"centres: feature {i}"
        if not isinstance(f, dict) or f.get("type") != "Feature":
            problems.append(f"{where}: not a GeoJSON Feature (an object with \"type\": \"Feature\")")
            continue
        props = f.get("properties")
        if props is not None and not isinstance(props, dict):
            problems.append(f"{where}: 'properties' must be an object or null")
            continue
        props = props or {}
        g = f.get("geometry")
        if not isinstance(g, dict) or g.get("type") != "Point":
            got = ("no geometry" if g is None else f"a {str(g.get('type'))[:40]}" if isinstance(g, dict)
                   else "not a geometry")
            problems.append(f"{where}: a centre must be a Point, got {got}; give the community centre as a point")
            continue
        try:
            geoms.append(geometry_from_geojson(g, f"{where}, geometry"))
        except GeoJSONError as exc:
            problems.append(str(exc))
            continue
        code = props.get("code", f.get("id"))
        name = props.get("name")
        rows.append({"code": None if code is None else str(code)[:100],
                     "name": None if name is None else str(name)[:200], "_i": i})
    if problems:
        raise ValidationError(f"{len(problems)} of {len(features)} centres cannot be used", problems)
    points = np.array(geoms, dtype=object)
    wgs, found = sites_to_wgs84(points, parse_input_crs(crs_text), bounds,
                          [f"centres: feature {r['_i']}, geometry" for r in rows])
    bad = [p for p in found if p is not None]
    if bad:
        raise ValidationError(f"{len(bad)} of {len(features)} centres cannot be used", bad)
    table = pd.DataFrame(rows).drop(columns="_i")
    if table["code"].isna().all():
        table = table.drop(columns="code")
    elif table["code"].isna().any():
        missing = [f"centres: feature {i}: no properties.code or id (give every centre one, or none)"
                   for i, c in zip(range(len(rows)), table["code"]) if c is None]
        raise ValidationError("some centres have a code and some do not", missing)
    return gpd.GeoDataFrame(table, geometry=list(wgs), crs="EPSG:4326")


def generate_circles(workspace, settings, body: GenerateIn, crs_text: str, day) -> str:
    centres = read_centres(body.centres, crs_text, workspace.catalogue.index.bounds, settings.max_features)
    clip_ref = None if body.clip is None else {"kind": body.clip.kind, "code": body.clip.code}
    clip = None if body.clip is None else service.clip_zone(workspace, body.clip.kind, body.clip.code, day)
    network = None if body.radius_m is not None else _network(settings)
    made = service.generate(centres, network=network, network_name=service.file_name(settings.network_file),
                            minutes=body.minutes, speed_kmh=body.speed_kmh, radius_m=body.radius_m, clip=clip,
                            clip_ref=clip_ref, as_of=day)
    props = records(pd.DataFrame(made.circles.drop(columns="geometry")))
    features = [f'{{"type":"Feature","id":{dumps(p["code"])},"geometry":{g},"properties":{dumps(p)}}}'
                for g, p in zip(geojson_texts(made.circles.geometry.to_numpy()), props)]
    head = dumps({"type": "FeatureCollection", "provenance": made.provenance, "skipped": records(made.skipped)})
    return head[:-1] + ',"features":[' + ",".join(features) + "]}"


def generate_job(workspace, body: bytes, deadline, *, settings, crs: str, as_of) -> bytes:
    """``POST /life-circles/generate`` as a batch job (up to ``ZEREN_MAX_FEATURES`` centres, network walks):
    run in a batch worker process, which reads the walking network once and keeps it."""
    text = generate_circles(workspace, settings, GenerateIn.model_validate_json(body), crs, as_of)
    deadline.check()
    return text.encode("utf-8")


@router.post("/generate", response_class=GeoJSONResponse, response_model=CircleCollection,
             responses=errors(400, 404, 409, 413, 422),
             summary="Make 15-minute life circles around centre points (GeoJSON)",
             description="One circle per centre and value of `minutes`. Without a configured walking network "
                         "(`ZEREN_NETWORK_FILE`) the circles are straight-line discs of the GB 50180-2018 radius "
                         "(5/10/15 min: 300/500/1000 m); with one, the streets reachable on foot, buffered. "
                         "Every circle says how it was made (`method`, `standard`, `radius_m`/`walk_m`...). "
                         "`clip` cuts them to a stored zone.")
async def generate(
    request: Request, body: GenerateIn,
    crs: Annotated[str, Query(max_length=2000, examples=["wgs84"],
                              description="CRS of the centres: `wgs84` (default), `cgcs2000`, `gcj02`, `bd09` or "
                                          "`EPSG:n`.")] = "wgs84",
    as_of: Annotated[str | None, Query(max_length=40, description="Date of the `clip` zone's edition, YYYY-MM-DD "
                                                                  "(default today).",
                                       examples=["2025-06-30"], json_schema_extra={"format": "date"})] = None,
) -> Response:
    zs = request.app.state.zeren
    params = {"settings": zs.settings, "crs": crs, "as_of": parse_as_of(as_of)}
    # the body was checked here (its schema); the work, CRS included, runs in a batch worker (ZEREN_BATCH_WORKERS)
    answer, encoding = await run_batch(request, generate_job, body.model_dump_json().encode("utf-8"), params)
    headers = {"Content-Encoding": encoding, "Vary": "Accept-Encoding"} if encoding else None
    return Response(answer, media_type="application/geo+json", headers=headers)


# -- check ---------------------------------------------------------------------------------------
def check_circles(workspace, settings, day) -> str:
    if settings.pois_file is None:
        raise ConflictError("the life-circle check needs facilities: the administrator sets ZEREN_POIS_FILE to "
                            "an OSM .osm/.pbf extract or a file of points with a `category` column (categories "
                            "of data/facility_categories.csv), then restarts the server")
    checked_in = service.check_stored(workspace, _pois(settings), network=_network(settings), as_of=day)
    result, planners, names = checked_in.result, checked_in.planners, checked_in.planner_names
    who = planners.set_index("code")
    checked = result.circles.reset_index(drop=True)
    props = records(pd.DataFrame(checked.drop(columns="geometry")))
    for p in props:
        row = who.loc[p["code"]] if p["code"] in who.index else None
        pid = None if row is None else jsonable(row["planner_id"])
        p.update({"has_planner": bool(row is not None and row["has_planner"]),
                  "via": None if row is None else row["via"], "planner_id": pid,
                  "planner_name": None if pid is None else jsonable(names.get(pid)),
                  "base_code": None if row is None else jsonable(row["base_code"])})
    covered = int(planners["has_planner"].sum())
    members = {
        "as_of": checked_in.as_of.isoformat(),
        "pois_file": service.file_name(settings.pois_file),
        "network_file": service.file_name(settings.network_file),
        "summary": jsonable(result.summary),
        "planners": {"circles": int(len(planners)), "with_planner": covered,
                     "without_planner": int(len(planners) - covered),
                     "without_planner_codes": sorted(planners.loc[~planners["has_planner"], "code"].astype(str))},
        "categories": records(result.categories),
    }
    features = [f'{{"type":"Feature","id":{dumps(p["code"])},"geometry":{g},"properties":{dumps(p)}}}'
                for g, p in zip(geojson_texts(checked.geometry.to_numpy()), props)]
    head = dumps({"type": "FeatureCollection", **members})
    return head[:-1] + ',"features":[' + ",".join(features) + "]}"


@router.get("/check", response_class=GeoJSONResponse, response_model=CheckCollection,
            responses=errors(404, 409, 422),
            summary="Health check (体检) of the stored life circles: daily services present and missing, and "
                    "which planner covers each",
            description="For each stored `life_circle` zone in force: how many facilities of each category it "
                        "holds, the distance from its centre to the nearest of each, the required services it "
                        "lacks and a score; and the planner who covers it (its own lead, else the lead of the "
                        "subdistrict it shares most area with). Facilities come from `ZEREN_POIS_FILE` (409 when "
                        "none is configured); distances are along `ZEREN_NETWORK_FILE` when set, else "
                        "straight-line.")
def check(
    request: Request,
    as_of: Annotated[str | None, Query(max_length=40, description="Date, YYYY-MM-DD (default today).",
                                       examples=["2025-06-30"], json_schema_extra={"format": "date"})] = None,
) -> Response:
    zs = request.app.state.zeren
    text = check_circles(zs.workspace, zs.settings, parse_as_of(as_of))
    return Response(text.encode("utf-8"), media_type="application/geo+json")


__all__ = ["router", "read_centres", "generate_circles", "check_circles"]
