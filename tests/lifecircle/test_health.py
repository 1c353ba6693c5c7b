"""Life-circle health check (生活圈体检): counts, missing categories, distances, scores, unknown POIs."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from zeren.geo.lifecircle import LifeCircleError, health_check, life_circles, validate_categories
from tests.lifecircle.conftest import lines_utm, points_utm

CATS = pd.DataFrame({
    "category": ["school", "clinic", "park", "toilet"],
    "name_zh": ["中小学", "社区卫生服务", "公园绿地", "公共厕所"],
    "name_en": ["school", "clinic", "park", "toilet"],
    "required": ["yes", "yes", "yes", "no"],
    "max_distance_m": ["1000", "1000", "300", ""],
})


def _tiny():
    circles = life_circles(points_utm([(0, 0), (5000, 0)], code=["A", "B"], name=["甲", "乙"]), minutes=15).circles
    pois = points_utm(
        [(100, 0), (200, 0), (0, 900), (400, 0), (5000, 500), (700, 0), (0, 50), (30, 30), (9000, 0)],
        category=["school", "school", "clinic", "park", "school", None, "gym", "", "clinic"],
    )
    return circles, pois


def test_tiny_counts_missing_and_scores():
    circles, pois = _tiny()
    result = health_check(circles, pois, CATS)
    a, b = (result.circles.set_index("code").loc[c] for c in ("A", "B"))
    assert (a["n_school"], a["n_clinic"], a["n_park"], a["n_toilet"]) == (2, 1, 1, 0)
    assert (b["n_school"], b["n_clinic"], b["n_park"]) == (1, 0, 0)
    assert a["missing"] == "" and a["complete"] and a["score"] == 1.0  # toilet is not required
    assert b["missing"] == "clinic, park" and b["missing_zh"] == "社区卫生服务、公园绿地"
    assert b["score"] == pytest.approx(1 / 3) and not b["complete"]
    assert a["dist_school_m"] == pytest.approx(100, abs=0.1)
    assert a["dist_park_m"] == pytest.approx(400, abs=0.1)
    assert a["beyond_standard"] == "park"  # nearest park 400 m > 300 m
    assert b["dist_clinic_m"] == pytest.approx(4000, abs=0.1)  # outside the circle, still measured
    s = result.summary
    assert s["n_circles"] == 2 and s["n_complete"] == 1 and s["share_complete"] == 0.5
    assert s["pois_total"] == 9 and s["pois_used"] == 6
    assert s["pois_without_category"] == 2 and s["pois_unknown_category"] == 1
    assert s["unknown_categories"] == {"gym": 1}
    assert s["distance_method"] == "straight_line"
    assert sorted(result.unused_pois["reason"].str.split(" / ").str[1]) == ["no category", "no category",
                                                                            "unknown category"]
    assert "1 complete" in result.summary_text() and "gym" in result.summary_text()


def test_network_distances_are_along_the_streets():
    streets = lines_utm([(0, 0), (1000, 0)], [(1000, 0), (1000, 1000)], [(0, 0), (0, 500)])
    circles = life_circles(points_utm([(0, 0)], code=["N"]), streets, minutes=15).circles
    pois = points_utm([(1000, 600), (20, 400)], category=["clinic", "park"])
    net = health_check(circles, pois, CATS, network=streets).circles.iloc[0]
    straight = health_check(circles, pois, CATS).circles.iloc[0]
    assert net["dist_clinic_m"] == pytest.approx(1600, abs=0.1)  # round the corner
    assert straight["dist_clinic_m"] == pytest.approx(np.hypot(1000, 600), abs=0.1)
    assert net["dist_park_m"] == pytest.approx(400 + 20, abs=0.1)  # along the street, then 20 m off it
    assert net["n_clinic"] == 0 and net["missing"] == "school, clinic"


def test_empty_pois_and_circles():
    circles, pois = _tiny()
    none = health_check(circles, pois.iloc[:0], CATS)
    assert (none.circles["n_missing"] == 3).all() and none.summary["share_complete"] == 0.0
    empty = health_check(circles.iloc[:0], pois, CATS)
    assert len(empty.circles) == 0 and empty.summary["share_complete"] is None


def test_bad_category_inputs():
    circles, pois = _tiny()
    with pytest.raises(LifeCircleError, match="'kind'"):
        health_check(circles, pois, CATS, category_col="kind")
    with pytest.raises(LifeCircleError, match="required"):
        validate_categories(CATS.assign(required=["maybe", "yes", "yes", "no"]))
    with pytest.raises(LifeCircleError, match="duplicate"):
        validate_categories(pd.concat([CATS, CATS.iloc[:1]]))
    with pytest.raises(LifeCircleError, match="max_distance_m"):
        validate_categories(CATS.assign(max_distance_m=["-5", "1", "1", ""]))


def test_helsinki_pois_name_what_each_circle_lacks(helsinki_net, helsinki_pois, categories):
    centres = gpd.GeoDataFrame({"id": ["K1", "K2"], "name": ["Kaisaniemi", "Kruununhaka"]},
                               geometry=gpd.points_from_xy([24.9440, 24.9500], [60.1700, 60.1750]), crs=4326)
    circles = life_circles(centres, helsinki_net, minutes=[5, 15]).circles
    result = health_check(circles, helsinki_pois, categories, network=helsinki_net)
    table = result.circles.set_index("code")
    # The extract maps no kindergarten at all: every circle lacks one, named in both languages.
    assert table["missing"].str.contains("kindergarten").all()
    assert table["missing_zh"].str.contains("幼儿园").all()
    assert table["dist_kindergarten_m"].isna().all()
    # Counts agree with an independent spatial join.
    joined = gpd.sjoin(helsinki_pois, circles[["code", "geometry"]], predicate="intersects")
    expected = joined.groupby(["code", "category"]).size()
    for (code, cat), n in expected.items():
        assert table.loc[code, f"n_{cat}"] == n
    # Network distance is never shorter than the straight line.
    straight = health_check(circles, helsinki_pois, categories).circles.set_index("code")
    cols = [c for c in table.columns if c.startswith("dist_")]
    both = table[cols].notna() & straight[cols].notna()
    assert ((table[cols] >= straight[cols] - 0.5) | ~both).all().all()
    assert both.sum().sum() > 20
    # A 5-minute circle lacks more than its 15-minute circle.
    assert (table.loc["K1-5min", "n_missing"] >= table.loc["K1-15min", "n_missing"])
    assert result.summary["pois_used"] == len(helsinki_pois) and result.summary["distance_method"] == "network"
