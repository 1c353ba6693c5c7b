"""coverage_summary per district, and the life-circle rule."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from zeren.geo.errors import GeoInputError
import shapely
from pyproj import Transformer

from zeren.geo.coverage import coverage_summary, life_circle_planners
from tests.coverage.conftest import AS_OF, UTM, lead_appointments, reference_gap, to_utm


def _geoms(frame):
    return np.asarray(frame.geometry.array, dtype=object)


def circles_frame(centres, radius_m=1500.0):
    """Life circles as discs around lon/lat centres: [(code, lon, lat)]."""
    to_m = Transformer.from_crs(4326, UTM, always_xy=True)
    back = Transformer.from_crs(UTM, 4326, always_xy=True)
    x, y = to_m.transform([c[1] for c in centres], [c[2] for c in centres])
    discs = shapely.buffer(shapely.points(x, y), radius_m)
    geoms = shapely.transform(discs, lambda xy: np.column_stack(back.transform(xy[:, 0], xy[:, 1])))
    n = len(centres)
    return gpd.GeoDataFrame({
        "kind": "life_circle", "code": [c[0] for c in centres], "name": [f"生活圈 {c[0]}" for c in centres],
        "name_en": None, "parent_code": None, "edition": 2024, "valid_from": pd.Timestamp("2024-01-01"),
        "valid_to": pd.NaT, "population": pd.array([pd.NA] * n, dtype="Int64"), "attrs": [{}] * n,
    }, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)


@pytest.fixture(scope="module")
def circle_setup(zones, subdistricts, led_codes):
    """Three life circles: in a led subdistrict, in an unled one, in an unled one with its own lead."""
    unled = sorted(set(subdistricts["code"]) - set(led_codes))
    inner = {c: shapely.point_on_surface(g) for c, g in zip(subdistricts["code"], _geoms(subdistricts))}
    picks = [("LC-1", led_codes[5]), ("LC-2", unled[0]), ("LC-3", unled[1])]
    circles = circles_frame([(code, inner[s].x, inner[s].y) for code, s in picks], radius_m=300.0)
    apps = lead_appointments(led_codes)
    own = lead_appointments(["LC-3"], kind="life_circle", first_id=5000)
    own["planner_id"] = "PLC"
    return pd.concat([zones, circles], ignore_index=True), pd.concat([apps, own], ignore_index=True), picks


def test_life_circle_rule(circle_setup):
    zones, apps, picks = circle_setup
    frame = life_circle_planners(zones, apps, as_of=AS_OF)
    assert frame["code"].tolist() == ["LC-1", "LC-2", "LC-3"]
    assert frame["base_code"].tolist() == [p[1] for p in picks]
    assert frame["via"].tolist() == ["base_zone", "none", "own_lead"]
    assert frame["has_planner"].tolist() == [True, False, True]
    assert frame["planner_id"].iloc[2] == "PLC" and frame["planner_id"].iloc[0].startswith("P")
    assert frame["planner_id"].iloc[1] is None


def test_summary_per_district(zones, appointments, districts, subdistricts, led_codes):
    result = coverage_summary(zones, appointments, as_of=AS_OF)
    table = result.table.set_index("code")
    assert table.index.tolist() == sorted(districts["code"].astype(str))
    sub = subdistricts.assign(led=subdistricts["code"].isin(led_codes))
    counts = sub.groupby("parent_code").agg(total=("code", "size"), led=("led", "sum"))
    assert (table["units_total"] == counts["total"].reindex(table.index)).all()
    assert (table["units_with_lead"] == counts["led"].reindex(table.index)).all()
    pop = sub.groupby("parent_code")["population"].sum()
    pop_led = sub[sub["led"]].groupby("parent_code")["population"].sum().reindex(table.index, fill_value=0)
    assert (table["population"].astype("int64") == pop.reindex(table.index)).all()
    assert (table["population_covered"].astype("int64") == pop_led).all()
    np.testing.assert_allclose(table["population_covered_pct"], 100 * pop_led / pop.reindex(table.index))
    # area covered against plain shapely, district by district
    for code in ("510104", "510121", "510185"):
        d = districts[districts["code"] == code]
        led = sub[(sub["parent_code"] == code) & sub["led"]]
        area = to_utm(_geoms(d))[0].area
        gap = reference_gap(_geoms(d), _geoms(led)).area
        assert table.loc[code, "area_m2"] == pytest.approx(area, rel=1e-6)
        assert table.loc[code, "area_covered_pct"] == pytest.approx(100 * (area - gap) / area, abs=0.05)
    totals = result.totals
    assert totals["units_total"] == len(subdistricts) and totals["units_with_lead"] == len(led_codes)
    assert totals["population"] == int(subdistricts["population"].sum())
    assert totals["life_circles_total"] == 0 and totals["life_circles_with_planner_pct"] is None


def test_summary_counts_life_circles(circle_setup):
    zones, apps, picks = circle_setup
    result = coverage_summary(zones, apps, as_of=AS_OF)
    table = result.table.set_index("code")
    for (circle, sub), has in zip(picks, (True, False, True)):
        assert table.loc[sub[:6], "life_circles_total"] >= 1
    assert result.totals["life_circles_total"] == 3 and result.totals["life_circles_with_planner"] == 2
    assert result.life_circles["parent_code"].tolist() == [p[1][:6] for p in picks]


def test_summary_by_subdistrict(zones, appointments, subdistricts, led_codes):
    result = coverage_summary(zones, appointments, kind="subdistrict", by="subdistrict", as_of=AS_OF)
    table = result.table.set_index("code")
    assert len(table) == len(subdistricts)
    assert (table["units_total"] == 1).all()
    assert set(table.index[table["units_with_lead"] == 1]) == set(led_codes)
    led_pct = table.loc[led_codes, "area_covered_pct"]
    assert (led_pct > 99.99).all()


def test_summary_by_a_finer_kind_is_refused_clearly(zones, appointments):
    with pytest.raises(GeoInputError, match="not a parent kind of district"):
        coverage_summary(zones, appointments, kind="district", by="subdistrict", as_of=AS_OF)
