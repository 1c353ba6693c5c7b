"""The tile core (geo/tiles.py): tile arithmetic, the encoder (decoded by mapbox_vector_tile, an independent
decoder), and tiles of the real demo city against shapely on lon/lat boxes."""
from __future__ import annotations

import math

import mapbox_vector_tile
import numpy as np
import pytest
import shapely

from zeren.geo.errors import GeoInputError
from zeren.geo.tiles import (BUFFER, EXTENT, MAX_LAT, KindLayer, check_tile, encode_layer, lonlat_to_mercator,
                             mercator_to_lonlat, tile_bounds, tile_count, tile_lonlat_bounds, tiles_covering)
from zeren.layers.catalogue import Catalogue
from zeren.layers.store import open_store


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})


def ring_area2(ring) -> float:
    """Twice the signed area by the surveyor's formula, in tile coordinates (y down: > 0 is clockwise on screen)."""
    xy = np.asarray(ring, dtype=float)
    if (xy[0] == xy[-1]).all():
        xy = xy[:-1]
    nx = np.roll(xy, -1, axis=0)
    return float((xy[:, 0] * nx[:, 1] - nx[:, 0] * xy[:, 1]).sum())


def polygons_of(geometry: dict) -> list:
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]


# -- tile arithmetic -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("z,x,y", [(0, 0, 0), (3, 5, 2), (12, 3230, 1679)])
def test_children_tile_their_parent(z, x, y):
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    kids = [tile_bounds(z + 1, 2 * x + dx, 2 * y + dy) for dx in (0, 1) for dy in (0, 1)]
    assert min(k[0] for k in kids) == pytest.approx(minx) and max(k[2] for k in kids) == pytest.approx(maxx)
    assert min(k[1] for k in kids) == pytest.approx(miny) and max(k[3] for k in kids) == pytest.approx(maxy)
    assert sum((k[2] - k[0]) * (k[3] - k[1]) for k in kids) == pytest.approx((maxx - minx) * (maxy - miny))


def test_tile_zero_is_the_mercator_world():
    minlon, minlat, maxlon, maxlat = tile_lonlat_bounds(0, 0, 0)
    assert (minlon, maxlon) == pytest.approx((-180, 180))
    assert (minlat, maxlat) == pytest.approx((-85.0511287798, 85.0511287798))


@pytest.mark.parametrize("lon,lat,z", [(104.0530, 30.6695, 12), (-0.1, 51.5, 9), (139.7, 35.7, 15)])
def test_tiles_covering_a_point_hold_it(lon, lat, z):
    xs, ys = tiles_covering((lon, lat, lon, lat), z)
    assert len(xs) == len(ys) == 1
    minlon, minlat, maxlon, maxlat = tile_lonlat_bounds(z, xs[0], ys[0])
    assert minlon <= lon <= maxlon and minlat <= lat <= maxlat


def test_tile_count_adds_the_zooms():
    box = (103.9, 30.5, 104.3, 30.8)
    assert tile_count(box, 0, 0) == 1
    per_zoom = [len(tiles_covering(box, z)[0]) * len(tiles_covering(box, z)[1]) for z in range(11)]
    assert tile_count(box, 0, 10) == sum(per_zoom)


BAD_TILES = [((-1, 0, 0), "z"), ((23, 0, 0), "z"), ((2, 4, 0), "x"), ((2, -1, 0), "x"), ((2, 0, 4), "y"),
             ((0, 0, 1), "y")]


@pytest.mark.parametrize("zxy,field", BAD_TILES)
def test_tile_address_outside_the_pyramid_is_refused_by_name(zxy, field):
    with pytest.raises(GeoInputError, match=rf"^{field}: "):
        check_tile(*zxy)


# -- the encoder -------------------------------------------------------------------------------------------
def test_polygon_with_a_hole_is_wound_as_mvt_asks_whatever_it_came_with():
    outer = [(100, 100), (100, 900), (900, 900), (900, 100)]
    hole = [(300, 300), (700, 300), (700, 700), (300, 700)]
    for o, h in ((outer, hole), (outer[::-1], hole[::-1])):
        body = encode_layer("zone", np.array([shapely.Polygon(o, [h])]), {"code": ["A"], "has_lead": [True]})
        layer = decode(body)["zone"]
        assert layer["extent"] == EXTENT
        (feature,) = layer["features"]
        assert feature["properties"] == {"code": "A", "has_lead": True}
        (rings,) = polygons_of(feature["geometry"])
        assert ring_area2(rings[0]) > 0 > ring_area2(rings[1])
        assert {tuple(p) for p in rings[0]} == set(outer)
        assert {tuple(p) for p in rings[1]} == set(hole)


