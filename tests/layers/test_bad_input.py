"""Bad input, one case per test: exit 2, a message naming the file and the row/field, and no partial write
(the store's zones, planners, appointments, import and audit logs are unchanged, byte for byte)."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import shapely
from shapely.geometry import box

from tests.layers._support import DATA, cli, file_digest, real_layer, store_state, write_zipped_shapefile

# Near Tianfu Square, inside the demo's extent.
SQUARE = box(104.060, 30.650, 104.070, 30.660)


def _features(path: Path, geometries, codes=None) -> Path:
    codes = codes or [f"K{i + 1}" for i in range(len(geometries))]
    features = [{"type": "Feature", "properties": {"code": c, "name": "测试区"},
                 "geometry": None if g is None else shapely.geometry.mapping(g)} for g, c in zip(geometries, codes)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def _layer(name, geometries, codes=None, extra=()):
    def build(folder: Path):
        return ["import-layer", _features(folder / name, geometries, codes), "--kind", "key_area", *extra]
    return build


def _text(name, content: bytes, command="import-layer", extra=("--kind", "key_area")):
    def build(folder: Path):
        path = folder / name
        path.write_bytes(content)
        return [command, path, *extra]
    return build


def _csv(name, header, rows, command, encoding="utf-8", extra=()):
    def build(folder: Path):
        path = folder / name
        lines = [",".join(header)] + [",".join(r) for r in rows]
        path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
        return [command, path, *extra]
    return build


def _shapefile_without_prj(folder: Path):
    path = write_zipped_shapefile(real_layer("districts_hangzhou"), folder, encoding="UTF-8", cpg=True, prj=False)
    return ["import-layer", path, "--kind", "district", "--code-field", "XZQDM", "--name-field", "XZQMC"]


def _shapefile_with_unreadable_prj(folder: Path):
    good = write_zipped_shapefile(real_layer("districts_hangzhou"), folder, encoding="UTF-8", cpg=True)
    path = folder / "badprj.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for n in src.namelist():
            dst.writestr(n, b'GEOGCS["nonsense",DATUM["x"]]' if n.endswith(".prj") else src.read(n))
    return ["import-layer", path, "--kind", "district", "--code-field", "XZQDM", "--name-field", "XZQMC"]


def _zip_with_two_shapefiles(folder: Path):
    one = write_zipped_shapefile(real_layer("districts_hangzhou"), folder, encoding="UTF-8", cpg=True, name="a")
    path = folder / "two.zip"
    with zipfile.ZipFile(one) as src, zipfile.ZipFile(path, "w") as dst:
        for n in src.namelist():
            dst.writestr(n, src.read(n))
            dst.writestr("b" + n[1:], src.read(n))
    return ["import-layer", path, "--kind", "district"]


def _gpkg_with_two_layers(folder: Path):
    path = folder / "two_layers.gpkg"
    shutil.copyfile(DATA, path)
    return ["import-layer", path, "--kind", "district"]


def _missing(folder: Path):
    return ["import-layer", folder / "nowhere.geojson", "--kind", "district"]


def _folder(folder: Path):
    (folder / "a_folder.geojson").mkdir()
    return ["import-layer", folder / "a_folder.geojson", "--kind", "district"]


PLANNERS = ["id", "name", "organization", "disciplines", "public_contact", "private_contact"]
APPOINTMENTS = ["planner_id", "zone_kind", "zone_code", "role", "start", "end"]

# (builder(folder) -> argv without --store, words the error must contain)
CASES = [
    # zone layers: features
    pytest.param(_layer("range.geojson", [SQUARE, box(190, 30.65, 190.01, 30.66)]), ["feature 2", "out of range"],
                 id="coordinates-out-of-range"),
    pytest.param(_layer("swap.geojson", [SQUARE, box(30.65, 104.06, 30.66, 104.07)]), ["feature 2", "swapped"],
                 id="lat-lon-swapped"),
    pytest.param(_layer("empty.geojson", [SQUARE, None]), ["feature 2", "empty geometry"], id="empty-geometry"),
    pytest.param(_layer("points.geojson", [SQUARE, shapely.Point(104.06, 30.65)]), ["feature 2", "not polygonal"],
                 id="point-in-polygon-layer"),
    pytest.param(_layer("flat.geojson", [SQUARE, shapely.Polygon([(104.06, 30.65), (104.07, 30.65), (104.08, 30.65)])]),
                 ["feature 2", "cannot repair"], id="unrepairable-polygon"),
    pytest.param(_layer("dup.geojson", [SQUARE, box(104.07, 30.65, 104.08, 30.66)], ["K1", "K1"]),
                 ["feature 2", "duplicate code 'K1'"], id="duplicate-codes"),
    pytest.param(_csv("points.csv", ["code", "name", "lon", "lat"], [["K1", "点", "104.06", "30.65"]], "import-layer",
                      extra=("--kind", "key_area", "--crs", "wgs84")), ["row 2", "not polygonal"],
                 id="csv-lon-lat-points-in-polygon-layer"),
    # zone layers: CRS
    pytest.param(_csv("nocrs.csv", ["code", "name", "wkt"], [["K1", "甲", f'"{SQUARE.wkt}"']], "import-layer",
                      extra=("--kind", "key_area")), ["states no CRS", "--crs"], id="csv-without-crs"),
    pytest.param(_shapefile_without_prj, ["states no CRS", "--crs"], id="shapefile-without-prj"),
    pytest.param(_shapefile_with_unreadable_prj, ["badprj.zip", "cannot be read"], id="shapefile-with-unreadable-prj"),
    pytest.param(_layer("x.geojson", [SQUARE], extra=("--crs", "EPSG:999999")), ["unknown CRS", "999999"],
                 id="unknown-epsg"),
    pytest.param(_layer("y.geojson", [SQUARE], extra=("--crs", "mars")), ["unknown CRS", "mars"],
                 id="unknown-crs-name"),
    # zone layers: files
    pytest.param(_missing, ["nowhere.geojson", "no such file"], id="missing-file"),
    pytest.param(_folder, ["a_folder.geojson", "folder"], id="folder-not-file"),
    pytest.param(_text("garbled.geojson", b'{"type": "FeatureColl'), ["garbled.geojson", "cannot be read"],
                 id="unreadable-geojson"),
    pytest.param(_text("empty.geojson", b""), ["empty.geojson", "empty"], id="empty-file"),
    pytest.param(_text("notzip.zip", b"PK\x03\x04 this is not a zip"), ["notzip.zip", "not a valid zip"],
                 id="corrupt-zip"),
    pytest.param(_zip_with_two_shapefiles, ["two.zip", "exactly one .shp"], id="zip-with-two-shapefiles"),
    pytest.param(_gpkg_with_two_layers, ["two_layers.gpkg", "--layer", "subdistricts_chengdu"],
                 id="gpkg-layer-not-chosen"),
    pytest.param(_layer("z.geojson", [SQUARE], extra=("--layer", "nope")), ["z.geojson", "no layer 'nope'"],
                 id="gpkg-unknown-layer"),
    pytest.param(_layer("f.geojson", [SQUARE], extra=("--code-field", "XZQDM")), ["f.geojson", "no field 'XZQDM'",
                                                                                   "--code-field"],
                 id="missing-code-field"),
    pytest.param(_csv("cols.csv", ["code", "name", "shape"], [["K1", "甲", "x"]], "import-layer",
                      extra=("--kind", "key_area", "--crs", "wgs84")), ["cols.csv", "'wkt' column", "'lon' and 'lat'"],
                 id="csv-without-geometry-columns"),
    # planners
    pytest.param(_csv("p.csv", PLANNERS, [["Z1", "", "院", "planning", "", ""]], "import-planners"),
                 ["p.csv", "row 2", "field name"], id="planner-without-name"),
    pytest.param(_csv("p.csv", PLANNERS, [["Z 1", "王", "院", "planning", "", ""]], "import-planners"),
                 ["p.csv", "row 2", "field id"], id="planner-bad-id"),
    pytest.param(_csv("p.csv", PLANNERS, [["Z1", "王", "院", "planning;alchemy", "", ""]], "import-planners"),
                 ["p.csv", "row 2", "field disciplines", "alchemy"], id="planner-unknown-discipline"),
    pytest.param(_csv("p.csv", PLANNERS, [["Z1", "王", "", "", "", ""], ["Z1", "李", "", "", "", ""]],
                      "import-planners"), ["p.csv", "row 3", "repeats row 2"], id="planner-duplicate-id"),
    pytest.param(_csv("p.csv", ["id", "name", "email"], [["Z1", "王", "a@b"]], "import-planners"),
                 ["p.csv", "missing column", "organization"], id="planners-wrong-columns"),
    # appointments
    pytest.param(_csv("a.csv", APPOINTMENTS, [["NOBODY", "subdistrict", "510105002", "lead", "2025-01-01", ""]],
                      "import-appointments"), ["a.csv", "row 2", "field planner_id", "NOBODY"],
                 id="appointment-unknown-planner"),
    pytest.param(_csv("a.csv", APPOINTMENTS, [["P001", "subdistrict", "999999999", "lead", "2025-01-01", ""]],
                      "import-appointments"), ["a.csv", "row 2", "field zone_code", "999999999"],
                 id="appointment-unknown-zone"),
    pytest.param(_csv("a.csv", APPOINTMENTS, [["P001", "galaxy", "510105002", "lead", "2025-01-01", ""]],
                      "import-appointments"), ["a.csv", "row 2", "field zone_kind"], id="appointment-unknown-kind"),
    pytest.param(_csv("a.csv", APPOINTMENTS, [["P001", "subdistrict", "510105002", "lead", "2025-01-01", "2025-01-01"]],
                      "import-appointments"), ["a.csv", "row 2", "field end", "not after start"],
                 id="appointment-end-equals-start"),
    pytest.param(_csv("a.csv", APPOINTMENTS, [["P001", "subdistrict", "510105002", "lead", "2025-01-01", "2024-06-30"]],
                      "import-appointments"), ["a.csv", "row 2", "field end", "not after start"],
                 id="appointment-end-before-start"),
    pytest.param(_csv("a.csv", APPOINTMENTS, [["P001", "subdistrict", "510105002", "boss", "2025-01-01", ""]],
                      "import-appointments"), ["a.csv", "row 2", "field role", "boss"], id="appointment-unknown-role"),
    pytest.param(_csv("a.csv", APPOINTMENTS, [["P001", "subdistrict", "510105002", "lead", "1/7/2025", ""]],
                      "import-appointments"), ["a.csv", "row 2", "field start", "YYYY-MM-DD"],
                 id="appointment-bad-date"),
    pytest.param(_csv("a.csv", ["planner", "zone", "from"], [["P001", "510105002", "2025-01-01"]],
                      "import-appointments"), ["a.csv", "missing column", "planner_id"],
                 id="appointments-wrong-columns"),
    pytest.param(_text("a.csv", b"", command="import-appointments", extra=()), ["a.csv", "empty"],
                 id="appointments-empty-file"),
    pytest.param(lambda folder: ["import-appointments", folder / "gone.csv"], ["gone.csv", "no such file"],
                 id="appointments-missing-file"),
]


@pytest.mark.parametrize("build, words", CASES)
def test_bad_input_exits_2_names_the_problem_and_writes_nothing(demo_store, tmp_path, capsys, build, words):
    argv = build(tmp_path)
    before, digest = store_state(demo_store), file_digest(demo_store)
    run = cli(capsys, *argv, "--store", demo_store)
    assert run.rc == 2, run.text
    for word in words:
        assert word in run.err, f"{word!r} not in the error:\n{run.err}"
    assert store_state(demo_store) == before
    assert file_digest(demo_store) == digest


def test_every_bad_appointment_row_is_reported_at_once(demo_store, tmp_path, capsys):
    rows = [
        ["P001", "district", "510104", "member", "2025-01-01", ""],  # fine
        ["NOBODY", "district", "510104", "member", "2025-01-01", ""],
        ["P001", "district", "000000", "member", "2025-01-01", ""],
        ["P001", "district", "510104", "member", "2025-03-01", "2025-02-01"],
        ["P001", "district", "510104", "chief", "2025-01-01", ""],
        ["P001", "district", "510104", "member", "2025-01-01", ""],  # fine
    ]
    path = _csv("a.csv", APPOINTMENTS, rows, "import-appointments")(tmp_path)[1]
    before = store_state(demo_store)
    run = cli(capsys, "import-appointments", path, "--store", demo_store)
    assert run.rc == 2
    reported = {line.split(",")[0].strip(" -") for line in run.err.splitlines() if line.strip().startswith("- row")}
    assert reported == {"row 3", "row 4", "row 5", "row 6"}
    assert "4 problem(s)" in run.err
    assert store_state(demo_store) == before


def test_every_bad_planner_row_is_reported_at_once(demo_store, tmp_path, capsys):
    rows = [["Q1", "王一", "", "planning", "", ""], ["Q 2", "王二", "", "", "", ""], ["Q3", "", "", "", "", ""],
            ["Q4", "王四", "", "magic", "", ""], ["Q1", "王五", "", "", "", ""]]
    path = _csv("p.csv", PLANNERS, rows, "import-planners")(tmp_path)[1]
    before = store_state(demo_store)
    run = cli(capsys, "import-planners", path, "--store", demo_store)
    assert run.rc == 2
    for expected in ("row 3, field id", "row 4, field name", "row 5, field disciplines", "row 6, field id"):
        assert expected in run.err
    assert store_state(demo_store) == before


def test_every_rejected_feature_is_reported_at_once(demo_store, tmp_path, capsys):
    geoms = [SQUARE, None, shapely.Point(104.06, 30.65), box(190, 30, 191, 31), box(104.07, 30.65, 104.08, 30.66)]
    path = _features(tmp_path / "many.geojson", geoms, ["K1", "K2", "K3", "K4", "K1"])
    before = store_state(demo_store)
    run = cli(capsys, "import-layer", path, "--kind", "key_area", "--store", demo_store)
    assert run.rc == 2 and "4 of 5 feature(s) rejected" in run.err
    for n in (2, 3, 4, 5):
        assert f"feature {n} " in run.err
    assert store_state(demo_store) == before


# -- CSV in GBK is read, not rejected --------------------------------------------------------------
def test_gbk_planner_csv_is_read_correctly(demo_store, tmp_path, capsys):
    rows = [["Q100", "欧阳明", "成都市规划设计研究院", "planning;heritage", "q100@example.org", "+86-1"]]
    path = _csv("gbk.csv", PLANNERS, rows, "import-planners", encoding="gbk")(tmp_path)[1]
    assert "欧阳明".encode("gbk") in path.read_bytes()
    run = cli(capsys, "import-planners", path, "--store", demo_store)
    assert run.rc == 0, run.text
    from zeren.layers.store import open_store

    got = open_store(demo_store).planner("Q100")
    assert (got["name"], got["organization"], got["disciplines"]) == ("欧阳明", "成都市规划设计研究院",
                                                                       ["planning", "heritage"])


def test_gbk_appointment_csv_is_read_correctly(demo_store, tmp_path, capsys):
    # zone codes are ASCII; a GBK file still has to parse (a comment column carries Chinese)
    header = APPOINTMENTS + ["备注"]
    rows = [["P001", "subdistrict", "510104001", "consultant", "2025-02-01", "", "顾问"]]
    path = _csv("gbk_a.csv", header, rows, "import-appointments", encoding="gbk")(tmp_path)[1]
    run = cli(capsys, "import-appointments", path, "--store", demo_store)
    assert run.rc == 0, run.text
    from zeren.layers.store import open_store

    added = open_store(demo_store).appointments().iloc[-1]
    assert (added["planner_id"], added["zone_code"], added["role"], str(added["start"].date())) == \
        ("P001", "510104001", "consultant", "2025-02-01")


# -- stores that are not Zeren's ---------------------------------------------------------------------
def _text_store(folder: Path) -> Path:
    path = folder / "x.gpkg"
    path.write_text("these are my notes, not a GeoPackage\n", encoding="utf-8")
    return path


def _foreign_gpkg(folder: Path) -> Path:
    path = folder / "foreign.gpkg"
    shutil.copyfile(DATA, path)
    return path


def _plain_sqlite(folder: Path) -> Path:
    import sqlite3

    path = folder / "plain.gpkg"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()
    return path


STORES = [
    pytest.param(_text_store, ["not a GeoPackage"], id="text-file-named-gpkg"),
    pytest.param(_foreign_gpkg, ["no Zeren store"], id="geopackage-not-made-by-zeren"),
    pytest.param(_plain_sqlite, ["not a GeoPackage"], id="sqlite-not-geopackage"),
]


def _commands(folder: Path) -> dict[str, list]:
    layer = _features(folder / "layer.geojson", [SQUARE])
    planners = folder / "p.csv"
    planners.write_text("id,name,organization,disciplines,public_contact,private_contact\nZ1,王,,,,\n",
                        encoding="utf-8")
    appointments = folder / "a.csv"
    appointments.write_text("planner_id,zone_kind,zone_code,role,start,end\nZ1,key_area,K1,lead,2025-01-01,\n",
                            encoding="utf-8")
    sites = folder / "sites.csv"
    sites.write_text("id,lon,lat\n1,104.05,30.66\n", encoding="utf-8")
    return {
        "import-layer": ["import-layer", layer, "--kind", "key_area"],
        "import-layer-dry-run": ["import-layer", layer, "--kind", "key_area", "--dry-run"],
        "import-planners": ["import-planners", planners],
        "import-appointments": ["import-appointments", appointments],
        "lookup": ["lookup", "--lon", "104.05", "--lat", "30.66"],
        "assign": ["assign", sites, "--crs", "wgs84", "--out", folder / "out.csv"],
        "demo-without-force": ["demo"],
    }


@pytest.mark.parametrize("command", ["import-layer", "import-layer-dry-run", "import-planners", "import-appointments",
                                     "lookup", "assign", "demo-without-force"])
@pytest.mark.parametrize("make_store, words", STORES)
def test_store_not_made_by_zeren_is_refused_and_untouched(tmp_path, capsys, make_store, words, command):
    store = make_store(tmp_path)
    digest, mtime = file_digest(store), store.stat().st_mtime_ns
    argv = _commands(tmp_path)[command]
    run = cli(capsys, *argv, "--store", store)
    assert run.rc == 2, run.text
    assert str(store) in run.err or store.name in run.err
    if command != "demo-without-force":
        for word in words:
            assert word in run.err
    else:
        assert "--force" in run.err
    assert file_digest(store) == digest and store.stat().st_mtime_ns == mtime
    assert not (tmp_path / "out.csv").exists()
    assert not Path(str(store) + "-journal").exists()


NEW_STORE_CASES = [  # refused imports aimed at a store that does not exist yet
    pytest.param(CASES[0].values[0], id="rejected-features"),
    pytest.param(_missing, id="missing-file"),
    pytest.param(_csv("nocrs.csv", ["code", "name", "wkt"], [["K1", "甲", f'"{SQUARE.wkt}"']], "import-layer",
                      extra=("--kind", "key_area")), id="no-crs"),
    pytest.param(_csv("p.csv", PLANNERS, [["Z 1", "", "院", "planning", "", ""]], "import-planners"),
                 id="bad-planners"),
    pytest.param(_csv("a.csv", APPOINTMENTS, [["P001", "district", "510104", "lead", "2025-01-01", ""]],
                      "import-appointments"), id="appointments-without-a-store"),
]


@pytest.mark.parametrize("build", NEW_STORE_CASES)
def test_refused_import_leaves_no_new_store_behind(tmp_path, capsys, build):
    store = tmp_path / "new.gpkg"
    run = cli(capsys, *build(tmp_path), "--store", store)
    assert run.rc == 2, run.text
    assert not store.exists()
