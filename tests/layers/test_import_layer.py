"""`zeren import-layer` on real boundaries (data/chengdu_hangzhou.gpkg, EPSG:4490) in every supported format:
what is stored, what the report says, which CRS is used, and how invalid features are repaired or rejected."""
from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from zeren.api.cli.main import main as cli_main
from zeren.geo.crs import bd09_to_wgs84, gcj02_to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from zeren.layers.store import open_store
from tests.layers._support import cli, real_layer, write_zipped_shapefile

SOURCE = "subdistricts_hangzhou"  # 194 synthetic subdistricts of Hangzhou, EPSG:4490, with parent codes
SHP_ARGS = ["--code-field", "XZQDM", "--name-field", "XZQMC", "--parent-field", "PARENT"]
GEOD = pyproj.Geod(ellps="WGS84")


def _quiet(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


# -- writers: the same layer in every format a city hands over ------------------------------------
def _geojson(gdf, folder: Path):
    path = folder / "subdistricts.geojson"
    gdf.to_file(path, driver="GeoJSON")
    return path, []


def _gpkg_with_layers(gdf, folder: Path):
    path = folder / "boundaries.gpkg"
    real_layer("districts_hangzhou").to_file(path, layer="districts", driver="GPKG")
    gdf.to_file(path, layer="subdistricts", driver="GPKG")
    return path, ["--layer", "subdistricts"]


def _shapefile(encoding, cpg):
    def write(gdf, folder):
        return write_zipped_shapefile(gdf, folder, encoding=encoding, cpg=cpg), SHP_ARGS
    return write


def _csv(encoding):
    def write(gdf, folder):
        table = pd.DataFrame(gdf.drop(columns="geometry"))
        table["wkt"] = shapely.to_wkt(gdf.geometry.to_numpy(), rounding_precision=-1)
        path = folder / f"subdistricts_{encoding}.csv"
        table.to_csv(path, index=False, encoding=encoding)
        return path, ["--crs", "cgcs2000"]  # a CSV states no CRS: it is told
    return write


FORMATS = [
    pytest.param(_geojson, id="geojson"),
    pytest.param(_gpkg_with_layers, id="gpkg-chosen-layer"),
    pytest.param(_shapefile("UTF-8", True), id="shp-utf8-cpg"),
    pytest.param(_shapefile("UTF-8", False), id="shp-utf8-no-cpg"),
    pytest.param(_shapefile("GBK", True), id="shp-gbk-cpg"),
    pytest.param(_shapefile("GBK", False), id="shp-gbk-no-cpg"),
    pytest.param(_csv("utf-8"), id="csv-wkt-utf8"),
    pytest.param(_csv("utf-8-sig"), id="csv-wkt-utf8-bom"),
    pytest.param(_csv("gbk"), id="csv-wkt-gbk"),
]


@pytest.fixture(scope="module", params=FORMATS)
def imported(request, tmp_path_factory):
    """The Hangzhou subdistricts written in one format and imported with the CLI into a new store."""
    folder = tmp_path_factory.mktemp("fmt")
    source = real_layer(SOURCE)
    path, extra = request.param(source, folder)
    store_path = folder / "store.gpkg"
    rc, out, err = _quiet("import-layer", path, "--kind", "subdistrict", "--edition", 2024, "--store", store_path,
                          *extra)
    assert rc == 0, out + err
    store = open_store(store_path)
    zones, log = store.zones(), store.import_log()
    store.close()
    return {"source": source, "zones": zones, "log": log, "out": out, "path": path}


def _by_code(frame):
    return frame.set_index(frame["code"].astype(str)).sort_index()


def test_import_keeps_codes_and_chinese_names(imported):
    stored = _by_code(imported["zones"])
    source = _by_code(imported["source"])
    assert stored["name"].to_dict() == source["name"].to_dict()


def test_import_keeps_geometry(imported):
    stored = _by_code(imported["zones"])
    source = _by_code(imported["source"])
    assert list(stored.index) == list(source.index)
    a = shapely.normalize(np.asarray(stored.geometry.to_numpy(), dtype=object))
    b = shapely.normalize(np.asarray(source.geometry.to_numpy(), dtype=object))
    # CGCS2000 lon/lat is taken as WGS84; the coordinates must come through unchanged (CSV: full precision)
    assert shapely.equals_exact(a, b, tolerance=1e-9).all()
    assert (stored.geometry.geom_type == "MultiPolygon").all()


def test_import_keeps_population_and_parent_codes(imported):
    stored = _by_code(imported["zones"])
    source = _by_code(imported["source"])
    assert stored["parent_code"].to_dict() == source["parent_code"].astype(str).to_dict()
    assert stored["population"].astype("int64").to_dict() == source["population"].astype("int64").to_dict()


def test_import_report_and_log_count_features(imported):
    assert "read: 194" in imported["out"] and "rejected: 0" in imported["out"]
    log = imported["log"].iloc[-1]
    assert (log["command"], int(log["features_read"]), int(log["rejected"]), int(log["written"])) == \
        ("import-layer", 194, 0, 194)


def test_gbk_shapefile_fixture_really_is_gbk(tmp_path):
    """The GBK cases above are only meaningful if the .dbf really holds GBK bytes and no code page mark."""
    path = write_zipped_shapefile(real_layer(SOURCE), tmp_path, encoding="GBK", cpg=False)
    with zipfile.ZipFile(path) as zf:
        dbf = zf.read("xzq.dbf")
        assert "xzq.cpg" not in zf.namelist()
    assert "上城区第1街道".encode("gbk") in dbf
    assert "上城区第1街道".encode("utf-8") not in dbf
    assert dbf[29] == 0  # no language driver id: the reader cannot ask the file


# -- the report: read, repaired, rejected with a reason per feature --------------------------------
def _feature(geometry, code, name="测试区"):
    return {"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": None if geometry is None else shapely.geometry.mapping(geometry)}


def write_features(path: Path, features) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    return path


GOOD = [box(120.10, 30.20, 120.11, 30.21), box(120.12, 30.20, 120.13, 30.21), box(120.14, 30.20, 120.15, 30.21)]

REJECTS = [  # (feature appended as feature 4, words the reason must contain)
    pytest.param(_feature(None, "X4"), ["empty geometry"], id="empty-geometry"),
    pytest.param(_feature(Polygon(), "X4"), ["empty geometry"], id="empty-polygon"),
    pytest.param(_feature(shapely.Point(120.1, 30.2), "X4"), ["not polygonal", "Point"], id="point"),
    pytest.param(_feature(shapely.LineString([(120.1, 30.2), (120.2, 30.3)]), "X4"), ["not polygonal", "LineString"],
                 id="line"),
    pytest.param(_feature(box(200.0, 30.2, 200.01, 30.21), "X4"), ["out of range"], id="lon-out-of-range"),
    pytest.param(_feature(box(120.1, 95.0, 120.11, 95.01), "X4"), ["out of range"], id="lat-out-of-range"),
    pytest.param(_feature(box(30.20, 120.10, 30.21, 120.11), "X4"), ["swapped"], id="lat-lon-swapped"),
    pytest.param(_feature(box(120.16, 30.20, 120.17, 30.21), "X1"), ["duplicate code", "X1", "feature 1"],
                 id="duplicate-code"),
    pytest.param(_feature(Polygon([(120.1, 30.2), (120.11, 30.2), (120.12, 30.2), (120.1, 30.2)]), "X4"),
                 ["invalid polygon", "cannot repair"], id="collapsed-to-a-line"),
    pytest.param(_feature(box(120.16, 30.20, 120.17, 30.21), None), ["no code"], id="no-code"),
    pytest.param(_feature(box(120.16, 30.20, 120.17, 30.21), "X4", name=None), ["no name"], id="no-name"),
]


@pytest.mark.parametrize("bad, words", REJECTS)
def test_report_rejects_feature_with_reason(tmp_path, capsys, bad, words):
    path = write_features(tmp_path / "layer.geojson",
                          [_feature(g, f"X{i + 1}") for i, g in enumerate(GOOD)] + [bad])
    run = cli(capsys, "import-layer", path, "--kind", "key_area", "--dry-run", "--store", tmp_path / "none.gpkg")
    assert run.rc == 2
    assert "read: 4" in run.out and "rejected: 1" in run.out
    line = next(l for l in run.err.splitlines() if l.strip().startswith("- feature"))
    assert "feature 4" in line, run.out
    for word in words:
        assert word in line, line


@pytest.mark.parametrize("bad, words", REJECTS[:3])
def test_skip_rejected_imports_the_rest_and_logs_rejections(tmp_path, capsys, bad, words):
    path = write_features(tmp_path / "layer.geojson",
                          [_feature(g, f"X{i + 1}") for i, g in enumerate(GOOD)] + [bad])
    store_path = tmp_path / "s.gpkg"
    run = cli(capsys, "import-layer", path, "--kind", "key_area", "--skip-rejected", "--store", store_path)
    assert run.rc == 0, run.text
    store = open_store(store_path)
    assert sorted(store.zones()["code"]) == ["X1", "X2", "X3"]
    log = store.import_log().iloc[-1]
    assert (int(log["features_read"]), int(log["rejected"]), int(log["written"])) == (4, 1, 3)


D = 0.01
REPAIRABLE = [  # (invalid polygon, area of its repair in square degrees, parts after repair)
    pytest.param(Polygon([(120.1, 30.2), (120.1 + D, 30.2 + D), (120.1 + D, 30.2), (120.1, 30.2 + D)]),
                 D * D / 2, 2, id="bow-tie"),
    pytest.param(MultiPolygon([box(120.1, 30.2, 120.1 + D, 30.2 + D),
                               box(120.1 + D / 2, 30.2, 120.1 + 1.5 * D, 30.2 + D)]),
                 1.5 * D * D, 1, id="overlapping-parts"),
    pytest.param(Polygon([(120.1, 30.2), (120.1 + D, 30.2), (120.1 + D, 30.2 + D), (120.1, 30.2 + D)],
                         [[(120.1 + D / 2, 30.2 + D / 4), (120.1 + 2 * D, 30.2 + D / 4), (120.1 + 2 * D, 30.2 + D / 2),
                           (120.1 + D / 2, 30.2 + D / 2)]]),
                 None, None, id="hole-crossing-shell"),
]


@pytest.mark.parametrize("invalid, area, parts", REPAIRABLE)
def test_invalid_polygon_is_repaired_and_reported(tmp_path, capsys, invalid, area, parts):
    assert not invalid.is_valid
    path = write_features(tmp_path / "layer.geojson", [_feature(GOOD[0], "X1"), _feature(invalid, "BAD")])
    store_path = tmp_path / "s.gpkg"
    run = cli(capsys, "import-layer", path, "--kind", "key_area", "--store", store_path)
    assert run.rc == 0, run.text
    assert "repaired: 1" in run.out and "feature 2 (code BAD)" in run.out and "make_valid" in run.out
    stored = open_store(store_path).zones().set_index("code").geometry["BAD"]
    assert stored.is_valid and stored.geom_type == "MultiPolygon" and stored.area > 0
    if area is not None:
        assert stored.area == pytest.approx(area, rel=1e-9)
        assert len(stored.geoms) == parts
    # nothing beyond what the file drew: the repair lies within the hull of the input's vertices
    hull = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(invalid)))
    assert stored.difference(hull).area < 1e-15