def test_rings_that_collapse_on_the_grid_are_dropped_and_none_values_left_out():
    tiny = shapely.box(10.1, 10.1, 10.3, 10.3)  # rounds to one point
    square = shapely.box(0, 0, 50, 50)
    multi = shapely.MultiPolygon([square, shapely.box(20.2, 80.1, 20.4, 80.3)])
    body = encode_layer("zone", np.array([tiny, multi]),
                        {"code": ["tiny", "multi"], "lead_planner_id": [None, None]})
    (feature,) = decode(body)["zone"]["features"]
    assert feature["properties"] == {"code": "multi"}
    assert feature["geometry"]["type"] == "Polygon"
    assert encode_layer("zone", np.array([tiny]), {"code": ["tiny"]}) == b""


# -- tiles of the demo city ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    from zeren.api.service.demo import build_demo

    path = tmp_path_factory.mktemp("tiles") / "demo.gpkg"
    build_demo(path).close()
    store = open_store(path)
    yield Catalogue(store)
    store.close()


def demo_tiles(catalogue, zooms=(8, 10, 12, 14)):
    """A few tiles per zoom across the city: the centre tile and two at the edges of the data."""
    minlon, minlat, maxlon, maxlat = catalogue.index.bounds
    for z in zooms:
        for lon, lat in (((minlon + maxlon) / 2, (minlat + maxlat) / 2), (104.0530, 30.6695),
                         (minlon + 0.01, minlat + 0.3)):
            xs, ys = tiles_covering((lon, lat, lon, lat), z)
            yield z, xs[0], ys[0]


@pytest.mark.parametrize("kind", ["subdistrict", "district", "life_circle"])
def test_tile_features_are_the_zones_meeting_the_tile(catalogue, kind):
    index = catalogue.index
    active = index.active(None)
    wanted = active & (index.kind == kind)
    seen = 0
    for z, x, y in demo_tiles(catalogue):
        cut = index.tile_source.tile(kind, z, x, y, active)
        body = encode_layer(kind, cut.geoms, {"code": index.code[cut.positions]})
        layer = decode(body).get(kind, {"features": []})
        codes = {f["properties"]["code"] for f in layer["features"]}
        inner = shapely.box(*tile_lonlat_bounds(z, x, y))
        outer = shapely.box(*tile_lonlat_bounds(z, x, y, buffer=BUFFER))
        geoms = index.zones.geometry.to_numpy()
        must = {index.code[p] for p in np.flatnonzero(wanted & shapely.intersects(geoms, inner))}
        may = {index.code[p] for p in np.flatnonzero(wanted & shapely.intersects(geoms, outer))}
        assert must <= codes <= may, (z, x, y)
        seen += len(codes)
        for feature in layer["features"]:
            for rings in polygons_of(feature["geometry"]):
                assert ring_area2(rings[0]) > 0, (z, x, y, feature["properties"])
                assert all(ring_area2(r) < 0 for r in rings[1:])
                xy = np.asarray([p for r in rings for p in r])
                assert xy.min() >= -BUFFER - 1 and xy.max() <= EXTENT + BUFFER + 1
    assert seen  # the chosen tiles are not all empty


def test_low_zoom_drops_zones_under_a_pixel_and_keeps_the_rest(catalogue):
    index = catalogue.index
    active = index.active(None)
    cut = index.tile_source.tile("subdistrict", 0, 0, 0, active)  # the world: every zone meets it
    layer = index.tile_source.layer("subdistrict")
    px = (tile_bounds(0, 0, 0)[2] - tile_bounds(0, 0, 0)[0]) / EXTENT
    size = np.maximum(layer.bounds[:, 2] - layer.bounds[:, 0], layer.bounds[:, 3] - layer.bounds[:, 1])
    in_force = active[layer.positions]
    assert set(cut.positions.tolist()) == set(layer.positions[in_force & (size >= px)].tolist())
    assert (in_force & (size < px)).any()  # the demo has subdistricts under a pixel at zoom 0
    assert math.isfinite(float(shapely.area(cut.geoms).sum()))


# -- web mercator without pyproj per point ---------------------------------------------------------------------
def pyproj_mercator(geoms):
    from zeren.geo.crs import project_geometries

    return project_geometries(geoms, "EPSG:4326", "EPSG:3857")


