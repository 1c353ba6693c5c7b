"""coverage_gaps on the real Chengdu layers, against an independent shapely computation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from zeren.geo.coverage import coverage_gaps
from tests.coverage.conftest import AS_OF, lead_appointments, reference_gap, to_utm, zones_frame


def _geoms(frame):
    return np.asarray(frame.geometry.array, dtype=object)


@pytest.fixture(scope="module")
def result(zones, appointments):
    return coverage_gaps(zones, appointments, as_of=AS_OF)


def test_total_gap_area_matches_plain_shapely(result, districts, subdistricts, led_codes):
    led = subdistricts[subdistricts["code"].isin(led_codes)]
    expected = reference_gap(_geoms(districts), _geoms(led)).area
    total = result.gap_area_m2
    assert total == pytest.approx(expected, rel=1e-3)
    assert result.gaps["area_m2"].sum() + result.small_slivers_area_m2 == pytest.approx(total, rel=1e-9)
    assert result.territory_area_m2 == pytest.approx(shapely.union_all(to_utm(_geoms(districts))).area, rel=1e-6)
    assert result.covered_area_m2 == pytest.approx(result.territory_area_m2 - total, rel=1e-9)


def test_units_without_planner_are_exactly_the_unled_ones(result, subdistricts, led_codes):
    expected = set(subdistricts["code"].astype(str)) - set(led_codes)
    got = result.units_without_planner
    assert set(got["code"]) == expected
    assert len(got) == len(expected)
    assert got["code"].tolist() == sorted(got["code"])
    assert result.units_total == len(subdistricts)
    assert result.units_with_lead == len(led_codes)


def test_units_without_planner_carry_district_area_population(result, subdistricts):
    got = result.units_without_planner.set_index("code")
    truth = subdistricts.set_index(subdistricts["code"].astype(str)).loc[got.index]
    assert (got["district_code"] == truth["parent_code"]).all()  # the real parent, found spatially
    assert got["district_name"].notna().all()
    assert (got["population"].astype("int64") == truth["population"].astype("int64")).all()
    expected_area = shapely.area(to_utm(_geoms(truth)))
    np.testing.assert_allclose(got["area_m2"].to_numpy(float), expected_area, rtol=1e-6)
    assert str(got.crs) == "EPSG:4326"


def test_gap_polygons_hold_the_unled_units(result, subdistricts, led_codes):
    gaps = result.gaps
    units = gaps[gaps["reason"] == "unit_without_planner"]
    held = {c for codes in units["unit_codes"] for c in codes.split(",")}
    assert held == set(subdistricts["code"].astype(str)) - set(led_codes)
    assert (units["district_codes"].str.len() > 0).all()
    assert gaps["gap_id"].tolist() == list(range(1, len(gaps) + 1))
    assert set(gaps["reason"]) <= {"unit_without_planner", "sliver", "outside_units"}
    # pieces under the sliver threshold that are bare ground are counted, not returned
    bare = gaps[gaps["reason"] != "unit_without_planner"]
    assert (bare["area_m2"] >= result.sliver_m2).all()


def test_pieces_spanning_districts_name_them_all(zones, districts, subdistricts):
    # leave two neighbouring subdistricts of different districts without a lead
    a, b = "510104001", None
    geoms = dict(zip(subdistricts["code"].astype(str), _geoms(subdistricts)))
    for code, g in geoms.items():
        if code[:6] != a[:6] and shapely.intersection(g, geoms[a]).length > 0:
            b = code
            break
    assert b is not None
    led = sorted(set(geoms) - {a, b})
    result = coverage_gaps(zones, lead_appointments(led), as_of=AS_OF)
    piece = result.gaps[result.gaps["unit_codes"] == ",".join(sorted([a, b]))]
    assert len(piece) == 1
    assert piece["district_codes"].iloc[0] == ",".join(sorted({a[:6], b[:6]}))


def test_bare_ground_is_classified(districts, subdistricts):
    # remove one subdistrict from the layer: its ground is in the territory but in no unit
    hole = "510121005"
    kept = subdistricts[subdistricts["code"] != hole]
    zones = pd.concat([zones_frame(districts, "district"), zones_frame(kept, "subdistrict")], ignore_index=True)
    result = coverage_gaps(zones, lead_appointments(kept["code"]), as_of=AS_OF)
    assert result.units_without_planner.empty
    outside = result.gaps[result.gaps["reason"] == "outside_units"]
    assert len(outside) == 1
    expected = shapely.area(to_utm(_geoms(subdistricts[subdistricts["code"] == hole])))[0]
    assert outside["area_m2"].iloc[0] == pytest.approx(expected, rel=1e-3)
    assert outside["district_codes"].iloc[0] == hole[:6]


def test_within_a_district(zones, districts, subdistricts, appointments, led_codes):
    code = "510121"
    result = coverage_gaps(zones, appointments, within=code, as_of=AS_OF)
    inside = subdistricts[subdistricts["parent_code"] == code]
    assert result.territory_kind == "district" and result.territory_codes == (code,)
    assert result.units_total == len(inside)
    assert set(result.units_without_planner["code"]) == set(inside["code"]) - set(led_codes)
    led = inside[inside["code"].isin(led_codes)]
    expected = reference_gap(_geoms(districts[districts["code"] == code]), _geoms(led)).area
    assert result.gap_area_m2 == pytest.approx(expected, rel=1e-3)
    assert set(",".join(result.gaps["district_codes"]).split(",")) == {code}


def test_within_a_subdistrict(zones, subdistricts, appointments, led_codes):
    unled = sorted(set(subdistricts["code"]) - set(led_codes))[0]
    result = coverage_gaps(zones, appointments, within=unled, as_of=AS_OF)
    assert result.territory_kind == "subdistrict"
    assert result.units_without_planner["code"].tolist() == [unled]
    own = shapely.area(to_utm(_geoms(subdistricts[subdistricts["code"] == unled])))[0]
    assert result.gap_area_m2 == pytest.approx(own, rel=1e-3)
    led = coverage_gaps(zones, appointments, within=led_codes[0], as_of=AS_OF)
    assert led.units_without_planner.empty and led.gaps.empty
    assert led.units_total == 1 and led.units_with_lead == 1


def test_appointment_dates_are_honoured_at_both_ends(zones, led_codes):
    ended, started = led_codes[0], led_codes[1]
    rest = lead_appointments(led_codes[2:], first_id=10)
    apps = pd.concat([rest, lead_appointments([ended], end="2024-06-01", first_id=1),
                      lead_appointments([started], start="2024-06-01", first_id=2)], ignore_index=True)

    def unled(day):
        return set(coverage_gaps(zones, apps, as_of=day).units_without_planner["code"])

    assert ended not in unled("2024-05-31") and started in unled("2024-05-31")
    assert ended in unled("2024-06-01") and started not in unled("2024-06-01")  # end exclusive, start inclusive


def test_zone_editions_are_honoured_at_both_ends(districts, subdistricts, led_codes):
    # edition 2025 redraws the subdistricts from 2025-01-01: one subdistrict is split off as a new code
    old = zones_frame(subdistricts, "subdistrict", 2024, "2024-01-01", "2025-01-01")
    new_sub = subdistricts.copy()
    new_sub.loc[new_sub["code"] == led_codes[0], "code"] = "510199999"
    new = zones_frame(new_sub, "subdistrict", 2025, "2025-01-01")
    zones = pd.concat([zones_frame(districts, "district"), old, new], ignore_index=True)
    apps = lead_appointments(led_codes)
    before = coverage_gaps(zones, apps, as_of="2024-12-31")
    after = coverage_gaps(zones, apps, as_of="2025-01-01")
    assert "510199999" not in set(before.units_without_planner["code"])
    assert "510199999" in set(after.units_without_planner["code"])
    assert led_codes[0] not in set(after.units_without_planner["code"])
    assert after.units_total == before.units_total == len(subdistricts)


def test_results_do_not_depend_on_row_order_or_index(zones, appointments, result):
    rng = np.random.default_rng(7)
    shuffled = zones.iloc[rng.permutation(len(zones))]
    shuffled.index = rng.permutation(len(zones)) * 3 + 11
    apps = appointments.iloc[rng.permutation(len(appointments))].set_index(
        pd.Index(rng.permutation(len(appointments)) + 1000))
    again = coverage_gaps(shuffled, apps, as_of=AS_OF)
    assert_geodataframe_equal(again.units_without_planner, result.units_without_planner)
    assert_geodataframe_equal(again.gaps, result.gaps)
    assert again.gap_area_m2 == result.gap_area_m2
    assert again.small_slivers == result.small_slivers


def test_district_kind_gaps(zones, districts):
    led = sorted(districts["code"].astype(str))[:-3]
    result = coverage_gaps(zones, lead_appointments(led, kind="district"), kind="district", as_of=AS_OF)
    assert result.units_without_planner["code"].tolist() == sorted(districts["code"].astype(str))[-3:]
    assert (result.units_without_planner["district_code"] == result.units_without_planner["code"]).all()
    expected = shapely.area(to_utm(_geoms(districts[~districts["code"].isin(led)]))).sum()
    assert result.gap_area_m2 == pytest.approx(expected, rel=1e-3)
