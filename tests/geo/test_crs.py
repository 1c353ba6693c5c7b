"""Tests for geo.crs: CRS parsing, reprojection to WGS84, GCJ-02 / BD-09, metric CRS, lon/lat checks."""
from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from zeren.geo import crs as gcrs
from zeren.geo.crs import (
    InputCRS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    check_lonlat,
    from_wgs84_xy,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    geometries_from_wgs84,
    geometries_to_wgs84,
    lonlat_problems,
    metric_crs,
    parse_crs,
    to_wgs84_xy,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from zeren.geo.errors import CoordinateError, GeoInputError, UnknownCRSError

GEOD = pyproj.Geod(ellps="WGS84")
CHENGDU_BOUNDS = (103.90, 30.50, 104.25, 30.80)
HANGZHOU_BOUNDS = (120.00, 30.15, 120.40, 30.40)


def metres_between(lon1, lat1, lon2, lat2) -> np.ndarray:
    _, _, dist = GEOD.inv(np.ravel(lon1), np.ravel(lat1), np.ravel(lon2), np.ravel(lat2))
    return np.asarray(dist)


# --- parse_crs ------------------------------------------------------------------------------------

GOOD = [
    (4326, "EPSG:4326", None),
    (np.int64(4490), "EPSG:4490", None),
    ("EPSG:4326", "EPSG:4326", None),
    ("epsg:32648", "EPSG:32648", None),
    ("4490", "EPSG:4490", None),
    (" 32651 ", "EPSG:32651", None),
    ("wgs84", "EPSG:4326", None),
    ("WGS 84", "EPSG:4326", None),
    ("WGS-84", "EPSG:4326", None),
    ("cgcs2000", "EPSG:4490", None),
    ("CGCS2000", "EPSG:4490", None),
    ("gcj02", "gcj02", "gcj02"),
    ("GCJ-02", "gcj02", "gcj02"),
    ("amap", "gcj02", "gcj02"),
    ("Tencent", "gcj02", "gcj02"),
    ("bd09", "bd09", "bd09"),
    ("BD-09", "bd09", "bd09"),
    ("baidu", "bd09", "bd09"),
    ("OGC:CRS84", "OGC:CRS84", None),
    ("urn:ogc:def:crs:EPSG::3857", "EPSG:3857", None),
    (pyproj.CRS.from_epsg(4547).to_wkt(), "EPSG:4547", None),
    (pyproj.CRS.from_epsg(32648), "EPSG:32648", None),
]


@pytest.mark.parametrize(("value", "label", "shift"), GOOD, ids=[repr(g[0])[:40] for g in GOOD])
def test_parse_crs_accepts(value, label, shift):
    parsed = parse_crs(value)
    assert isinstance(parsed, InputCRS)
    assert parsed.label == label
    assert parsed.shift == shift
    if shift is not None:
        assert parsed.crs == pyproj.CRS.from_epsg(4326)
    else:
        assert parsed.crs.equals(pyproj.CRS.from_user_input(label))


def test_parse_crs_proj_string_keeps_definition():
    parsed = parse_crs("+proj=utm +zone=48 +datum=WGS84 +units=m +no_defs")
    assert parsed.shift is None
    assert parsed.crs.is_projected
    assert parsed.crs.equals(pyproj.CRS.from_epsg(32648))


def test_parse_crs_is_idempotent():
    parsed = parse_crs("gcj02")
    assert parse_crs(parsed) is parsed


BAD = [
    None,
    "",
    "   ",
    "foo",
    "bd09mc",
    "EPSG:999999",
    999999,
    0,
    -1,
    True,
    4326.0,
    [4326],
    "EPSG:5773",  # vertical (EGM96 height)
    5773,
    "EPSG:4979",  # geographic 3D
    "EPSG:4326+5773",  # compound
    4978,  # geocentric
    "IAU_2015:49900",  # Mars: no transformation to WGS84
    'LOCAL_CS["site",LOCAL_DATUM["x",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]',
]


@pytest.mark.parametrize("value", BAD, ids=[repr(b)[:30] for b in BAD])
def test_parse_crs_rejects(value):
    with pytest.raises(UnknownCRSError) as err:
        parse_crs(value)
    message = str(err.value)
    for form in ("EPSG", "wgs84", "cgcs2000", "gcj02", "bd09", "WKT"):
        assert form in message
    assert isinstance(err.value, GeoInputError)


# --- GCJ-02 / BD-09 against published pairs ---------------------------------------------------------

# (wgs lon, wgs lat, gcj lon, gcj lat). Shanghai, Shenzhen, Beijing from googollee/eviltransform,
# go/transform_test.go; the last from wandergis/coordtransform, test/app.js (wgs84togcj02(116.404, 39.915)).
GCJ_PAIRS = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),
    (116.404, 39.915, 116.41024449916938, 39.91640428150164),
]


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), GCJ_PAIRS)
def test_wgs84_to_gcj02_published_pairs(wlon, wlat, glon, glat):
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert abs(lon - glon) < 1e-6
    assert abs(lat - glat) < 1e-6


