"""Fixtures for the map tests: the demo city's real districts and synthetic subdistricts, fictional planners."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from zeren.maps.synthetic import synthetic_planners_and_leads

DATA = Path(__file__).resolve().parents[2] / "data" / "chengdu_hangzhou.gpkg"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="session")
def subdistricts() -> gpd.GeoDataFrame:
    z = gpd.read_file(DATA, layer="subdistricts_chengdu").to_crs(4326)
    z["kind"] = "subdistrict"
    z["name_en"] = None
    z.loc[z.index[:5], "name_en"] = [f"Subdistrict {i}" for i in range(5)]
    return z


@pytest.fixture(scope="session")
def districts() -> gpd.GeoDataFrame:
    d = gpd.read_file(DATA, layer="districts_chengdu").to_crs(4326)
    d["kind"] = "district"
    return d


@pytest.fixture(scope="session")
def planners_leads(subdistricts):
    """Planners (each leads about four neighbouring codes), 8% of units without a lead. The first
    planner's name is an XSS probe and every private contact is a marker that must never show."""
    z = subdistricts.assign(block=np.arange(len(subdistricts)) // 4)
    planners, leads = synthetic_planners_and_leads(z, seed=1)
    planners.loc[planners.index[0], "name"] = XSS
    planners["private_contact"] = "PRIVATE-13800000000"
    return planners, leads


@pytest.fixture(scope="session")
def overlays(subdistricts) -> gpd.GeoDataFrame:
    c = subdistricts.geometry.iloc[120].representative_point()
    return gpd.GeoDataFrame({
        "kind": ["historic_area", "key_area"], "code": ["H001", "K001"],
        "name": ["宽窄巷子历史文化街区", XSS], "name_en": ["Kuanzhai Alley", None],
    }, geometry=[c.buffer(0.01), shapely.box(c.x + 0.03, c.y, c.x + 0.06, c.y + 0.02)], crs=4326)


@pytest.fixture(scope="session")
def gaps_frame() -> gpd.GeoDataFrame:
    """A gaps frame shaped like geo.coverage's (gap_id, reason, area_m2, width_m, district_codes, unit_codes)."""
    return gpd.GeoDataFrame({
        "gap_id": [1, 2], "reason": ["outside_units", "sliver"], "area_m2": [1.2e6, 3.4e3],
        "width_m": [800.0, 6.0], "district_codes": ["510104", "510105"], "unit_codes": ["", ""],
    }, geometry=[shapely.Point(104.06, 30.66).buffer(0.01), shapely.box(104.1, 30.7, 104.1001, 30.71)], crs=4326)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
