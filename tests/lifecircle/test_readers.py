"""Readers: OSM walking network and POIs, line/point files, category tables; clear errors on bad files."""
from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from zeren.geo.errors import CoordinateError
from zeren.layers.errors import InputFileError
from zeren.layers.facilities import categorise_osm, load_categories, load_osm_map, read_points, read_pois
from zeren.layers.network import osm_tag, parse_other_tags, read_network, walkable_mask
from tests.lifecircle.conftest import HELSINKI


def test_osm_network_is_walkable_lines_in_wgs84(helsinki_lines):
    lines = helsinki_lines
    assert lines.crs.to_epsg() == 4326 and len(lines) > 2000
    assert set(shapely.get_type_id(lines.geometry.values)) == {1}
    highway = set(lines["highway"])
    assert {"footway", "residential", "steps", "pedestrian"} <= highway
    assert not highway & {"motorway", "construction", "proposed"}
    assert not (osm_tag(lines, "foot") == "no").any()
    assert not ((osm_tag(lines, "access") == "private") & ~osm_tag(lines, "foot").isin(["yes", "designated"])).any()
    everything = read_network(HELSINKI, walkable=False)
    assert len(everything) > len(lines)  # the filter removed something (construction, foot=no...)


def test_walkable_rules():
    frame = pd.DataFrame({
        "highway": ["residential", "motorway", "trunk", "trunk", "trunk_link", "footway", "service", "service",
                    "construction", None],
        "other_tags": [None, None, None, '"sidewalk"=>"both"', '"foot"=>"yes"', '"foot"=>"no"',
                       '"access"=>"private"', '"access"=>"private","foot"=>"yes"', None, '"foot"=>"yes"'],
    })
    assert walkable_mask(frame).tolist() == [True, False, False, True, True, False, False, True, False, False]


def test_other_tags_parsing():
    s = pd.Series(['"amenity"=>"school","name:fi"=>"Koulu \\"A\\"","isced:level"=>"1"', None])
    parsed = parse_other_tags(s)
    assert parsed[0]["amenity"] == "school" and parsed[0]["isced:level"] == "1" and parsed[1] == {}
    frame = pd.DataFrame({"amenity": [None, "clinic"], "other_tags": ['"amenity"=>"school"', '"shop"=>"x"']})
    assert osm_tag(frame, "amenity").tolist() == ["school", "clinic"]


def test_osm_pois(helsinki_pois):
    pois = helsinki_pois
    assert pois.crs.to_epsg() == 4326 and set(shapely.get_type_id(pois.geometry.values)) == {0}
    counts = pois["category"].value_counts()
    assert counts["school"] >= 3 and counts["park"] >= 10 and counts["clinic"] >= 5
    assert set(pois["source"]) == {"points", "multipolygons"}
    schools = pois[pois["category"] == "school"]
    assert (schools["osm_tag"] == "amenity=school").all() and schools["name"].notna().all()


def test_osm_map_first_rule_wins_and_wildcard():
    frame = pd.DataFrame({"amenity": ["pharmacy", None, None], "other_tags": ['"healthcare"=>"pharmacy"',
                                                                                '"leisure"=>"pitch"', None]})
    rules = pd.DataFrame({"key": ["healthcare", "amenity", "leisure"], "value": ["*", "pharmacy", "pitch"],
                          "category": ["health_any", "clinic", "sports"]})
    cat, tag = categorise_osm(frame, rules)
    assert cat.tolist() == ["health_any", "sports", None]
    assert tag.tolist() == ["healthcare=pharmacy", "leisure=pitch", None]


def test_shipped_tables_agree():
    cats = load_categories()
    rules = load_osm_map()
    assert set(rules["category"]) <= set(cats["category"])
    assert {"school", "clinic", "elderly_care", "market", "park", "sports", "culture",
            "community_service"} <= set(cats.loc[cats["required"], "category"])


def test_line_and_point_files(tmp_path):
    lines = gpd.GeoDataFrame({"highway": ["residential", "motorway"]},
                             geometry=[shapely.LineString([(0, 0), (100, 0)]), shapely.LineString([(0, 5), (9, 5)])],
                             crs="EPSG:32650")
    lines.to_file(tmp_path / "net.gpkg")
    net = read_network(tmp_path / "net.gpkg")
    assert len(net) == 1 and net.crs.to_epsg() == 32650
    pts = tmp_path / "c.csv"
    pts.write_text("id,name,lon,lat\nA,甲,116.4,39.9\nB,乙,116.41,39.91\n", encoding="utf-8")
    frame = read_points(pts, crs="wgs84")
    assert frame.crs.to_epsg() == 4326 and frame["name"].tolist() == ["甲", "乙"]
    gcj = read_points(pts, crs="gcj02")  # GCJ-02 is moved back to WGS84 (a few hundred metres in Beijing)
    assert gcj.crs.to_epsg() == 4326 and 0.001 < abs(gcj.geometry.x[0] - 116.4) < 0.01


def test_reader_errors(tmp_path):
    with pytest.raises(InputFileError, match="no such"):
        read_network(tmp_path / "missing.gpkg")
    points = gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], crs=4326)
    points.to_file(tmp_path / "points.geojson")
    with pytest.raises(InputFileError, match="line"):
        read_network(tmp_path / "points.geojson")
    poly = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    poly.to_file(tmp_path / "poly.geojson")
    with pytest.raises(InputFileError, match="Polygon"):
        read_points(tmp_path / "poly.geojson")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputFileError, match="empty"):
        read_points(tmp_path / "empty.csv", crs="wgs84")
    (tmp_path / "c.csv").write_text("lon,lat\n116.4,39.9\n")
    with pytest.raises(InputFileError, match="--crs"):
        read_points(tmp_path / "c.csv")
    (tmp_path / "swapped.csv").write_text("lon,lat\n39.9,116.4\n")
    with pytest.raises(CoordinateError, match="swapped"):
        read_points(tmp_path / "swapped.csv", crs="wgs84")
    (tmp_path / "blank.csv").write_text("lon,lat\n116.4,39.9\n,\n")
    with pytest.raises(InputFileError, match="row 3"):
        read_points(tmp_path / "blank.csv", crs="wgs84")
    (tmp_path / "pois.csv").write_text("lon,lat,kind\n116.4,39.9,school\n")
    with pytest.raises(InputFileError, match="'category'"):
        read_pois(tmp_path / "pois.csv", crs="wgs84")
    assert read_pois(tmp_path / "pois.csv", crs="wgs84", category_col="kind")["category"].tolist() == ["school"]
    (tmp_path / "cats.csv").write_text("category,required\nschool,perhaps\n")
    with pytest.raises(InputFileError, match="required"):
        load_categories(tmp_path / "cats.csv")