def test_wgs84_to_gcj02_vectorised_matches_pairs():
    pairs = np.array(GCJ_PAIRS)
    lon, lat = wgs84_to_gcj02(pairs[:, 0], pairs[:, 1])
    np.testing.assert_allclose(lon, pairs[:, 2], atol=1e-9)
    np.testing.assert_allclose(lat, pairs[:, 3], atol=1e-9)


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), GCJ_PAIRS)
def test_gcj02_to_wgs84_inverts_published_pairs(wlon, wlat, glon, glat):
    lon, lat = gcj02_to_wgs84(glon, glat)
    # The published GCJ values carry ~15 digits, so the inverse lands within ~1e-9 deg of the source.
    assert abs(lon - wlon) < 1e-8
    assert abs(lat - wlat) < 1e-8


# (gcj lon, gcj lat, bd lon, bd lat): wandergis/coordtransform test/app.js, gcj02tobd09(116.404, 39.915).
GCJ_BD_PAIRS = [(116.404, 39.915, 116.41036949371029, 39.92133699351021)]
# (wgs lon, wgs lat, bd lon, bd lat): dromara/hutool CoordinateUtilTest (wgs84ToBd09Test and
# wgs84toBd09Test2, the latter checked there against https://tool.lu/coordinate/).
WGS_BD_PAIRS = [
    (116.404, 39.915, 116.41662724378733, 39.922699552216216),
    (122.99395597, 44.99804071, 123.00636516028885, 45.0063690918959),
]


@pytest.mark.parametrize(("glon", "glat", "blon", "blat"), GCJ_BD_PAIRS)
def test_gcj02_to_bd09_published_pair(glon, glat, blon, blat):
    lon, lat = gcj02_to_bd09(glon, glat)
    assert abs(lon - blon) < 1e-6
    assert abs(lat - blat) < 1e-6


@pytest.mark.parametrize(("wlon", "wlat", "blon", "blat"), WGS_BD_PAIRS)
def test_wgs84_to_bd09_published_pairs(wlon, wlat, blon, blat):
    lon, lat = wgs84_to_bd09(wlon, wlat)
    assert abs(lon - blon) < 1e-6
    assert abs(lat - blat) < 1e-6
    back_lon, back_lat = bd09_to_wgs84(blon, blat)
    assert abs(back_lon - wlon) < 1e-8
    assert abs(back_lat - wlat) < 1e-8


def test_bd09_to_gcj02_is_exact_inverse_not_closed_form():
    # coordtransform's closed-form bd09togcj02(116.404, 39.915) = (116.39762729119315, 39.90865673957631)
    # (test/app.js) is only approximate; ours must map back onto the input exactly and stay close to it.
    lon, lat = bd09_to_gcj02(116.404, 39.915)
    fwd_lon, fwd_lat = gcj02_to_bd09(lon, lat)
    assert abs(fwd_lon - 116.404) < 1e-10
    assert abs(fwd_lat - 39.915) < 1e-10
    assert abs(lon - 116.39762729119315) < 2e-6
    assert abs(lat - 39.90865673957631) < 2e-6
    closed_form_miss = gcj02_to_bd09(116.39762729119315, 39.90865673957631)
    assert max(abs(closed_form_miss[0] - 116.404), abs(closed_form_miss[1] - 39.915)) > 1e-8


