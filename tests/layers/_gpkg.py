"""Helpers for the GeoPackage interoperability tests: GDAL's command-line tools (Debian's gdal-bin, the
GDAL QGIS 3.22 LTR runs on), and the R*Tree compared with the geometries GDAL reads."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import numpy as np
import pyogrio
import shapely

from tests.conftest import _unavailable

REQUIRE_QGIS_ENV = "ZEREN_REQUIRE_QGIS"
GDAL_SKIP_MESSAGE = "needs GDAL's ogrinfo (run .ci/qgis.sh install: Debian's gdal-bin) — skipped, not passed"
FLOAT32_SLACK = 1e-4  # the R*Tree stores float32 boxes rounded outwards: ~1e-5 degrees at 100 degrees


def ogrinfo() -> str:
    path = shutil.which("ogrinfo")
    if path is None:
        _unavailable(REQUIRE_QGIS_ENV, GDAL_SKIP_MESSAGE)
    return path


def run_ogrinfo(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "CPL_DEBUG": "OFF"}
    return subprocess.run([ogrinfo(), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)


def rtree_boxes(path, table: str) -> dict[int, tuple[float, float, float, float]]:
    """id -> (minx, maxx, miny, maxy) of the table's R*Tree, read with a plain SQLite connection."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {int(i): (a, b, c, d) for i, a, b, c, d in
                con.execute(f'SELECT id, minx, maxx, miny, maxy FROM "rtree_{table}_geom"')}
    finally:
        con.close()


def assert_rtree_matches(path, table: str) -> None:
    """The R*Tree holds exactly the table's non-empty geometries (read by GDAL), each in a box that holds
    its geometry and is no more than float32 rounding larger."""
    frame = pyogrio.read_dataframe(path, layer=table, fid_as_index=True, columns=[])
    geoms = np.asarray(frame.geometry.to_numpy(), dtype=object)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    fids = frame.index.to_numpy()[keep]
    boxes = rtree_boxes(path, table)
    assert set(boxes) == {int(f) for f in fids}, (
        f"{table}: R*Tree ids differ from the features: missing {sorted(set(map(int, fids)) - set(boxes))[:5]}, "
        f"extra {sorted(set(boxes) - set(map(int, fids)))[:5]}")
    if not len(fids):
        return
    got = np.array([boxes[int(f)] for f in fids])  # minx, maxx, miny, maxy
    b = shapely.bounds(geoms[keep])  # minx, miny, maxx, maxy
    want = np.column_stack([b[:, 0], b[:, 2], b[:, 1], b[:, 3]])
    lower, upper = got[:, [0, 2]], got[:, [1, 3]]
    assert (lower <= want[:, [0, 2]]).all() and (upper >= want[:, [1, 3]]).all(), f"{table}: a box misses its feature"
    assert np.abs(got - want).max() < FLOAT32_SLACK, f"{table}: a box is larger than rounding explains"


def contents_extent(path, table: str):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = ?",
                           (table,)).fetchone()
    finally:
        con.close()


def data_bounds(path, table: str) -> np.ndarray:
    frame = pyogrio.read_dataframe(path, layer=table, columns=[])
    return np.asarray(frame.total_bounds)
