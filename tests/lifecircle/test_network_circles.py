"""Walking-network life circles on the real Helsinki streets and on small synthetic networks."""
from __future__ import annotations

import math

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from zeren.geo.lifecircle import LifeCircleError, build_network, life_circles, network_life_circles, walk_distance_m
from tests.lifecircle.conftest import UTM50, lines_utm, local, points_utm

# Two centres in central Helsinki (Kaisaniemi park edge, Kruununhaka) and a third by the railway station.
CENTRES = gpd.GeoDataFrame({"id": ["K1", "K2", "K3"], "name": ["Kaisaniemi", "Kruununhaka", "Rautatientori"]},
                           geometry=gpd.points_from_xy([24.9440, 24.9500, 24.9425], [60.1700, 60.1750, 60.1710]),
                           crs=4326)


def test_walk_distance():
    assert walk_distance_m(15) == pytest.approx(1125.0)
    assert walk_distance_m(10, 6.0) == pytest.approx(1000.0)


def test_helsinki_circle_is_far_smaller_than_the_disc(helsinki_net):
    result = life_circles(CENTRES, helsinki_net, minutes=[5, 15])
    circles = result.circles.set_index("code")
    assert result.skipped.empty
    for minutes, most in ((5, 0.8), (15, 0.5)):
        disc = math.pi * walk_distance_m(minutes) ** 2
        areas = circles.loc[[f"{c}-{minutes}min" for c in CENTRES["id"]], "area_km2"] * 1e6
        # Streets bend, blocks and water get in the way: well below the disc of the walking distance.
        assert (areas < most * disc).all(), (minutes, areas.to_dict(), disc)
        # ...but every centre is on the main network, not on a stub of steps beside it.
        assert (areas > 0.2 * disc).all(), (minutes, areas.to_dict(), disc)
    assert circles.loc["K1-15min", "area_km2"] < math.pi * 1.0**2  # and below the 1000 m GB 50180 disc
    five = circles.loc["K1-5min", "geometry"]
    fifteen = circles.loc["K1-15min", "geometry"]
    assert fifteen.buffer(1e-7).contains(five)
    assert circles.loc["K1-15min", "walk_m"] == pytest.approx(1125.0)
    assert set(circles["method"]) == {"network"}