def test_closed_form_mercator_matches_pyproj_to_a_micrometre():
    from pyproj import Transformer

    rng = np.random.default_rng(10)
    lon = np.r_[-180.0, 180.0, 0.0, 104.0530, rng.uniform(-180, 180, 200_000)]
    lat = np.r_[-MAX_LAT, MAX_LAT, 0.0, 30.6695, rng.uniform(-MAX_LAT, MAX_LAT, 200_000)]
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(lon, lat)
    ours = lonlat_to_mercator(np.column_stack([lon, lat]))
    assert np.abs(ours[:, 0] - x).max() < 1e-6 and np.abs(ours[:, 1] - y).max() < 1e-6
    assert ours[1, 0] == pytest.approx(20037508.342789244) and ours[1, 1] == pytest.approx(20037508.342789244)
    back = mercator_to_lonlat(ours)
    assert np.abs(back[:, 0] - lon).max() < 1e-9 and np.abs(back[:, 1] - lat).max() < 1e-9


def test_layer_outlines_are_pyprojs_projection_of_the_zones(catalogue):
    index = catalogue.index
    for kind in ("subdistrict", "district", "life_circle"):
        layer = index.tile_source.layer(kind)
        zones = index.zones.geometry.to_numpy()[layer.positions]
        want = pyproj_mercator(shapely.clip_by_rect(zones, -180.0, -MAX_LAT, 180.0, MAX_LAT))
        ours = layer.mercator(np.arange(len(layer)))
        a, b = shapely.get_coordinates(ours), shapely.get_coordinates(want)
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-6, kind
        assert (shapely.get_num_geometries(ours) == shapely.get_num_geometries(want)).all()
        assert np.abs(layer.bounds - shapely.bounds(want)).max() < 1e-6


@pytest.mark.parametrize("kind", ["subdistrict", "life_circle"])
def test_tiles_find_the_zones_an_strtree_of_projected_outlines_finds(catalogue, kind):
    """The layer's tree is in lon/lat; the zones a tile keeps are exactly those whose EPSG:3857 outline meets
    the widened tile box (an STRtree "intersects" query over pyproj-projected outlines, as before)."""
    index = catalogue.index
    active = np.ones(len(index), dtype=bool)
    layer = index.tile_source.layer(kind)
    tree = shapely.STRtree(pyproj_mercator(index.zones.geometry.to_numpy()[layer.positions]))
    seen = 0
    for z, x, y in demo_tiles(catalogue, zooms=(6, 9, 11, 13, 15)):
        cut = index.tile_source.tile(kind, z, x, y, active, min_size_px=0)
        minx, miny, maxx, maxy = tile_bounds(z, x, y)
        pad = (maxx - minx) * BUFFER / EXTENT
        hits = tree.query(shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad), predicate="intersects")
        assert cut.positions.tolist() == sorted(layer.positions[hits].tolist()), (z, x, y)
        seen += len(hits)
    assert seen


def test_only_zones_leaving_the_mercator_world_are_clipped_and_each_is_projected_once():
    polar = shapely.box(10.0, 80.0, 20.0, 89.0)  # beyond 85.05 deg: clipped to the square world
    city = shapely.box(104.0, 30.6, 104.1, 30.7)
    layer = KindLayer(np.array([0, 1]), np.array([polar, city], dtype=object))
    assert layer.lonlat[1] is city  # inside the world: kept as it was, not copied by a clip
    assert layer.bounds[0, 3] == pytest.approx(20037508.342789244)  # the top of the world
    assert shapely.bounds(layer.lonlat[0])[3] == pytest.approx(MAX_LAT)
    first = layer.mercator(np.array([1]))[0]
    assert layer.mercator(np.array([0, 1]))[1] is first  # kept: the second tile does not project again
    assert np.allclose(shapely.bounds(first), layer.bounds[1])
    np.testing.assert_allclose(shapely.get_coordinates(first), shapely.get_coordinates(pyproj_mercator([city])[0]),
                               atol=1e-6)
    assert layer.candidates(*tile_bounds(0, 0, 0)).tolist() == [0, 1]
    assert layer.candidates(*tile_bounds(10, 0, 0)).tolist() == []


def test_property_values_are_numbered_in_order_of_first_appearance_none_left_out_nan_kept_as_text():
    squares = np.array([shapely.box(100 + 300 * i, 100, 300 + 300 * i, 300) for i in range(5)], dtype=object)
    body = encode_layer("zone", squares, {"code": np.array(["b", None, "a", "b", float("nan")], dtype=object),
                                          "has_lead": np.array([True, False, None, True, False], dtype=object)})
    layer = decode(body)["zone"]
    props = [f["properties"] for f in sorted(layer["features"], key=lambda f: f["id"])]
    assert props == [{"code": "b", "has_lead": True}, {"has_lead": False}, {"code": "a"},
                     {"code": "b", "has_lead": True}, {"code": "nan", "has_lead": False}]
