"""A national coverage page in Chromium: time until its first vector tiles are drawn (issue #10, target < 3 s).

  python benchmarks/bench_tiled_page.py            # bench_national's 608,400 communities (GeoPackage)
  python benchmarks/bench_tiled_page.py --small    # 22,500 communities (CI)
  python benchmarks/bench_tiled_page.py --store national.gpkg   # a store built before (this script's --keep)

The store is bench_national's synthetic country (communities in subdistricts in districts, 90% with a lead),
imported the way users do. ``zeren serve`` serves it on 127.0.0.1; headless Chromium (playwright driving the
system's Chromium, ``ZEREN_CHROMIUM`` or ``chromium`` on PATH; loopback only) opens
``/maps/coverage?kind=community`` and the figures are, from the start of the navigation:

* the server up: ``zeren serve`` started until ``/health`` answers (it builds the tile layers of the tiled kinds
  before it answers; their build time is measured again in this process after the visits, "tile layers");
* the page's HTML answered (the coverage page built by the server: colours, legend, boundaries);
* the first tile drawn (its features on the canvas): **target < 3 s**, cold (the freshly started server's
  first page: no page, no tile cached) and warm (a second visit, a new browser: only the server's caches warm);
* every tile of the first view drawn, and what that view asks for: its zoom, the tiles per layer, their
  bytes, the features drawn per tile, and each tile's wait from request to first byte (p50 / p99: the server's
  render time plus its queue, the browser asking for several at once).

The page must draw from ``/tiles/community/...`` (it fails otherwise). Each first-tile figure is printed with
PASS or FAIL; exit 0 even when the target is missed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

TARGET_FIRST_TILE_S = 3.0
LOCAL = {"127.0.0.1", "localhost"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
FIRST_TILE_JS = "() => window.Zeren && Zeren.layers.zones && Zeren.layers.zones.zerenStats.firstTileMs > 0"


def _chromium() -> str | None:
    explicit = os.environ.get("ZEREN_CHROMIUM", "").strip()
    return shutil.which(explicit) if explicit else (shutil.which("chromium") or shutil.which("chromium-browser"))


def _serve(store: str):
    import bench_api

    port = bench_api._free_port()
    env = dict(os.environ, ZEREN_RELOAD_SECONDS="0", PYTHONUNBUFFERED="1")
    env.pop("ZEREN_TOKENS_FILE", None)
    proc = subprocess.Popen([sys.executable, "-m", "zeren", "serve", "--store", store, "--port", str(port),
                             "--no-access-log", "--log-level", "warning"], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    t = time.perf_counter()
    try:
        bench_api._wait(url, proc, timeout=600)
    except Exception:
        bench_api.stop(proc)
        raise
    return proc, url, time.perf_counter() - t


def visit(chromium: str, url: str, viewport=(1280, 860), timeout_ms: int = 300_000) -> dict:
    """Open ``url`` in a fresh headless browser; the page's timings (ms from the navigation start)."""
    from playwright.sync_api import sync_playwright

    requests, outside, errors = [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})

            def gate(route):
                parts = urlsplit(route.request.url)
                if parts.scheme in ("data", "about", "blob") or parts.hostname in LOCAL:
                    return route.continue_()
                outside.append(route.request.url)
                return route.abort()

            page.route("**/*", gate)
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url, wait_until="commit", timeout=timeout_ms)
            page.wait_for_function(FIRST_TILE_JS, timeout=timeout_ms, polling=20)
            first = page.evaluate("() => Zeren.layers.zones.zerenStats")
            page.wait_for_function("() => !Zeren.layers.zones.isLoading()", timeout=timeout_ms, polling=50)
            done = page.evaluate("() => performance.now()")
            nav = page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0];"
                                " return {html: n.responseEnd, bytes: n.transferSize || n.encodedBodySize}; }")
            stats = page.evaluate("() => Zeren.layers.zones.zerenStats")
            timing = page.evaluate("() => performance.getEntriesByType('resource')"
                                   ".filter(e => new URL(e.name).pathname.startsWith('/tiles/'))"
                                   ".map(e => ({url: e.name, wait: e.responseStart - e.requestStart,"
                                   " bytes: e.encodedBodySize || e.transferSize || 0}))")
        finally:
            browser.close()
    tiles = [u for u in requests if urlsplit(u).path.startswith("/tiles/")]
    if not tiles:
        raise RuntimeError(f"the page drew no vector tiles (requests: {requests[:20]})")
    return {"html_ms": nav["html"], "html_bytes": nav["bytes"], "first_tile_ms": first["firstTileMs"],
            "first_tile_features": first["features"], "view_ms": done, "tiles": len(tiles),
            "features": stats["features"], "drawn_tiles": stats.get("tiles", 0), "timing": timing,
            "outside": outside, "errors": errors}


