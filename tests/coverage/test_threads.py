"""Coverage analyses on zones other threads share: they never prepare the caller's geometries (GEOS prepared
geometries are not safe in two threads at once; see geo.prepared), and eight threads running them at once on
the same real Chengdu zones get the serial answers, without crashing the interpreter."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import shapely

from zeren.geo.coverage import coverage_gaps, coverage_summary, find_overlaps
from zeren.geo.prepared import private_prepared
from tests.coverage.conftest import AS_OF

ROOT = Path(__file__).resolve().parents[2]


def test_private_prepared_copies_and_leaves_the_input_alone():
    square = shapely.box(0, 0, 1, 1)
    geoms = np.array([square, None, shapely.Polygon()], dtype=object)
    copies = private_prepared(geoms)
    assert not shapely.is_prepared(geoms).any()
    assert copies[0] is not square and shapely.equals_exact(copies[0], square, 0.0)
    assert shapely.is_prepared(copies).tolist() == [True, False, True]
    assert copies[1] is None and copies[2].is_empty
    one = private_prepared(square)
    assert shapely.is_prepared(one) and not shapely.is_prepared(square)


def test_the_analyses_leave_the_shared_zones_unprepared(zones, appointments):
    geoms = np.asarray(zones.geometry.array, dtype=object)
    assert not shapely.is_prepared(geoms).any()
    summary = coverage_summary(zones, appointments, kind="subdistrict", by="district", as_of=AS_OF)
    gaps = coverage_gaps(zones, appointments, kind="subdistrict", as_of=AS_OF)
    overlaps = find_overlaps(zones, appointments, kind="subdistrict", as_of=AS_OF)
    assert summary.totals["units_total"] > 100 and len(gaps.gaps) > 0 and overlaps is not None
    prepared = shapely.is_prepared(geoms)
    assert not prepared.any(), f"{prepared.sum()} shared zone geometries were prepared in place"


# Run in a child process: a regression crashes the interpreter (a segmentation fault or a heap abort), which
# must fail this test rather than end the whole test run.
_STRESS = textwrap.dedent("""
    import sys, threading
    import numpy as np, pandas as pd, shapely
    sys.path.insert(0, sys.argv[1])
    from tests.coverage.conftest import AS_OF, LEAD_SHARE, lead_appointments, read_layer, zones_frame
    from zeren.geo.coverage import coverage_gaps, coverage_summary

    base = pd.concat([zones_frame(read_layer("districts_chengdu"), "district"),
                      zones_frame(read_layer("subdistricts_chengdu"), "subdistrict")], ignore_index=True)
    codes = base.loc[base["kind"] == "subdistrict", "code"].to_numpy()
    appointments = lead_appointments(codes[np.random.default_rng(1).random(len(codes)) < LEAD_SHARE])

    def answers(zones):
        s = coverage_summary(zones, appointments, kind="subdistrict", by="district", as_of=AS_OF)
        g = coverage_gaps(zones, appointments, kind="subdistrict", as_of=AS_OF)
        return (round(s.totals["units_with_lead_pct"], 9), len(g.gaps), round(float(g.gaps["area_m2"].sum()), 3))

    serial = answers(base)
    for _ in range(int(sys.argv[2])):
        zones = base.copy()  # fresh geometry objects each round: nothing prepared or warmed yet
        zones["geometry"] = shapely.from_wkb(shapely.to_wkb(np.asarray(base.geometry.array, dtype=object)))
        start, got = threading.Barrier(8), []
        def work():
            start.wait()
            got.append(answers(zones))
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert got == [serial] * 8, (got, serial)
    print("ok", serial)
""")


def test_eight_threads_on_the_same_zones_get_the_serial_answers_and_do_not_crash():
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", _STRESS, str(ROOT), "6"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert done.stdout.startswith("ok")
