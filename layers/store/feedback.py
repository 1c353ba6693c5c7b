"""Resident feedback: the store's side (cases, their workflow events, the editable category list). Which step
may follow which, who may take it and what is routed where are the feedback use case's rules
(zeren.api.service.feedback), checked inside a transaction before these methods write."""
from __future__ import annotations

import datetime as dt
import json

import geopandas as gpd
import numpy as np
import pandas as pd

from zeren.geo.kinds import DEFAULT_FEEDBACK_CATEGORIES
from zeren.layers.errors import NotFoundError
from zeren.layers.store.tables import now as _now

_COLUMNS = ("fid AS id, ref, category, text, contact, status, created_at, as_of, routed_to, zone_codes, outside, "
            "nearest_distance_m, assignment, reply, replied_at, rating, rated_at, synthetic")


def _like_member(value: str) -> str:
    """A LIKE pattern matching ``value`` as a member of a stored JSON list of strings."""
    escaped = json.dumps(str(value)).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class FeedbackTables:
    # -- categories -------------------------------------------------------------------------------
    def _seed_feedback_categories(self, con) -> None:
        (count,) = self._exec(con, "SELECT count(*) FROM feedback_categories").fetchone()
        if count:
            return
        for i, (code, name, name_en) in enumerate(DEFAULT_FEEDBACK_CATEGORIES):
            self._exec(con, "INSERT INTO feedback_categories (code, name, name_en, position, active) "
                            "VALUES (?, ?, ?, ?, 1)", (code, name, name_en, i))

    def feedback_categories(self, *, include_retired: bool = False) -> pd.DataFrame:
        frame = self._read("SELECT code, name, name_en, position, active FROM feedback_categories"
                           + ("" if include_retired else " WHERE active = 1") + " ORDER BY position, code")
        frame["active"] = frame["active"].astype(bool)
        return frame

    def put_feedback_category(self, code: str, name: str, name_en: str | None, *, active: bool, actor: str) -> None:
        """Add a category, or rename / retire / bring back an existing one (cases keep their category)."""
        with self.transaction() as con:
            row = self._exec(con, "SELECT position FROM feedback_categories WHERE code = ?", (code,)).fetchone()
            if row is None:
                (last,) = self._exec(con, "SELECT coalesce(max(position), -1) FROM feedback_categories").fetchone()
                self._exec(con, "INSERT INTO feedback_categories (code, name, name_en, position, active) "
                                "VALUES (?, ?, ?, ?, ?)", (code, name, name_en, int(last) + 1, int(active)))
            else:
                self._exec(con, "UPDATE feedback_categories SET name = ?, name_en = ?, active = ? WHERE code = ?",
                           (name, name_en, int(active), code))
            self.audit_event(actor, "put", "feedback_category", code, {"name": name, "name_en": name_en,
                                                                       "active": bool(active)})

    # -- cases ------------------------------------------------------------------------------------
    def create_feedback(self, *, ref: str, category: str, text: str, contact: str | None, geometry, as_of: dt.date,
                        assignment: dict, routed_to: list[str], zone_codes: list[str], outside: bool,
                        nearest_distance_m: float | None, actor: str, at: str | None = None,
                        synthetic: bool = False) -> int:
        blob = self._engine.encode(np.array([geometry], dtype=object))[0]
        at = at or _now()
        with self.transaction() as con:
            fid = self._engine.insert_returning_id(
                con, "INSERT INTO feedback (ref, category, text, contact, status, created_at, as_of, routed_to, "
                     "zone_codes, outside, nearest_distance_m, assignment, synthetic, geom) "
                     f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {self._engine.geom_param()})",
                (ref, category, text, contact, "received", at, as_of.isoformat(), json.dumps(routed_to),
                 json.dumps(zone_codes, ensure_ascii=False), int(bool(outside)),
                 None if nearest_distance_m is None else float(nearest_distance_m),
                 json.dumps(assignment, ensure_ascii=False), int(bool(synthetic)), blob))
            self._exec(con, "INSERT INTO feedback_events (feedback_id, at, status, actor, note, routed_to) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                       (int(fid), at, "received", actor, None, json.dumps(routed_to)))
            self._engine.update_extent(con, "feedback")  # gpkg_contents stays the data's box (QGIS zooms to it)
        return int(fid)

    def find_feedback(self, *, ref: str | None = None, status: str | None = None, category: str | None = None,
                      planner_id: str | None = None, zone_code: str | None = None, since: dt.date | None = None,
                      until: dt.date | None = None) -> gpd.GeoDataFrame:
        """Cases matching every given filter (``planner_id``: routed to them; ``zone_code``: lying in that zone;
        ``since``/``until``: received on those days, both inclusive), oldest first."""
        where, params = [], []
        for column, value in (("ref", ref), ("status", status), ("category", category)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        if planner_id is not None:
            where.append("routed_to LIKE ? ESCAPE '\\'")
            params.append(_like_member(planner_id))
        if zone_code is not None:
            where.append("zone_codes LIKE ? ESCAPE '\\'")
            params.append(_like_member(zone_code))
        if since is not None:
            where.append("created_at >= ?")
            params.append(since.isoformat())
        if until is not None:
            where.append("created_at < ?")
            params.append((until + dt.timedelta(days=1)).isoformat())
        raw = self._read(f"SELECT {_COLUMNS}, {self._engine.geom_select()} FROM feedback"
                         + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY fid", params)
        geoms = self._engine.decode(raw["geom"]) if len(raw) else np.array([], dtype=object)
        frame = raw.drop(columns="geom")
        frame["id"] = frame["id"].astype("int64")
        for column in ("routed_to", "zone_codes", "assignment"):
            frame[column] = [json.loads(v) for v in frame[column]]
        frame["outside"] = frame["outside"].astype(bool)
        frame["synthetic"] = frame["synthetic"].astype(bool)
        keep = np.ones(len(frame), dtype=bool)  # LIKE found candidates; keep exact members only
        if planner_id is not None:
            keep &= np.array([str(planner_id) in ids for ids in frame["routed_to"]], dtype=bool)
        if zone_code is not None:
            keep &= np.array([str(zone_code) in codes for codes in frame["zone_codes"]], dtype=bool)
        if not keep.all():
            frame, geoms = frame[keep].reset_index(drop=True), geoms[keep]
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")

    def feedback_case(self, ref: str) -> dict:
        """One case by its reference (geometry a shapely geometry); NotFoundError when there is none."""
        frame = self.find_feedback(ref=str(ref))
        if frame.empty:
            raise NotFoundError(f"no feedback case {str(ref)[:40]!r}; check the reference (e.g. FB-2026-7KQ4M2)")
        row = frame.drop(columns="geometry").iloc[0].to_dict()
        row["geometry"] = frame.geometry.iloc[0]
        return row

    def feedback_events(self, feedback_id: int) -> pd.DataFrame:
        return self._read("SELECT at, status, actor, note, routed_to FROM feedback_events WHERE feedback_id = ? "
                          "ORDER BY fid", (int(feedback_id),))

    def add_feedback_event(self, feedback_id: int, *, status: str, actor: str, note: str | None,
                           moved_from: str, routed_to: list[str] | None = None, reply: str | None = None,
                           at: str | None = None) -> None:
        """Move a case to ``status`` (from ``moved_from``): re-routed when ``routed_to`` is given, the public
        reply stored when ``reply`` is given."""
        at = at or _now()
        with self.transaction() as con:
            sets, params = ["status = ?"], [status]
            if routed_to is not None:
                sets.append("routed_to = ?")
                params.append(json.dumps(routed_to))
            if reply is not None:
                sets += ["reply = ?", "replied_at = ?"]
                params += [reply, at]
            self._exec(con, f"UPDATE feedback SET {', '.join(sets)} WHERE fid = ?", (*params, int(feedback_id)))
            self._exec(con, "INSERT INTO feedback_events (feedback_id, at, status, actor, note, routed_to) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                       (int(feedback_id), at, status, actor, note,
                        None if routed_to is None else json.dumps(routed_to)))
            self.audit_event(actor, "status", "feedback", feedback_id, {"from": moved_from, "to": status,
                                                                        "routed_to": routed_to})

    def rate_feedback(self, feedback_id: int, rating: int, at: str | None = None) -> None:
        with self.transaction() as con:
            self._exec(con, "UPDATE feedback SET rating = ?, rated_at = ? WHERE fid = ?",
                       (int(rating), at or _now(), int(feedback_id)))