# -- CRS: from the file, or told; GCJ-02 / BD-09 converted on entry --------------------------------
def _reprojected_geojson(gdf, folder, epsg):
    path = folder / f"d_{epsg}.geojson"
    gdf.to_crs(epsg).to_file(path, driver="GeoJSON")
    return path


def _reprojected_gpkg(gdf, folder, epsg):
    path = folder / f"d_{epsg}.gpkg"
    gdf.to_crs(epsg).to_file(path, driver="GPKG", layer="districts")
    return path


def _reprojected_shp(gdf, folder, epsg):
    return write_zipped_shapefile(gdf.to_crs(epsg), folder, encoding="UTF-8", cpg=True, name="d")


FILE_CRS = [
    pytest.param(_reprojected_gpkg, 32650, id="gpkg-utm50n"),
    pytest.param(_reprojected_geojson, 3857, id="geojson-web-mercator"),
    pytest.param(_reprojected_shp, 4549, id="shp-cgcs2000-gauss-kruger-120e"),
]


@pytest.mark.parametrize("write, epsg", FILE_CRS)
def test_crs_is_taken_from_the_file(tmp_path, capsys, write, epsg):
    source = real_layer("districts_hangzhou")
    path = write(source, tmp_path, epsg)
    extra = ["--code-field", "XZQDM", "--name-field", "XZQMC"] if path.suffix == ".zip" else []
    run = cli(capsys, "import-layer", path, "--kind", "district", "--store", tmp_path / "s.gpkg", *extra)
    assert run.rc == 0, run.text
    assert f"EPSG:{epsg}" in run.out
    stored = _by_code(open_store(tmp_path / "s.gpkg").zones())
    source = _by_code(source)
    distance = shapely.hausdorff_distance(np.asarray(stored.geometry.to_numpy(), dtype=object),
                                          np.asarray(source.geometry.to_numpy(), dtype=object))
    assert distance.max() < 1e-7  # about a centimetre: projected there and back again


