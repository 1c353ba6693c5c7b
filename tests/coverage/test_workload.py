"""planner_workload, imbalance and gini."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from zeren.geo.coverage import gini, imbalance, planner_workload
from zeren.geo.errors import GeoInputError
from tests.coverage.conftest import AS_OF, lead_appointments, to_utm


@pytest.fixture(scope="module")
def setup(subdistricts, led_codes):
    leads = lead_appointments(led_codes, planners=10)
    extra = pd.DataFrame({
        "id": [8001, 8002, 8003, 8004], "planner_id": ["P000", "P000", "P001", "P009"],
        "zone_kind": ["subdistrict", "subdistrict", "subdistrict", "district"],
        "zone_code": [led_codes[3], led_codes[4], led_codes[5], "510104"],
        "role": ["member", "consultant", "member", "lead"],
        "start": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-07-01", "2024-01-01"]),
        "end": pd.to_datetime([pd.NaT, "2024-06-01", pd.NaT, pd.NaT]),
    })
    projects = pd.DataFrame({
        "id": [1, 2, 3, 4],
        "status": ["survey", "feedback", "consultation", "implementation"],
        "created_at": ["2024-02-01T08:00:00+00:00", "2024-03-01T08:00:00+00:00", "2024-05-31T23:00:00+00:00",
                       "2024-06-02T00:00:00+00:00"],
        "lead_planner_id": ["P000", "P000", None, "P001"],
        "consultation_planner_ids": [["P001"], [], ["P000", "P002"], []],
    })
    planners = pd.DataFrame({"id": [f"P{i:03d}" for i in range(12)], "name": [f"规划师{i}" for i in range(12)]})
    return pd.concat([leads, extra], ignore_index=True), projects, planners


def test_workload_per_planner(zones, subdistricts, led_codes, setup):
    apps, projects, planners = setup
    result = planner_workload(zones, apps, projects, planners, as_of=AS_OF, weight="area")
    frame = result.planners.set_index("planner_id")
    assert frame.index.tolist() == [f"P{i:03d}" for i in range(12)]
    assert frame.loc["P010", "zones_lead"] == 0 and frame.loc["P010", "name"] == "规划师10"
    assert frame.loc["P000", "zones_member"] == 1
    assert frame.loc["P000", "zones_consultant"] == 0  # ended on the as-of date (end exclusive)
    assert frame.loc["P001", "zones_member"] == 0  # starts after the as-of date
    sub = subdistricts.set_index(subdistricts["code"].astype(str))
    for pid in ("P000", "P003"):
        codes = [c for i, c in enumerate(led_codes) if i % 10 == int(pid[1:])]
        assert frame.loc[pid, "zones_lead"] == len(codes)
        area = shapely.area(to_utm(np.asarray(sub.loc[codes].geometry.array, dtype=object))).sum() / 1e6
        assert frame.loc[pid, "lead_area_km2"] == pytest.approx(area, rel=1e-6)
        assert frame.loc[pid, "lead_population"] == sub.loc[codes, "population"].sum()
    # P009 also leads a district, which has no population: area counts, population stays the known sum
    assert frame.loc["P009", "zones_lead"] == len([c for i, c in enumerate(led_codes) if i % 10 == 9]) + 1
    # projects created by the end of the as-of day; open = not in "feedback"
    assert (frame.loc["P000", "projects_open"], frame.loc["P000", "projects_total"]) == (2, 3)
    assert (frame.loc["P001", "projects_open"], frame.loc["P001", "projects_total"]) == (1, 1)
    assert (frame.loc["P002", "projects_open"], frame.loc["P002", "projects_total"]) == (1, 1)
    assert result.unmatched.empty


def test_imbalance(zones, setup):
    apps, projects, planners = setup
    result = planner_workload(zones, apps, projects, planners, as_of=AS_OF, weight="zones")
    imb = result.imbalance
    leads = result.planners[result.planners["zones_lead"] > 0]
    assert imb.planners == len(leads) == 10  # P010, P011 lead nothing: not in the comparison
    assert imb.max == leads["zones_lead"].max()
    assert imb.max_to_median == pytest.approx(leads["zones_lead"].max() / leads["zones_lead"].median())
    assert imb.gini == pytest.approx(gini(leads["zones_lead"]))
    assert imb.most_loaded[0] == leads.sort_values(["zones_lead", "planner_id"], ascending=[False, True])[
        "planner_id"].iloc[0]
    for weight in ("area", "population", "projects"):
        assert planner_workload(zones, apps, projects, planners, as_of=AS_OF, weight=weight).imbalance.weight == weight
    with pytest.raises(GeoInputError, match="area, population, zones, projects"):
        planner_workload(zones, apps, as_of=AS_OF, weight="budget")


def test_gini_and_ratio_edge_cases():
    assert gini([3, 3, 3]) == 0.0
    assert gini([0, 0, 1]) == pytest.approx(2 / 3)
    assert gini([0, 0, 0]) == 0.0
    assert np.isnan(gini([]))
    frame = pd.DataFrame({"planner_id": ["a", "b", "c"], "zones_lead": [1, 1, 1],
                          "projects_open": [0, 0, 4], "lead_area_km2": [1.0, 2.0, 3.0],
                          "lead_population": pd.array([pd.NA, 5, 5], dtype="Int64")})
    imb = imbalance(frame, "projects", top=2)
    assert imb.max_to_median == float("inf")
    assert imb.most_loaded == ("c", "a") and imb.least_loaded == ("a", "b")
    assert imbalance(frame.iloc[:0], "area").planners == 0


def test_appointments_to_missing_zones_are_reported(zones, setup):
    apps, _, _ = setup
    ghost = lead_appointments(["510100999"], first_id=9999)
    result = planner_workload(zones, pd.concat([apps, ghost], ignore_index=True), as_of=AS_OF)
    assert result.unmatched["zone_code"].tolist() == ["510100999"]
