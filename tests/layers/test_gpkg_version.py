"""The store is a valid GeoPackage of the version desktop GIS reads without complaint: GeoPackage 1.3, which
GDAL 3.6 (Debian 12, under QGIS 3.22 LTR) opens silently, where 1.4 makes it warn on every open."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys

import pytest

from zeren.layers.store import open_store
from zeren.layers.store.tables import TABLES
from tests.layers._gpkg import run_ogrinfo

GPKG_1_3 = 10300
WARNING = "may only be partially supported"
RTREE_TRIGGERS = ("insert", "update1", "update2", "update3", "update4", "delete")


def _con(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def test_store_is_a_valid_geopackage_1_3(demo_template):
    con = _con(demo_template)
    try:
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
        assert con.execute("PRAGMA user_version").fetchone()[0] == GPKG_1_3
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        srs = {r[0]: r[1:] for r in con.execute(
            "SELECT srs_id, organization, organization_coordsys_id, definition FROM gpkg_spatial_ref_sys")}
        assert srs[-1][:2] == ("NONE", -1) and srs[0][:2] == ("NONE", 0)  # the two undefined systems
        assert srs[4326][:2] == ("EPSG", 4326) and 'AUTHORITY["EPSG","4326"]' in srs[4326][2]
        contents = {r[0]: r[1:] for r in con.execute("SELECT table_name, data_type, srs_id FROM gpkg_contents")}
        assert set(contents) == set(TABLES)
        for name, (geometry_type, _) in TABLES.items():
            assert contents[name] == (("features", 4326) if geometry_type else ("attributes", None)), name
        columns = {r[0]: r[1:] for r in con.execute(
            "SELECT table_name, column_name, geometry_type_name, srs_id, z, m FROM gpkg_geometry_columns")}
        assert columns == {name: ("geom", gt, 4326, 0, 0) for name, (gt, _) in TABLES.items() if gt}
        extensions = con.execute("SELECT table_name, column_name, extension_name, scope FROM gpkg_extensions "
                                 "ORDER BY table_name").fetchall()
        assert extensions == [(t, "geom", "gpkg_rtree_index", "write-only") for t in sorted(columns)]
        triggers = {r[0]: r[1] for r in con.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")}
        for table in columns:
            assert con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (f"rtree_{table}_geom",)
                               ).fetchone()[0].lower().endswith("using rtree(id, minx, maxx, miny, maxy)")
            for op in RTREE_TRIGGERS:
                assert triggers.get(f"rtree_{table}_geom_{op}") == table, (table, op)
        # every feature geometry is GeoPackage binary (magic "GP", version 0) with srs 4326
        for table in columns:
            bad = con.execute(f"SELECT count(*) FROM {table} WHERE substr(geom, 1, 3) != X'475000' "
                              f"OR substr(geom, 5, 4) != X'E6100000'").fetchone()[0]
            assert bad == 0, table
    finally:
        con.close()


def test_gdal_in_python_opens_every_layer_without_a_warning(demo_template):
    script = ("import sys, warnings, pyogrio\n"
              "warnings.simplefilter('error')\n"
              "for name, _ in pyogrio.list_layers(sys.argv[1]):\n"
              "    pyogrio.read_info(sys.argv[1], layer=name)\n"
              "    pyogrio.read_dataframe(sys.argv[1], layer=name, max_features=5)\n"
              "print('ok')\n")
    run = subprocess.run([sys.executable, "-c", script, str(demo_template)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
    assert run.stderr.strip() == "", run.stderr


def test_gdal_3_6_opens_the_store_without_a_warning(demo_template):
    run = run_ogrinfo("-ro", "-al", "-so", demo_template)
    assert run.returncode == 0, run.stderr
    assert "zones" in run.stdout and "projects" in run.stdout
    assert run.stderr.strip() == "", run.stderr


def test_an_older_1_4_store_is_set_to_1_3_when_opened(demo_template, tmp_path):
    old = tmp_path / "old.gpkg"
    shutil.copyfile(demo_template, old)
    old.chmod(0o644)
    con = sqlite3.connect(old)
    con.execute("PRAGMA user_version = 10400")  # what Zeren wrote before
    con.commit()
    con.close()
    version = run_ogrinfo("--version").stdout
    if version.startswith("GDAL 3.6"):  # the warning this fixes, as QGIS 3.22 LTR users saw it
        assert WARNING in run_ogrinfo("-ro", "-so", old).stderr
    open_store(old).close()
    con = _con(old)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == GPKG_1_3
    finally:
        con.close()
    run = run_ogrinfo("-ro", "-al", "-so", old)
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr


@pytest.mark.parametrize("version", [10200, 10300])
def test_gdal_3_6_warns_for_1_4_only(tmp_path, version):
    """Why 1.3: GDAL 3.6 is silent for 1.2 and 1.3 and warns for 1.4 (checked on the GDAL installed)."""
    if not run_ogrinfo("--version").stdout.startswith("GDAL 3.6"):
        pytest.skip("the version check is GDAL 3.6's (Debian 12); this GDAL is another")
    path = tmp_path / "v.gpkg"
    store = open_store(path, create=True)
    store.close()
    for user_version, warns in ((version, False), (10400, True)):
        con = sqlite3.connect(path)
        con.execute(f"PRAGMA user_version = {user_version}")
        con.commit()
        con.close()
        assert (WARNING in run_ogrinfo("-ro", "-so", path).stderr) is warns, user_version
