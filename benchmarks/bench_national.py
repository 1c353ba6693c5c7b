"""A national-scale store: 600,000 community cells in ~40,000 subdistricts and ~2,700 districts (issue #10).

  python benchmarks/bench_national.py            # 780 x 780 = 608,400 communities (GeoPackage, then PostGIS)
  python benchmarks/bench_national.py --small    # 150 x 150 = 22,500 communities (CI, < 60 s)
  python benchmarks/bench_national.py --skip-postgis

The store is generated here, never shipped: a jittered quad grid over ~20 x 20 degrees of China, each edge
cut into ``--edge-points`` jittered segments. The grid's nodes and edge points are perturbed once, so
neighbouring cells share exact edges; a community is one cell, a subdistrict a 5 x 3 block of cells, a
district a 15 x 15 block (3 x 5 subdistricts), every block's polygon built from the nodes along its
perimeter (no unions). Codes look like real ones: district 6 digits, subdistrict 9, community 12. Planners
and lead appointments (90% of the zones of each kind) are imported with ``zeren import-planners`` and
``zeren import-appointments`` from CSV files, the zones with the boundary-import use case.

Measured on the GeoPackage store and on PostGIS (``ZEREN_TEST_PG_URL``: a database is created for the run
and dropped after; skipped with a note when the variable is unset), in a fresh process each:

* the import: zones (per kind), planners, appointments;
* opening the store until the index is ready (``Catalogue`` built and warmed): target < 10 s;
* peak memory of that process (``VmHWM``) after opening and the lookups: target < 4 GB;
* one ``GET /lookup`` answer in process (``service.lookup``, what the route calls), p50 / p99 over 2,000
  random points: target p99 < 1 ms;
* gaps and summary of one "province" (a block of 15 x 15 districts, ~50,000 communities): the coverage
  functions over the province's zones taken from the loaded index: target < 5 s each; and, for the fixed
  cost of a national store, the gaps service within one district;
* ``/lookup`` req/s against a bare FastAPI endpoint that queries one STRtree (``bench_api.py``'s server and
  driver, on the GeoPackage store; ``--skip-http`` leaves it out): target >= 60%.

Every figure with a target is printed with PASS or FAIL, and a closing table lists them all. The appointment
import (``import-appointments``, 586,187 rows at full size: one bulk insert of the rows and one of their audit
rows) is timed in the build. Exit 0 even when a target is missed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

ORIGIN = (95.0, 25.0)  # south-west corner of the grid (lon, lat): Yunnan to Inner Mongolia, Tibet to Hubei
SPAN_DEG = 20.0
SUB_W, SUB_H = 5, 3  # a subdistrict: 5 x 3 cells
DIST = 15  # a district: 15 x 15 cells (3 x 5 subdistricts)
PROVINCE = 15  # a "province" for the coverage figures: 15 x 15 districts
LEAD_SHARE = 0.9
TARGETS = {"open_s": 10.0, "rss_mib": 4096.0, "p99_ms": 1.0, "province_s": 5.0, "http_ratio": 0.6}


# -- the synthetic country --------------------------------------------------------------------------
def _perimeters(hp: np.ndarray, vp: np.ndarray, i0: np.ndarray, j0: np.ndarray, w: int, h: int) -> np.ndarray:
    """Closed rings (n, 2(w+h)k+1, 2) of the w x h blocks of cells whose south-west cell is (i0, j0).

    ``hp[j, i]``: the k points of the horizontal edge from node (j, i) towards (j, i + 1), its end excluded;
    ``vp[j, i]``: the same for the vertical edge from node (j, i) towards (j + 1, i). Counter-clockwise:
    south side east, east side north, north side west, west side south."""
    k = hp.shape[2]
    e_w, e_h = np.arange(w), np.arange(h)
    jj, ii = j0[:, None], i0[:, None]
    south = hp[jj, ii + e_w].reshape(len(i0), w * k, 2)
    east = vp[jj + e_h, ii + w].reshape(len(i0), h * k, 2)
    north = hp[jj + h, ii + e_w].reshape(len(i0), w * k, 2)  # west to east, its last node left out
    west = vp[jj + e_h, ii].reshape(len(i0), h * k, 2)  # south to north, its last node left out
    north_back = np.concatenate([hp[j0 + h, i0 + w, :1], north[:, :0:-1]], axis=1)  # from the NE corner west
    west_back = np.concatenate([vp[j0 + h, i0, :1], west[:, :0:-1]], axis=1)  # from the NW corner south
    ring = np.concatenate([south, east, north_back, west_back], axis=1)
    return np.concatenate([ring, ring[:, :1]], axis=1)


def synthetic_country(side: int, edge_points: int = 4, seed: int = 10):
    """(zones by kind: {kind: (codes, names, parent codes, geometries)}, bounds) for a side x side grid of
    communities (``side`` a multiple of 15)."""
    import shapely

    assert side % DIST == 0, "side must be a multiple of 15"
    rng = np.random.default_rng(seed)
    step = SPAN_DEG / 780  # the same cell size at every scale: --small is a corner of the full grid
    k = edge_points
    # nodes (side + 1)^2, jittered by up to a quarter cell (the outer border stays straight)
    gy, gx = np.meshgrid(np.arange(side + 1, dtype=float), np.arange(side + 1, dtype=float), indexing="ij")
    jitter = rng.uniform(-0.25, 0.25, (2, side + 1, side + 1))
    jitter[0][:, [0, -1]] = 0
    jitter[1][[0, -1], :] = 0
    nx, ny = gx + jitter[0], gy + jitter[1]
    t = np.arange(k) / k

    def edges(ax, ay, bx, by, horizontal: bool):
        """k points from node a towards node b (b excluded); the inner ones wobble across the edge, except
        on the grid's outer border."""
        px = ax[..., None] + (bx - ax)[..., None] * t
        py = ay[..., None] + (by - ay)[..., None] * t
        wobble = rng.uniform(-0.06, 0.06, px.shape)
        wobble[..., 0] = 0
        if horizontal:
            wobble[[0, -1], :] = 0
            py = py + wobble
        else:
            wobble[:, [0, -1]] = 0
            px = px + wobble
        return np.stack([ORIGIN[0] + px * step, ORIGIN[1] + py * step], axis=-1)

    hp = np.zeros((side + 1, side + 1, k, 2))
    vp = np.zeros((side + 1, side + 1, k, 2))
    hp[:, :side] = edges(nx[:, :-1], ny[:, :-1], nx[:, 1:], ny[:, 1:], True)
    vp[:side, :] = edges(nx[:-1, :], ny[:-1, :], nx[1:, :], ny[1:, :], False)
    # the last column of hp / row of vp hold only the corner node (the ring closes on it)
    hp[:, side, 0] = np.stack([ORIGIN[0] + nx[:, side] * step, ORIGIN[1] + ny[:, side] * step], axis=-1)
    vp[side, :, 0] = np.stack([ORIGIN[0] + nx[side, :] * step, ORIGIN[1] + ny[side, :] * step], axis=-1)

    def blocks(w, h):
        j0, i0 = np.meshgrid(np.arange(0, side, h), np.arange(0, side, w), indexing="ij")
        i0, j0 = i0.ravel(), j0.ravel()
        geoms = np.empty(len(i0), dtype=object)
        for a in range(0, len(i0), 50_000):  # bounded temporary memory
            sl = slice(a, a + 50_000)
            geoms[sl] = shapely.polygons(_perimeters(hp, vp, i0[sl], j0[sl], w, h))
        return i0, j0, geoms

    per_row = side // DIST
    di, dj, d_geoms = blocks(DIST, DIST)
    d_index = (dj // DIST) * per_row + di // DIST
    d_code = np.array([f"{11 + d // 100:02d}{d % 100 // 10 + 1:02d}{d % 10 + 1:02d}" for d in d_index], dtype=object)
    si, sj, s_geoms = blocks(SUB_W, SUB_H)
    s_district = (sj // DIST) * per_row + si // DIST
    s_local = ((sj % DIST) // SUB_H) * (DIST // SUB_W) + (si % DIST) // SUB_W
    s_code = np.char.add(d_code[s_district].astype(str), np.char.zfill((s_local + 1).astype(str), 3)).astype(object)
    ci, cj, c_geoms = blocks(1, 1)
    c_sub = (cj // SUB_H) * (side // SUB_W) + ci // SUB_W
    c_local = (cj % SUB_H) * SUB_W + ci % SUB_W
    c_code = np.char.add(s_code[c_sub].astype(str), np.char.zfill((c_local + 1).astype(str), 3)).astype(object)
    zones = {
        "district": (d_code, np.char.add("区", d_code.astype(str)).astype(object), None, d_geoms),
        "subdistrict": (s_code, np.char.add("街道", s_code.astype(str)).astype(object), d_code[s_district], s_geoms),
        "community": (c_code, np.char.add("社区", c_code.astype(str)).astype(object), s_code[c_sub], c_geoms),
    }
    province = {"district": d_code[(di < PROVINCE * DIST) & (dj < PROVINCE * DIST)]}
    bounds = (ORIGIN[0], ORIGIN[1], ORIGIN[0] + side * step, ORIGIN[1] + side * step)
    return zones, province, bounds


def build_store(location: str, zones: dict, tmp: Path, seed: int = 11) -> dict:
    """Import the country into a new store the way users do; returns the seconds of each step."""
    import datetime as dt

    import geopandas as gpd
    import pandas as pd
    from zeren.api.cli.main import main as zeren
    from zeren.api.service.actors import Actor
    from zeren.api.service.boundaries import import_frame
    from zeren.api.service.workspace import Workspace

    times = {}
    ws = Workspace.open(location, create=True)
    for kind in ("district", "subdistrict", "community"):  # parents first, as users import them
        codes, names, parents, geoms = zones[kind]
        frame = gpd.GeoDataFrame({"code": codes, "name": names, "parent_code": parents},
                                 geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")
        t = time.perf_counter()
        import_frame(ws, frame, kind=kind, edition=2024, valid_from=dt.date(2024, 1, 1), source="bench",
                     actor=Actor("bench"))
        times[f"import {kind} ({len(codes):,})"] = time.perf_counter() - t
        del frame
    ws.close()
    rng = np.random.default_rng(seed)
    n_planners = max(50, len(zones["community"][0]) // 200)
    ids = np.char.add("P", np.char.zfill(np.arange(n_planners).astype(str), 6))
    pd.DataFrame({"id": ids, "name": np.char.add("规划师", ids), "organization": "bench", "disciplines": "planning",
                  "public_contact": "", "private_contact": ""}).to_csv(tmp / "planners.csv", index=False)
    rows = []
    for kind in ("district", "subdistrict", "community"):
        codes = zones[kind][0]
        led = rng.random(len(codes)) < LEAD_SHARE
        rows.append(pd.DataFrame({"planner_id": ids[rng.integers(0, n_planners, int(led.sum()))],
                                  "zone_kind": kind, "zone_code": codes[led], "role": "lead",
                                  "start": "2024-01-01", "end": ""}))
    appointments = pd.concat(rows, ignore_index=True)
    appointments.to_csv(tmp / "appointments.csv", index=False)
    for command, name in (("import-planners", "planners.csv"), ("import-appointments", "appointments.csv")):
        t = time.perf_counter()
        if zeren([command, str(tmp / name), "--store", location]) != 0:
            raise RuntimeError(f"{command} failed")
        times[f"{command} ({len(ids) if command == 'import-planners' else len(appointments):,})"] = \
            time.perf_counter() - t
    return times


# -- the measures (this script with --measure, in a fresh process) ---------------------------------
def measure(location: str, bounds: tuple, province_codes: list[str]) -> dict:
    """Open, look up, then the province's gaps and summary; prints one JSON line."""
    import resource

    import pandas as pd

    def rss_mib() -> float:
        """This process's peak resident memory: VmHWM, which starts afresh at exec. (``ru_maxrss`` does not:
        Linux keeps the parent's peak across fork+exec, so the 3 GB of the build process showed up here.)"""
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    out = {}
    t = time.perf_counter()
    from zeren.api.service import coverage as coverage_service
    from zeren.api.service import lookup as lookup_service
    from zeren.api.service.workspace import Workspace
    from zeren.geo import coverage

    out["import_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ws = Workspace.open(location)
    catalogue = ws.catalogue
    catalogue.warm()
    out["open_s"] = time.perf_counter() - t
    out["zones"] = len(catalogue.index)
    out["rss_open_mib"] = rss_mib()

    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = bounds
    lon, lat = rng.uniform(minx, maxx, 2_200), rng.uniform(miny, maxy, 2_200)
    answers = [lookup_service.lookup(ws, float(x), float(y)) for x, y in zip(lon[:200], lat[:200])]  # warm-up
    assert all(a["zones"] for a in answers), "the benchmark points must fall in the zones"
    lat_ms, cpu_ms = [], []
    out["load_average"] = os.getloadavg()[0]
    for x, y in zip(lon[200:], lat[200:]):
        t, c = time.perf_counter(), time.thread_time()
        lookup_service.lookup(ws, float(x), float(y))
        cpu_ms.append((time.thread_time() - c) * 1000)
        lat_ms.append((time.perf_counter() - t) * 1000)
    out["lookup_p50_ms"], out["lookup_p99_ms"] = (float(v) for v in np.percentile(lat_ms, [50, 99]))
    # CPU time of the lookup thread: what the lookup costs, without the waits for a core on a busy machine
    out["lookup_cpu_p50_ms"], out["lookup_cpu_p99_ms"] = (float(v) for v in np.percentile(cpu_ms, [50, 99]))
    out["rss_lookup_mib"] = rss_mib()

    # one district, through the service (what `zeren gaps --within CODE` runs) on the national store
    t = time.perf_counter()
    result = coverage_service.gaps(ws, kind="community", within=province_codes[0])
    out["gaps_one_district_s"] = time.perf_counter() - t
    out["gaps_one_district_units"] = result.units_total

    # one province: its districts, their subdistricts and communities, from the loaded index
    zones = catalogue.index.zones
    prefix_ok = zones["code"].str[:6].isin(set(province_codes)).to_numpy()
    t = time.perf_counter()
    province = zones.loc[prefix_ok]
    out["province_select_s"] = time.perf_counter() - t
    appointments = catalogue.appointments
    t = time.perf_counter()
    gaps = coverage.coverage_gaps(province, appointments, kind="community")
    out["province_gaps_s"] = time.perf_counter() - t
    out["province_units"] = gaps.units_total
    out["province_units_without_lead"] = len(gaps.units_without_planner)
    t = time.perf_counter()
    summary = coverage.coverage_summary(province, appointments, kind="community", by="district")
    out["province_summary_s"] = time.perf_counter() - t
    out["province_summary_rows"] = len(summary.table)
    assert int(summary.table["units_total"].sum()) == gaps.units_total, "summary and gaps disagree"
    out["rss_end_mib"] = rss_mib()
    del pd
    return out


def _run_measure(location: str, bounds, province_codes, tmp: Path) -> dict:
    args = tmp / "measure.json"
    args.write_text(json.dumps({"location": location, "bounds": list(bounds), "province": list(province_codes)}))
    run = subprocess.run([sys.executable, __file__, "--measure", str(args)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _check(results: list, store: str, label: str, value: float, target: float, text: str, *, at_least=False) -> None:
    """Print one figure with PASS/FAIL against its target and keep the verdict for the closing table."""
    ok = value >= target if at_least else value < target
    results.append((store, label, ok))
    print(f"  [{_verdict(ok)}] {text}")


def _report(name: str, build: dict, m: dict, results: list) -> None:
    print(f"\n--- {name}: {m['zones']:,} zones")
    for step, seconds in build.items():
        print(f"  {step}: {seconds:.1f} s")
    appointments = next((k for k in build if k.startswith("import-appointments")), None)
    if appointments:
        n = int(appointments.split("(")[1].rstrip(")").replace(",", ""))
        print(f"  appointments imported in bulk: {n / max(build[appointments], 1e-9):,.0f} rows/s (one COPY / "
              f"executemany of the rows and one of their audit rows, in one transaction)")
    print(f"  import zeren (fresh process): {m['import_s']:.2f} s")
    _check(results, name, "open + index ready", m["open_s"], TARGETS["open_s"],
           f"open the store, index ready (Catalogue + warm): {m['open_s']:.2f} s (target < {TARGETS['open_s']:g} s)")
    peak = max(m["rss_open_mib"], m["rss_lookup_mib"])
    _check(results, name, "peak memory", peak, TARGETS["rss_mib"],
           f"peak memory: {m['rss_open_mib']:,.0f} MiB after opening, {m['rss_lookup_mib']:,.0f} MiB after the "
           f"lookups (target < {TARGETS['rss_mib']:,.0f} MiB); {m['rss_end_mib']:,.0f} MiB after the coverage")
    _check(results, name, "lookup p99", m["lookup_p99_ms"], TARGETS["p99_ms"],
           f"lookup in process (service.lookup), 2,000 random points: p50 {m['lookup_p50_ms']:.3f} ms, "
           f"p99 {m['lookup_p99_ms']:.3f} ms (target p99 < {TARGETS['p99_ms']:g} ms); CPU time of the lookup "
           f"p50 {m.get('lookup_cpu_p50_ms', float('nan')):.3f} ms, p99 {m.get('lookup_cpu_p99_ms', float('nan')):.3f} "
           f"ms (wall time includes waiting for a core: load average {m.get('load_average', float('nan')):.1f} "
           f"on {os.cpu_count()} cores)")
    print(f"  gaps within one district through the service ({m['gaps_one_district_units']} units, national "
          f"store): {m['gaps_one_district_s']:.2f} s")
    print(f"  province: {m['province_units']:,} communities in {m['province_summary_rows']} districts, selected in "
          f"{m['province_select_s']:.2f} s, {m['province_units_without_lead']:,} without a lead")
    _check(results, name, "province gaps", m["province_gaps_s"], TARGETS["province_s"],
           f"province gaps: {m['province_gaps_s']:.2f} s (target < {TARGETS['province_s']:g} s)")
    _check(results, name, "province summary", m["province_summary_s"], TARGETS["province_s"],
           f"province summary: {m['province_summary_s']:.2f} s (target < {TARGETS['province_s']:g} s)")


def _http(store: Path, bounds, seconds: float, verdicts: list) -> None:
    """bench_api's server (the Zeren app plus /bare) and load driver, on this store."""
    import httpx

    sys.path.insert(0, str(HERE))
    import bench_api

    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = bounds
    lon, lat = rng.uniform(minx, maxx, 20_000), rng.uniform(miny, maxy, 20_000)
    with tempfile.TemporaryDirectory(prefix="zeren-bench-national-http-") as tmp:
        paths_file = Path(tmp) / "paths.json"
        paths_file.write_text(json.dumps({name: [f"/{name}?lon={x:.6f}&lat={y:.6f}" for x, y in zip(lon, lat)]
                                          for name in ("lookup", "bare")}))
        port = bench_api._free_port()
        env = dict(os.environ, ZEREN_STORE=str(store), ZEREN_RELOAD_SECONDS="0", PYTHONUNBUFFERED="1")
        env.pop("ZEREN_TOKENS_FILE", None)
        server = subprocess.Popen([sys.executable, bench_api.__file__, "--serve", str(port)], env=env, cwd=ROOT)
        try:
            url = f"http://127.0.0.1:{port}"
            t = time.perf_counter()
            bench_api._wait(url, server, timeout=300)
            print(f"\n--- HTTP: server up in {time.perf_counter() - t:.1f} s")
            assert httpx.get(f"{url}/lookup", params={"lon": lon[0], "lat": lat[0]}).json()["zones"]
            driven = subprocess.run([sys.executable, bench_api.__file__, "--drive", str(port), str(paths_file),
                                     str(seconds), "200000"], capture_output=True, text=True, cwd=ROOT, timeout=900)
            if driven.returncode:
                raise RuntimeError(f"the load driver failed: {driven.stderr[-2000:]}")
            results = json.loads(driven.stdout.strip().splitlines()[-1])
        finally:
            bench_api.stop(server)
    bare, lookup = bench_api._merge(results["bare"]), bench_api._merge(results["lookup"])
    for name, r in (("bare async STRtree query (/bare)", bare), ("GET /lookup (full answer)", lookup)):
        print(f"  {name:<34}{r['rps']:>9.0f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
              f"errors {r['errors']}")
    ratio = lookup["rps"] / bare["rps"]
    _check(verdicts, "HTTP (GeoPackage)", "/lookup vs bare", ratio, TARGETS["http_ratio"],
           f"/lookup throughput = {ratio:.0%} of the bare endpoint (target >= {TARGETS['http_ratio']:.0%})",
           at_least=True)


def _postgis_database(base_url: str, name: str, create: bool) -> str:
    """Create (or drop) database ``name`` on the server of ``base_url``; returns its URL."""
    import psycopg

    head, _, _ = base_url.rpartition("/")
    with psycopg.connect(base_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            con.execute(f'CREATE DATABASE "{name}"')
            with psycopg.connect(f"{head}/{name}", autocommit=True) as db:
                db.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return f"{head}/{name}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="22,500 communities (CI)")
    parser.add_argument("--side", type=int, help="cells per side, a multiple of 15 (default 780; 150 small)")
    parser.add_argument("--edge-points", type=int, default=4, help="points per cell edge (default 4: 17 per ring)")
    parser.add_argument("--skip-postgis", action="store_true")
    parser.add_argument("--skip-gpkg", action="store_true")
    parser.add_argument("--skip-http", action="store_true", help="no /lookup over HTTP against a bare endpoint")
    parser.add_argument("--http", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old scripts
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        spec = json.loads(Path(args.measure).read_text())
        print(json.dumps(measure(spec["location"], tuple(spec["bounds"]), spec["province"])))
        return 0

    side = args.side or (150 if args.small else 780)
    t = time.perf_counter()
    zones, province, bounds = synthetic_country(side, args.edge_points)
    counts = {kind: len(v[0]) for kind, v in zones.items()}
    print(f"synthetic country: {counts['community']:,} communities, {counts['subdistrict']:,} subdistricts, "
          f"{counts['district']:,} districts ({args.edge_points * 4 + 1} points per community ring), generated "
          f"in {time.perf_counter() - t:.1f} s; the province: {len(province['district'])} districts")
    province_codes = [str(c) for c in province["district"]]
    results: list[tuple[str, str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="zeren-bench-national-") as tmp:
        tmp = Path(tmp)
        store = tmp / "national.gpkg"
        if not args.skip_gpkg:
            build = build_store(str(store), zones, tmp)
            build[f"GeoPackage size: {store.stat().st_size / 2**20:,.0f} MiB (not a time)"] = 0.0
            _report("GeoPackage", build, _run_measure(str(store), bounds, province_codes, tmp), results)
        base = os.environ.get("ZEREN_TEST_PG_URL")
        if args.skip_postgis:
            print("\n--- PostGIS: skipped (--skip-postgis)")
        elif not base:
            print("\n--- PostGIS: skipped (ZEREN_TEST_PG_URL is not set; `source /tmp/env.sh` on the dev machine)")
        else:
            name = f"zeren_bench_national_{os.getpid()}"
            url = _postgis_database(base, name, create=True)
            try:
                build = build_store(url, zones, tmp)
                _report("PostGIS", build, _run_measure(url, bounds, province_codes, tmp), results)
            finally:
                _postgis_database(base, name, create=False)
        if not args.skip_http and not args.skip_gpkg:
            _http(store, bounds, 1.5 if args.small else 6.0, results)
    print("\n--- targets" + (" (--small: CI sizes, the targets are those of the full run)" if args.small else ""))
    for where, label, ok in results:
        print(f"  [{_verdict(ok)}] {where}: {label}")
    print("all targets met" if all(ok for *_, ok in results) else "some targets missed (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
