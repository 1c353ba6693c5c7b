"""Coverage: is every unit covered by a responsible planner, once? The HTTP doors of ``zeren gaps |
overlaps | coverage | workload``: the same parameters, the same computation (:mod:`geo.coverage`) on the
loaded store, the same figures (the JSON of ``zeren coverage --json`` and ``zeren workload --json``).

Bad input (an unknown kind or code, a date outside every edition of the layer) is a 422 that says what to
do; reads are public.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from zeren.api.service import coverage as service
from zeren.api.service.coverage import summary_json, workload_json
from zeren.api.jsonable import jsonable, records
from zeren.api.http.deps import parse_as_of
from zeren.api.http.models import errors
from zeren.api.http.routers._geojson import GeoJSONResponse, dumps, geojson_texts
from zeren.geo import coverage
from zeren.geo.kinds import ALL_KINDS

router = APIRouter(prefix="/coverage", tags=["coverage"])


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class GapsCollection(_Out):
    type: Literal["FeatureCollection"]
    kind: str
    within: str | None = None
    as_of: str
    nothing_to_cover: bool
    message: str | None = None
    totals: dict = Field(description="units_total, units_with_lead, units_without_planner, territory_area_m2, "
                                     "covered_area_m2, gap_area_m2, covered_pct, gap_polygons, small_slivers, "
                                     "small_slivers_area_m2, sliver_m2, territory_kind, territory_codes, "
                                     "union_method.")
    units_without_planner: list[dict] = Field(description="code, name, district_code, district_name, area_m2, "
                                                          "population of each unit without a lead planner.")
    invalid: list[dict] = Field(description="Geometries repaired or ignored: kind, code, problem.")
    features: list[dict] = Field(description="Gap polygons; properties gap_id, reason (unit_without_planner, "
                                             "sliver, outside_units), reason_zh, reason_en, area_m2, width_m, "
                                             "district_codes, unit_codes.")


class OverlapsCollection(_Out):
    type: Literal["FeatureCollection"]
    kind: str
    as_of: str
    nothing_to_cover: bool
    message: str | None = None
    totals: dict = Field(description="zones_checked, overlaps, overlap_area_m2, conflicts, tolerance_m2, method.")
    conflicts: list[dict] = Field(description="Zones with two lead planners at once: zone_kind, zone_code, "
                                              "planner_a, planner_b, their appointments and the overlap dates.")
    invalid: list[dict]
    features: list[dict] = Field(description="Overlap pieces; properties code_a, name_a, code_b, name_b, area_m2, "
                                             "share_a_pct, share_b_pct.")


class SummaryTable(_Out):
    kind: str
    by: str
    as_of: str
    message: str | None = None
    rows: list[dict] = Field(description="One row per parent unit: code, name, units_total, units_with_lead, "
                                         "units_with_lead_pct, area_m2, covered_area_m2, area_covered_pct, "
                                         "population, population_covered, population_covered_pct, "
                                         "life_circles_total, life_circles_with_planner, "
                                         "life_circles_with_planner_pct.")
    totals: dict = Field(description="The same figures for the whole city.")


class Workload(_Out):
    as_of: str
    planners: list[dict] = Field(description="planner_id, name, zones_lead, zones_member, zones_consultant, "
                                             "lead_area_km2, lead_population, projects_open, projects_total.")
    imbalance: dict = Field(description="weight, planners, max_to_median, gini, most_loaded, least_loaded.")
    unmatched_appointments: list[dict]


# -- parameters (the CLI's, with the same defaults) ----------------------------------------------
Kind = Annotated[Literal[ALL_KINDS], Query(  # type: ignore[valid-type]
    description=f"Unit kind: {', '.join(ALL_KINDS)} (default subdistrict).", examples=["subdistrict"])]
Within = Annotated[str | None, Query(max_length=100, examples=["510105"],
                                     description="Only this unit: a district or subdistrict code (default the "
                                                 "whole city).")]
AsOf = Annotated[str | None, Query(max_length=40, description="Date, YYYY-MM-DD (default today).",
                                   examples=["2025-06-30"], json_schema_extra={"format": "date"})]


def _ws(request: Request):
    return request.app.state.zeren.workspace


def _geo_answer(text: str) -> Response:
    return Response(text.encode("utf-8"), media_type="application/geo+json")


def _number(value) -> float | None:
    """A finite float, or None (NaN and infinities are not JSON)."""
    return jsonable(float(value))


def _features(frame, id_column: str | None, props: list[dict]) -> str:
    texts = geojson_texts(frame.geometry.to_numpy())
    ids = frame[id_column].tolist() if id_column else list(range(1, len(frame) + 1))
    return ",".join(f'{{"type":"Feature","id":{dumps(jsonable(i))},"geometry":{g},"properties":{dumps(p)}}}'
                    for i, g, p in zip(ids, texts, props))


def _collection(members: dict, features: str) -> str:
    head = dumps({"type": "FeatureCollection", **members})
    return head[:-1] + ',"features":[' + features + "]}"


def gaps_answer(result: coverage.GapsResult) -> str:
    """The GeoJSON text of ``GET /coverage/gaps``."""
    gaps = result.gaps
    props = records(pd.DataFrame(gaps.drop(columns="geometry")))
    for p in props:
        zh, en = coverage.REASON_LABELS.get(p.get("reason"), (None, None))
        p["reason_zh"], p["reason_en"] = zh, en
    units = pd.DataFrame(result.units_without_planner.drop(columns="geometry"))
    totals = {
        "units_total": int(result.units_total), "units_with_lead": int(result.units_with_lead),
        "units_without_planner": int(len(units)), "territory_area_m2": _number(result.territory_area_m2),
        "covered_area_m2": _number(result.covered_area_m2), "gap_area_m2": _number(result.gap_area_m2),
        "covered_pct": _number(result.covered_pct), "gap_polygons": int(len(gaps)),
        "small_slivers": int(result.small_slivers), "small_slivers_area_m2": _number(result.small_slivers_area_m2),
        "sliver_m2": _number(result.sliver_m2), "territory_kind": result.territory_kind,
        "territory_codes": list(result.territory_codes), "union_method": result.union_method,
    }
    members = {"kind": result.kind, "within": result.within, "as_of": result.as_of.date().isoformat(),
               "nothing_to_cover": bool(result.nothing_to_cover), "message": result.message or None,
               "totals": totals, "units_without_planner": records(units), "invalid": records(result.invalid)}
    return _collection(members, _features(gaps, "gap_id", props))


def overlaps_answer(result: coverage.OverlapsResult) -> str:
    """The GeoJSON text of ``GET /coverage/overlaps``."""
    over = result.overlaps
    props = records(pd.DataFrame(over.drop(columns="geometry")))
    totals = {"zones_checked": int(result.zones_checked), "overlaps": int(len(over)),
              "overlap_area_m2": _number(float(np.sum(over["area_m2"].to_numpy(float))) if len(over) else 0.0),
              "conflicts": int(len(result.conflicts)), "tolerance_m2": _number(result.tolerance_m2),
              "method": result.method}
    members = {"kind": result.kind, "as_of": result.as_of.date().isoformat(),
               "nothing_to_cover": bool(result.nothing_to_cover), "message": result.message or None,
               "totals": totals, "conflicts": records(result.conflicts), "invalid": records(result.invalid)}
    return _collection(members, _features(over, None, props))


# -- the endpoints -------------------------------------------------------------------------------
@router.get("/gaps", response_class=GeoJSONResponse, response_model=GapsCollection,
            responses=errors(404, 422),
            summary="Units without a lead planner, and the uncovered ground (GeoJSON)",
            description="The answer of `zeren gaps`: the gap polygons as a FeatureCollection (each cluster of "
                        "adjacent units without a lead, each sliver between units and the ground outside every "
                        "unit), the `units_without_planner` and the `totals` (units, areas in m², covered %). "
                        "Bare pieces smaller than `sliver_m2` are counted in the totals, not drawn.")
def gaps(
    request: Request, kind: Kind = "subdistrict", within: Within = None, as_of: AsOf = None,
    sliver_m2: Annotated[float, Query(ge=0, le=1e12, allow_inf_nan=False, examples=[1000.0],
                                      description="Bare ground pieces smaller than this many m² are counted, "
                                                  "not returned (default 1000).")] = 1000.0,
) -> Response:
    result = service.gaps(_ws(request), kind=kind, within=within or None, as_of=parse_as_of(as_of),
                          sliver_m2=sliver_m2)
    return _geo_answer(gaps_answer(result))


@router.get("/overlaps", response_class=GeoJSONResponse, response_model=OverlapsCollection,
            responses=errors(422),
            summary="Overlapping units of one kind, and zones with two lead planners at once (GeoJSON)",
            description="The answer of `zeren overlaps`: the overlap pieces of pairs of `kind` zones in force "
                        "(over `tolerance_m2`) as a FeatureCollection, and the `conflicts`: zones of that kind "
                        "with two lead appointments active at the same time.")
def overlaps(
    request: Request, kind: Kind = "subdistrict", as_of: AsOf = None,
    tolerance_m2: Annotated[float, Query(ge=0, le=1e12, allow_inf_nan=False, examples=[1.0],
                                         description="Ignore overlaps up to this many m² (default 1).")] = 1.0,
) -> Response:
    result = service.overlaps(_ws(request), kind=kind, as_of=parse_as_of(as_of), tolerance_m2=tolerance_m2)
    return _geo_answer(overlaps_answer(result))


@router.get("/summary", response_model=SummaryTable, responses=errors(422),
            summary="Coverage per district: units with a lead, area, population and life circles covered",
            description="The answer of `zeren coverage --json`: one row per `by` unit (district by default) and "
                        "the totals for the city.")
def summary(
    request: Request, kind: Kind = "subdistrict",
    by: Annotated[Literal[ALL_KINDS], Query(  # type: ignore[valid-type]
        description="Parent kind of the rows (default district).", examples=["district"])] = "district",
    as_of: AsOf = None,
) -> dict[str, Any]:
    result = service.summary(_ws(request), kind=kind, by=by, as_of=parse_as_of(as_of))
    return summary_json(result)


@router.get("/workload", response_model=Workload, responses=errors(422),
            summary="Zones, area, population and projects per planner, and how unevenly the work is spread",
            description="The answer of `zeren workload --json`: per planner the zones they lead, are member of "
                        "or consult on, the area and population they lead, their open and total projects; and "
                        "the imbalance (max/median and Gini) of the chosen `weight`.")
def workload(
    request: Request, as_of: AsOf = None,
    weight: Annotated[Literal[tuple(coverage.WEIGHTS)], Query(  # type: ignore[valid-type]
        description=f"What the imbalance figures weigh: {', '.join(coverage.WEIGHTS)} (default area).",
        examples=["area"])] = "area",
) -> dict[str, Any]:
    result = service.workload(_ws(request), as_of=parse_as_of(as_of), weight=weight)
    return workload_json(result)


__all__ = ["router", "gaps_answer", "overlaps_answer"]
