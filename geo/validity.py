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
    """Element-wise: do the half-open windows [start_a, end_a) and [start_b, end_b) share a day?"""
    far_past = pd.Timestamp.min
    far_future = pd.Timestamp.max
    sa = pd.to_datetime(pd.Series(start_a)).fillna(far_past).to_numpy()
    ea = pd.to_datetime(pd.Series(end_a)).fillna(far_future).to_numpy()
    sb = pd.to_datetime(pd.Series(start_b)).fillna(far_past).to_numpy()
    eb = pd.to_datetime(pd.Series(end_b)).fillna(far_future).to_numpy()
    return (sa < eb) & (sb < ea)
