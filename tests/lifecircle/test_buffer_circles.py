"""Straight-line life circles (no network): GB 50180-2018 radii, custom radii, clipping."""
from __future__ import annotations

import math

import geopandas as gpd
import pytest
import shapely

from zeren.geo.lifecircle import GB50180_RADII_M, LifeCircleError, life_circles
from tests.lifecircle.conftest import UTM50, local, points_utm


@pytest.mark.parametrize("minutes, radius", [(5, 300), (10, 500), (15, 1000)])
def test_gb50180_default_radii(minutes, radius):
    result = life_circles(points_utm([(0, 0)], name=["社区中心"]), minutes=minutes)
    row = result.circles.iloc[0]
    assert row["method"] == "buffer" and row["radius_m"] == radius and row["minutes"] == minutes
    circle = local(row.geometry)
    assert circle.area == pytest.approx(math.pi * radius**2, rel=0.005)
    assert circle.bounds == pytest.approx((-radius, -radius, radius, radius), abs=1.0)
    assert row["area_km2"] == pytest.approx(math.pi * radius**2 / 1e6, rel=0.005)
    assert GB50180_RADII_M[minutes] == radius


def test_custom_radius_and_several_minutes():
    one = life_circles(points_utm([(0, 0)]), minutes=15, radius_m=800).circles
    assert one["radius_m"].tolist() == [800] and local(one.geometry.iloc[0]).bounds[2] == pytest.approx(800, abs=1)
    many = life_circles(points_utm([(0, 0)]), minutes=[5, 10, 15]).circles
    assert many["code"].tolist() == ["LC0001-5min", "LC0001-10min", "LC0001-15min"]
    assert many["radius_m"].tolist() == [300, 500, 1000]


def test_minutes_without_a_default_radius():
    with pytest.raises(LifeCircleError, match="radius_m"):
        life_circles(points_utm([(0, 0)]), minutes=7)
    assert life_circles(points_utm([(0, 0)]), minutes=7, radius_m=420).circles["radius_m"].tolist() == [420]
    with pytest.raises(LifeCircleError, match="radius_m"):
        life_circles(points_utm([(0, 0)]), minutes=15, radius_m=-1)


def test_clip_to_union_and_by_centre():
    centres = points_utm([(-500, 0), (500, 0)], code=["W", "E"])
    west = shapely.box(440_000 - 5000, 4_420_000 - 5000, 440_000, 4_420_000 + 5000)
    east = shapely.box(440_000, 4_420_000 - 5000, 440_000 + 5000, 4_420_000 + 5000)
    districts = gpd.GeoDataFrame({"code": ["w", "e"]}, geometry=[west, east], crs=UTM50)
    union = life_circles(centres, minutes=15, clip=districts).circles
    assert local(union.geometry.iloc[0]).area == pytest.approx(math.pi * 1e6, rel=0.01)  # union: nothing cut
    own = life_circles(centres, minutes=15, clip=districts, clip_by_centre=True).circles
    w, e = (local(g) for g in own.geometry)
    assert w.bounds[2] == pytest.approx(0, abs=0.5) and e.bounds[0] == pytest.approx(0, abs=0.5)
    assert w.area < math.pi * 1e6 * 0.9


def test_empty_and_missing_geometry():
    frame = points_utm([(0, 0), (10, 0)], code=["A", "B"])
    frame.loc[1, "geometry"] = None
    result = life_circles(frame)
    assert result.circles["code"].tolist() == ["A"] and result.skipped["code"].tolist() == ["B"]
    assert life_circles(frame.iloc[:0]).circles.empty
