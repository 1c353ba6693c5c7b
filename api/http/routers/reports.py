"""The annual evaluation (年度考核): ``GET /reports/planners/{id}?year=`` and ``GET /reports/city?year=``, a
printable HTML page set (the same as ``zeren report ... --out FILE.html``; print it or save it as PDF from the
browser), or the figures as JSON (``format=json``). Public reads, like the coverage reports."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from zeren.api.http.models import errors
from zeren.api.http.routers._geojson import dumps
from zeren.api.http.routers.maps import HTML_ANSWER, html_errors
from zeren.api.service import reports as service

router = APIRouter(tags=["reports"])

YearQuery = Annotated[int, Query(ge=service.FIRST_YEAR, le=service.LAST_YEAR, description="The year, e.g. 2025.",
                                 examples=[2025])]
FormatQuery = Annotated[Literal["html", "json"], Query(description="html (printable page set) or json.",
                                                        examples=["html"])]
REPORT_ANSWER = {200: {"content": {"text/html": {"schema": {"type": "string"}}, "application/json": {}},
                       "description": HTML_ANSWER[200]["description"].replace("(Leaflet)", "(print-ready, A4)")
                       + " With `format=json`: the figures."}}


def _answer(request: Request, report: dict, fmt: str) -> Response:
    if fmt == "json":
        return Response(dumps(service.report_json(report)).encode("utf-8"), media_type="application/json")
    page = service.report_html(request.app.state.zeren.workspace, report)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


@router.get("/reports/planners/{planner_id}", response_class=HTMLResponse,
            responses={**REPORT_ANSWER, **html_errors(404, 422), **errors(503)},
            summary="A planner's annual evaluation: territory, projects, feedback, gaps, city percentiles",
            description="The planner's year on one printable page set: the territory map and facts (zones, "
                        "area, population, life circles) on 31 December, projects by workflow stage with the "
                        "days each stage took, consultations given, feedback received / answered / median "
                        "response time / mean rating, discipline gaps, and each figure's percentile among the "
                        "city's planners. A year with no data answers an empty report that says so.")
def planner_report(request: Request, year: YearQuery,
                   planner_id: Annotated[str, Path(max_length=64, description="The planner's id.",
                                                   examples=["P006"])],
                   format: FormatQuery = "html") -> Response:
    report = service.planner_report(request.app.state.zeren.workspace, planner_id, year)
    return _answer(request, report, format)


@router.get("/reports/city", response_class=HTMLResponse,
            responses={**REPORT_ANSWER, **html_errors(422), **errors(503)},
            summary="The city's year: coverage, gaps closed and opened, workload Gini, feedback, district ranking",
            description="Coverage at the start and the end of the year (subdistricts and share of population "
                        "with a lead), the gaps closed and opened, workload imbalance (Gini), feedback per "
                        "10,000 residents per district and a district ranking like the monthly street/town "
                        "ranking.")
def city_report(request: Request, year: YearQuery, format: FormatQuery = "html") -> Response:
    return _answer(request, service.city_report(request.app.state.zeren.workspace, year), format)
