"""The schema of Zeren's records, and the checks every write goes through (CLI import and API alike).

In memory the frames have the shapes described in layers/CONTRACT.md; in the store, dates are ISO text
(GeoPackage) or DATE (PostGIS) and geometries are MultiPolygons in EPSG:4326.
"""
from __future__ import annotations

import datetime as dt
import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd

from zeren.geo.kinds import ALL_KINDS, ROLES

ZONE_COLUMNS = ["kind", "code", "name", "name_en", "parent_code", "edition", "valid_from", "valid_to",
                "population", "attrs"]
PLANNER_COLUMNS = ["id", "name", "organization", "disciplines", "public_contact", "private_contact"]
APPOINTMENT_COLUMNS = ["id", "planner_id", "zone_kind", "zone_code", "role", "start", "end"]
DISCIPLINES = ("planning", "architecture", "landscape", "transport", "municipal", "land", "heritage",
               "sociology", "law", "operations", "ecology", "economics", "public_art", "other")

_PLANNER_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def check_kind(kind: str) -> str:
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown zone kind {kind!r}; use one of: {', '.join(ALL_KINDS)}")
    return kind


def parse_date(value, field: str) -> dt.date | None:
    """An ISO date (YYYY-MM-DD) or None for an empty value; ValueError naming the field otherwise."""
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)) or (
            isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not a date; write it as YYYY-MM-DD") from None


def empty_zones() -> gpd.GeoDataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in ZONE_COLUMNS})
    frame["edition"] = frame["edition"].astype("Int64")
    frame["population"] = frame["population"].astype("Int64")
    frame["valid_from"] = pd.to_datetime(frame["valid_from"])
    frame["valid_to"] = pd.to_datetime(frame["valid_to"])
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")


def planner_problems(planners: pd.DataFrame) -> list[str]:
    """Every problem in a frame of planners, one line per row and field."""
    problems = []
    missing = [c for c in ("id", "name") if c not in planners.columns]
    if missing:
        return [f"missing column(s) {', '.join(missing)}; expected {', '.join(PLANNER_COLUMNS)}"]
    seen: dict[str, int] = {}
    for row_no, row in enumerate(planners.to_dict("records"), start=2):
        pid = row.get("id")
        if not isinstance(pid, str) or not _PLANNER_ID.match(pid):
            problems.append(f"row {row_no}, field id: {pid!r} is not a valid id (letters, digits, _ . -; up to 64)")
        elif pid in seen:
            problems.append(f"row {row_no}, field id: {pid!r} repeats row {seen[pid]}")
        else:
            seen[pid] = row_no
        if not isinstance(row.get("name"), str) or not row["name"].strip():
            problems.append(f"row {row_no}, field name: empty; every planner needs a name")
        disciplines = row.get("disciplines") or []
        if isinstance(disciplines, str):
            disciplines = split_disciplines(disciplines)
        unknown = [d for d in disciplines if d not in DISCIPLINES]
        if unknown:
            problems.append(f"row {row_no}, field disciplines: unknown {', '.join(unknown)}; "
                            f"use ';'-separated values from: {', '.join(DISCIPLINES)}")
    return problems


def split_disciplines(text) -> list[str]:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    if isinstance(text, (list, tuple, np.ndarray)):
        return [str(t).strip() for t in text if str(t).strip()]
    return [t.strip() for t in str(text).split(";") if t.strip()]


def appointment_problems(appointments: pd.DataFrame, planner_ids, zone_keys, first_row: int = 2) -> list[str]:
    """Every problem in a frame of appointments: unknown planner or zone, bad role, bad or reversed dates.

    ``zone_keys`` is a set of (kind, code) known to the store (any edition).
    """
    required = ["planner_id", "zone_kind", "zone_code", "role", "start"]
    missing = [c for c in required if c not in appointments.columns]
    if missing:
        return [f"missing column(s) {', '.join(missing)}; expected planner_id,zone_kind,zone_code,role,start,end"]
    planner_ids = set(map(str, planner_ids))
    problems = []
    for row_no, row in enumerate(appointments.to_dict("records"), start=first_row):
        where = f"row {row_no}"
        pid = str(row.get("planner_id") or "").strip()
        if pid not in planner_ids:
            problems.append(f"{where}, field planner_id: no planner {pid!r}; import the planner first")
        kind, code = str(row.get("zone_kind") or "").strip(), str(row.get("zone_code") or "").strip()
        if kind not in ALL_KINDS:
            problems.append(f"{where}, field zone_kind: unknown kind {kind!r}; use one of {', '.join(ALL_KINDS)}")
        elif (kind, code) not in zone_keys:
            problems.append(f"{where}, field zone_code: no {kind} with code {code!r} in the store")
        if row.get("role") not in ROLES:
            problems.append(f"{where}, field role: {row.get('role')!r}; use one of {', '.join(ROLES)}")
        try:
            start = parse_date(row.get("start"), "start")
            if start is None:
                problems.append(f"{where}, field start: empty; every appointment has a start date")
            end = parse_date(row.get("end"), "end")
            if start and end and end <= start:
                problems.append(f"{where}, field end: {end} is not after start {start} (end is exclusive)")
        except ValueError as exc:
            problems.append(f"{where}, field {exc}")
    return problems


def attrs_json(attrs) -> str:
    return json.dumps(attrs or {}, ensure_ascii=False, default=str, sort_keys=True)
