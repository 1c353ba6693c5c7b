"""The wheel: what `pip install zeren` puts on a machine that has no checkout.

The wheel is built from a copy of the sources (so no build/ or egg-info lands in the checkout, and a stale
build/ folder cannot hide a missing file) with the build backend of the running environment
(`--no-build-isolation`: no network). Checked: every subpackage of the repository, every shipped data file and
map asset is in it; nothing but `zeren` is installed at the top level; and, installed into a folder of its own,
it runs from an unrelated directory without reading anything from the checkout.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGE_DIR: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]  # zeren.geo -> geo, ...

pytestmark = pytest.mark.timeout(300)


def _copy_sources(dest: Path) -> Path:
    """The files a build reads: pyproject.toml, README.md and the folders pyproject maps into `zeren`."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.gpkg-journal")
    for top in sorted({Path(d).parts[0] for d in PACKAGE_DIR.values()}):
        shutil.copytree(REPO / top, dest / top, ignore=ignore)
    return dest


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, output captured as text; the caller asserts on its exit status with the output shown."""
    return subprocess.run(args, check=False, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    floor = next(r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools"))
    try:
        have = version("setuptools")
    except PackageNotFoundError:
        have = "none"
    if have == "none" or int(have.split(".")[0]) < int(floor.split(">=")[1].split(".")[0]):
        pytest.fail(f"building the wheel without network needs {floor} in this environment (found {have}): "
                    "pip install -e '.[test]' installs it", pytrace=False)
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(tmp / "src")
    out = tmp / "dist"
    proc = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src), "-w", str(out)],
        timeout=240, cwd=tmp,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}"
    wheels = sorted(out.glob("zeren-*.whl"))
    assert len(wheels) == 1, f"expected one zeren wheel in {out}: {sorted(p.name for p in out.iterdir())}"
    return wheels[0]


@pytest.fixture(scope="module")
def names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def _installed_name(path: Path) -> str:
    """Where a repository file lands in the wheel: geo/crs.py -> zeren/geo/crs.py (longest mapping wins)."""
    rel = path.relative_to(REPO).as_posix()
    best = max((d for d in PACKAGE_DIR.values() if rel == d or rel.startswith(d + "/")), key=len)
    pkg = next(p for p, d in PACKAGE_DIR.items() if d == best)
    return pkg.replace(".", "/") + rel[len(best):]


def _repo_packages() -> list[Path]:
    """Every folder of the repository that is a Python package inside the mapped folders."""
    found = []
    for top in sorted(set(PACKAGE_DIR.values())):
        found += [p.parent for p in (REPO / top).rglob("__init__.py") if "__pycache__" not in p.parts]
    return sorted(set(found))


def test_every_subpackage_is_in_the_wheel(names):
    packages = _repo_packages()
    assert len(packages) >= 10  # zeren, geo (+coverage, lifecircle), layers (+store), api (+cli, http...), maps, data
    missing = [f"{p.relative_to(REPO)} -> {_installed_name(p / '__init__.py')}" for p in packages
               if _installed_name(p / "__init__.py") not in names]
    assert not missing, ("packages missing from the wheel (add them to [tool.setuptools] packages in "
                         f"pyproject.toml): {missing}")
    # and every module of those packages
    modules = [m for p in packages for m in p.glob("*.py")]
    absent = [str(m.relative_to(REPO)) for m in modules if _installed_name(m) not in names]
    assert not absent, f"modules missing from the wheel: {absent}"


def test_data_files_and_map_assets_are_in_the_wheel(names):
    data = [p for p in (REPO / "data").iterdir() if p.is_file() and p.suffix != ".py"]
    assert {"chengdu_hangzhou.gpkg", "facility_categories.csv", "osm_facility_map.csv",
            "helsinki.osm.pbf"} <= {p.name for p in data}
    static = [p for p in (REPO / "maps" / "static").iterdir() if p.is_file()]
    assert {"zeren-maps.js", "zeren-maps.css"} <= {p.name for p in static}
    missing = [f"{p.relative_to(REPO)} -> {_installed_name(p)}" for p in data + static
               if _installed_name(p) not in names]
    assert not missing, f"files missing from the wheel (see package-data in pyproject.toml): {missing}"


def test_nothing_but_zeren_is_installed_at_the_top_level(wheel, names):
    dist_info = f"zeren-{PYPROJECT['project']['version']}.dist-info/"
    stray = sorted(n for n in names if not n.startswith(("zeren/", dist_info)))
    assert not stray, f"the wheel installs names other than `zeren`: {stray}"
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read(dist_info + "top_level.txt").decode().split() == ["zeren"]
        entry_points = zf.read(dist_info + "entry_points.txt").decode()
    assert "zeren = zeren.api.cli.main:main" in entry_points
    # no test, benchmark or CI file rides along
    assert not [n for n in names if n.startswith(("zeren/tests/", "zeren/benchmarks/", "zeren/.ci/"))]


def test_the_installed_wheel_runs_without_the_checkout(wheel, tmp_path):
    """Installed into a folder of its own, run from an unrelated directory: `zeren` is that folder's, its data
    and map assets are found inside it, and `python -m zeren demo` builds a store."""
    site = tmp_path / "site"
    proc = _run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                timeout=120)
    assert proc.returncode == 0, proc.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # PYTHONPATH comes before site-packages, and an editable install's finder comes after both
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}
    env.pop("ZEREN_STORE", None)
    probe = ("import zeren, zeren.layers.resources as r, zeren.maps.assets as a; "
             "print(zeren.__file__); print(r.data_file('chengdu_hangzhou.gpkg')); "
             "print(r.data_file('facility_categories.csv')); print(a.STATIC_DIR / 'zeren-maps.js')")
    proc = _run([sys.executable, "-c", probe], timeout=60, cwd=elsewhere, env=env)
    assert proc.returncode == 0, proc.stderr
    paths = [Path(line) for line in proc.stdout.split()]
    assert len(paths) == 4
    for p in paths:
        assert p.is_file(), p
        assert p.resolve().is_relative_to(site.resolve()), f"{p} is not the installed wheel's (checkout: {REPO})"
    store = elsewhere / "demo.gpkg"
    proc = _run([sys.executable, "-m", "zeren", "demo", "--store", str(store)],
                timeout=120, cwd=elsewhere, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert store.stat().st_size > 100_000
    proc = _run([sys.executable, "-m", "zeren", "lookup", "--lon", "104.0657", "--lat", "30.6570",
                 "--store", str(store), "--json"], timeout=60, cwd=elsewhere, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"lead"' in proc.stdout
