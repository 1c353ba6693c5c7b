"""Plain JSON values from frames and results, for the CLI's --json and the API's answers."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd


def jsonable(value):
    """JSON-safe: NaN, inf and NA become null; numpy scalars become Python numbers; dates ISO text."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, (pd.Timestamp, dt.date)):
        return value.isoformat()
    return value


def records(frame: pd.DataFrame) -> list[dict]:
    return [jsonable(r) for r in frame.astype(object).to_dict("records")]
