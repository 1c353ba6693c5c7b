"""Boundary editions: what an import costs against the I/O floor.

    python benchmarks/bench_editions.py            # 30,000 subdistricts (the targets)
    python benchmarks/bench_editions.py --small    # 3,000 (CI)

Measured in the same run on the same synthetic city (benchmarks/bench_assign.py synthetic_city):
  * baseline: pyogrio writing the same zones to a fresh GeoPackage (the floor of any import);
  * a first import (every zone added), a re-import of the same file as the next edition (every zone compared,
    nothing written), and a scoped edition that redraws one district's zones (compared, changed ones measured:
    IoU, area change, Hausdorff).
Targets (full size): first import <= 4x the floor; unchanged re-import and scoped edition <= 8x the floor
(both compare every zone of the file with its stored version: reading the stored rows back is most of it).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pyogrio
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_assign import synthetic_city  # noqa: E402
from zeren.api.service.actors import Actor  # noqa: E402
from zeren.api.service.boundaries import import_frame  # noqa: E402
from zeren.api.service.workspace import Workspace  # noqa: E402
from zeren.layers.store import open_store  # noqa: E402

WHO = Actor("bench")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="3,000 zones (CI)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    n = 3000 if args.small else 30000
    zones, _, _ = synthetic_city(n, seed=5)
    subs = zones[zones["kind"] == "subdistrict"].drop(columns=["kind", "edition", "valid_from", "valid_to"])
    districts = zones[zones["kind"] == "district"].drop(columns=["kind", "edition", "valid_from", "valid_to"])
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        pyogrio.write_dataframe(subs.drop(columns="attrs"), Path(tmp) / "floor.gpkg", driver="GPKG")
        floor = time.perf_counter() - t
        ws = Workspace(open_store(Path(tmp) / "s.gpkg", create=True))
        import_frame(ws, districts, kind="district", edition=2024, actor=WHO)
        t = time.perf_counter()
        import_frame(ws, subs, kind="subdistrict", edition=2024, actor=WHO)
        first = time.perf_counter() - t
        t = time.perf_counter()
        plan = import_frame(ws, subs, kind="subdistrict", edition=2025, actor=WHO)
        same = time.perf_counter() - t
        assert plan.summary()["unchanged"] == len(subs) and not plan.written
        parents = ws.store.zones(kind="subdistrict").set_index("code")["parent_code"]  # derived on import
        moved = subs.copy()
        moved["parent_code"] = moved["code"].map(parents)
        one = str(moved["parent_code"].iloc[0])
        inside = (moved["parent_code"] == one).to_numpy()
        moved.loc[inside, "geometry"] = shapely.simplify(moved.geometry.to_numpy()[inside], 0.001)
        t = time.perf_counter()
        plan = import_frame(ws, moved[inside], kind="subdistrict", edition=2025, within=(one,), actor=WHO)
        scoped = time.perf_counter() - t
        changed = plan.summary()["changed"]
        ws.close()
    ratios = {"first import": first / floor, "unchanged re-import": same / floor, "scoped edition": scoped / floor}
    print(f"{len(subs):,} subdistricts in {len(districts)} districts; pyogrio GeoPackage write (floor) {floor:.2f} s")
    print(f"  first import          {first:6.2f} s  {ratios['first import']:5.2f}x floor (target <= 4)")
    print(f"  unchanged re-import   {same:6.2f} s  {ratios['unchanged re-import']:5.2f}x floor (target <= 8)")
    print(f"  scoped edition        {scoped:6.2f} s  {ratios['scoped edition']:5.2f}x floor (target <= 8; "
          f"{changed} zones of one district redrawn)")
    ok = ratios["first import"] <= 4 and ratios["unchanged re-import"] <= 8 and ratios["scoped edition"] <= 8
    print("targets met" if ok else "a target was missed" + (" (--small: sizes for CI)" if args.small else ""))
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
