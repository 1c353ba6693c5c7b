"""Fixtures on the REAL Chengdu data (data/chengdu_hangzhou.gpkg: real districts, synthetic subdistricts),
plus an independent computation of gaps with plain shapely, to compare geo.coverage against."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

DATA = Path(__file__).resolve().parents[2] / "data" / "chengdu_hangzhou.gpkg"
UTM = 32648  # the metric CRS geo.crs.metric_crs picks for Chengdu
START = pd.Timestamp("2024-01-01")
AS_OF = "2024-06-01"
LEAD_SHARE = 0.85


def read_layer(layer: str) -> gpd.GeoDataFrame:
    frame = gpd.read_file(DATA, layer=layer)
    return frame.set_crs(4326, allow_override=True)  # CGCS2000 lon/lat: WGS84 to a few cm


def zones_frame(frame: gpd.GeoDataFrame, kind: str, edition: int = 2024, valid_from=START, valid_to=pd.NaT):
    n = len(frame)
    population = frame["population"] if "population" in frame.columns else [pd.NA] * n
    return gpd.GeoDataFrame({
        "kind": kind, "code": frame["code"].astype(str).to_numpy(object), "name": frame["name"].to_numpy(object),
        "name_en": None, "parent_code": frame["parent_code"].to_numpy(object) if "parent_code" in frame else None,
        "edition": edition, "valid_from": pd.Timestamp(valid_from), "valid_to": pd.Timestamp(valid_to),
        "population": pd.array(population, dtype="Int64"), "attrs": [{}] * n,
    }, geometry=gpd.GeoSeries(frame.geometry.to_numpy(), crs=4326), crs=4326)


def lead_appointments(codes, kind="subdistrict", start=START, end=pd.NaT, first_id=1, planners=30):
    codes = list(codes)
    return pd.DataFrame({
        "id": np.arange(first_id, first_id + len(codes), dtype="int64"),
        "planner_id": [f"P{i % planners:03d}" for i in range(len(codes))],
        "zone_kind": kind, "zone_code": codes, "role": "lead",
        "start": pd.to_datetime([start] * len(codes)), "end": pd.to_datetime([end] * len(codes)),
    })


@pytest.fixture(scope="session")
def districts() -> gpd.GeoDataFrame:
    return read_layer("districts_chengdu")


@pytest.fixture(scope="session")
def subdistricts() -> gpd.GeoDataFrame:
    return read_layer("subdistricts_chengdu")


@pytest.fixture(scope="session")
def zones(districts, subdistricts) -> gpd.GeoDataFrame:
    return pd.concat([zones_frame(districts, "district"), zones_frame(subdistricts, "subdistrict")],
                     ignore_index=True)


@pytest.fixture(scope="session")
def led_codes(subdistricts) -> list[str]:
    """A seeded choice of subdistricts with a lead (most of them)."""
    rng = np.random.default_rng(20240601)
    codes = np.sort(subdistricts["code"].astype(str).to_numpy())
    return sorted(codes[rng.random(len(codes)) < LEAD_SHARE].tolist())


@pytest.fixture(scope="session")
def appointments(led_codes) -> pd.DataFrame:
    return lead_appointments(led_codes)


def to_utm(geoms):
    tr = Transformer.from_crs(4326, UTM, always_xy=True)
    return shapely.transform(np.asarray(geoms, dtype=object),
                             lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def reference_gap(territory_geoms, led_geoms) -> shapely.Geometry:
    """Territory minus the union of the led units, with plain union_all / difference in UTM."""
    territory = shapely.union_all(to_utm(territory_geoms))
    led = shapely.union_all(to_utm(led_geoms)) if len(led_geoms) else shapely.Polygon()
    return shapely.difference(territory, led)
