"""find_overlaps and lead_conflicts on the real Chengdu layers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from zeren.geo.coverage import find_overlaps, lead_conflicts
from tests.coverage.conftest import AS_OF, lead_appointments, to_utm

SHIFTED = ("510104003", "510112005", "510181002")  # moved ~150 m east, ~110 m north


def reference_overlaps(frame, tolerance_m2):
    """{(code_a, code_b): area} by brute force over every pair, in UTM."""
    codes = frame["code"].astype(str).to_numpy()
    geoms = to_utm(np.asarray(frame.geometry.array, dtype=object))
    i, j = np.triu_indices(len(geoms), k=1)
    area = shapely.area(shapely.intersection(geoms[i], geoms[j]))
    keep = area > tolerance_m2
    pairs = {}
    for a, b, x in zip(codes[i[keep]], codes[j[keep]], area[keep]):
        pairs[tuple(sorted((a, b)))] = x
    return pairs


@pytest.fixture(scope="module")
def broken(zones):
    broken = zones.copy()
    rows = broken["code"].isin(SHIFTED).to_numpy()
    broken.loc[rows, "geometry"] = broken.loc[rows, "geometry"].translate(0.0015, 0.001)
    return broken


def test_real_layer_has_no_overlap_over_tolerance(zones, appointments):
    result = find_overlaps(zones, appointments, as_of=AS_OF, tolerance_m2=1.0)
    sub = zones[zones["kind"] == "subdistrict"]
    assert reference_overlaps(sub, 1.0) == {}
    assert result.overlaps.empty
    assert result.zones_checked == len(sub)
    assert result.conflicts.empty


def test_drawn_overlaps_are_found(broken, appointments):
    result = find_overlaps(broken, appointments, as_of=AS_OF, tolerance_m2=1.0)
    expected = reference_overlaps(broken[broken["kind"] == "subdistrict"], 1.0)
    got = {(a, b): x for a, b, x in result.overlaps[["code_a", "code_b", "area_m2"]].itertuples(index=False)}
    assert set(got) == set(expected)
    assert all(set(pair) & set(SHIFTED) for pair in got)
    for pair, area in expected.items():
        assert got[pair] == pytest.approx(area, rel=1e-6)
    assert result.method == "pairs"
    frame = result.overlaps
    assert (frame["code_a"] < frame["code_b"]).all()
    assert list(zip(frame["code_a"], frame["code_b"])) == sorted(zip(frame["code_a"], frame["code_b"]))
    assert frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert ((frame["share_a_pct"] > 0) & (frame["share_a_pct"] <= 100)).all()
    # the tolerance filters by area
    big = find_overlaps(broken, appointments, as_of=AS_OF, tolerance_m2=float(np.median(list(expected.values()))))
    assert 0 < len(big.overlaps) < len(frame)


def test_overlaps_do_not_depend_on_row_order(broken, appointments):
    rng = np.random.default_rng(3)
    shuffled = broken.iloc[rng.permutation(len(broken))].reset_index(drop=True)
    a = find_overlaps(broken, appointments, as_of=AS_OF)
    b = find_overlaps(shuffled, appointments, as_of=AS_OF)
    pd.testing.assert_frame_equal(pd.DataFrame(a.overlaps.drop(columns="geometry")),
                                  pd.DataFrame(b.overlaps.drop(columns="geometry")))
    assert a.overlaps.geometry.geom_equals_exact(b.overlaps.geometry, tolerance=0).all()


def test_a_clean_coverage_is_verified_without_pair_tests(districts):
    from tests.coverage.conftest import zones_frame

    result = find_overlaps(zones_frame(districts, "district"), None, kind="district", as_of=AS_OF)
    assert result.method == "coverage" and result.overlaps.empty


def test_conflicting_leads(zones, appointments, led_codes):
    zone = led_codes[0]
    extra = pd.DataFrame({
        "id": [9001, 9002, 9003], "planner_id": ["X1", "X2", "X3"], "zone_kind": "subdistrict",
        "zone_code": [zone, zone, led_codes[1]], "role": ["lead", "lead", "member"],
        "start": pd.to_datetime(["2024-03-01", "2025-01-01", "2024-01-01"]),
        "end": pd.to_datetime(["2024-09-01", pd.NaT, pd.NaT]),
    })
    apps = pd.concat([appointments, extra], ignore_index=True)
    ever = lead_conflicts(apps)
    assert ever[["zone_code", "planner_b"]].values.tolist() == [[zone, "X1"], [zone, "X2"]]
    row = ever.iloc[0]
    assert row["overlap_start"] == pd.Timestamp("2024-03-01") and row["overlap_end"] == pd.Timestamp("2024-09-01")
    assert pd.isna(ever.iloc[1]["overlap_end"])  # both open: the conflict has no end
    # in force on a day: start inclusive, end exclusive
    assert len(lead_conflicts(apps, on="2024-03-01")) == 1
    assert len(lead_conflicts(apps, on="2024-09-01")) == 0
    assert len(lead_conflicts(apps, on="2024-08-31")) == 1
    result = find_overlaps(zones, apps, as_of="2024-06-01")
    assert result.conflicts["appointment_b"].tolist() == [9001]


def test_back_to_back_leads_do_not_conflict(led_codes):
    zone = led_codes[0]
    apps = pd.concat([lead_appointments([zone], end="2025-07-01", first_id=1),
                      lead_appointments([zone], start="2025-07-01", first_id=2)], ignore_index=True)
    assert lead_conflicts(apps).empty
    apps.loc[1, "start"] = pd.Timestamp("2025-06-30")
    assert len(lead_conflicts(apps)) == 1