def test_crs_given_for_a_file_without_one(tmp_path, capsys):
    source = real_layer("districts_hangzhou")
    table = pd.DataFrame(source.drop(columns="geometry"))
    table["wkt"] = shapely.to_wkt(source.to_crs(32650).geometry.to_numpy(), rounding_precision=-1)
    path = tmp_path / "utm.csv"
    table.to_csv(path, index=False)
    run = cli(capsys, "import-layer", path, "--kind", "district", "--crs", "EPSG:32650", "--store", tmp_path / "s.gpkg")
    assert run.rc == 0, run.text
    stored = _by_code(open_store(tmp_path / "s.gpkg").zones())
    distance = shapely.hausdorff_distance(np.asarray(stored.geometry.to_numpy(), dtype=object),
                                          np.asarray(_by_code(source).geometry.to_numpy(), dtype=object))
    assert distance.max() < 1e-7


SHIFTS = [  # (--crs, WGS84 -> shifted, shifted -> WGS84, plausible offset range in metres around Hangzhou)
    pytest.param("gcj02", wgs84_to_gcj02, gcj02_to_wgs84, (200.0, 900.0), id="gcj02-amap"),
    pytest.param("bd09", wgs84_to_bd09, bd09_to_wgs84, (600.0, 1600.0), id="bd09-baidu"),
]


