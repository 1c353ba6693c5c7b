"""The store's GeoPackage R*Tree spatial index (gpkg_rtree_index) and gpkg_contents extents: present on every
geometry table, used by GDAL, and right after writes by Zeren (HTTP, CLI) and by GDAL itself."""
from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from zeren.layers.store import open_store
from tests.api.conftest import AUTH, make_settings
from tests.layers._gpkg import assert_rtree_matches, contents_extent, data_bounds, run_ogrinfo
from tests.layers._support import cli, file_digest

from zeren.layers.store.tables import TABLES  # noqa: E402

GEOMETRY_TABLES = tuple(name for name, (geometry_type, _) in TABLES.items() if geometry_type)


def _geometry_tables(path) -> list[str]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return sorted(r[0] for r in con.execute("SELECT table_name FROM gpkg_geometry_columns"))
    finally:
        con.close()


def _assert_index_and_extents(path) -> None:
    for table in _geometry_tables(path):
        assert_rtree_matches(path, table)
        assert np.allclose(contents_extent(path, table), data_bounds(path, table), rtol=0, atol=1e-12), table


def test_every_geometry_table_has_an_rtree_gdal_uses(demo_template):
    assert _geometry_tables(demo_template) == sorted(GEOMETRY_TABLES)
    for table in GEOMETRY_TABLES:
        info = pyogrio.read_info(demo_template, layer=table)
        assert info["features"] > 0, table
        assert info["capabilities"]["fast_spatial_filter"] is True, table  # GDAL found the R*Tree
        assert_rtree_matches(demo_template, table)


def test_gdal_cli_reports_the_spatial_index(demo_template):
    run = run_ogrinfo(demo_template, "-ro", "-sql",
                      "SELECT HasSpatialIndex('zones', 'geom') AS z, HasSpatialIndex('projects', 'geom') AS p")
    assert run.returncode == 0, run.stderr
    assert "z (Integer) = 1" in run.stdout and "p (Integer) = 1" in run.stdout, run.stdout
    assert run.stderr.strip() == "", run.stderr


def test_extents_in_gpkg_contents_are_the_data_bounds(demo_template):
    for table in GEOMETRY_TABLES:
        extent = contents_extent(demo_template, table)
        assert None not in extent, table
        assert np.allclose(extent, data_bounds(demo_template, table), rtol=0, atol=1e-12), table


@pytest.mark.parametrize("table", GEOMETRY_TABLES)
def test_bbox_read_returns_what_filtering_by_hand_returns(demo_template, table):
    full = pyogrio.read_dataframe(demo_template, layer=table, fid_as_index=True, columns=[])
    minx, miny, maxx, maxy = full.total_bounds
    w, h = maxx - minx, maxy - miny
    boxes = [(minx + w * a, miny + h * b, minx + w * c, miny + h * d)
             for a, b, c, d in [(0.4, 0.4, 0.6, 0.6), (0.45, 0.45, 0.5, 0.5), (0, 0, 0.3, 1), (0.7, 0.1, 1, 0.2)]]
    boxes.append((minx - 1, miny - 1, minx - 0.5, miny - 0.5))  # outside everything
    nonempty = 0
    for bbox in boxes:
        got = pyogrio.read_dataframe(demo_template, layer=table, fid_as_index=True, columns=[], bbox=bbox)
        want = full.index[shapely.intersects(np.asarray(full.geometry.to_numpy(), dtype=object), shapely.box(*bbox))]
        assert sorted(got.index) == sorted(want), bbox
        nonempty += len(want) > 0
    assert nonempty >= 2  # the boxes really select something


def _zone_file(path, folder, *, edition: int, shift_code=None):
    """The demo's subdistricts of ``edition`` as a GeoJSON file, one of them moved 0.02 degrees east."""
    store = open_store(path)
    try:
        zones = store.zones(kind="subdistrict", edition=edition)
    finally:
        store.close()
    zones = zones[["code", "name", "parent_code", "population", "geometry"]].copy()
    code = shift_code or min(zones["code"])
    moved = zones["code"] == code
    zones.loc[moved, "geometry"] = shapely.transform(zones.loc[moved].geometry.values, lambda xy: xy + [0.02, 0])
    out = folder / f"subdistricts_{edition}_{code}.geojson"
    zones.to_file(out, driver="GeoJSON")
    return out, code


