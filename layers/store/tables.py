"""The store's tables, as one declaration both engines create (types written for SQLite; PostGIS maps them),
and the small value helpers every part of the store shares."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

SCHEMA_VERSION = 3
DEFAULT_STORE = "zeren.gpkg"

# Tables: name -> (geometry type or None, columns).
TABLES = {
    "zones": ("MULTIPOLYGON", [
        ("kind", "TEXT NOT NULL"), ("code", "TEXT NOT NULL"), ("name", "TEXT NOT NULL"), ("name_en", "TEXT"),
        ("parent_code", "TEXT"), ("edition", "INTEGER NOT NULL"), ("valid_from", "DATE NOT NULL"),
        ("valid_to", "DATE"), ("population", "INTEGER"), ("attrs", "TEXT NOT NULL DEFAULT '{}'"),
        ("import_id", "INTEGER"),
    ]),
    "planners": (None, [
        ("id", "TEXT NOT NULL UNIQUE"), ("name", "TEXT NOT NULL"), ("organization", "TEXT"),
        ("disciplines", "TEXT"), ("public_contact", "TEXT"), ("private_contact", "TEXT"),
    ]),
    "appointments": (None, [
        ("planner_id", "TEXT NOT NULL"), ("zone_kind", "TEXT NOT NULL"), ("zone_code", "TEXT NOT NULL"),
        ("role", "TEXT NOT NULL"), ("start_date", "DATE NOT NULL"), ("end_date", "DATE"),
    ]),
    "consultation_rules": (None, [("zone_kind", "TEXT NOT NULL UNIQUE"), ("obliges", "INTEGER NOT NULL")]),
    "projects": ("GEOMETRY", [
        ("name", "TEXT NOT NULL"), ("type", "TEXT"), ("scale", "TEXT"), ("description", "TEXT"),
        ("status", "TEXT NOT NULL"), ("created_at", "TEXT NOT NULL"), ("created_by", "TEXT"),
        ("as_of", "DATE NOT NULL"), ("lead_planner_id", "TEXT"), ("lead_zone_kind", "TEXT"),
        ("lead_zone_code", "TEXT"), ("consultation_planner_ids", "TEXT NOT NULL DEFAULT '[]'"),
        ("assignment", "TEXT NOT NULL"),
    ]),
    "project_events": (None, [
        ("project_id", "INTEGER NOT NULL"), ("at", "TEXT NOT NULL"), ("status", "TEXT NOT NULL"),
        ("actor", "TEXT"), ("note", "TEXT"),
    ]),
    "import_log": (None, [
        ("at", "TEXT NOT NULL"), ("command", "TEXT NOT NULL"), ("source", "TEXT"), ("kind", "TEXT"),
        ("edition", "INTEGER"), ("features_read", "INTEGER"), ("repaired", "INTEGER"), ("rejected", "INTEGER"),
        ("written", "INTEGER"), ("report", "TEXT"), ("actor", "TEXT"),
    ]),
    "audit": (None, [
        ("at", "TEXT NOT NULL"), ("actor", "TEXT NOT NULL"), ("action", "TEXT NOT NULL"),
        ("entity", "TEXT NOT NULL"), ("entity_id", "TEXT"), ("detail", "TEXT"),
    ]),
    "zeren_meta": (None, [("key", "TEXT NOT NULL UNIQUE"), ("value", "TEXT")]),
    # resident feedback (schema 3): the case with its assignment frozen at creation, its workflow events, and
    # the editable list of categories
    "feedback": ("GEOMETRY", [
        ("ref", "TEXT NOT NULL UNIQUE"), ("category", "TEXT NOT NULL"), ("text", "TEXT NOT NULL"),
        ("contact", "TEXT"), ("status", "TEXT NOT NULL"), ("created_at", "TEXT NOT NULL"), ("as_of", "DATE NOT NULL"),
        ("routed_to", "TEXT NOT NULL DEFAULT '[]'"), ("zone_codes", "TEXT NOT NULL DEFAULT '[]'"),
        ("outside", "INTEGER NOT NULL DEFAULT 0"), ("nearest_distance_m", "REAL"), ("assignment", "TEXT NOT NULL"),
        ("reply", "TEXT"), ("replied_at", "TEXT"), ("rating", "INTEGER"), ("rated_at", "TEXT"),
        ("synthetic", "INTEGER NOT NULL DEFAULT 0"),
    ]),
    "feedback_events": (None, [
        ("feedback_id", "INTEGER NOT NULL"), ("at", "TEXT NOT NULL"), ("status", "TEXT NOT NULL"),
        ("actor", "TEXT"), ("note", "TEXT"), ("routed_to", "TEXT"),
    ]),
    # teams and discipline requirements (schema 3): a team's members with the discipline and role each brings,
    # the appointments that name a team, and per zone kind the disciplines its appointed people must cover
    "teams": (None, [("id", "TEXT NOT NULL UNIQUE"), ("name", "TEXT NOT NULL"), ("organization", "TEXT"),
                     ("lead_planner_id", "TEXT")]),
    "team_members": (None, [("team_id", "TEXT NOT NULL"), ("planner_id", "TEXT NOT NULL"), ("discipline", "TEXT"),
                            ("role", "TEXT NOT NULL")]),
    "appointment_teams": (None, [("appointment_id", "INTEGER NOT NULL UNIQUE"), ("team_id", "TEXT NOT NULL")]),
    "discipline_requirements": (None, [("zone_kind", "TEXT NOT NULL"), ("group_no", "INTEGER NOT NULL"),
                                       ("discipline", "TEXT NOT NULL")]),
    "feedback_categories": (None, [
        ("code", "TEXT NOT NULL UNIQUE"), ("name", "TEXT NOT NULL"), ("name_en", "TEXT"),
        ("position", "INTEGER NOT NULL DEFAULT 0"), ("active", "INTEGER NOT NULL DEFAULT 1"),
    ]),
}
INDEXES = [
    "CREATE UNIQUE INDEX IF NOT EXISTS zones_key ON zones (kind, code, edition)",
    "CREATE INDEX IF NOT EXISTS appointments_zone ON appointments (zone_kind, zone_code)",
    "CREATE INDEX IF NOT EXISTS appointments_planner ON appointments (planner_id)",
    "CREATE INDEX IF NOT EXISTS project_events_project ON project_events (project_id)",
    "CREATE INDEX IF NOT EXISTS feedback_events_feedback ON feedback_events (feedback_id)",
    "CREATE INDEX IF NOT EXISTS team_members_team ON team_members (team_id)",
]
# Columns added since schema 1, added to older stores when they are opened for writing.
MIGRATIONS = {2: [("zones", "import_id", "INTEGER"), ("import_log", "actor", "TEXT")]}
# Tables added since schema 1, created in older stores when they are opened.
NEW_TABLES = {3: ("feedback", "feedback_events", "feedback_categories", "teams", "team_members",
                  "appointment_teams", "discipline_requirements")}
# Append-only tables: the audit log and the project workflow events; appointments are ended, never deleted.
NO_DELETE = ("audit", "appointments", "project_events", "feedback_events")
NO_UPDATE = ("audit", "project_events", "feedback_events")


def now() -> str:
    """The current UTC time, to the second, ISO 8601."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def iso(value) -> str | None:
    """A date (or None) as stored: YYYY-MM-DD text."""
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def text(value):
    """A text cell as stored: stripped, None for missing or blank values."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    out = str(value).strip()
    return out or None


def dates(values) -> pd.Series:
    """A column of stored dates as datetime64[ns] (NaT where open)."""
    return pd.to_datetime(pd.Series(values, dtype=object)).astype("datetime64[ns]")
