"""Coverage reports (``zeren gaps|overlaps|coverage|workload`` and ``GET /coverage/...``): is every unit
covered by a responsible planner, once? Computed by ``geo.coverage`` from the loaded store; both doors get
the same results, refuse the same dates (one on which no zone edition is in force), and render the same JSON.
"""
from __future__ import annotations

from zeren.api.jsonable import jsonable, records
from zeren.api.service.workspace import Workspace
from zeren.geo import coverage

WEIGHTS = coverage.WEIGHTS


def _inputs(ws: Workspace, as_of):
    catalogue = ws.catalogue
    catalogue.index.require_in_force(as_of)
    return catalogue.index.zones, catalogue.appointments


def gaps(ws: Workspace, *, kind: str = "subdistrict", within: str | None = None, as_of=None,
         sliver_m2: float = 1000.0) -> coverage.GapsResult:
    zones, appointments = _inputs(ws, as_of)
    return coverage.coverage_gaps(zones, appointments, kind=kind, within=within or None, as_of=as_of,
                                  sliver_m2=sliver_m2)


def overlaps(ws: Workspace, *, kind: str = "subdistrict", as_of=None, tolerance_m2: float = 1.0) -> coverage.OverlapsResult:
    zones, appointments = _inputs(ws, as_of)
    return coverage.find_overlaps(zones, appointments, kind=kind, as_of=as_of, tolerance_m2=tolerance_m2)


def summary(ws: Workspace, *, kind: str = "subdistrict", by: str = "district", as_of=None) -> coverage.CoverageSummary:
    zones, appointments = _inputs(ws, as_of)
    return coverage.coverage_summary(zones, appointments, kind=kind, by=by, as_of=as_of)


def workload(ws: Workspace, *, as_of=None, weight: str = "area") -> coverage.WorkloadResult:
    zones, appointments = _inputs(ws, as_of)
    return coverage.planner_workload(zones, appointments, ws.store.projects(), ws.catalogue.planners, as_of=as_of,
                                     weight=weight)


def summary_json(result: coverage.CoverageSummary) -> dict:
    return {"kind": result.kind, "by": result.by, "as_of": result.as_of.date().isoformat(),
            "message": result.message or None, "rows": records(result.table), "totals": jsonable(result.totals)}


def workload_json(result: coverage.WorkloadResult) -> dict:
    imb = result.imbalance
    return {"as_of": result.as_of.date().isoformat(), "planners": records(result.planners),
            "imbalance": jsonable({k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(imb).items()}),
            "unmatched_appointments": records(result.unmatched)}