def test_rtree_and_extents_follow_zeren_writes(demo_store, tmp_path, capsys):
    before = contents_extent(demo_store, "projects")
    # a project through HTTP, far east of the others: the index and the extent must grow
    east = before[2] + 0.05
    body = {"name": "东边的项目", "type": "park", "geometry": {"type": "Polygon", "coordinates": [[
        [east, 30.60], [east + 0.01, 30.60], [east + 0.01, 30.61], [east, 30.61], [east, 30.60]]]}}
    with TestClient(create_app(make_settings(demo_store))) as client:
        r = client.post("/projects", json=body, headers=AUTH)
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        r = client.post(f"/projects/{pid}/status", json={"status": "assessment"}, headers=AUTH)
        assert r.status_code == 200, r.text
        r = client.post("/appointments/1/end", json={"end": "2026-01-01"}, headers=AUTH)
        assert r.status_code == 200, r.text
    assert contents_extent(demo_store, "projects")[2] == pytest.approx(east + 0.01, abs=1e-12)
    # a boundary correction of the same edition (rows replaced: DELETE + INSERT), then a new edition
    # (rows closed: UPDATE, and new rows: INSERT)
    path, code = _zone_file(demo_store, tmp_path, edition=2024)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2024, "--store", demo_store)
    assert run.rc == 0, run.text
    path, _ = _zone_file(demo_store, tmp_path, edition=2024, shift_code=code)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--store", demo_store)
    assert run.rc == 0, run.text
    store = open_store(demo_store)
    try:
        rows = store.zones(kind="subdistrict", with_ids=True)
    finally:
        store.close()
    assert (rows["code"] == code).sum() >= 2  # the writes really changed the moved zone's rows
    _assert_index_and_extents(demo_store)


def test_rtree_follows_gdal_writes(demo_store):
    # an append through GDAL (pyogrio): GDAL's own ST_ functions run the same triggers
    new = pd.DataFrame({"name": ["GDAL 写入"], "status": ["survey"], "created_at": ["2026-01-01T00:00:00+00:00"],
                        "as_of": ["2026-01-01"], "assignment": ["{}"], "consultation_planner_ids": ["[]"]})
    import geopandas as gpd

    frame = gpd.GeoDataFrame(new, geometry=[shapely.box(104.30, 30.90, 104.31, 30.91)], crs="EPSG:4326")
    pyogrio.write_dataframe(frame, demo_store, layer="projects", append=True)
    assert_rtree_matches(demo_store, "projects")
    ours = open_store(demo_store)
    try:
        assert "GDAL 写入" in set(ours.projects()["name"])  # and Zeren reads GDAL's row
    finally:
        ours.close()


def test_rtree_follows_updates_and_deletes_by_gdal_sql(demo_store):
    con = sqlite3.connect(demo_store)
    fids = [r[0] for r in con.execute("SELECT fid FROM zones ORDER BY fid LIMIT 3")]
    con.close()
    a, b, c = fids
    # GDAL's SQL (its own SQLite connection and functions): a geometry replaced, a row deleted
    for sql in (f"UPDATE zones SET geom = (SELECT geom FROM zones WHERE fid = {c}) WHERE fid = {a}",
                f"DELETE FROM zones WHERE fid = {b}"):
        run = run_ogrinfo(demo_store, "-sql", sql)
        assert run.returncode == 0, run.stderr
    con = sqlite3.connect(demo_store)
    boxes = {r[0]: r[1:] for r in con.execute(f"SELECT id, minx, maxx, miny, maxy FROM rtree_zones_geom "
                                              f"WHERE id IN ({a}, {b}, {c})")}
    con.close()
    assert set(boxes) == {a, c} and boxes[a] == boxes[c]
    assert_rtree_matches(demo_store, "zones")


def _make_old_store(src, dest):
    """A store as an older Zeren wrote it: GeoPackage 1.4, no R*Tree, no extents."""
    shutil.copyfile(src, dest)
    dest.chmod(0o644)
    con = sqlite3.connect(dest)
    for table in GEOMETRY_TABLES:
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?",
                                   (f"rtree_{table}_geom_%",)).fetchall():
            con.execute(f'DROP TRIGGER "{name}"')
        con.execute(f'DROP TABLE "rtree_{table}_geom"')
    con.execute("DROP TABLE gpkg_extensions")
    con.execute("UPDATE gpkg_contents SET min_x = NULL, min_y = NULL, max_x = NULL, max_y = NULL")
    con.execute("PRAGMA user_version = 10400")
    con.commit()
    con.close()


