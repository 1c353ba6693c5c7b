"""The house rules that keep the layers apart (see layers/CONTRACT.md)."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_geo_and_layers_load_without_fastapi_or_folium():
    code = ("import sys, zeren.geo.assign, zeren.geo.answer, zeren.geo.crs, zeren.layers.store, zeren.layers.catalogue, "
            "zeren.layers.importer, zeren.layers.demo; bad = [m for m in ('fastapi', 'folium', 'starlette', 'uvicorn') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_dependency_direction():
    allowed = {"geo": {"geo"}, "layers": {"geo", "layers"}, "maps": {"geo", "maps"}}
    for package, ok in allowed.items():
        for path in (ROOT / package).rglob("*.py"):
            ours = _imports(path) & {"geo", "layers", "maps", "api"}
            assert ours <= ok, f"{path.relative_to(ROOT)} imports {sorted(ours - ok)}"


def test_geo_does_no_file_io():
    for path in (ROOT / "geo").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for word in ("open(", "read_file(", "to_file(", "os.environ", "pyogrio"):
            assert word not in text, f"{path.relative_to(ROOT)} uses {word}"
