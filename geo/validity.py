"""Validity windows: appointments and zone editions are valid from ``start`` (inclusive) to ``end``
(exclusive, open when missing). This is the one place that rule is written."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def as_timestamp(when: dt.date | str | pd.Timestamp | None) -> pd.Timestamp:
    """The as-of date as a normalised Timestamp; today when not given."""
    if when is None:
        return pd.Timestamp(dt.date.today())
    ts = pd.Timestamp(when)
    if ts is pd.NaT:
        raise ValueError(f"not a date: {when!r}")
    return ts.normalize()


def active_mask(start: pd.Series, end: pd.Series, when: dt.date | str | pd.Timestamp | None) -> np.ndarray:
    """True where ``start <= when < end`` (a missing start is open to the past, a missing end to the future)."""
    ts = as_timestamp(when)
    start = pd.to_datetime(start)
    end = pd.to_datetime(end)
    started = (start.isna() | (start <= ts)).to_numpy(dtype=bool)
    not_ended = (end.isna() | (end > ts)).to_numpy(dtype=bool)
    return started & not_ended


def windows_overlap(start_a, end_a, start_b, end_b) -> np.ndarray:
    """Element-wise: do the half-open windows [start_a, end_a) and [start_b, end_b) share a day?

    A missing start is open to the past, a missing end open to the future. Works at any datetime64 resolution
    (ns, us, ms, s, even mixed): the open ends are compared as "missing", not filled with a sentinel date that
    one resolution or another cannot hold.
    """
    arrays = [_datetimes(v) for v in (start_a, end_a, start_b, end_b)]
    n = np.broadcast_shapes(*[(len(a),) for a in arrays])[0]  # length-1 inputs broadcast, as numpy's would
    sa, ea, sb, eb = (a if len(a) == n else a[np.zeros(n, dtype=np.intp)] for a in arrays)
    a_starts_before_b_ends = sa.isna() | eb.isna() | np.asarray(sa < eb, dtype=bool)
    b_starts_before_a_ends = sb.isna() | ea.isna() | np.asarray(sb < ea, dtype=bool)
    return np.asarray(a_starts_before_b_ends & b_starts_before_a_ends, dtype=bool)


def _datetimes(values):
    """A datetime array of ``values`` (Series, array, list, scalar) in its own resolution, positions kept."""
    return pd.to_datetime(pd.Series(values)).array
