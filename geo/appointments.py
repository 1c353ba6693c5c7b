"""Appointments as of a date: who is lead on which zone.

Frames follow the store's schema (see ``layers.schema``): appointments have ``planner_id``,
``zone_kind``, ``zone_code``, ``role``, ``start`` and ``end``.
"""
from __future__ import annotations

import pandas as pd

from zeren.geo.validity import active_mask


def active_appointments(appointments: pd.DataFrame, as_of=None, role: str | None = None) -> pd.DataFrame:
    """The appointments in force on ``as_of`` (optionally of one role)."""
    mask = active_mask(appointments["start"], appointments["end"], as_of)
    if role is not None:
        mask &= (appointments["role"] == role).to_numpy()
    return appointments.loc[mask]


def leads_as_of(appointments: pd.DataFrame, as_of=None) -> pd.DataFrame:
    """One row per zone with an active lead: ``zone_kind``, ``zone_code``, ``planner_id``.

    Two active leads on one zone are a conflict (reported by coverage analysis); the answer here stays
    deterministic by taking the lowest planner id.
    """
    leads = active_appointments(appointments, as_of, role="lead")
    leads = leads.sort_values(["zone_kind", "zone_code", "planner_id"], kind="stable")
    leads = leads.drop_duplicates(["zone_kind", "zone_code"], keep="first")
    return leads[["zone_kind", "zone_code", "planner_id"]].reset_index(drop=True)