def _independent_distances(lines: gpd.GeoDataFrame, centre_xy, crs):
    """networkx over every raw segment (vertex to vertex), the centre joined to its nearest segment."""
    geoms = np.asarray(lines.to_crs(crs).geometry.values)
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    same = idx[1:] == idx[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    key = lambda xy: tuple(np.round(xy, 2))  # noqa: E731
    graph = nx.Graph()
    for p, q in zip(a, b):
        w = float(np.hypot(*(q - p)))
        if w > 0:
            graph.add_edge(key(p), key(q), length=w)
    segs = shapely.linestrings(np.stack([a, b], axis=1))
    centre = shapely.Point(centre_xy)
    nearest = int(np.argmin(shapely.distance(segs, centre)))
    on = shapely.line_interpolate_point(segs[nearest], shapely.line_locate_point(segs[nearest], centre))
    access = centre.distance(on)
    graph.add_edge("centre", "on", length=access)
    for end in (a[nearest], b[nearest]):
        graph.add_edge("on", key(end), length=on.distance(shapely.Point(end)))
    dist = nx.single_source_dijkstra_path_length(graph, "centre", weight="length")
    return dist, segs, a, b, key


def test_every_reached_point_is_within_the_walk_by_networkx(helsinki_lines, helsinki_net):
    minutes = 5
    walk = walk_distance_m(minutes)
    result = network_life_circles(CENTRES.iloc[[0]], helsinki_net, minutes=minutes, keep_streets=True)
    crs = helsinki_net.crs
    centre_xy = shapely.get_coordinates(CENTRES.iloc[[0]].to_crs(crs).geometry.values)[0]
    dist, segs, a, b, key = _independent_distances(helsinki_lines, centre_xy, crs)

    streets = result.streets[result.streets["part"] == "street"].to_crs(crs)
    ends = shapely.get_coordinates(shapely.boundary(streets.geometry.values))
    assert len(ends) > 50
    # Each end point lies on some raw segment; its walking distance is through either end of that segment.
    tree = shapely.STRtree(segs)
    pts = shapely.points(ends)
    (pi, si), gap = tree.query_nearest(pts, return_distance=True, all_matches=False)
    assert gap.max() < 0.05
    da = np.array([dist.get(key(p), np.inf) for p in a[si]])
    db = np.array([dist.get(key(p), np.inf) for p in b[si]])
    reached = np.minimum(da + shapely.distance(pts[pi], shapely.points(a[si])),
                         db + shapely.distance(pts[pi], shapely.points(b[si])))
    assert np.all(reached <= walk + 0.5), reached.max()
    assert reached.max() > walk - 5  # the walk is used up to its end (partial edges included)

    # And every street vertex networkx reaches well within the walk lies inside the circle.
    circle = gpd.GeoSeries(result.circles.geometry.values, crs=4326).to_crs(crs).iloc[0]
    inside = [shapely.Point(k) for k, d in dist.items() if isinstance(k, tuple) and d <= walk - 1]
    assert len(inside) > 30
    assert shapely.contains(circle, np.array(inside, dtype=object)).all()


def test_partial_edge_on_a_long_single_street():
    streets = lines_utm([(0, 0), (3000, 0)])
    centre = points_utm([(0, 0)], name=["end"])
    circle = local(life_circles(centre, streets, minutes=15, buffer_m=40).circles.geometry.iloc[0])
    minx, miny, maxx, maxy = circle.bounds
    assert maxx == pytest.approx(1125 + 40, abs=0.5)  # the walk ends inside the one long edge
    assert minx == pytest.approx(-40, abs=0.5)
    assert maxy - miny == pytest.approx(80, abs=0.5)


def test_centre_beside_the_middle_of_an_edge_reaches_both_ends():
    streets = lines_utm([(0, 0), (1000, 0)], [(1000, 0), (1000, 1000)])
    centre = points_utm([(500, 10)], name=["mid"])
    result = life_circles(centre, streets, minutes=5, buffer_m=40)  # 375 m, 10 m used to reach the street
    circle = local(result.circles.geometry.iloc[0])
    assert result.circles["snap_m"].iloc[0] == pytest.approx(10.0)
    inside = shapely.points([(150, 0), (850, 0), (500, 10)])
    outside = shapely.points([(80, 0), (920, 0), (1000, 100)])
    assert shapely.contains(circle, inside).all()
    assert not shapely.intersects(circle, outside).any()
    # Without the access walk the full 375 m runs along the street.
    full = local(life_circles(centre, streets, minutes=5, buffer_m=40, count_access=False).circles.geometry.iloc[0])
    assert full.bounds[2] == pytest.approx(500 + 375 + 40, abs=0.5)


def test_reach_continues_around_corners_and_stops():
    # An L: 400 m east, then 2000 m north. From the west end, 15 min = 1125 m: 400 east + 725 north.
    streets = lines_utm([(0, 0), (400, 0), (400, 2000)])
    circle = local(life_circles(points_utm([(0, 0)]), streets, minutes=15, buffer_m=25).circles.geometry.iloc[0])
    assert circle.bounds[3] == pytest.approx(725 + 25, abs=0.5)


def test_centre_is_not_snapped_onto_a_stub_beside_the_street():
    # A 4 m flight of steps 2 m from the centre, the real street 5 m away.
    streets = lines_utm([(0, 0), (1000, 0)], [(498, 7), (502, 7)])
    result = life_circles(points_utm([(500, 5)]), streets, minutes=5, buffer_m=20)
    assert result.circles["snap_m"].iloc[0] == pytest.approx(5.0)
    assert local(result.circles.geometry.iloc[0]).bounds[2] > 800
    # A stub is used when nothing larger is within reach.
    alone = life_circles(points_utm([(500, 250)]), lines_utm([(0, 0), (1000, 0)], [(498, 260), (502, 260)]),
                         minutes=5, buffer_m=20, max_snap_m=100)
    assert alone.circles["snap_m"].iloc[0] == pytest.approx(10.0)


def test_far_centre_is_reported_not_snapped():
    streets = lines_utm([(0, 0), (1000, 0)])
    centres = points_utm([(500, 20), (500, 800)], code=["near", "far"], name=["近", "远"])
    result = life_circles(centres, streets, minutes=10)
    assert list(result.circles["code"]) == ["near"]
    assert list(result.skipped["code"]) == ["far"]
    assert result.skipped["distance_m"].iloc[0] == pytest.approx(800.0)
    assert "300" in result.skipped["reason"].iloc[0]
    # With a larger limit it is snapped.
    assert len(life_circles(centres, streets, minutes=10, max_snap_m=1000).circles) == 2


def test_centre_outside_the_helsinki_extent_is_reported(helsinki_net):
    centres = gpd.GeoDataFrame({"name": ["Espoo"]}, geometry=gpd.points_from_xy([24.80], [60.20]), crs=4326)
    result = life_circles(centres, helsinki_net)
    assert result.circles.empty and list(result.skipped["code"]) == ["LC0001"]
    assert result.skipped["distance_m"].iloc[0] > 5000


def test_island_reaches_only_its_island():
    main = [(0, 0), (2000, 0)]
    island = [(0, 500), (300, 500)]
    streets = lines_utm(main, island)
    result = life_circles(points_utm([(100, 500)], name=["岛"]), streets, minutes=15, buffer_m=20)
    circle = local(result.circles.geometry.iloc[0])
    assert circle.bounds == pytest.approx((-20, 480, 320, 520), abs=0.5)


def test_network_in_geographic_crs_is_measured_in_metres():
    # 0.05 degrees of longitude at 60 N is about 2.79 km; a 5-minute walk is 375 m of it.
    streets = gpd.GeoDataFrame(geometry=[shapely.LineString([(24.90, 60.17), (24.95, 60.17)])], crs=4326)
    centre = gpd.GeoDataFrame(geometry=[shapely.Point(24.90, 60.17)], crs=4326)
    result = life_circles(centre, streets, minutes=5, buffer_m=30)
    circle = gpd.GeoSeries(result.circles.geometry, crs=4326).to_crs(3067).iloc[0]  # ETRS-TM35FIN, metres
    assert circle.bounds[2] - circle.bounds[0] == pytest.approx(375 + 60, abs=2)


def test_codes_names_and_provenance():
    streets = lines_utm([(0, 0), (2000, 0)])
    unnamed = points_utm([(100, 0), (900, 0)])
    result = life_circles(unnamed, streets, minutes=[10, 5], speed_kmh=6, buffer_m=30)
    c = result.circles
    assert list(c["code"]) == ["LC0001-5min", "LC0002-5min", "LC0001-10min", "LC0002-10min"]
    assert list(c["name"][:2]) == ["生活圈 1", "生活圈 2"]
    assert c["walk_m"].tolist() == [500, 500, 1000, 1000]
    assert (c["speed_kmh"] == 6).all() and (c["buffer_m"] == 30).all() and (c["kind"] == "life_circle").all()
    assert c.crs.to_epsg() == 4326
    single = life_circles(points_utm([(0, 0)], id=[7], name=["七"]), streets).circles
    assert single["code"].tolist() == ["7"] and single["name"].tolist() == ["七"]


def test_clip_to_polygon():
    streets = lines_utm([(-2000, 0), (2000, 0)], [(0, -2000), (0, 2000)])
    centre = points_utm([(0, 0)])
    half = gpd.GeoDataFrame(geometry=[shapely.box(440_000, 4_419_000, 442_000, 4_421_000)], crs=UTM50)
    whole = local(life_circles(centre, streets, minutes=15).circles.geometry.iloc[0])
    clipped = local(life_circles(centre, streets, minutes=15, clip=half).circles.geometry.iloc[0])
    assert clipped.bounds[0] >= -0.5 and whole.bounds[0] < -1000
    assert clipped.area == pytest.approx(whole.area / 2, rel=0.01)  # the cross is symmetric about x = 0


@pytest.mark.parametrize("kwargs, message", [
    ({"minutes": 0}, "minutes"),
    ({"minutes": -5}, "minutes"),
    ({"minutes": [5, 0]}, "minutes"),
    ({"speed_kmh": 0}, "speed_kmh"),
    ({"speed_kmh": -4.5}, "speed_kmh"),
    ({"buffer_m": 0}, "buffer_m"),
])
def test_bad_numbers_are_refused(kwargs, message):
    streets = lines_utm([(0, 0), (1000, 0)])
    with pytest.raises(LifeCircleError, match=message):
        life_circles(points_utm([(0, 0)]), streets, **kwargs)


def test_bad_inputs():
    streets = lines_utm([(0, 0), (1000, 0)])
    empty_centres = points_utm([]).iloc[:0]
    assert life_circles(empty_centres, streets).circles.empty
    assert life_circles(empty_centres).circles.empty
    with pytest.raises(LifeCircleError, match="empty"):
        build_network(gpd.GeoDataFrame(geometry=[], crs=UTM50))
    with pytest.raises(LifeCircleError, match="CRS"):
        build_network(gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 1)])]))
    with pytest.raises(LifeCircleError, match="line"):
        build_network(points_utm([(0, 0), (5, 5)]))
    polygon = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=UTM50)
    with pytest.raises(LifeCircleError, match="points"):
        life_circles(polygon, streets)
    with pytest.raises(LifeCircleError, match="duplicate"):
        life_circles(points_utm([(0, 0), (5, 0)], code=["A", "A"]), streets)


def test_tile_merging_gives_the_same_shapes(helsinki_net):
    tiled = network_life_circles(CENTRES, helsinki_net, minutes=[5, 15], tile_m=150.0, min_tile_edges=5)
    plain = network_life_circles(CENTRES, helsinki_net, minutes=[5, 15], tile_m=None)
    for a, b in zip(tiled.circles.geometry, plain.circles.geometry):
        assert a.symmetric_difference(b).area < 1e-12  # degrees squared: well under 0.01 m2
    assert (tiled.circles["area_km2"] - plain.circles["area_km2"]).abs().max() < 1e-9
