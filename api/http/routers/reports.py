"""The annual evaluation (年度考核): ``GET /reports/planners/{id}?year=``, ``GET /reports/teams/{id}?year=`` and
``GET /reports/city?year=``, a printable HTML page set (the same as ``zeren report ... --out FILE.html``), the
figures as JSON (``format=json``), or the same page set printed to PDF by headless Chromium (``format=pdf``, an
attachment; the path ``zeren report ... --format pdf`` takes). Public reads, like the coverage reports.

A PDF is printed in a worker thread (FastAPI runs these routes off the event loop), one print at a time per
worker process; a request waits its turn within ``ZEREN_REQUEST_TIMEOUT`` (then 503 with ``Retry-After``).
Without Chromium (``ZEREN_CHROMIUM``, else chromium in /usr/bin or on PATH) ``format=pdf`` answers 503 naming
what is missing."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from zeren.api.http.routers._geojson import dumps
from zeren.api.http.routers.maps import HTML_ANSWER, html_errors
from zeren.api.service import reports as service

router = APIRouter(tags=["reports"])

YearQuery = Annotated[int, Query(ge=service.FIRST_YEAR, le=service.LAST_YEAR, description="The year, e.g. 2025.",
                                 examples=[2025])]
FormatQuery = Annotated[Literal["html", "json", "pdf"], Query(
    description="html (printable page set), json (the figures) or pdf (the same page set printed by headless "
                "Chromium, as an attachment).", examples=["html"])]
REPORT_ANSWER = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}, "application/json": {},
                      "application/pdf": {"schema": {"type": "string", "format": "binary"}}},
          "description": HTML_ANSWER[200]["description"].replace("(Leaflet)", "(print-ready, A4)")
          + " With `format=json`: the figures. With `format=pdf`: the same pages as a PDF attachment "
            "(`Content-Disposition: attachment`)."},
    **html_errors(503),
}
REPORT_ANSWER[503] = {**REPORT_ANSWER[503], "description": "The store is unavailable, or (`format=pdf`) Chromium "
                      "is not installed, or the PDF could not be printed within the request deadline (then with "
                      "`Retry-After`)."}


def _answer(request: Request, report: dict, fmt: str) -> Response:
    ws = request.app.state.zeren.workspace
    if fmt == "json":
        return Response(dumps(service.report_json(report)).encode("utf-8"), media_type="application/json")
    if fmt == "pdf":
        settings = request.app.state.zeren.settings
        data = service.report_pdf(ws, report, chromium=settings.chromium, timeout=settings.request_timeout)
        name = service.report_filename(report)
        return Response(data, media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-cache"})
    page = service.report_html(ws, report)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


def _route(path: str, summary: str, description: str, codes: tuple[int, ...]) -> Callable:
    return router.get(path, response_class=HTMLResponse, responses={**REPORT_ANSWER, **html_errors(*codes)},
                      summary=summary, description=description)


@_route("/reports/planners/{planner_id}", "A planner's annual evaluation: territory, projects, feedback, gaps, "
        "city percentiles",
        "The planner's year on one printable page set: the territory map and facts (zones, area, population, "
        "life circles) on 31 December, projects by workflow stage with the days each stage took, consultations "
        "given, feedback received / answered / median response time / mean rating, discipline gaps, and each "
        "figure's percentile among the city's planners. A year with no data answers an empty report that says "
        "so. `format=pdf`: the same pages as a PDF.", (404, 422))
def planner_report(request: Request, year: YearQuery,
                   planner_id: Annotated[str, Path(max_length=64, description="The planner's id.",
                                                   examples=["P006"])],
                   format: FormatQuery = "html") -> Response:
    report = service.planner_report(request.app.state.zeren.workspace, planner_id, year)
    return _answer(request, report, format)


@_route("/reports/teams/{team_id}", "A team's annual evaluation: its territory, members and the planner "
        "report's figures",
        "The team's year with the planner report's figures over the team: its territory (the zones whose "
        "appointments in force during the year name the team, plus the zones where the team's lead is "
        "appointed, each marked with its basis), its members with discipline and role (负责人 / 成员 / 专家顾问), "
        "projects by stage, consultations, feedback, discipline gaps (team members counted) and each figure's "
        "percentile among the city's teams. A year with no data answers an empty report that says so. "
        "`format=pdf`: the same pages as a PDF.", (404, 422))
def team_report(request: Request, year: YearQuery,
                team_id: Annotated[str, Path(max_length=64, description="The team's id (`zeren teams`).",
                                             examples=["T14"])],
                format: FormatQuery = "html") -> Response:
    report = service.team_report(request.app.state.zeren.workspace, team_id, year)
    return _answer(request, report, format)


@_route("/reports/city", "The city's year: coverage, gaps closed and opened, workload Gini, feedback, district "
        "ranking",
        "Coverage at the start and the end of the year (subdistricts and share of population with a lead), the "
        "gaps closed and opened, workload imbalance (Gini), feedback per 10,000 residents per district and a "
        "district ranking like the monthly street/town ranking. `format=pdf`: the same pages as a PDF.", (422,))
def city_report(request: Request, year: YearQuery, format: FormatQuery = "html") -> Response:
    return _answer(request, service.city_report(request.app.state.zeren.workspace, year), format)
