"""The house rules that keep the layers apart (see ../shared/design/ARCHITECTURE.md and layers/CONTRACT.md),
checked on the source so they cannot rot:

* geo <- layers <- use cases (api/service) -> maps; the doors (api/http, api/cli) -> use cases;
* an HTTP router never imports the CLI, and the CLI never imports a router;
* the use cases know neither door (no FastAPI, no argparse);
* no product module imports tests or benchmarks, or a package by its bare name (``geo`` instead of
  ``zeren.geo``: that would load a second copy of it from the checkout);
* only the settings module reads the environment;
* no import cycles among Zeren's modules (imports inside functions count too).
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"geo": "zeren.geo", "layers": "zeren.layers", "api": "zeren.api", "maps": "zeren.maps"}
BARE = set(PACKAGES) | {"tests", "benchmarks"}


def _module_name(path: Path) -> str:
    """The installed name of a product file: api/package/x.py is zeren.x, geo/crs.py is zeren.geo.crs."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts = parts[2:] if parts[:2] == ["api", "package"] else parts
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["zeren", *parts])


def _product_files() -> list[Path]:
    return sorted(p for top in PACKAGES for p in (ROOT / top).rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module an import statement of ``path`` names (module level and inside functions), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from package import submodule` depends on the submodule; `from module import name` on the module
            subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in _MODULE_NAMES]
            plain = [a for a in node.names if f"{node.module}.{a.name}" not in _MODULE_NAMES]
            out += [(s, node.lineno) for s in subs] + ([(node.module, node.lineno)] if plain else [])
    return out


MODULES = {_module_name(p): p for p in _product_files()}
_MODULE_NAMES = set(MODULES)


def _ours(name: str) -> str | None:
    """The Zeren module an imported name refers to (the longest known prefix), or None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _graph() -> dict[str, set[str]]:
    graph = {}
    for mod, path in MODULES.items():
        graph[mod] = {t for name, _ in _imports(path) if (t := _ours(name)) and t != mod}
    return graph


def _layer(mod: str) -> str:
    for prefix in ("zeren.api.http.routers", "zeren.api.http", "zeren.api.cli", "zeren.api.service", "zeren.geo",
                   "zeren.layers", "zeren.maps", "zeren.data", "zeren.api"):
        if mod == prefix or mod.startswith(prefix + "."):
            return prefix
    return mod


def test_the_module_map_is_complete():
    assert {"zeren.geo.assign", "zeren.layers.store", "zeren.api.service.boundaries", "zeren.api.cli.main",
            "zeren.api.http.routers.lookup", "zeren.maps.builders", "zeren"} <= set(MODULES)


def test_no_bare_package_names_and_no_tests_or_benchmarks():
    bad = []
    for path in _product_files():
        for name, line in _imports(path):
            if name.split(".")[0] in BARE:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_dependency_direction():
    allowed = {
        "zeren.geo": {"zeren.geo"},
        "zeren.layers": {"zeren.geo", "zeren.layers", "zeren.data"},
        "zeren.maps": {"zeren.geo", "zeren.maps"},
        "zeren.api.service": {"zeren.geo", "zeren.layers", "zeren.maps", "zeren.api.service", "zeren.api"},
        "zeren.api.http": {"zeren.geo", "zeren.layers", "zeren.maps", "zeren.api.service", "zeren.api",
                           "zeren.api.http", "zeren.api.http.routers"},
        "zeren.api.http.routers": {"zeren.geo", "zeren.layers", "zeren.maps", "zeren.api.service", "zeren.api",
                                   "zeren.api.http", "zeren.api.http.routers"},
        "zeren.api.cli": {"zeren.geo", "zeren.layers", "zeren.maps", "zeren.api.service", "zeren.api",
                          "zeren.api.cli", "zeren.api.http"},
    }
    bad = []
    for mod, targets in _graph().items():
        ok = allowed.get(_layer(mod))
        if ok is None:
            continue
        for target in targets:
            if _layer(target) not in ok:
                bad.append(f"{mod} imports {target}")
    assert not bad, "\n".join(sorted(bad))


def test_routers_and_cli_never_import_each_other():
    bad = []
    for mod, targets in _graph().items():
        for target in targets:
            if _layer(mod) == "zeren.api.http.routers" and _layer(target) == "zeren.api.cli":
                bad.append(f"{mod} imports {target}")
            if _layer(mod) == "zeren.api.cli" and _layer(target) == "zeren.api.http.routers":
                bad.append(f"{mod} imports {target}")
    # the CLI may start the server (zeren serve imports the app factory), nothing else of the HTTP door
    cli_to_http = {t for m, ts in _graph().items() if _layer(m) == "zeren.api.cli" for t in ts
                   if _layer(t) == "zeren.api.http"}
    assert cli_to_http <= {"zeren.api.http.app"}, cli_to_http
    assert not bad, "\n".join(bad)


def test_use_cases_know_neither_door():
    bad = []
    for mod, path in MODULES.items():
        if _layer(mod) != "zeren.api.service":
            continue
        for name, line in _imports(path):
            if name.split(".")[0] in ("fastapi", "starlette", "argparse", "uvicorn"):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_only_the_settings_module_reads_the_environment():
    bad = []
    for path in _product_files():
        if path == ROOT / "api" / "settings.py":
            continue
        text = path.read_text(encoding="utf-8")
        for word in ("os.environ", "os.getenv", "getpass", "environ.get("):
            if word in text:
                bad.append(f"{path.relative_to(ROOT)} uses {word}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = _graph()
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []
    counter = [0]

    def strongconnect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            strongconnect(v)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_geo_does_no_file_io():
    for path in (ROOT / "geo").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for word in ("open(", "read_file(", "to_file(", "os.environ", "pyogrio"):
            assert word not in text, f"{path.relative_to(ROOT)} uses {word}"


@pytest.mark.parametrize("modules, forbidden", [
    ("zeren.geo.assign, zeren.geo.answer, zeren.geo.crs, zeren.geo.editions, zeren.layers.store, "
     "zeren.layers.catalogue, zeren.layers.importer", ("fastapi", "folium", "starlette", "uvicorn")),
    ("zeren.api.service.boundaries, zeren.api.service.editions, zeren.api.service.appointments, "
     "zeren.api.service.assign, zeren.api.service.demo", ("fastapi", "starlette", "uvicorn")),
], ids=["spatial-core-and-data", "use-cases"])
def test_layers_load_without_what_they_must_not_use(modules, forbidden):
    code = (f"import sys, {modules}; bad = [m for m in {forbidden!r} if m in sys.modules]; print(bad); "
            f"sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