# --- round trips ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def china_grid() -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.meshgrid(np.linspace(73.6, 134.7, 100), np.linspace(18.2, 53.5, 100))
    return lon.ravel(), lat.ravel()


def test_grid_is_10000_points(china_grid):
    assert china_grid[0].size == 10_000


def test_gcj02_round_trip_grid_under_1cm(china_grid):
    lon, lat = china_grid
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert np.all(metres_between(lon, lat, glon, glat) > 10)  # the shift really happened (43-690 m here)
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    assert metres_between(lon, lat, back_lon, back_lat).max() < 0.01
    assert max(np.abs(back_lon - lon).max(), np.abs(back_lat - lat).max()) < 1e-7


def test_bd09_round_trip_grid_under_1cm(china_grid):
    lon, lat = china_grid
    blon, blat = wgs84_to_bd09(lon, lat)
    back_lon, back_lat = bd09_to_wgs84(blon, blat)
    assert metres_between(lon, lat, back_lon, back_lat).max() < 0.01
    assert max(np.abs(back_lon - lon).max(), np.abs(back_lat - lat).max()) < 1e-7


def test_gcj02_bd09_round_trip_grid(china_grid):
    lon, lat = china_grid
    glon, glat = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert max(np.abs(glon - lon).max(), np.abs(glat - lat).max()) < 1e-9


@settings(max_examples=300, deadline=None)
@given(
    lon=st.floats(min_value=72.5, max_value=137.3, allow_nan=False),
    lat=st.floats(min_value=1.5, max_value=55.2, allow_nan=False),
)
def test_round_trips_property(lon, lat):
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert abs(back[0] - lon) < 1e-7 and abs(back[1] - lat) < 1e-7
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert abs(back[0] - lon) < 1e-7 and abs(back[1] - lat) < 1e-7


# Edge cases outside China from googollee/eviltransform matlab/test/testSuite.m (Denver, Brisbane, Rio),
# plus Tokyo, London and the far side of the world.
OUTSIDE_CHINA = np.array(
    [
        (-104.9903, 39.7392),
        (153.0251, -27.4698),
        (-43.1729, -22.9068),
        (139.767125, 35.681236),
        (-0.1276, 51.5072),
        (0.0, 0.0),
        (-180.0, -90.0),
    ]
)


def test_outside_china_gcj02_is_identity():
    lon, lat = OUTSIDE_CHINA[:, 0], OUTSIDE_CHINA[:, 1]
    for func in (wgs84_to_gcj02, gcj02_to_wgs84):
        out_lon, out_lat = func(lon, lat)
        np.testing.assert_array_equal(out_lon, lon)
        np.testing.assert_array_equal(out_lat, lat)


def test_mixed_inside_and_outside_is_element_wise():
    lon = np.array([104.07, 139.767125, 120.15])
    lat = np.array([30.66, 35.681236, 30.28])
    out_lon, out_lat = wgs84_to_gcj02(lon, lat)
    assert out_lon[1] == lon[1] and out_lat[1] == lat[1]
    assert abs(out_lon[0] - lon[0]) > 1e-3 and abs(out_lon[2] - lon[2]) > 1e-3


def test_non_finite_pass_through_quietly():
    lon = np.array([np.nan, np.inf, 104.07])
    lat = np.array([30.0, 30.0, 30.66])
    with np.errstate(all="raise"):
        for func in (wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, wgs84_to_bd09, bd09_to_wgs84):
            out_lon, _ = func(lon, lat)
            assert np.isnan(out_lon[0]) and np.isposinf(out_lon[1]) and np.isfinite(out_lon[2])


def test_shapes_are_kept():
    lon = np.full((3, 4), 104.07)
    lat = np.full((3, 4), 30.66)
    for func in (wgs84_to_gcj02, gcj02_to_wgs84, wgs84_to_bd09, bd09_to_wgs84):
        out_lon, out_lat = func(lon, lat)
        assert out_lon.shape == (3, 4) and out_lat.shape == (3, 4)
    empty = wgs84_to_bd09(np.array([]), np.array([]))
    assert empty[0].shape == (0,)


# --- to_wgs84_xy ------------------------------------------------------------------------------------


