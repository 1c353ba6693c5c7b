"""Shared fixtures: the real Helsinki OSM network and POIs (read once), and small synthetic networks."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from zeren.geo.lifecircle import build_network
from zeren.layers.facilities import load_categories, read_osm_pois
from zeren.layers.network import read_network

DATA = Path(__file__).resolve().parents[2] / "data"
HELSINKI = DATA / "helsinki.osm.pbf"
UTM50 = "EPSG:32650"  # Beijing's UTM zone: synthetic data is drawn in metres around (440 km E, 4420 km N)
X0, Y0 = 440_000.0, 4_420_000.0


@pytest.fixture(scope="session")
def helsinki_lines() -> gpd.GeoDataFrame:
    return read_network(HELSINKI)


@pytest.fixture(scope="session")
def helsinki_net(helsinki_lines):
    return build_network(helsinki_lines)


@pytest.fixture(scope="session")
def helsinki_pois() -> gpd.GeoDataFrame:
    return read_osm_pois(HELSINKI)


@pytest.fixture(scope="session")
def categories():
    return load_categories()


def lines_utm(*coords_lists) -> gpd.GeoDataFrame:
    """Street lines from local metre coordinates (offset to a real UTM 50N position)."""
    geoms = [shapely.LineString([(X0 + x, Y0 + y) for x, y in coords]) for coords in coords_lists]
    return gpd.GeoDataFrame(geometry=geoms, crs=UTM50)


def points_utm(xy, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in xy], crs=UTM50)


def local(geom):
    """A WGS84 result geometry back in local metres (UTM 50N minus the offset)."""
    g = gpd.GeoSeries([geom], crs=4326).to_crs(UTM50).iloc[0]
    return shapely.affinity.translate(g, -X0, -Y0)
