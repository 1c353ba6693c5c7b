"""Plain JSON values from frames and results, for the CLI's --json and the API's answers."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def plain(value):
    """A JSON-able Python value from pandas/numpy cells (NaN/NaT/NA -> None, dates -> ISO text)."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    return value


def jsonable(value):
    """As :func:`plain`, but timestamps keep their time of day (the coverage reports' JSON)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return plain(value)


def records(frame: pd.DataFrame) -> list[dict]:
    return [jsonable(r) for r in frame.astype(object).to_dict("records")]
