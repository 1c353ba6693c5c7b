"""Bad input: clear errors for what cannot be answered, results (not crashes) for what can."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from zeren.geo.coverage import coverage_gaps, coverage_summary, find_overlaps, life_circle_planners, planner_workload
from zeren.geo.errors import GeoInputError
from zeren.geo.kinds import ALL_KINDS
from tests.coverage.conftest import AS_OF, zones_frame


def test_unknown_kind_names_the_valid_ones(zones, appointments):
    for call in (lambda: coverage_gaps(zones, appointments, kind="street"),
                 lambda: find_overlaps(zones, appointments, kind="street"),
                 lambda: coverage_summary(zones, appointments, by="street"),
                 lambda: coverage_gaps(zones, appointments, territory_kind="street")):
        with pytest.raises(GeoInputError) as err:
            call()
        assert "street" in str(err.value) and all(k in str(err.value) for k in ALL_KINDS)


def test_unknown_code(zones, appointments):
    with pytest.raises(GeoInputError, match="'999999' not found"):
        coverage_gaps(zones, appointments, within="999999", as_of=AS_OF)


def test_code_outside_its_editions(zones, appointments):
    retired = zones.copy()
    retired.loc[(retired["code"] == "510104").to_numpy(), "valid_to"] = pd.Timestamp("2024-03-01")
    with pytest.raises(GeoInputError, match=r"'510104' exists but no edition of it is valid on 2024-06-01; "
                                            r"editions: 2024 \[2024-01-01, 2024-03-01\)"):
        coverage_gaps(retired, appointments, within="510104", as_of=AS_OF)


def test_as_of_outside_every_edition(zones, appointments):
    for call in (lambda: coverage_gaps(zones, appointments, as_of="2023-12-31"),
                 lambda: find_overlaps(zones, appointments, as_of="2023-12-31"),
                 lambda: coverage_summary(zones, appointments, as_of="2023-12-31")):
        with pytest.raises(GeoInputError, match=r"valid on 2023-12-31; editions: 2024 \[2024-01-01, open\)"):
            call()


def test_bad_date_and_numbers(zones, appointments):
    with pytest.raises(GeoInputError, match="not a date"):
        coverage_gaps(zones, appointments, as_of="yesterday-ish")
    with pytest.raises(GeoInputError, match="sliver_m2"):
        coverage_gaps(zones, appointments, as_of=AS_OF, sliver_m2=-1)
    with pytest.raises(GeoInputError, match="tolerance_m2"):
        find_overlaps(zones, appointments, as_of=AS_OF, tolerance_m2=float("nan"))


def test_frames_without_crs_or_columns(zones, appointments):
    with pytest.raises(GeoInputError, match="no CRS"):
        coverage_gaps(zones.set_crs(None, allow_override=True), appointments, as_of=AS_OF)
    with pytest.raises(GeoInputError, match="valid_from"):
        coverage_gaps(zones.drop(columns="valid_from"), appointments, as_of=AS_OF)
    with pytest.raises(GeoInputError, match="role"):
        coverage_gaps(zones, appointments.drop(columns="role"), as_of=AS_OF)


def test_zones_in_another_crs_are_reprojected(zones, appointments):
    a = coverage_gaps(zones, appointments, as_of=AS_OF)
    b = coverage_gaps(zones.to_crs(3857), appointments, as_of=AS_OF)
    assert b.gap_area_m2 == pytest.approx(a.gap_area_m2, rel=1e-6)
    assert set(b.units_without_planner["code"]) == set(a.units_without_planner["code"])


def test_empty_layer_is_nothing_to_cover(districts, appointments):
    zones = zones_frame(districts, "district")  # no subdistrict at all
    gaps = coverage_gaps(zones, appointments, as_of=AS_OF)
    assert gaps.nothing_to_cover and "nothing to cover" in gaps.message
    assert gaps.gaps.empty and gaps.units_without_planner.empty and gaps.units_total == 0
    assert {"reason", "area_m2", "unit_codes"} <= set(gaps.gaps.columns)
    overlaps = find_overlaps(zones, appointments, as_of=AS_OF)
    assert overlaps.nothing_to_cover and overlaps.overlaps.empty
    summary = coverage_summary(zones, appointments, as_of=AS_OF)
    assert summary.nothing_to_cover and summary.table.empty
    assert life_circle_planners(zones, appointments, as_of=AS_OF).empty
    empty = zones.iloc[:0]
    assert coverage_gaps(empty, None, as_of=AS_OF).nothing_to_cover
    assert planner_workload(empty, appointments.iloc[:0], as_of=AS_OF).planners.empty


def test_no_district_layer_uses_the_units_union(subdistricts, appointments, led_codes):
    zones = zones_frame(subdistricts, "subdistrict")
    result = coverage_gaps(zones, appointments, as_of=AS_OF)
    assert result.territory_kind == "subdistrict"
    assert set(result.units_without_planner["code"]) == set(subdistricts["code"]) - set(led_codes)
    assert result.units_without_planner["district_code"].isna().all()


def test_invalid_geometries_are_reported_not_fatal(zones, districts, subdistricts, led_codes, appointments):
    unled = sorted(set(subdistricts["code"]) - set(led_codes))[0]
    bowtie_led, bowtie_unled = led_codes[7], unled
    broken = zones.copy()
    geoms = np.asarray(broken.geometry.array, dtype=object).copy()
    for code in (bowtie_led, bowtie_unled):
        i = np.flatnonzero((broken["code"] == code).to_numpy())[0]
        ring = shapely.get_coordinates(shapely.get_exterior_ring(shapely.get_geometry(geoms[i], 0)))
        ring[[1, 2]] = ring[[2, 1]]  # swap two vertices: a self-intersecting ring
        geoms[i] = shapely.Polygon(ring)
        assert not shapely.is_valid(geoms[i])
    missing = np.flatnonzero((broken["code"] == led_codes[8]).to_numpy())[0]
    geoms[missing] = None
    broken = broken.set_geometry(gpd.GeoSeries(geoms, index=broken.index, crs=4326))
    result = coverage_gaps(broken, appointments, as_of=AS_OF)
    problems = result.invalid.set_index("code")["problem"]
    assert "invalid geometry" in problems[bowtie_led] and "make_valid" in problems[bowtie_led]
    assert "invalid geometry" in problems[bowtie_unled]
    assert problems[led_codes[8]] == "missing geometry"
    assert result.union_method == "union_all"
    assert bowtie_unled in set(result.units_without_planner["code"])
    overlaps = find_overlaps(broken, appointments, as_of=AS_OF)
    assert set(overlaps.invalid["code"]) == {bowtie_led, bowtie_unled, led_codes[8]}
    summary = coverage_summary(broken, appointments, as_of=AS_OF)
    assert set(summary.invalid["code"]) == {bowtie_led, bowtie_unled, led_codes[8]}
