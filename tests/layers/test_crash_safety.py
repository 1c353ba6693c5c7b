"""A process killed with SIGKILL in the middle of an import leaves the GeoPackage store as it was; and the
store stays a GeoPackage that GDAL (hence QGIS) lists and reads."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from zeren.layers.store import open_store
from tests.layers._support import REPO, integrity, store_state

N_POLYGONS = 30_000
KILL_DELAYS = (0.0, 0.01, 0.03, 0.06, 0.1, 0.0, 0.02, 0.05)  # seconds after the write transaction shows up
NEEDED_MID_WRITE_KILLS = 3


@pytest.fixture(scope="module")
def big_layer(tmp_path_factory) -> Path:
    """30,000 synthetic community polygons (64-gons around random centres in Chengdu) in a GeoPackage."""
    rng = np.random.default_rng(30_000)
    x = rng.uniform(103.8, 104.3, N_POLYGONS)
    y = rng.uniform(30.5, 30.9, N_POLYGONS)
    polygons = shapely.buffer(shapely.points(x, y), 0.001, quad_segs=16)
    frame = gpd.GeoDataFrame({"code": [f"C{i:06d}" for i in range(N_POLYGONS)],
                              "name": [f"合成社区{i}" for i in range(N_POLYGONS)]},
                             geometry=gpd.GeoSeries(polygons, crs="EPSG:4326"), crs="EPSG:4326")
    path = tmp_path_factory.mktemp("big") / "communities.gpkg"
    frame.to_file(path, driver="GPKG", layer="communities")
    return path


def _import_process(layer: Path, store: Path) -> subprocess.Popen:
    # the Python process itself (not a wrapper script), so SIGKILL hits the writer
    return subprocess.Popen([sys.executable, "-m", "zeren", "import-layer", str(layer), "--kind", "community",
                             "--edition", "2025", "--store", str(store)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_while_writing(layer: Path, store: Path, delay: float) -> tuple[int, int]:
    """Start an import, wait for its write transaction (the rollback journal appears), wait ``delay``, SIGKILL.

    Returns (bytes in the journal left by the kill — pages saved by a write under way, 0 when the kill came
    after the commit; the exit status)."""
    journal = Path(str(store) + "-journal")
    proc = _import_process(layer, store)
    try:
        deadline = time.monotonic() + 60
        while not journal.exists():
            if proc.poll() is not None:
                pytest.fail(f"the import ended before writing: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail("the import never started writing")
            time.sleep(0.0005)
        if delay:
            time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return (journal.stat().st_size if journal.exists() else 0), status


@pytest.fixture(scope="module")
def crash_runs(big_layer, tmp_path_factory, demo_template):
    """Several kill -9 attempts, each on a fresh copy of the demo store; (store, hot journal, exit status)."""
    folder = tmp_path_factory.mktemp("crash")
    before = store_state(demo_template)
    runs = []
    for i, delay in enumerate(KILL_DELAYS):
        store = folder / f"store_{i}.gpkg"
        shutil.copyfile(demo_template, store)
        store.chmod(0o644)
        journal_bytes, status = _kill_while_writing(big_layer, store, delay)
        # a journal holding saved pages (beyond its 512-byte header) proves the kill hit a write under way
        runs.append({"store": store, "hot_journal": journal_bytes > 512, "journal_bytes": journal_bytes,
                     "status": status, "delay": delay})
        if sum(r["hot_journal"] for r in runs) >= NEEDED_MID_WRITE_KILLS:
            break
    return before, runs


def test_the_kills_really_interrupted_writes(crash_runs):
    _, runs = crash_runs
    assert all(r["status"] == -signal.SIGKILL for r in runs)
    assert sum(r["hot_journal"] for r in runs) >= NEEDED_MID_WRITE_KILLS, runs


def test_killed_import_leaves_the_store_as_it_was(crash_runs):
    before, runs = crash_runs
    for run in runs:
        after = store_state(run["store"])
        if run["hot_journal"]:
            assert after == before, f"killed {run['delay']} s into the write"
        else:  # killed after the commit: then the whole layer is in, never a part of it
            zones = open_store(run["store"]).zones(kind="community")
            assert len(zones) in (0, N_POLYGONS)


def test_killed_import_leaves_no_community_zone(crash_runs):
    _, runs = crash_runs
    for run in (r for r in runs if r["hot_journal"]):
        assert open_store(run["store"]).zones(kind="community").empty


def test_store_passes_integrity_check_after_the_kill(crash_runs):
    _, runs = crash_runs
    for run in runs:
        open_store(run["store"]).zones()  # the first reader rolls the hot journal back
        assert integrity(run["store"]) == "ok"


def test_store_takes_the_import_after_the_kill(crash_runs, big_layer):
    run = next(r for r in crash_runs[1] if r["hot_journal"])
    proc = _import_process(big_layer, run["store"])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert len(open_store(run["store"]).zones(kind="community")) == N_POLYGONS
    assert integrity(run["store"]) == "ok"


def test_gdal_reads_the_store_after_the_kill(crash_runs):
    before, runs = crash_runs
    for run in runs:
        expected = len(open_store(run["store"]).zones())
        assert len(pyogrio.read_dataframe(run["store"], layer="zones")) == expected


# -- GDAL / QGIS compatibility ---------------------------------------------------------------------
LAYERS = [  # (layer, geometry type GDAL reports)
    pytest.param("zones", "MultiPolygon", id="zones"),
    pytest.param("projects", "Unknown", id="projects"),
    pytest.param("planners", None, id="planners"),
    pytest.param("appointments", None, id="appointments"),
    pytest.param("audit", None, id="audit"),
    pytest.param("import_log", None, id="import-log"),
]


@pytest.mark.parametrize("layer, geometry_type", LAYERS)
def test_gdal_lists_the_store_layers(demo_template, layer, geometry_type):
    listed = {str(name): kind for name, kind in pyogrio.list_layers(demo_template)}
    assert layer in listed and listed[layer] == geometry_type


READS = [  # (layer, the store's reader of the same records)
    pytest.param("zones", lambda s: s.zones(), id="zones"),
    pytest.param("projects", lambda s: s.projects(), id="projects"),
    pytest.param("planners", lambda s: s.planners(), id="planners"),
    pytest.param("appointments", lambda s: s.appointments(), id="appointments"),
]


@pytest.mark.parametrize("layer, read", READS)
def test_gdal_reads_every_record(demo_template, layer, read):
    frame = pyogrio.read_dataframe(demo_template, layer=layer)
    store = open_store(str(demo_template))
    assert len(frame) == len(read(store)) > 0


@pytest.mark.parametrize("layer", ["zones", "projects"])
def test_gdal_reads_geometry_in_wgs84(demo_template, layer):
    frame = pyogrio.read_dataframe(demo_template, layer=layer)
    assert frame.crs.to_epsg() == 4326
    assert frame.geometry.notna().all() and frame.geometry.is_valid.all()


def test_gdal_reads_the_same_zone_geometry_and_attributes(demo_template):
    gdal = pyogrio.read_dataframe(demo_template, layer="zones").sort_values(["kind", "code"]).reset_index(drop=True)
    ours = open_store(str(demo_template)).zones().sort_values(["kind", "code"]).reset_index(drop=True)
    assert list(gdal["code"]) == list(ours["code"]) and list(gdal["name"]) == list(ours["name"])
    assert shapely.equals_exact(np.asarray(gdal.geometry.to_numpy(), dtype=object),
                                np.asarray(ours.geometry.to_numpy(), dtype=object), tolerance=0).all()
    assert list(gdal["population"].fillna(-1).astype(int)) == list(ours["population"].fillna(-1).astype(int))


def test_store_is_a_geopackage_by_its_header(demo_template):
    import sqlite3

    con = sqlite3.connect(demo_template)
    try:
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
        assert con.execute("PRAGMA user_version").fetchone()[0] >= 10200
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