def meridian_arc(lat_deg: float) -> float:
    """WGS84 meridian distance from the equator, by Simpson integration (independent of PROJ)."""
    a = 6378137.0
    f = 1 / 298.257223563
    e2 = f * (2 - f)
    phi = np.linspace(0.0, math.radians(lat_deg), 4001)
    g = a * (1 - e2) / (1 - e2 * np.sin(phi) ** 2) ** 1.5
    h = phi[1] - phi[0]
    return float(h / 3 * (g[0] + g[-1] + 4 * g[1:-1:2].sum() + 2 * g[2:-1:2].sum()))


def test_to_wgs84_xy_from_utm48n_central_meridian():
    # On UTM 48N's central meridian (105°E), northing = 0.9996 * meridian arc and easting = 500 km.
    lats = np.array([0.0, 30.6, 31.0])
    northing = np.array([0.9996 * meridian_arc(v) for v in lats])
    lon, lat = to_wgs84_xy(np.full(3, 500_000.0), northing, parse_crs("EPSG:32648"))
    np.testing.assert_allclose(lon, 105.0, atol=1e-9)
    np.testing.assert_allclose(lat, lats, atol=1e-9)


def test_to_wgs84_xy_utm_round_trip_near_chengdu():
    lon = np.array([104.0657, 103.95, 104.2])
    lat = np.array([30.6574, 30.55, 30.78])
    x, y = from_wgs84_xy(lon, lat, "EPSG:32648")
    assert np.all((x > 300_000) & (x < 500_000))  # west of the 105°E central meridian
    back_lon, back_lat = to_wgs84_xy(x, y, parse_crs(32648))
    np.testing.assert_allclose(back_lon, lon, atol=1e-9)
    np.testing.assert_allclose(back_lat, lat, atol=1e-9)


def test_to_wgs84_xy_geographic_passthrough_and_shifts():
    lon = np.array([104.0657, 120.1551])
    lat = np.array([30.6574, 30.2741])
    for name in ("EPSG:4326", "EPSG:4490", "OGC:CRS84", "wgs84", "cgcs2000"):
        out_lon, out_lat = to_wgs84_xy(lon, lat, parse_crs(name))
        np.testing.assert_array_equal(out_lon, lon)
        np.testing.assert_array_equal(out_lat, lat)
    np.testing.assert_array_equal(to_wgs84_xy(lon, lat, parse_crs("gcj02"))[0], gcj02_to_wgs84(lon, lat)[0])
    np.testing.assert_array_equal(to_wgs84_xy(lon, lat, parse_crs("bd09"))[1], bd09_to_wgs84(lon, lat)[1])


def test_to_wgs84_xy_web_mercator():
    # Web Mercator: x = R * lon_rad, y = R * ln(tan(pi/4 + lat_rad/2)) with R = 6378137.
    R = 6378137.0
    lon = np.array([104.0657, -70.0])
    lat = np.array([30.6574, -33.4])
    x = R * np.radians(lon)
    y = R * np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))
    out_lon, out_lat = to_wgs84_xy(x, y, parse_crs(3857))
    np.testing.assert_allclose(out_lon, lon, atol=1e-9)
    np.testing.assert_allclose(out_lat, lat, atol=1e-9)


def test_transformers_are_cached():
    crs = parse_crs("EPSG:32651")
    to_wgs84_xy([500_000.0], [3_350_000.0], crs)
    before = gcrs._to_wgs84_transformer.cache_info().hits
    to_wgs84_xy([500_000.0], [3_350_000.0], crs)
    assert gcrs._to_wgs84_transformer.cache_info().hits > before


# --- geometries -------------------------------------------------------------------------------------


def utm_polygon_with_hole() -> Polygon:
    shell = [
        (395_000, 3_385_000), (405_000, 3_385_000), (405_000, 3_395_000), (395_000, 3_395_000), (395_000, 3_385_000)
    ]
    hole = [(398_000, 3_388_000), (398_000, 3_390_000), (400_000, 3_390_000), (398_000, 3_388_000)]
    return Polygon(shell, [hole])


