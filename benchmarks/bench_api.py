"""The web API under load, against a bare endpoint measured in the same run.

  python benchmarks/bench_api.py            # 30,000 synthetic zones, 8 s per phase
  python benchmarks/bench_api.py --small    # 2,000 zones, 1.5 s per phase (CI: so the script cannot rot)

It builds a synthetic city into a temporary GeoPackage, starts the server (this script in ``--serve`` mode:
the Zeren app from ``api.app.create_app`` plus, in this benchmark's app only, ``GET /bare``: one shapely
STRtree point query over the same zones, async, returning the codes) with uvicorn (uvloop, httptools, one
worker) on 127.0.0.1, and drives it from a second process (``--drive`` mode: keep-alive HTTP/1.1 over asyncio,
8 connections, bounded in time and count). Phases alternate bare / lookup twice. Then it times
``POST /assign`` with 10,000 points.

Targets: GET /lookup >= 60% of the bare endpoint's throughput, p99 <= 25 ms at 30,000 zones on one worker;
POST /assign with 10,000 points < 1 s. Only 127.0.0.1 traffic.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CENTRE = (104.06, 30.66)
CONNECTIONS = 8


# -- the synthetic city ---------------------------------------------------------------------------
def build_store(path: Path, n_zones: int, seed: int = 1) -> tuple[float, float, float, float]:
    """Voronoi subdistricts (about 80 vertices each) grouped into districts, a few historic areas, planners
    and a lead on 90% of the zones; returns the bounds of the subdistricts."""
    import datetime as dt

    import geopandas as gpd
    import pandas as pd
    import shapely

    from zeren.layers.store import open_store

    rng = np.random.default_rng(seed)
    span = 0.8
    x0, y0 = CENTRE[0] - span / 2, CENTRE[1] - span / 2
    box = shapely.box(x0, y0, x0 + span, y0 + span)
    seeds = shapely.points(rng.uniform(x0, x0 + span, n_zones), rng.uniform(y0, y0 + span, n_zones))
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds),
                                                                            extend_to=box)), box)
    cells = shapely.segmentize(cells, span / np.sqrt(n_zones) * 4 / 80)
    side = max(2, int(round(np.sqrt(len(cells) / 150))))
    rep = shapely.point_on_surface(cells)
    gx = np.minimum(((shapely.get_x(rep) - x0) / span * side).astype(int), side - 1)
    gy = np.minimum(((shapely.get_y(rep) - y0) / span * side).astype(int), side - 1)
    dist_of = gy * side + gx
    districts = np.array([shapely.union_all(cells[dist_of == d]) for d in range(side * side)], dtype=object)
    overlays = shapely.buffer(shapely.points(rng.uniform(x0, x0 + span, 20), rng.uniform(y0, y0 + span, 20)), 0.004)
    layers = {"subdistrict": (cells, [f"S{i:06d}" for i in range(len(cells))], [f"D{d:03d}" for d in dist_of]),
              "district": (districts, [f"D{d:03d}" for d in range(len(districts))], [None] * len(districts)),
              "historic_area": (overlays, [f"H{i:03d}" for i in range(len(overlays))], [None] * len(overlays))}
    from zeren.api.service.actors import Actor
    from zeren.api.service.appointments import add_appointments
    from zeren.api.service.boundaries import import_frame
    from zeren.api.service.planners import save_planners
    from zeren.api.service.workspace import Workspace

    ws, bench = Workspace(open_store(path, create=True)), Actor("bench")
    start = dt.date(2024, 1, 1)
    for kind, (geoms, codes, parents) in layers.items():
        frame = gpd.GeoDataFrame({"code": codes, "name": codes, "name_en": None, "parent_code": parents,
                                  "population": pd.array([pd.NA] * len(codes), dtype="Int64"),
                                  "attrs": [{} for _ in codes]}, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"))
        import_frame(ws, frame, kind=kind, edition=2024, valid_from=start, source="bench", actor=bench)
    planners = pd.DataFrame({"id": [f"P{i:03d}" for i in range(400)], "name": [f"规划师{i}" for i in range(400)],
                             "organization": "bench", "disciplines": "planning", "public_contact": None,
                             "private_contact": None})
    save_planners(ws, planners, actor=bench)
    rows = [(f"P{i % 400:03d}", kind, code, "lead", start, None)
            for kind, (_, codes, _) in layers.items() for i, code in enumerate(codes) if rng.random() < 0.9]
    rows += [(f"P{(i + 7) % 400:03d}", "historic_area", code, "consultant", start, None)
             for i, code in enumerate(layers["historic_area"][1])]
    add_appointments(ws, pd.DataFrame(rows, columns=["planner_id", "zone_kind", "zone_code", "role", "start", "end"]),
                     actor=bench)
    ws.close()
    return tuple(shapely.total_bounds(cells))


# -- the server (this script with --serve) --------------------------------------------------------
def bench_app():
    """The Zeren app plus GET /bare (only in this benchmark's app)."""
    import shapely

    from zeren.api.http.app import create_app
    from zeren.api.settings import Settings

    app = create_app(Settings.from_env())

    @app.get("/bare", include_in_schema=False)
    async def bare(lon: float, lat: float):
        index = app.state.zeren.catalogue.index
        hits = index.tree.query(shapely.Point(lon, lat), predicate="covered_by")
        return {"zones": index.code[hits].tolist()}

    return app


def serve(port: int) -> None:
    import uvicorn

    uvicorn.run(bench_app(), host="127.0.0.1", port=port, loop="uvloop", http="httptools", access_log=False,
                log_level="warning")


# -- the load (this script with --drive) ----------------------------------------------------------
async def _connection(port: int, paths: list[str], start: int, deadline: float, limit: int, out: list, errors: list):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i, n = start, 0
    try:
        while time.perf_counter() < deadline and n < limit:
            path = paths[i % len(paths)]
            i += 1
            n += 1
            t = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            out.append(time.perf_counter() - t)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _phase(port: int, paths: list[str], seconds: float, limit: int) -> dict:
    latencies: list[float] = []
    errors: list[int] = []
    t = time.perf_counter()
    deadline = t + seconds
    per_conn = max(1, limit // CONNECTIONS)
    await asyncio.gather(*[_connection(port, paths, k * 997, deadline, per_conn, latencies, errors)
                           for k in range(CONNECTIONS)])
    elapsed = time.perf_counter() - t
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "seconds": elapsed, "rps": len(lat) / elapsed, "errors": len(errors),
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


def drive(port: int, paths_file: str, seconds: float, limit: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        pass
    paths = json.loads(Path(paths_file).read_text())

    async def run():
        results = {}
        await _phase(port, paths["lookup"][:2000] + paths["bare"][:2000], min(2.0, seconds), limit)  # warm-up
        for name in ("bare", "lookup", "bare", "lookup"):
            r = await _phase(port, paths[name], seconds, limit)
            results.setdefault(name, []).append(r)
        return results

    print(json.dumps(asyncio.run(run())))


# -- the run ----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError("the server did not start")


def stop(server) -> None:
    """Stop a server started by a benchmark: SIGTERM, then SIGKILL if it does not exit in 15 s."""
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def _merge(runs: list[dict]) -> dict:
    n = sum(r["requests"] for r in runs)
    s = sum(r["seconds"] for r in runs)
    return {"rps": n / s, "p50_ms": max(r["p50_ms"] for r in runs), "p99_ms": max(r["p99_ms"] for r in runs),
            "requests": n, "errors": sum(r["errors"] for r in runs)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="a quick run (CI)")
    parser.add_argument("--zones", type=int, help="number of synthetic subdistricts (default 30,000; 2,000 small)")
    parser.add_argument("--seconds", type=float, help="seconds per phase (default 8; 1.5 small)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--drive", nargs=4, metavar=("PORT", "PATHS", "SECONDS", "LIMIT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    if args.drive:
        drive(int(args.drive[0]), args.drive[1], float(args.drive[2]), int(args.drive[3]))
        return 0

    import httpx

    n_zones = args.zones or (2_000 if args.small else 30_000)
    seconds = args.seconds or (1.5 if args.small else 8.0)
    limit = 200_000
    with tempfile.TemporaryDirectory(prefix="zeren-bench-api-") as tmp:
        store = Path(tmp) / "city.gpkg"
        t = time.perf_counter()
        minx, miny, maxx, maxy = build_store(store, n_zones)
        print(f"synthetic city: {n_zones:,} subdistricts (+ districts, historic areas, leads) "
              f"built in {time.perf_counter() - t:.1f} s")
        rng = np.random.default_rng(7)
        lon, lat = rng.uniform(minx, maxx, 20_000), rng.uniform(miny, maxy, 20_000)
        paths = {name: [f"/{name}?lon={x:.6f}&lat={y:.6f}" for x, y in zip(lon, lat)] for name in ("lookup", "bare")}
        paths_file = Path(tmp) / "paths.json"
        paths_file.write_text(json.dumps(paths))
        port = _free_port()
        env = dict(os.environ, ZEREN_STORE=str(store), ZEREN_RELOAD_SECONDS="0", PYTHONUNBUFFERED="1")
        env.pop("ZEREN_TOKENS_FILE", None)
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env, cwd=ROOT)
        try:
            url = f"http://127.0.0.1:{port}"
            t = time.perf_counter()
            _wait(url, server)
            print(f"server up (store opened, index built) in {time.perf_counter() - t:.1f} s; "
                  f"{CONNECTIONS} connections, {seconds:g} s per phase")
            check = httpx.get(f"{url}/lookup", params={"lon": lon[0], "lat": lat[0]}).json()
            assert check["zones"], "the benchmark points must fall in the zones"
            driven = subprocess.run([sys.executable, __file__, "--drive", str(port), str(paths_file), str(seconds),
                                     str(limit)], capture_output=True, text=True, cwd=ROOT, timeout=600)
            if driven.returncode:
                raise RuntimeError(f"the load driver failed: {driven.stderr[-2000:]}")
            results = json.loads(driven.stdout.strip().splitlines()[-1])
            bare, lookup = _merge(results["bare"]), _merge(results["lookup"])
            print(f"\n{'endpoint':<34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
            for name, r in (("bare async STRtree query (/bare)", bare), ("GET /lookup (full answer)", lookup)):
                print(f"{name:<34}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8}")
            ratio = lookup["rps"] / bare["rps"]
            print(f"\nlookup throughput = {ratio:.0%} of the bare endpoint (target >= 60%)")
            print(f"lookup p99 = {lookup['p99_ms']:.1f} ms at {n_zones:,} zones, one worker (target <= 25 ms)")

            features = [{"type": "Feature", "properties": {"i": i},
                         "geometry": {"type": "Point", "coordinates": [round(float(x), 6), round(float(y), 6)]}}
                        for i, (x, y) in enumerate(zip(rng.uniform(minx, maxx, 10_000),
                                                       rng.uniform(miny, maxy, 10_000)))]
            body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
            times = []
            with httpx.Client(timeout=60) as client:
                for _ in range(4):
                    t = time.perf_counter()
                    r = client.post(f"{url}/assign", content=body, headers={"Content-Type": "application/json"})
                    times.append(time.perf_counter() - t)
                    assert r.status_code == 200 and r.json()["assigned"] == 10_000
            best, median = min(times[1:]), float(np.median(times[1:]))
            print(f"POST /assign, 10,000 points ({len(body) / 1e6:.1f} MB in, {len(r.content) / 1e6:.1f} MB out): "
                  f"best {best:.3f} s, median {median:.3f} s (target < 1 s)")
            met = ratio >= 0.6 and lookup["p99_ms"] <= 25 and median < 1 and not (bare["errors"] or lookup["errors"])
            print("\nall targets met" if met else "\nsome targets missed (see above)")
        finally:
            stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
