"""circle_planners: the lead of each circle, by its own appointment or by the base zones under it."""
from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from zeren.geo.appointments import leads_as_of
from zeren.geo.lifecircle import circle_planners, life_circles, uncovered_circles
from tests.lifecircle.conftest import UTM50, X0, Y0


def _box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def _zones():
    rows = [
        ("district", "D1", _box(-5000, -5000, 5000, 5000)),
        ("subdistrict", "S1", _box(-5000, -5000, 0, 5000)),
        ("subdistrict", "S2", _box(0, -5000, 5000, 5000)),
        ("community", "C1", _box(-5000, -5000, -600, 5000)),  # most of circle W (x -1300..-300)
        ("community", "C2", _box(-600, -5000, 0, 5000)),  # the rest of it
    ]
    frame = gpd.GeoDataFrame({"kind": [r[0] for r in rows], "code": [r[1] for r in rows]},
                             geometry=[r[2] for r in rows], crs=UTM50).to_crs(4326)
    return frame


def _appointments(rows):
    return pd.DataFrame({
        "id": range(len(rows)), "planner_id": [r[0] for r in rows], "zone_kind": [r[1] for r in rows],
        "zone_code": [r[2] for r in rows], "role": [r[3] if len(r) > 3 else "lead" for r in rows],
        "start": pd.Timestamp("2024-01-01"), "end": pd.NaT})


def _circles():
    centres = gpd.GeoDataFrame({"code": ["W", "E", "OUT", "OWN"]},
                               geometry=[shapely.Point(X0 - 800, Y0), shapely.Point(X0 + 800, Y0),
                                         shapely.Point(X0 + 20000, Y0), shapely.Point(X0 - 800, Y0 + 3000)],
                               crs=UTM50)
    return life_circles(centres, minutes=10).circles  # 500 m discs


def test_own_appointment_overlap_and_uncovered():
    leads = leads_as_of(_appointments([
        ("p_c1", "community", "C1"), ("p_c2", "community", "C2"), ("p_s2", "subdistrict", "S2"),
        ("p_d1", "district", "D1"), ("p_own", "life_circle", "OWN"), ("p_m", "community", "C2", "member"),
    ]), "2025-01-01")
    out = circle_planners(_circles(), _zones(), leads).set_index("code")
    assert out.loc["OWN", "planner_id"] == "p_own" and out.loc["OWN", "via"] == "own appointment"
    assert out.loc["OWN", "share"] == 1.0
    # W lies in C1 (most) and C2: the community with the larger overlap wins over the district.
    assert out.loc["W", "planner_id"] == "p_c1" and out.loc["W", "via"] == "base zone community C1"
    assert 0.6 < out.loc["W", "share"] < 0.9
    # Had only C2 a lead, W would go to C2 despite the smaller share: community beats district.
    only_c2 = leads[leads["zone_code"] != "C1"]
    w = circle_planners(_circles(), _zones(), only_c2).set_index("code").loc["W"]
    assert w["planner_id"] == "p_c2" and 0.1 < w["share"] < 0.4
    # E has no community lead beneath it: the subdistrict S2 (more specific than D1).
    assert out.loc["E", "planner_id"] == "p_s2" and out.loc["E", "zone_kind"] == "subdistrict"
    assert out.loc["E", "share"] == pytest.approx(1.0, abs=1e-3)
    assert not out.loc["OUT", "covered"] and out.loc["OUT", "planner_id"] is None
    assert uncovered_circles(out.reset_index())["code"].tolist() == ["OUT"]


def test_no_leads_at_all_and_ended_appointments():
    leads = leads_as_of(_appointments([("p_c1", "community", "C1")]).assign(end=pd.Timestamp("2024-06-01")),
                        "2025-01-01")
    out = circle_planners(_circles(), _zones(), leads)
    assert not out["covered"].any() and len(uncovered_circles(out)) == 4


def test_empty_circles():
    leads = leads_as_of(_appointments([("p", "district", "D1")]), "2025-01-01")
    assert circle_planners(_circles().iloc[:0], _zones(), leads).empty
