"""Coverage analysis of the responsible-planner system: which units lack a planner, where the uncovered
ground is, where zones or appointments collide, and how evenly the work is spread.

Pure functions over the frames of layers/CONTRACT.md; results are dataclasses of (Geo)DataFrames with
unit-bearing column names (``area_m2``, ``area_km2``, ``*_pct``), sorted by code. Areas are measured in
the metric CRS of the data (geo.crs.metric_crs); geometries stay EPSG:4326. Zone editions and
appointments are taken as of a date, start inclusive and end exclusive (geo.validity).
"""
from zeren.geo.coverage.gaps import REASON_LABELS, REASONS, GapsResult, coverage_gaps
from zeren.geo.coverage.overlaps import OverlapsResult, find_overlaps, lead_conflicts
from zeren.geo.coverage.summary import CoverageSummary, coverage_summary, life_circle_planners
from zeren.geo.coverage.workload import WEIGHTS, Imbalance, WorkloadResult, gini, imbalance, planner_workload

__all__ = [
    "GapsResult", "coverage_gaps", "REASONS", "REASON_LABELS",
    "OverlapsResult", "find_overlaps", "lead_conflicts",
    "CoverageSummary", "coverage_summary", "life_circle_planners",
    "WorkloadResult", "Imbalance", "planner_workload", "imbalance", "gini", "WEIGHTS",
]