def test_geometries_to_wgs84_keeps_ring_structure():
    poly = utm_polygon_with_hole()
    multi = MultiPolygon([poly, box(410_000, 3_385_000, 412_000, 3_387_000)])
    out = geometries_to_wgs84(np.array([poly, None, multi], dtype=object), parse_crs("EPSG:32648"))
    assert isinstance(out, np.ndarray) and out.shape == (3,)
    assert out[1] is None
    result = out[0]
    assert result.geom_type == "Polygon" and result.is_valid
    assert len(result.interiors) == 1
    assert len(result.exterior.coords) == 5 and len(result.interiors[0].coords) == 4
    exp_lon, exp_lat = to_wgs84_xy(*np.asarray(poly.exterior.coords).T, parse_crs(32648))
    np.testing.assert_array_equal(np.asarray(result.exterior.coords), np.column_stack([exp_lon, exp_lat]))
    minx, miny, maxx, maxy = result.bounds
    assert 103.8 < minx < maxx < 104.1 and 30.5 < miny < maxy < 30.7
    assert out[2].geom_type == "MultiPolygon" and len(out[2].geoms) == 2
    assert len(out[2].geoms[0].interiors) == 1


def test_geometries_gcj02_round_trip():
    wgs = np.array([box(104.0, 30.6, 104.1, 30.7), shapely.LineString([(120.1, 30.2), (120.2, 30.3)])])
    gcj = geometries_from_wgs84(wgs, "gcj02")
    g_lon, g_lat = wgs84_to_gcj02(104.0, 30.6)
    assert (g_lon, g_lat) in [tuple(c) for c in np.asarray(gcj[0].exterior.coords)]
    back = geometries_to_wgs84(gcj, parse_crs("gcj02"))
    for original, returned in zip(wgs, back):
        assert original.geom_type == returned.geom_type
        np.testing.assert_allclose(shapely.get_coordinates(returned), shapely.get_coordinates(original), atol=1e-9)


def test_geometries_from_wgs84_to_utm_and_back():
    wgs = np.array([box(104.0, 30.6, 104.1, 30.7)])
    utm = geometries_from_wgs84(wgs, parse_crs(32648))
    assert 5e7 < utm[0].area < 2e8  # ~9.6 km x 11 km
    back = geometries_to_wgs84(utm, "EPSG:32648")
    np.testing.assert_allclose(shapely.get_coordinates(back[0]), shapely.get_coordinates(wgs[0]), atol=1e-9)


def test_geometries_reject_non_geometries():
    with pytest.raises(GeoInputError):
        geometries_to_wgs84(np.array([1, 2], dtype=object), parse_crs(4326))


# --- metric_crs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "epsg"),
    [
        (CHENGDU_BOUNDS, 32648),
        ((104.07, 30.66, 104.07, 30.66), 32648),  # a single point
        (HANGZHOU_BOUNDS, 32651),
        ((151.0, -34.1, 151.4, -33.7), 32756),  # Sydney: south
        ((179.5, 10.0, 180.0, 10.5), 32660),
    ],
)
def test_metric_crs_utm(bounds, epsg):
    assert metric_crs(bounds).to_epsg() == epsg


def test_metric_crs_wide_is_equal_area_laea():
    both = (CHENGDU_BOUNDS[0], HANGZHOU_BOUNDS[1], HANGZHOU_BOUNDS[2], CHENGDU_BOUNDS[3])
    crs = metric_crs(both)
    assert crs.to_epsg() is None
    assert crs.coordinate_operation.method_name == "Lambert Azimuthal Equal Area"
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    assert params["Longitude of natural origin"] == pytest.approx((both[0] + both[2]) / 2)
    assert params["Latitude of natural origin"] == pytest.approx((both[1] + both[3]) / 2)
    assert crs.axis_info[0].unit_name == "metre"
    # Areas are exact, even at the far (Hangzhou) end: compare with the geodesic area.
    cell = shapely.segmentize(box(120.0, 30.0, 121.0, 31.0), 0.01)
    geodesic_area = abs(GEOD.geometry_area_perimeter(cell)[0])
    projected = geometries_from_wgs84(np.array([cell]), InputCRS(label="laea", crs=crs))[0]
    assert projected.area == pytest.approx(geodesic_area, rel=1e-6)


