"""QGIS reads the store: every GeoPackage layer through the OGR provider, every OGC API collection through the
OAPIF provider, and a processing algorithm through qgis_process (issue 14).

The QGIS side runs in Debian's /usr/bin/python3 (PyQGIS lives in the system python, not in the venv):
tests/qgis_helper.py. The expected values are read here, in the test process, with pyogrio. Needs Debian's
qgis and python3-qgis (`.ci/qgis.sh install`); skipped without them, except when ZEREN_REQUIRE_QGIS=1 (set by
.ci/run): then it fails, so CI cannot pass by skipping it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from tests.api._live import LiveServer
from tests.conftest import _unavailable
from tests.layers._support import demo_template  # noqa: F401 - fixture

REQUIRE_QGIS_ENV = "ZEREN_REQUIRE_QGIS"
QGIS_SKIP_MESSAGE = "QGIS tests need Debian's qgis and python3-qgis (run .ci/qgis.sh install) — skipped, not passed"
SYSTEM_PYTHON = Path("/usr/bin/python3")
HELPER = Path(__file__).resolve().parent / "qgis_helper.py"
# Debian's /usr/bin/qgis_process wrapper passes --noversioncheck, which qgis_process 3.22 rejects ("Command
# --noversioncheck not known!"): run the binary it wraps when it is there.
QGIS_PROCESS = (Path("/usr/bin/qgis_process.bin"), Path("/usr/bin/qgis_process"))
GDAL_MESSAGE = re.compile(r"^(Warning|ERROR) \d+:|partially supported")  # how GDAL prints to stderr


@pytest.fixture(scope="module")
def qgis_env(tmp_path_factory) -> dict:
    runtime = tmp_path_factory.mktemp("xdg-runtime")
    runtime.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    # system paths only: qgis_process embeds Python and finds its home from the first python3 on PATH (a
    # venv's would give it a Python without PyQGIS)
    env.update(QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(runtime), CPL_DEBUG="OFF",
               PATH="/usr/bin:/bin:/usr/sbin:/sbin")
    if not SYSTEM_PYTHON.exists():
        _unavailable(REQUIRE_QGIS_ENV, QGIS_SKIP_MESSAGE)
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import qgis.core"], capture_output=True, text=True,
                           timeout=60, env=env, check=False)
    if probe.returncode != 0:
        _unavailable(REQUIRE_QGIS_ENV, f"{QGIS_SKIP_MESSAGE} ({probe.stderr.strip().splitlines()[-1:]})")
    return env


@pytest.fixture(scope="module")
def qgis_process(qgis_env) -> str:
    for path in QGIS_PROCESS:
        if path.exists():
            return str(path)
    _unavailable(REQUIRE_QGIS_ENV, QGIS_SKIP_MESSAGE)


@pytest.fixture(scope="module")
def store(demo_template, tmp_path_factory) -> Path:  # noqa: F811 - demo_template is the fixture
    path = tmp_path_factory.mktemp("qgis") / "zeren.gpkg"
    shutil.copyfile(demo_template, path)
    path.chmod(0o644)
    return path


def _warnings(text: str) -> list[str]:
    """GDAL's warnings and errors in a process's stderr."""
    return [line for line in text.splitlines() if GDAL_MESSAGE.search(line)]


def _in_force(zones: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    start = pd.to_datetime(zones["valid_from"])
    end = pd.to_datetime(zones["valid_to"])
    today = pd.Timestamp(day)
    return zones[(start <= today) & (end.isna() | (end > today))]


@pytest.fixture(scope="module")
def qgis_read(qgis_env, store) -> tuple[dict, str]:
    """What QGIS reads from the store file and from a live server's /ogc, and its stderr."""
    layers = [name for name, _ in pyogrio.list_layers(store)]
    with LiveServer(store) as server:
        import httpx

        ids = [c["id"] for c in httpx.get(f"{server.url}/ogc/collections", timeout=30).json()["collections"]]
        args = {"store": str(store), "layers": layers, "url": f"{server.url}/ogc", "collections": ids}
        run = subprocess.run([str(SYSTEM_PYTHON), str(HELPER), json.dumps(args)], capture_output=True, text=True,
                             timeout=120, env=qgis_env, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(result["layers"]) == set(layers) and set(result["collections"]) == set(ids)
    return result, run.stderr


def test_qgis_opens_every_layer_of_the_store(qgis_read, store):
    result, _ = qgis_read
    for name, info in result["layers"].items():
        meta = pyogrio.read_info(store, layer=name, force_total_bounds=True)
        assert info["valid"], name
        assert info["count"] == info["read"] == meta["features"], name
        assert info["spatial"] == (meta["geometry_type"] is not None), name
        if info["spatial"]:
            assert info["crs"] == "EPSG:4326", name
            assert np.allclose(info["extent"], meta["total_bounds"], rtol=0, atol=1e-6), name
            assert info["spatial_index"] is True, name
    assert {"zones", "projects"} <= {n for n, i in result["layers"].items() if i["spatial"]}


def test_qgis_logs_no_gdal_warning(qgis_read):
    result, stderr = qgis_read
    assert _warnings(stderr) == [], stderr
    assert [m for m in result["messages"] if m["level"] >= 1] == []  # Qgis.Warning and worse


def test_qgis_reads_every_ogc_collection(qgis_read, store):
    result, _ = qgis_read
    zones = pyogrio.read_dataframe(store, layer="zones", columns=["kind", "valid_from", "valid_to"],
                                   read_geometry=False)
    live = _in_force(zones, dt.date.today())
    expected = live["kind"].value_counts().to_dict()
    expected["zone_leads"] = len(live)
    expected["projects"] = pyogrio.read_info(store, layer="projects")["features"]
    got = {coll: info["read"] for coll, info in result["collections"].items() if info["valid"]}
    assert got == expected
    assert all(info["crs"] == "EPSG:4326" for info in result["collections"].values())


def test_qgis_processing_counts_projects_per_subdistrict(qgis_env, qgis_process, store, tmp_path):
    centroids, counted = tmp_path / "centroids.gpkg", tmp_path / "counted.gpkg"
    for args in (["native:centroids", f"--INPUT={store}|layername=projects", "--ALL_PARTS=false",
                  f"--OUTPUT={centroids}"],
                 ["native:countpointsinpolygon", f"--POLYGONS={store}|layername=zones|subset=\"kind\" = 'subdistrict'",
                  f"--POINTS={centroids}", "--FIELD=n_projects", f"--OUTPUT={counted}"]):
        run = subprocess.run([qgis_process, "run", *args], capture_output=True, text=True, timeout=120,
                             env=qgis_env, check=False)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        assert _warnings(run.stderr) == [], run.stderr
    got = pyogrio.read_dataframe(counted, read_geometry=False)
    got = dict(zip(got["code"], got["n_projects"].astype(int)))
    # the same count by hand: shapely centroids of the projects GDAL reads, in the subdistricts GDAL reads
    projects = pyogrio.read_dataframe(store, layer="projects")
    zones = pyogrio.read_dataframe(store, layer="zones", where="kind = 'subdistrict'")
    points = shapely.centroid(np.asarray(projects.geometry.to_numpy(), dtype=object))
    polygons = np.asarray(zones.geometry.to_numpy(), dtype=object)
    want = dict(zip(zones["code"], shapely.intersects(polygons[:, None], points[None, :]).sum(axis=1).astype(int)))
    assert got == want
    assert sum(got.values()) == len(projects) > 0  # every demo project lies in one subdistrict


def test_qgis_would_show_the_warning_a_1_4_store_gave(qgis_env, store, tmp_path):
    """The check above can fail: the same store marked GeoPackage 1.4 (as Zeren wrote it before) makes
    QGIS 3.22's GDAL warn."""
    import sqlite3

    old = tmp_path / "old.gpkg"
    shutil.copyfile(store, old)
    con = sqlite3.connect(old)
    con.execute("PRAGMA user_version = 10400")
    con.commit()
    con.close()
    args = {"store": str(old), "layers": ["zones"]}
    run = subprocess.run([str(SYSTEM_PYTHON), str(HELPER), json.dumps(args)], capture_output=True, text=True,
                         timeout=120, env=qgis_env, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1])["layers"]["zones"]["valid"]
    version = subprocess.run([str(SYSTEM_PYTHON), "-c", "from osgeo import gdal; print(gdal.__version__)"],
                             capture_output=True, text=True, timeout=60, env=qgis_env, check=False).stdout
    if version.startswith("3.6"):
        assert any("partially supported" in line for line in _warnings(run.stderr)), run.stderr
