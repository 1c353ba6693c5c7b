"""Teams (members with their discipline and role), the appointments that name a team, and the discipline
requirements per zone kind: the store's side. What a team may hold and what a requirement means are the
teams use case's rules (zeren.api.service.teams)."""
from __future__ import annotations

import pandas as pd

from zeren.geo.kinds import DEFAULT_DISCIPLINE_REQUIREMENTS
from zeren.layers.errors import NotFoundError


class TeamTables:
    # -- teams ------------------------------------------------------------------------------------
    def teams(self) -> pd.DataFrame:
        frame = self._read("SELECT id, name, organization, lead_planner_id FROM teams ORDER BY id")
        return frame.astype(object).where(frame.notna(), None)

    def team_members(self, team_id: str | None = None) -> pd.DataFrame:
        sql = "SELECT team_id, planner_id, discipline, role FROM team_members"
        params: tuple = ()
        if team_id is not None:
            sql, params = sql + " WHERE team_id = ?", (str(team_id),)
        frame = self._read(sql + " ORDER BY team_id, fid", params)
        return frame.astype(object).where(frame.notna(), None)

    def appointment_teams(self) -> pd.DataFrame:
        frame = self._read("SELECT appointment_id, team_id FROM appointment_teams ORDER BY appointment_id")
        frame["appointment_id"] = frame["appointment_id"].astype("int64")
        return frame

    def team(self, team_id: str) -> dict:
        frame = self._read("SELECT id, name, organization, lead_planner_id FROM teams WHERE id = ?", (str(team_id),))
        if frame.empty:
            raise NotFoundError(f"no team {str(team_id)[:64]!r}")
        row = {k: (None if pd.isna(v) else v) for k, v in frame.iloc[0].to_dict().items()}
        row["members"] = self.team_members(team_id).drop(columns="team_id").to_dict("records")
        links = self._read("SELECT appointment_id FROM appointment_teams WHERE team_id = ? ORDER BY appointment_id",
                           (str(team_id),))
        row["appointments"] = [int(v) for v in links["appointment_id"]]
        return row

    def put_team(self, record: dict, *, actor: str) -> bool:
        """Write a team whole (its members and the appointments naming it replaced); True when it is new."""
        tid = str(record["id"])
        with self.transaction() as con:
            new = self._exec(con, "SELECT 1 FROM teams WHERE id = ?", (tid,)).fetchone() is None
            if new:
                self._exec(con, "INSERT INTO teams (name, organization, lead_planner_id, id) VALUES (?, ?, ?, ?)",
                           (record["name"], record.get("organization"), record.get("lead_planner_id"), tid))
            else:
                self._exec(con, "UPDATE teams SET name = ?, organization = ?, lead_planner_id = ? WHERE id = ?",
                           (record["name"], record.get("organization"), record.get("lead_planner_id"), tid))
            self._exec(con, "DELETE FROM team_members WHERE team_id = ?", (tid,))
            for m in record.get("members", []):
                self._exec(con, "INSERT INTO team_members (team_id, planner_id, discipline, role) VALUES (?, ?, ?, ?)",
                           (tid, m["planner_id"], m.get("discipline"), m["role"]))
            self._exec(con, "DELETE FROM appointment_teams WHERE team_id = ?", (tid,))
            for aid in record.get("appointments", []):
                self._exec(con, "DELETE FROM appointment_teams WHERE appointment_id = ?", (int(aid),))
                self._exec(con, "INSERT INTO appointment_teams (appointment_id, team_id) VALUES (?, ?)",
                           (int(aid), tid))
            self.audit_event(actor, "create" if new else "update", "team", tid,
                             {"name": record["name"], "members": len(record.get("members", [])),
                              "appointments": list(record.get("appointments", []))})
        return new

    # -- discipline requirements ------------------------------------------------------------------
    def _seed_discipline_requirements(self, con) -> None:
        (count,) = self._exec(con, "SELECT count(*) FROM discipline_requirements").fetchone()
        if count:
            return
        for kind, groups in DEFAULT_DISCIPLINE_REQUIREMENTS.items():
            self._put_requirements(con, kind, groups)

    def _put_requirements(self, con, kind: str, groups) -> None:
        self._exec(con, "DELETE FROM discipline_requirements WHERE zone_kind = ?", (kind,))
        for i, group in enumerate(groups):
            for discipline in group:
                self._exec(con, "INSERT INTO discipline_requirements (zone_kind, group_no, discipline) "
                                "VALUES (?, ?, ?)", (kind, i, discipline))

    def discipline_requirements(self) -> dict[str, list[list[str]]]:
        """zone kind -> requirement groups (each met by any one of its disciplines)."""
        frame = self._read("SELECT zone_kind, group_no, discipline FROM discipline_requirements "
                           "ORDER BY zone_kind, group_no, fid")
        out: dict[str, list[list[str]]] = {}
        for (kind, _), group in frame.groupby(["zone_kind", "group_no"], sort=True):
            out.setdefault(kind, []).append(group["discipline"].tolist())
        return out

    def set_discipline_requirements(self, kind: str, groups, *, actor: str) -> None:
        with self.transaction() as con:
            self._put_requirements(con, kind, groups)
            self.audit_event(actor, "update", "discipline_requirements", kind, {"groups": [list(g) for g in groups]})
