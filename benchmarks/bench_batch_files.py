"""``zeren assign FILE --out FILE`` end to end against the disk floor measured in the same run.

  python benchmarks/bench_batch_files.py            # 1,000,000 points against a city of 3,000 zones
  python benchmarks/bench_batch_files.py --small    # 50,000 points (CI), so the script cannot rot

The floor: pyarrow reading the same input CSV and writing the same output table (what any tool must at least
spend). Targets (issue #10): the whole command (a fresh process: imports, opening the store, building the
index, reading, assigning, writing) within 4x the floor for CSV, and flat memory: twice the rows with the same
--chunk-rows costs at most 1.3x the peak memory.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pa_csv

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_assign import CENTRE, synthetic_city  # noqa: E402


def _make_store(path: Path, tmp: Path, n_zones: int) -> None:
    """A synthetic city (bench_assign's generator) with planners and lead appointments on 90% of its zones,
    imported the way users import them."""
    from zeren.api.cli.main import main as zeren
    from zeren.api.service.actors import Actor
    from zeren.api.service.boundaries import import_frame
    from zeren.api.service.workspace import Workspace
    from zeren.layers.store import open_store

    zones, appointments, _ = synthetic_city(n_zones, seed=5)
    ws = Workspace(open_store(path, create=True))
    for kind, group in zones.groupby("kind"):
        import_frame(ws, group.drop(columns=["kind"]), kind=kind, edition=2024,
                     valid_from=pd.Timestamp("2024-01-01").date(), source="bench", actor=Actor("bench"))
    ws.close()
    ids = sorted(set(appointments["planner_id"]))
    pd.DataFrame({"id": ids, "name": ids, "organization": "bench", "disciplines": "planning",
                  "public_contact": "", "private_contact": ""}).to_csv(tmp / "planners.csv", index=False)
    appointments.assign(start="2024-01-01", end="")[["planner_id", "zone_kind", "zone_code", "role", "start",
                                                     "end"]].to_csv(tmp / "appointments.csv", index=False)
    for command in ("import-planners", "import-appointments"):
        name = "planners.csv" if command == "import-planners" else "appointments.csv"
        if zeren([command, str(tmp / name), "--store", str(path)]) != 0:
            raise RuntimeError(f"{command} failed")


def _points_csv(path: Path, n: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    span = 0.66  # a little beyond the city: some points are uncovered and get a nearest zone
    pd.DataFrame({"site_id": np.char.add("S", np.arange(n).astype(str)),
                  "lon": np.round(rng.uniform(CENTRE[0] - span / 2, CENTRE[0] + span / 2, n), 6),
                  "lat": np.round(rng.uniform(CENTRE[1] - span / 2, CENTRE[1] + span / 2, n), 6),
                  "name": "地块"}).to_csv(path, index=False)


def _run_assign(store: Path, src: Path, out: Path, chunk: int) -> tuple[float, float]:
    """Seconds and peak memory (MiB) of the real command in a fresh process."""
    script = ("import resource, sys; from zeren.api.cli.main import main; rc = main(sys.argv[1:]); "
              "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    t = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", script, "assign", str(src), "--crs", "wgs84", "--out", str(out),
                          "--store", str(store), "--as-of", "2025-01-01", "--chunk-rows", str(chunk)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    elapsed = time.perf_counter() - t
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-2000:])
    rss = next(int(line.split()[1]) for line in run.stderr.splitlines() if line.startswith("MAXRSS"))
    return elapsed, rss / 1024


def _floor(src: Path, out: Path) -> float:
    """pyarrow reads the input and writes the output table Zeren wrote (same rows, same columns)."""
    table_out = pa_csv.read_csv(out)
    t = time.perf_counter()
    pa_csv.read_csv(src)
    pa_csv.write_csv(table_out, str(out) + ".floor.csv")
    return time.perf_counter() - t


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="50,000 points (CI)")
    args = parser.parse_args(argv)
    n_zones, n = (300, 50_000) if args.small else (3_000, 1_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = tmp / "city.gpkg"
        _make_store(store, tmp, n_zones)
        src, src2 = tmp / "points.csv", tmp / "points2.csv"
        _points_csv(src, n)
        _points_csv(src2, 2 * n, seed=8)
        out = tmp / "assigned.csv"
        seconds, rss = _run_assign(store, src, out, chunk=n // 2)
        floor = _floor(src, out)
        rows = len(pd.read_csv(out, usecols=["covered"]))
        assert rows == n, rows
        print(f"zeren assign {n:,} points -> CSV: {seconds:.2f} s, peak {rss:.0f} MiB; pyarrow floor (read input + "
              f"write the same output) {floor:.2f} s; ratio {seconds / floor:.1f}x (target <= 4x)")
        for suffix in (".gpkg", ".parquet"):
            s, m = _run_assign(store, src, tmp / f"assigned{suffix}", chunk=n // 2)
            print(f"zeren assign {n:,} points -> {suffix}: {s:.2f} s, peak {m:.0f} MiB")
        seconds2, rss2 = _run_assign(store, src2, tmp / "assigned2.csv", chunk=n // 2)
        print(f"twice the rows ({2 * n:,}), same --chunk-rows {n // 2:,}: {seconds2:.2f} s, peak {rss2:.0f} MiB; "
              f"memory ratio {rss2 / rss:.2f} (target <= 1.3: flat)")
    ok = seconds / floor <= 4 and rss2 / rss <= 1.3
    print("targets met" if ok else "a target was missed" + (" (--small: sizes for CI)" if args.small else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