@pytest.mark.parametrize("crs, forward, inverse, offset_m", SHIFTS)
def test_web_map_coordinates_are_converted_on_entry(tmp_path, capsys, crs, forward, inverse, offset_m):
    truth = real_layer("districts_hangzhou").set_crs(4326, allow_override=True)
    shifted = truth.copy()
    shifted["geometry"] = shapely.transform(truth.geometry.to_numpy(),
                                            lambda xy: np.column_stack(forward(xy[:, 0], xy[:, 1])))
    path = tmp_path / f"{crs}.geojson"
    shifted.to_file(path, driver="GeoJSON")  # labelled WGS84, as web-map exports are: --crs says otherwise
    run = cli(capsys, "import-layer", path, "--kind", "district", "--crs", crs, "--store", tmp_path / "s.gpkg")
    assert run.rc == 0, run.text
    stored = _by_code(open_store(tmp_path / "s.gpkg").zones())
    given = _by_code(shifted)
    got = shapely.get_coordinates(shapely.normalize(np.asarray(stored.geometry.to_numpy(), dtype=object)))
    gxy = shapely.get_coordinates(shapely.normalize(np.asarray(given.geometry.to_numpy(), dtype=object)))
    # normalisation orders vertices the same way as long as the shift is the same for all of them
    assert got.shape == gxy.shape
    want = np.column_stack(inverse(gxy[:, 0], gxy[:, 1]))
    assert np.abs(got - want).max() < 1e-9
    _, _, moved = GEOD.inv(gxy[:, 0], gxy[:, 1], got[:, 0], got[:, 1])
    assert offset_m[0] < moved.min() and moved.max() < offset_m[1]
    # and it lands back on the true boundary (the inverse round trip is under a centimetre)
    truth_xy = shapely.get_coordinates(shapely.normalize(np.asarray(_by_code(truth).geometry.to_numpy(), dtype=object)))
    _, _, error = GEOD.inv(truth_xy[:, 0], truth_xy[:, 1], got[:, 0], got[:, 1])
    assert error.max() < 0.01


