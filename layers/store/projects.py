"""Projects and their workflow events: the store's side. Which step may follow which (调研-评估-咨询-实施-反馈)
is the projects use case's rule (zeren.api.service.projects), checked inside a transaction before
:meth:`ProjectTables.set_project_status` runs."""
from __future__ import annotations

import datetime as dt
import json

import geopandas as gpd
import numpy as np
import pandas as pd

from zeren.geo.kinds import PROJECT_STATUSES
from zeren.layers.errors import NotFoundError
from zeren.layers.store.tables import now as _now


class ProjectTables:
    def create_project(self, *, name: str, geometry, type: str | None, scale: str | None,
                       description: str | None, as_of: dt.date, assignment: dict, actor: str,
                       at: str | None = None) -> int:
        """Store a project and its first workflow event; ``at`` (ISO 8601, default now) dates both."""
        lead = assignment.get("lead") or {}
        consult_ids = sorted({c["planner"]["id"] for c in assignment.get("consultations", [])})
        blob = self._engine.encode(np.array([geometry], dtype=object))[0]
        now = at or _now()
        with self.transaction() as con:
            pid = self._engine.insert_returning_id(
                con, "INSERT INTO projects (name, type, scale, description, status, created_at, created_by, as_of, "
                     "lead_planner_id, lead_zone_kind, lead_zone_code, consultation_planner_ids, assignment, geom) "
                     f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {self._engine.geom_param()})",
                (name, type, scale, description, PROJECT_STATUSES[0], now, actor, as_of.isoformat(),
                 (lead.get("planner") or {}).get("id"), (lead.get("zone") or {}).get("kind"),
                 (lead.get("zone") or {}).get("code"), json.dumps(consult_ids),
                 json.dumps(assignment, ensure_ascii=False), blob))
            self._exec(con, "INSERT INTO project_events (project_id, at, status, actor, note) VALUES (?, ?, ?, ?, ?)",
                       (int(pid), now, PROJECT_STATUSES[0], actor, "created"))
            self._engine.update_extent(con, "projects")
            self.audit_event(actor, "create", "project", str(pid), {"name": name})
        return int(pid)

    def projects(self) -> gpd.GeoDataFrame:
        return self.find_projects()

    def find_projects(self, *, status: str | None = None, planner_id: str | None = None,
                      project_id: int | None = None) -> gpd.GeoDataFrame:
        """Projects (the frame of :meth:`projects`) at ``status``, where ``planner_id`` is lead or consulted."""
        where, params = [], []
        if project_id is not None:
            where.append("fid = ?")
            params.append(int(project_id))
        if status is not None:
            where.append("status = ?")
            params.append(str(status))
        if planner_id is not None:
            escaped = json.dumps(str(planner_id)).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("(lead_planner_id = ? OR consultation_planner_ids LIKE ? ESCAPE '\\')")
            params += [str(planner_id), f"%{escaped}%"]
        raw = self._read("SELECT fid AS id, name, type, scale, description, status, created_at, created_by, as_of, "
                         "lead_planner_id, lead_zone_kind, lead_zone_code, consultation_planner_ids, assignment, "
                         f"{self._engine.geom_select()} FROM projects"
                         + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY fid", params)
        geoms = self._engine.decode(raw["geom"]) if len(raw) else np.array([], dtype=object)
        frame = raw.drop(columns="geom")
        frame["id"] = frame["id"].astype("int64")
        frame["consultation_planner_ids"] = [json.loads(v) for v in frame["consultation_planner_ids"]]
        frame["assignment"] = [json.loads(v) for v in frame["assignment"]]
        if planner_id is not None:  # LIKE found candidates; keep exact members only
            keep = [(lead == planner_id) or (planner_id in ids)
                    for lead, ids in zip(frame["lead_planner_id"], frame["consultation_planner_ids"])]
            frame, geoms = frame[keep].reset_index(drop=True), geoms[np.asarray(keep, dtype=bool)]
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")

    def project(self, project_id: int) -> dict:
        """One project as a dict (geometry a shapely geometry); NotFoundError when there is none."""
        frame = self.find_projects(project_id=int(project_id))
        if frame.empty:
            raise NotFoundError(f"no project {project_id}")
        row = frame.iloc[0].to_dict()
        row["geometry"] = frame.geometry.iloc[0]
        return row

    def project_events(self, project_id: int) -> pd.DataFrame:
        return self._read("SELECT at, status, actor, note FROM project_events WHERE project_id = ? ORDER BY fid",
                          (int(project_id),))

    def project_status(self, project_id: int) -> str:
        row = self._exec(self._con(), "SELECT status FROM projects WHERE fid = ?", (int(project_id),)).fetchone()
        if row is None:
            raise NotFoundError(f"no project {project_id}")
        return row[0]

    def add_project_event(self, project_id: int, *, status: str, actor: str, note: str | None,
                          moved_from: str | None = None, at: str | None = None) -> None:
        """Record a workflow event: a move to ``status`` (from ``moved_from``), or a note at the same status;
        ``at`` (ISO 8601, default now) dates it."""
        with self.transaction() as con:
            if moved_from is not None:
                self._exec(con, "UPDATE projects SET status = ? WHERE fid = ?", (status, int(project_id)))
            self._exec(con, "INSERT INTO project_events (project_id, at, status, actor, note) VALUES (?, ?, ?, ?, ?)",
                       (int(project_id), at or _now(), status, actor, note))
            if moved_from is not None:
                self.audit_event(actor, "status", "project", project_id, {"from": moved_from, "to": status,
                                                                          "note": note})
            else:
                self.audit_event(actor, "note", "project", project_id, {"status": status, "note": note})
