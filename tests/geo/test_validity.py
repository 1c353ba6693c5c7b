"""Validity windows: start inclusive, end exclusive, missing ends open; any datetime64 resolution."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from zeren.geo.validity import active_mask, windows_overlap

# (start_a, end_a, start_b, end_b, overlap?)
CASES = [
    ("2024-01-01", "2025-01-01", "2024-06-01", "2024-07-01", True),   # b inside a
    ("2024-01-01", "2025-01-01", "2025-01-01", None, False),          # a ends the day b starts (end exclusive)
    ("2024-01-01", "2025-01-02", "2025-01-01", None, True),           # one shared day
    (None, "2024-01-01", "2023-12-31", "2024-02-01", True),           # open past
    (None, None, "1900-01-01", "1900-01-02", True),                   # open both ways
    (None, "2020-01-01", "2020-01-01", None, False),                  # open ends that never meet
    ("2030-01-01", None, "2020-01-01", None, True),                   # two open futures
    ("2030-01-01", None, "2020-01-01", "2030-01-01", False),
]


def column(values, unit):
    return pd.Series(pd.to_datetime(pd.Series(values, dtype=object))).astype(f"datetime64[{unit}]")


@pytest.mark.parametrize("unit", ["ns", "us", "ms", "s"])
def test_windows_overlap_at_any_resolution_without_warnings(unit):
    sa, ea, sb, eb, expected = (list(c) for c in zip(*CASES))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' Pandas4Warning on filling datetime64[us] with Timestamp.max
        got = windows_overlap(column(sa, unit), column(ea, unit), column(sb, unit), column(eb, unit))
    assert got.dtype == bool and got.tolist() == expected


def test_mixed_resolutions_and_dates_beyond_the_nanosecond_range():
    sa, ea, sb, eb, expected = (list(c) for c in zip(*CASES))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = windows_overlap(column(sa, "us"), column(ea, "s"), column(sb, "ns"), column(eb, "ms"))
        assert got.tolist() == expected
        far = np.array(["2500-01-01", "2600-01-01"], dtype="datetime64[s]")  # past 2262: no ns for these
        assert windows_overlap(far[:1], [None], far[1:], [None]).tolist() == [True]
        assert windows_overlap(far[:1], far[1:], far[1:], [None]).tolist() == [False]
        assert windows_overlap(far[:1], far[1:], np.array(["2550-01-01"], dtype="datetime64[us]"),
                               np.array(["2550-01-02"], dtype="datetime64[D]")).tolist() == [True]


def test_plain_inputs_and_broadcasting():
    assert windows_overlap(["2024-01-01", "2026-01-01"], [None, None], ["2025-01-01"], ["2025-06-01"]).tolist() == \
        [True, False]
    assert windows_overlap([], [], [], []).tolist() == []
    starts = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"]), index=[10, 3])  # the index does not matter
    assert windows_overlap(starts, [None, None], starts[::-1], [None, None]).tolist() == [True, True]


def test_active_mask_with_microseconds():
    start = column(["2024-01-01", None, "2025-01-01"], "us")
    end = column([None, "2025-01-01", None], "us")
    assert active_mask(start, end, "2025-01-01").tolist() == [True, False, True]