def _tile_layers(timing: list[dict]) -> dict:
    """Per tile layer (``/tiles/{kind}/``) of the first view: its zooms, tile count, bytes and waits."""
    out: dict = {}
    for t in timing:
        kind, z = urlsplit(t["url"]).path.split("/")[2:4]
        got = out.setdefault(kind, {"zooms": {}, "bytes": [], "wait": []})
        got["zooms"][int(z)] = got["zooms"].get(int(z), 0) + 1
        got["bytes"].append(t["bytes"])
        got["wait"].append(t["wait"])
    return out


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _report(name: str, r: dict) -> bool:
    import numpy as np

    ok = r["first_tile_ms"] / 1000 < TARGET_FIRST_TILE_S and not r["outside"] and not r["errors"]
    print(f"  {name}: first tile drawn {r['first_tile_ms'] / 1000:.2f} s (target < {TARGET_FIRST_TILE_S:.0f} s) "
          f"{_verdict(ok)}  [HTML {r['html_ms'] / 1000:.2f} s ({r['html_bytes'] / 1024:,.0f} KiB); "
          f"{r['first_tile_features']:,} features on the first draw; whole first view {r['view_ms'] / 1000:.2f} s: "
          f"{r['tiles']} tiles, {r['features']:,} features drawn]")
    for kind, t in sorted(_tile_layers(r["timing"]).items()):
        wait50, wait99 = np.percentile(t["wait"], [50, 99])
        kib = np.asarray(t["bytes"]) / 1024
        zooms = ", ".join(f"{z} ({n} tiles)" if len(t["zooms"]) > 1 else str(z) for z, n in sorted(t["zooms"].items()))
        per_tile = f", {r['features'] / len(t['bytes']):,.0f} features drawn per tile" if kind == "community" else ""
        print(f"    /tiles/{kind}: zoom {zooms}, {len(t['bytes'])} tiles, {np.median(kib):,.0f} KiB per tile "
              f"(max {kib.max():,.0f}){per_tile}; request to first byte p50 {wait50:,.0f} ms, "
              f"p99 {wait99:,.0f} ms")
    if r["outside"] or r["errors"]:
        print(f"  requests off the machine: {r['outside'][:5]}; page errors: {r['errors'][:5]}")
    return ok


def _layer_build_s(store: str) -> tuple[float, list[str]]:
    """What ``zeren serve`` does before it answers, timed here: the tile layers of the tiled kinds."""
    from zeren.api.service.tiles import warm_tiled_kinds
    from zeren.api.service.workspace import Workspace
    from zeren.api.settings import Settings

    ws = Workspace.open(store)
    try:
        ws.catalogue.warm()
        t = time.perf_counter()
        kinds = warm_tiled_kinds(ws.catalogue, Settings.from_env(store=store).map_max_inline_features)
        return time.perf_counter() - t, kinds
    finally:
        ws.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="22,500 communities (CI)")
    parser.add_argument("--side", type=int, help="communities per side, a multiple of 15 (default 780; 150 small)")
    parser.add_argument("--store", help="serve this store (built before) instead of building one")
    parser.add_argument("--keep", help="build the store at this path and keep it (for --store next time)")
    args = parser.parse_args(argv)
    chromium = _chromium()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        chromium = None
    if chromium is None:
        print("skipped: needs playwright and a Chromium (ZEREN_CHROMIUM or chromium on PATH)")
        return 0
    with tempfile.TemporaryDirectory(prefix="zeren-bench-tiled-page-") as tmp:
        tmp = Path(tmp)
        store = args.store
        if store is None:
            import bench_national

            side = args.side or (150 if args.small else 780)
            t = time.perf_counter()
            zones, _province, _bounds = bench_national.synthetic_country(side)
            store = args.keep or str(tmp / "national.gpkg")
            bench_national.build_store(store, zones, tmp)
            print(f"store: {len(zones['community'][0]):,} communities, {len(zones['subdistrict'][0]):,} "
                  f"subdistricts, {len(zones['district'][0]):,} districts, built in {time.perf_counter() - t:.0f} s")
            del zones
        server, url, up_s = _serve(store)
        ok = []
        try:
            print(f"server up in {up_s:.1f} s (not a target; load average {os.getloadavg()[0]:.1f} on "
                  f"{os.cpu_count()} cores); coverage page of the communities:")
            page = f"{url}/maps/coverage?kind=community"
            ok.append(_report("cold", visit(chromium, page)))
            ok.append(_report("warm", visit(chromium, page)))
        finally:
            import bench_api

            bench_api.stop(server)
        build_s, kinds = _layer_build_s(store)
        print(f"tile layers ({', '.join(kinds) or 'none'}) built in {build_s:.2f} s (in this process: what the "
              f"server does before it answers)")
    print(f"load average {os.getloadavg()[0]:.1f}; "
          + ("all targets met" if all(ok) else "some targets missed (see above)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
