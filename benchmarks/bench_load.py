"""Lookups while batches run: GET /lookup alone, then with 1 and 4 concurrent streams of 10,000-point POST /assign.

  python benchmarks/bench_load.py            # 30,000 synthetic zones, 8 s per phase
  python benchmarks/bench_load.py --small    # 2,000 zones, 2 s per phase (CI: so the script cannot rot)
  python benchmarks/bench_load.py --small --in-process   # the same with batches in threads, to compare

It builds the synthetic city of ``bench_api.py`` into a temporary GeoPackage and starts ``zeren serve`` (one
worker: uvloop, httptools with the header cap, batches in their bounded pool) on 127.0.0.1. Each phase drives
/lookup from its own process (keep-alive HTTP/1.1 over asyncio, 8 connections, bounded in time and count)
while 0, 1 or 4 other processes post 10,000-point FeatureCollections to /assign back to back until the phase
ends. It prints req/s and p99 of each phase and their ratios to the unloaded phase, then the time to refuse a
40,000-vertex star polygon (the vertex budget) on the same server.

Targets (issue 13): /lookup p99 under load at most 2x the unloaded p99; the star refused in under 50 ms; each is
printed PASS or FAIL. The server parses, assigns and encodes batches in its niced worker processes
(``api/service/batch_pool.py``) and only moves bytes itself. The batch clients run at nice +10 (they stand for
load from other machines); the lookup driver at the priority it was started with. On a small machine every
process shares the same cores, so the figures also measure the clients' own CPU use and whatever else runs
(the load average is printed). Only 127.0.0.1 traffic.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
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
sys.path.insert(0, str(HERE))

from bench_api import _free_port, _merge, _phase, _wait, build_store, stop  # noqa: E402

STREAMS = (0, 1, 4)


def star(n: int, cx: float, cy: float, r_out: float = 0.01, r_in: float = 0.005) -> dict:
    """A valid star-shaped polygon of ``n`` vertices: the worst case for overlaying a site on the zones."""
    ring = [[round(cx + (r_out if i % 2 == 0 else r_in) * math.cos(2 * math.pi * i / n), 7),
             round(cy + (r_out if i % 2 == 0 else r_in) * math.sin(2 * math.pi * i / n), 7)] for i in range(n)]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


# -- the helpers' modes (this script with --lookups / --batches) ---------------------------------------
def lookups(port: int, paths_file: str, seconds: float, limit: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        pass
    paths = json.loads(Path(paths_file).read_text())["lookup"]
    print(json.dumps(asyncio.run(_phase(port, paths, seconds, limit))))


def batches(port: int, body_file: str, seconds: float) -> None:
    """POST the body to /assign back to back for ``seconds`` (at most 1,000 requests); print the counts."""
    import httpx

    body = Path(body_file).read_bytes()
    deadline = time.perf_counter() + seconds
    done, statuses, times = 0, {}, []
    with httpx.Client(timeout=120) as client:
        while time.perf_counter() < deadline and done < 1000:
            t = time.perf_counter()
            r = client.post(f"http://127.0.0.1:{port}/assign", content=body,
                            headers={"Content-Type": "application/json"})
            times.append(time.perf_counter() - t)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            done += 1
    print(json.dumps({"requests": done, "statuses": statuses, "median_s": float(np.median(times)) if times else None}))


def _nice() -> None:
    try:
        os.nice(CLIENT_NICENESS)
    except (AttributeError, OSError):  # pragma: no cover - no nice here
        pass


CLIENT_NICENESS = 10
TARGET_P99_RATIO = 2.0
TARGET_STAR_S = 0.05


# -- the run ----------------------------------------------------------------------------------------
def _run_phase(port: int, paths_file: Path, body_file: Path, seconds: float, streams: int) -> tuple[dict, list]:
    me = [sys.executable, __file__]
    # the batch clients are niced like the server's batch workers: they stand for other machines' load, and
    # should not take the cores from the server and the lookup driver being measured
    feeders = [subprocess.Popen(me + ["--batches", str(port), str(body_file), str(seconds + 1.5)],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=_nice)
               for _ in range(streams)]
    try:
        if streams:
            time.sleep(1.0)  # the batches are under way before the lookups are measured
        driven = subprocess.run(me + ["--lookups", str(port), str(paths_file), str(seconds), "200000"],
                                capture_output=True, text=True, cwd=ROOT, timeout=600)
        if driven.returncode:
            raise RuntimeError(f"the lookup driver failed: {driven.stderr[-2000:]}")
        result = json.loads(driven.stdout.strip().splitlines()[-1])
        fed = [json.loads(f.communicate(timeout=300)[0].strip().splitlines()[-1]) for f in feeders]
    finally:
        for f in feeders:
            if f.poll() is None:
                f.kill()
                f.wait(timeout=10)
    return result, fed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="a quick run (CI)")
    parser.add_argument("--zones", type=int, help="number of synthetic subdistricts (default 30,000; 2,000 small)")
    parser.add_argument("--seconds", type=float, help="seconds per phase (default 8; 2 small)")
    parser.add_argument("--in-process", action="store_true",
                        help="batches in threads of the server process (ZEREN_BATCH_IN_PROCESS=1), to compare")
    parser.add_argument("--lookups", nargs=4, metavar=("PORT", "PATHS", "SECONDS", "LIMIT"), help=argparse.SUPPRESS)
    parser.add_argument("--batches", nargs=3, metavar=("PORT", "BODY", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lookups:
        lookups(int(args.lookups[0]), args.lookups[1], float(args.lookups[2]), int(args.lookups[3]))
        return 0
    if args.batches:
        batches(int(args.batches[0]), args.batches[1], float(args.batches[2]))
        return 0

    import httpx

    n_zones = args.zones or (2_000 if args.small else 30_000)
    seconds = args.seconds or (2.0 if args.small else 8.0)
    with tempfile.TemporaryDirectory(prefix="zeren-bench-load-") as tmp:
        store = Path(tmp) / "city.gpkg"
        t = time.perf_counter()
        minx, miny, maxx, maxy = build_store(store, n_zones)
        print(f"synthetic city: {n_zones:,} subdistricts built in {time.perf_counter() - t:.1f} s")
        rng = np.random.default_rng(11)
        lon, lat = rng.uniform(minx, maxx, 20_000), rng.uniform(miny, maxy, 20_000)
        paths_file = Path(tmp) / "paths.json"
        paths_file.write_text(json.dumps({"lookup": [f"/lookup?lon={x:.6f}&lat={y:.6f}" for x, y in zip(lon, lat)]}))
        features = [{"type": "Feature", "properties": {"i": i},
                     "geometry": {"type": "Point", "coordinates": [round(float(x), 6), round(float(y), 6)]}}
                    for i, (x, y) in enumerate(zip(rng.uniform(minx, maxx, 10_000), rng.uniform(miny, maxy, 10_000)))]
        body_file = Path(tmp) / "batch.json"
        body_file.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        port = _free_port()
        env = dict(os.environ, ZEREN_RELOAD_SECONDS="0", PYTHONUNBUFFERED="1",
                   ZEREN_BATCH_IN_PROCESS="1" if args.in_process else "0")
        env.pop("ZEREN_TOKENS_FILE", None)
        server = subprocess.Popen([sys.executable, "-m", "zeren", "serve", "--store", str(store), "--port", str(port),
                                   "--no-access-log", "--log-level", "warning"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait(url, server)
            check = httpx.post(f"{url}/assign", content=body_file.read_bytes(),
                               headers={"Content-Type": "application/json"}, timeout=120)
            assert check.status_code == 200 and check.json()["assigned"] == 10_000, check.text[:300]
            how = "in threads of the server process" if args.in_process else "in its pool of worker processes, niced"
            print(f"zeren serve on {url} (1 worker; batches {how}); {seconds:g} s "
                  f"per phase; batch: 10,000 points, {body_file.stat().st_size / 1e6:.1f} MB; batch clients at nice "
                  f"+{CLIENT_NICENESS}")
            if hasattr(os, "getloadavg"):
                print(f"load average before the phases: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            _run_phase(port, paths_file, body_file, min(2.0, seconds), 0)  # warm-up
            rows = {}
            for streams in STREAMS:
                result, fed = _run_phase(port, paths_file, body_file, seconds, streams)
                rows[streams] = (_merge([result]), fed)
            base = rows[0][0]
            print(f"\n{'/lookup with':<26}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'req/s x':>9}{'p99 x':>8}"
                  f"{'batches':>9}{'batch s':>9}")
            worst = 0.0
            for streams, (r, fed) in rows.items():
                n_batches = sum(f["requests"] for f in fed)
                ok = all(set(f["statuses"]) <= {"200"} for f in fed)
                medians = [f["median_s"] for f in fed if f["median_s"] is not None]
                batch_s = f"{np.median(medians):.2f}" if medians else "-"
                ratio_p99 = r["p99_ms"] / base["p99_ms"]
                if streams:
                    worst = max(worst, ratio_p99)
                name = "no batches" if not streams else f"{streams} batch stream{'s' if streams > 1 else ''}"
                print(f"{name:<26}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['rps'] / base['rps']:>9.2f}"
                      f"{ratio_p99:>8.2f}{n_batches:>9}{batch_s:>9}" + ("" if ok else "  (some batches not 200)"))
                if r["errors"]:
                    print(f"  {r['errors']} lookups did not answer 200")
            print(f"\nworst p99 under load = {worst:.2f}x the unloaded p99 (target <= {TARGET_P99_RATIO:g}x)")
            verdicts = []
            for streams, (r, _) in rows.items():
                if streams:
                    ratio = r["p99_ms"] / base["p99_ms"]
                    verdicts.append(ratio <= TARGET_P99_RATIO)
                    print(f"{'PASS' if verdicts[-1] else 'FAIL'}  /lookup p99 with {streams} batch stream(s): "
                          f"{ratio:.2f}x the unloaded p99 (target <= {TARGET_P99_RATIO:g}x)")

            star_body = json.dumps({"type": "Feature", "properties": {},
                                    "geometry": star(40_000, (minx + maxx) / 2, (miny + maxy) / 2)}).encode()
            times = []
            with httpx.Client(timeout=60) as client:
                for _ in range(6):
                    t = time.perf_counter()
                    r = client.post(f"{url}/assign", content=star_body, headers={"Content-Type": "application/json"})
                    times.append(time.perf_counter() - t)
                    assert r.status_code == 413, r.text[:200]
            median = float(np.median(times[1:]))
            print(f"40,000-vertex star ({len(star_body) / 1e6:.1f} MB): refused with 413 in {median * 1000:.0f} ms "
                  f"(median of 5, over HTTP; target < 50 ms)")
            verdicts.append(median < TARGET_STAR_S)
            print(f"{'PASS' if verdicts[-1] else 'FAIL'}  40,000-vertex star refused in {median * 1000:.0f} ms "
                  f"(target < {TARGET_STAR_S * 1000:.0f} ms)")
            print("\nall targets met" if all(verdicts) else "\nsome targets missed (see above)")
            if hasattr(os, "getloadavg"):
                print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other "
                      f"processes on the machine share the cores with the server and the lookup driver)")
        finally:
            stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