# -- editions and parents through the CLI ----------------------------------------------------------
def test_a_new_edition_writes_only_real_changes(tmp_path, capsys):
    layer = real_layer(SOURCE)
    path, _ = _geojson(layer, tmp_path)
    store_path = tmp_path / "s.gpkg"
    assert cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2024, "--store", store_path).rc == 0
    # the same file again as 2025: every zone unchanged, nothing written
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--store", store_path)
    assert run.rc == 0 and f"未变 / unchanged {len(layer)}" in run.out and "nothing written" in run.out
    assert set(open_store(store_path).zones()["edition"]) == {2024}
    # one zone redrawn and one left out, without a scope: the redrawn one gets a 2025 row, the other stays
    moved = layer.copy()
    first, gone = sorted(moved["code"])[:2]
    moved.loc[moved["code"] == first, "geometry"] = shapely.buffer(moved.loc[moved["code"] == first].geometry.values,
                                                                   -0.001)  # about 100 m inwards
    moved = moved[moved["code"] != gone]
    path2 = tmp_path / "moved.geojson"
    moved.to_file(path2, driver="GeoJSON")
    run = cli(capsys, "import-layer", path2, "--kind", "subdistrict", "--edition", 2025, "--store", store_path)
    assert run.rc == 0 and "变更 / changed 1" in run.out and "撤销 / retired 0" in run.out
    zones = open_store(store_path).zones()
    rows = zones[zones["code"] == first].sort_values("edition")
    assert rows["edition"].tolist() == [2024, 2025]
    assert [str(v) for v in rows["valid_to"]][0] == "2025-01-01 00:00:00" and pd.isna(rows["valid_to"].iloc[1])
    assert pd.isna(zones.loc[zones["code"] == gone, "valid_to"]).all()  # not in the file, still in force
    # declared complete for the kind: the left-out zone is retired from the edition's first day
    run = cli(capsys, "import-layer", path2, "--kind", "subdistrict", "--edition", 2025, "--retire-missing",
              "--store", store_path)
    assert run.rc == 0 and "撤销 / retired 1" in run.out and gone in run.out
    zones = open_store(store_path).zones()
    assert [str(v) for v in zones.loc[zones["code"] == gone, "valid_to"]] == ["2025-01-01 00:00:00"]


def test_parent_codes_are_derived_from_the_parent_layer(tmp_path, capsys):
    store_path = tmp_path / "s.gpkg"
    districts, _ = _gpkg_with_layers(real_layer(SOURCE), tmp_path)
    assert cli(capsys, "import-layer", districts, "--layer", "districts", "--kind", "district",
               "--store", store_path).rc == 0
    subs = real_layer(SOURCE)
    expected = dict(zip(subs["code"], subs["parent_code"]))
    path = tmp_path / "no_parents.geojson"
    subs.drop(columns="parent_code").to_file(path, driver="GeoJSON")
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--store", store_path)
    assert run.rc == 0 and "parent_code derived" in run.out
    stored = open_store(store_path).zones(kind="subdistrict")
    assert dict(zip(stored["code"], stored["parent_code"])) == expected


def test_dry_run_writes_nothing(tmp_path, capsys):
    path, _ = _geojson(real_layer(SOURCE), tmp_path)
    store_path = tmp_path / "s.gpkg"
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--dry-run", "--store", store_path)
    assert run.rc == 0 and "新增 / added 194" in run.out and "dry run" in run.out
    assert not store_path.exists()