def test_an_older_store_gets_its_index_when_opened(demo_template, tmp_path):
    old = tmp_path / "old.gpkg"
    _make_old_store(demo_template, old)
    assert not pyogrio.read_info(old, layer="zones")["capabilities"]["fast_spatial_filter"]
    open_store(old).close()
    con = sqlite3.connect(old)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 10300
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    for table in GEOMETRY_TABLES:
        assert pyogrio.read_info(old, layer=table)["capabilities"]["fast_spatial_filter"] is True
    _assert_index_and_extents(old)
    # and it stays right on the next write
    store = open_store(old)
    try:
        store.create_project(name="p", geometry=shapely.Point(104.5, 30.5), type=None, scale=None,
                             description=None, as_of=pd.Timestamp("2025-01-01").date(), assignment={}, actor="t")
    finally:
        store.close()
    _assert_index_and_extents(old)


def test_a_read_only_older_store_is_read_as_it_is(demo_template, tmp_path):
    old = tmp_path / "old.gpkg"
    _make_old_store(demo_template, old)
    old.chmod(0o444)
    digest = file_digest(old)
    store = open_store(old)
    try:
        assert len(store.zones()) == pyogrio.read_info(old, layer="zones")["features"]
    finally:
        store.close()
    assert file_digest(old) == digest


def test_zeren_reads_gdal_blobs_as_gdal_does(demo_store):
    """GDAL writes points without a header envelope and empty geometries with the empty flag: Zeren's SQL
    functions (the triggers' ST_MinX...) and its bulk reader give the boxes GDAL's own triggers gave."""
    import geopandas as gpd

    from zeren.layers.store.gpkg import SQL_FUNCTIONS, envelopes

    new = pd.DataFrame({"name": ["点", "空", "线"], "status": ["survey"] * 3,
                        "created_at": ["2026-01-01T00:00:00+00:00"] * 3, "as_of": ["2026-01-01"] * 3,
                        "assignment": ["{}"] * 3, "consultation_planner_ids": ["[]"] * 3})
    geoms = [shapely.Point(104.9, 31.5), shapely.Point(), shapely.LineString([(103.5, 30.2), (103.6, 30.25)])]
    pyogrio.write_dataframe(gpd.GeoDataFrame(new, geometry=geoms, crs="EPSG:4326"), demo_store, layer="projects",
                            append=True)
    con = sqlite3.connect(demo_store)
    rows = con.execute("SELECT p.fid, p.geom, r.minx, r.maxx, r.miny, r.maxy FROM projects p "
                       "LEFT JOIN rtree_projects_geom r ON r.id = p.fid WHERE p.name IN ('点', '空', '线') "
                       "ORDER BY p.fid").fetchall()
    con.close()
    assert rows[0][1][3] & 0b1110 == 0  # GDAL wrote the point without an envelope: the WKB path is exercised
    assert rows[1][1][3] & 0b10000  # and the empty one with the empty flag
    ours = envelopes([r[1] for r in rows])
    for (fid, blob, *gdal_box), box in zip(rows, ours):
        if gdal_box[0] is None:  # GDAL's trigger left the empty geometry out of the index
            assert SQL_FUNCTIONS["ST_IsEmpty"](blob) == 1 and np.isnan(box).all(), fid
            continue
        assert SQL_FUNCTIONS["ST_IsEmpty"](blob) == 0, fid
        mine = [SQL_FUNCTIONS[f](blob) for f in ("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")]
        assert np.allclose(mine, box) and np.allclose(box, gdal_box, atol=1e-4), fid
    # a write by Zeren then records the extent GDAL's rows widened, exactly
    store = open_store(demo_store)
    try:
        store.create_project(name="p", geometry=shapely.Point(104.0, 30.6), type=None, scale=None,
                             description=None, as_of=pd.Timestamp("2025-01-01").date(), assignment={}, actor="t")
    finally:
        store.close()
    _assert_index_and_extents(demo_store)
    assert contents_extent(demo_store, "projects")[2:] == (104.9, 31.5)