@pytest.mark.parametrize(
    "bounds",
    [
        (np.nan, np.nan, np.nan, np.nan),  # total_bounds of an empty GeoSeries
        (104.0, 30.0, np.nan, 31.0),
        (104.0, 30.0, np.inf, 31.0),
        (),
        (104.0, 30.0, 105.0),
        (105.0, 30.0, 104.0, 31.0),  # min > max
        (400_000, 3_385_000, 405_000, 3_395_000),  # metres, not degrees
        "chengdu",
    ],
)
def test_metric_crs_rejects_bad_bounds(bounds):
    with pytest.raises(GeoInputError):
        metric_crs(bounds)


# --- lon/lat sanity ---------------------------------------------------------------------------------


def test_lonlat_problems_each_case():
    lon = np.array([104.07, np.nan, 104.07, 200.0, 104.0, 30.66, 30.66, -10.0, 150.0])
    lat = np.array([30.66, 30.0, np.inf, 30.0, -95.0, 104.07, 104.07, 50.0, 95.0])
    got = lonlat_problems(lon, lat)
    expected = ["ok", "not_finite", "not_finite", "out_of_range", "out_of_range",
                "swapped", "swapped", "ok", "out_of_range"]
    assert got.tolist() == expected


def test_lonlat_problems_swapped_by_data_bounds():
    # Both orders are valid lon/lat, only the data tell that (30.66, 104.07) is really (104.07, 30.66).
    lon = np.array([30.66, 104.07, 30.66, 30.66])
    lat = np.array([104.07, 30.66, 50.0, 60.0])
    bounds = (103.5, 30.2, 104.9, 31.4)
    assert lonlat_problems(lon, lat, bounds).tolist() == ["swapped", "ok", "ok", "ok"]
    wide = (-180.0, -90.0, 180.0, 90.0)
    assert lonlat_problems(lon, lat, wide).tolist() == ["swapped", "ok", "ok", "ok"]
    # In range for both orders; outside the data, but the swap is inside.
    assert lonlat_problems([30.5], [104.0], bounds).tolist() == ["swapped"]
    assert lonlat_problems([31.0], [103.9], (100.0, 25.0, 110.0, 35.0)).tolist() == ["swapped"]
    assert lonlat_problems([31.0], [60.0], (100.0, 25.0, 110.0, 35.0)).tolist() == ["ok"]


def test_lonlat_problems_shape_and_bad_bounds():
    got = lonlat_problems(np.zeros((2, 3)), np.zeros((2, 3)))
    assert got.shape == (2, 3) and set(got.ravel()) == {"ok"}
    with pytest.raises(GeoInputError):
        lonlat_problems([104.0], [30.0], data_bounds=(np.nan,) * 4)


def test_check_lonlat_ok_returns_none():
    assert check_lonlat(104.07, 30.66) is None
    assert check_lonlat(104.07, 30.66, CHENGDU_BOUNDS) is None


def test_check_lonlat_swapped_message():
    with pytest.raises(CoordinateError) as err:
        check_lonlat(30.66, 104.07, CHENGDU_BOUNDS)
    assert str(err.value) == (
        "latitude 104.07 is out of range [-90, 90]; did you swap lon and lat? "
        "lon=104.07, lat=30.66 lies inside the data"
    )
    with pytest.raises(CoordinateError, match=r"did you swap lon and lat\? lon=104.07, lat=30.66 would be valid"):
        check_lonlat(30.66, 104.07)
    with pytest.raises(CoordinateError) as err:
        check_lonlat(25.0, 35.0, (30.0, 20.0, 40.0, 28.0))
    assert str(err.value) == (
        "lon=25, lat=35 lies outside the data; did you swap lon and lat? lon=35, lat=25 lies inside the data"
    )


@pytest.mark.parametrize(
    ("lon", "lat", "pattern"),
    [
        (200.0, 30.0, r"^longitude 200 is out of range \[-180, 180\]$"),
        (104.0, -95.5, r"^latitude -95.5 is out of range \[-90, 90\]$"),
        (200.0, 95.0, r"longitude 200 .*; latitude 95 "),
        (float("nan"), 30.0, r"finite"),
        (104.0, float("inf"), r"finite"),
        ("abc", 30.0, r"must be numbers"),
        (None, 30.0, r"must be numbers"),
    ],
)
def test_check_lonlat_errors(lon, lat, pattern):
    with pytest.raises(CoordinateError, match=pattern):
        check_lonlat(lon, lat)
