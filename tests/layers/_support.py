"""Helpers shared by the data-layer and CLI tests: real data, the demo store, running the CLI, store snapshots.

Fixtures are defined here and imported by the test modules (``from tests.layers._support import ...``), so
tests/test_cli.py and tests/layers/ share them without touching the top-level conftest.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from zeren.api.cli.main import main as cli_main
from zeren.layers.store import open_store

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "chengdu_hangzhou.gpkg"
LAYERS = ("districts_chengdu", "subdistricts_chengdu", "districts_hangzhou", "subdistricts_hangzhou")


# -- real data ------------------------------------------------------------------------------------
_LAYER_CACHE: dict[str, gpd.GeoDataFrame] = {}


def real_layer(name: str) -> gpd.GeoDataFrame:
    """A layer of data/chengdu_hangzhou.gpkg (EPSG:4490), read once per process; a copy each call."""
    if name not in _LAYER_CACHE:
        _LAYER_CACHE[name] = pyogrio.read_dataframe(DATA, layer=name)
    return _LAYER_CACHE[name].copy()


SHP_FIELDS = {"code": "XZQDM", "name": "XZQMC", "parent_code": "PARENT"}  # dBase names are <= 10 characters


def write_zipped_shapefile(gdf, folder: Path, *, encoding: str, cpg: bool, prj: bool = True,
                           name: str = "xzq") -> Path:
    """A real Shapefile written by GDAL in ``encoding``, zipped with or without its .cpg (and .prj)."""
    shp_dir = folder / f"shp_{name}_{encoding}_{cpg}_{prj}"
    shp_dir.mkdir()
    gdf.rename(columns=SHP_FIELDS).to_file(shp_dir / f"{name}.shp", driver="ESRI Shapefile", encoding=encoding)
    members = [f"{name}.shp", f"{name}.shx", f"{name}.dbf"] + ([f"{name}.prj"] if prj else []) \
        + ([f"{name}.cpg"] if cpg else [])
    path = folder / f"{name}_{encoding}_{'cpg' if cpg else 'nocpg'}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for member in members:
            zf.write(shp_dir / member, member)
    return path


# -- the CLI --------------------------------------------------------------------------------------
@dataclass
class Run:
    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def cli(capsys, *argv) -> Run:
    """Run ``zeren ARGV`` in this process through ``api.cli.main``; argparse errors count as exit 2."""
    capsys.readouterr()
    try:
        rc = cli_main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: bad command line
        rc = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return Run(rc, captured.out, captured.err)


def zeren_command() -> list[str]:
    """The installed ``zeren`` console script (the way users run it)."""
    exe = shutil.which("zeren")
    if exe is None:
        pytest.fail("the `zeren` console script is not on PATH; pip install -e .", pytrace=False)
    return [exe]


def zeren_subprocess(*argv, timeout: float = 120, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ZEREN_STORE"}
    return subprocess.run(zeren_command() + [str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


# -- stores ---------------------------------------------------------------------------------------
def _frame_json(frame: pd.DataFrame) -> str:
    frame = pd.DataFrame(frame).copy()
    if "geometry" in frame.columns:
        frame["geometry"] = [None if g is None else shapely.to_wkb(g, hex=True) for g in frame["geometry"]]
    for col in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = frame[col].dt.strftime("%Y-%m-%d").astype(object).where(frame[col].notna(), None)
    return frame.to_json(orient="records", force_ascii=False, default_handler=str)


def store_state(location) -> dict[str, str]:
    """Everything a write could change, as comparable text: zones (with geometry), planners, appointments,
    the import log, the audit log, projects."""
    store = open_store(str(location))
    try:
        zones = store.zones()
        zones = pd.DataFrame(zones).sort_values(["kind", "code", "edition"]).reset_index(drop=True)
        return {
            "zones": _frame_json(zones),
            "planners": _frame_json(store.planners()),
            "appointments": _frame_json(store.appointments()),
            "import_log": _frame_json(store.import_log()),
            "audit": _frame_json(store.audit(limit=1_000_000)),
            "projects": _frame_json(store.projects()),
        }
    finally:
        store.close()


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def integrity(path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


# -- the demo -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """The demo city built once per session into a GeoPackage; copy it (``demo_store``) before writing."""
    from zeren.api.service.demo import build_demo

    path = tmp_path_factory.mktemp("demo") / "demo.gpkg"
    build_demo(path).close()
    path.chmod(0o444)  # nobody writes to the template
    return path


@pytest.fixture
def demo_store(demo_template, tmp_path) -> str:
    """A private, writable copy of the demo store."""
    path = tmp_path / "store.gpkg"
    shutil.copyfile(demo_template, path)
    path.chmod(0o644)
    return str(path)


@pytest.fixture(scope="session")
def demo_frames(demo_template):
    """The demo store's frames, read with the store's own reader (the tests' ground truth is computed from
    these with plain shapely, independently of geo.assign)."""
    store = open_store(str(demo_template))
    try:
        return {"zones": store.zones(), "planners": store.planners(), "appointments": store.appointments()}
    finally:
        store.close()


def active_leads(appointments: pd.DataFrame, as_of) -> dict[tuple[str, str], str]:
    """(zone_kind, zone_code) -> planner id of the active lead on ``as_of`` (start inclusive, end exclusive);
    the lowest planner id if a zone had two."""
    day = pd.Timestamp(as_of)
    a = appointments
    live = (a["role"] == "lead") & (a["start"] <= day) & (a["end"].isna() | (a["end"] > day))
    out: dict[tuple[str, str], str] = {}
    for row in a[live].sort_values("planner_id").itertuples():
        out.setdefault((row.zone_kind, str(row.zone_code)), row.planner_id)
    return out


def active_appointees(appointments: pd.DataFrame, kind: str, code: str, as_of) -> set[str]:
    day = pd.Timestamp(as_of)
    a = appointments
    live = ((a["zone_kind"] == kind) & (a["zone_code"] == code) & (a["start"] <= day)
            & (a["end"].isna() | (a["end"] > day)))
    return set(a.loc[live, "planner_id"])


def zones_in_force(zones: gpd.GeoDataFrame, as_of) -> gpd.GeoDataFrame:
    day = pd.Timestamp(as_of)
    live = (zones["valid_from"] <= day) & (zones["valid_to"].isna() | (zones["valid_to"] > day))
    return zones[live]


BASE_ORDER = ("community", "village", "subdistrict", "district")


def expected_lead(frames, lon: float, lat: float, as_of) -> tuple[str, str, str] | None:
    """(planner_id, zone_kind, zone_code) of the lead for a point, by plain shapely: the most specific base
    zone containing the point that has an active lead; lowest code among several of one kind."""
    zones = zones_in_force(frames["zones"], as_of)
    leads = active_leads(frames["appointments"], as_of)
    point = shapely.Point(lon, lat)
    for kind in BASE_ORDER:
        here = zones[(zones["kind"] == kind) & zones.geometry.covers(point)]
        for code in sorted(here["code"]):
            if (kind, code) in leads:
                return leads[(kind, code)], kind, code
    return None


def zones_at(frames, lon: float, lat: float, as_of) -> set[tuple[str, str]]:
    zones = zones_in_force(frames["zones"], as_of)
    here = zones[zones.geometry.covers(shapely.Point(lon, lat))]
    return set(zip(here["kind"], here["code"]))


def private_contacts(frames) -> list[str]:
    return [c for c in frames["planners"]["private_contact"] if isinstance(c, str) and c]


def as_list(value):
    """A list column read back from a file: a list already (GeoJSON), or JSON text (CSV, GeoPackage)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray):
        return list(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return json.loads(value)


__all__ = [
    "REPO", "DATA", "LAYERS", "SHP_FIELDS", "real_layer", "write_zipped_shapefile", "Run", "cli", "zeren_command",
    "zeren_subprocess", "store_state",
    "file_digest", "integrity", "demo_template", "demo_store", "demo_frames", "active_leads", "active_appointees",
    "zones_in_force", "expected_lead", "zones_at", "private_contacts", "as_list",
]
