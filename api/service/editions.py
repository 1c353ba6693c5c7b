"""Boundary editions over time: the list of editions, the diff between two of them, and carry-over of the
appointments an edition leaves pointing at zones no longer in force.

An edition's *state* is every zone of the kind in force on the edition's first day (an edition that changed
one district leaves the other districts' zones of older editions in force). The diff compares the states of
two editions code by code; for each removed zone it names its successors by the share of its ground they
took (a merge shows one successor holding ~100% of several predecessors, a split the reverse).

Carry-over moves an appointment from a zone that is gone to each successor made *mostly* (more than
``min_share``, default half) of that zone's ground: a split zone's planner keeps both halves, the zone that
absorbed most of a merge keeps that zone's planner, and a zone made of several zones of which none dominates
gets no proposal (it is reported instead). Proposals go through the appointment rules (no duplicate, one lead
at a time) and are applied in one transaction, audited.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from zeren.api.service.actors import Actor
from zeren.api.service.appointments import AppointmentImport, add_appointments, check_appointments
from zeren.api.service.workspace import Workspace
from zeren.geo.crs import geometry_projector, metric_crs
from zeren.geo.editions import overlap_pairs, same_geometry, shape_change
from zeren.geo.kinds import ALL_KINDS, PROJECT_STATUSES
from zeren.geo.validity import active_mask
from zeren.layers.errors import NotFoundError, ValidationError

DEFAULT_MIN_SHARE = 0.5
_ATTRIBUTES = ("name", "name_en", "parent_code", "population")


# -- the list -----------------------------------------------------------------------------------------
def list_editions(ws: Workspace, kind: str | None = None, as_of=None) -> pd.DataFrame:
    """kind, edition, valid_from (its first day), zones (rows it wrote), in_force (of them, on ``as_of``),
    source (the file of its last import)."""
    if kind is not None and kind not in ALL_KINDS:
        raise ValidationError(f"--kind {kind!r}: use one of {', '.join(ALL_KINDS)}")
    store = ws.store
    table = store.edition_table()
    if kind is not None:
        table = table[table["kind"] == kind]
    day = pd.Timestamp(as_of or dt.date.today())
    periods = store.zone_periods()
    periods["in_force"] = active_mask(periods["valid_from"], periods["valid_to"], day)
    counts = periods.groupby(["kind", "edition"])["in_force"].sum().rename("in_force").reset_index()
    table = table.merge(counts, on=["kind", "edition"], how="left")
    log = store.import_log()
    log = log[log["command"] == "import-layer"].sort_values("id").drop_duplicates(["kind", "edition"], keep="last")
    table = table.merge(log[["kind", "edition", "source", "at"]].rename(columns={"at": "imported_at"}),
                        on=["kind", "edition"], how="left")
    table["in_force"] = table["in_force"].fillna(0).astype("int64")
    return table[["kind", "edition", "valid_from", "zones", "in_force", "source", "imported_at"]].reset_index(drop=True)


def edition_start(ws: Workspace, kind: str, edition: int) -> dt.date:
    table = ws.store.edition_table()
    table = table[table["kind"] == kind]
    row = table[table["edition"] == int(edition)]
    if row.empty:
        known = ", ".join(str(e) for e in table["edition"]) or "none"
        raise NotFoundError(f"no {kind} edition {edition}; the {kind} editions are: {known} (zeren editions)")
    return pd.Timestamp(row["valid_from"].iloc[0]).date()


# -- the diff -----------------------------------------------------------------------------------------
@dataclass
class EditionDiff:
    kind: str
    from_edition: int
    to_edition: int
    from_day: dt.date
    to_day: dt.date
    min_share: float
    zones: list[dict] = field(default_factory=list)
    dangling_appointments: list[dict] = field(default_factory=list)
    projects: list[dict] = field(default_factory=list)
    old: object = field(default=None, repr=False)  # GeoDataFrames of the two states (for maps and files)
    new: object = field(default=None, repr=False)

    def counts(self) -> dict:
        out = {s: 0 for s in ("added", "removed", "changed", "unchanged")}
        for z in self.zones:
            out[z["status"]] += 1
        return out

    def as_dict(self) -> dict:
        return {"kind": self.kind, "from": self.from_edition, "to": self.to_edition,
                "from_day": self.from_day.isoformat(), "to_day": self.to_day.isoformat(),
                "min_share": self.min_share, "counts": self.counts(), "zones": self.zones,
                "dangling_appointments": self.dangling_appointments, "projects_lead_changes": self.projects}

    def text(self) -> str:
        c = self.counts()
        lines = [f"版本比较 / edition diff — {self.kind} {self.from_edition} ({self.from_day}) → {self.to_edition} "
                 f"({self.to_day})",
                 f"新增 / added {c['added']}, 撤销 / removed {c['removed']}, 变更 / changed {c['changed']}, "
                 f"未变 / unchanged {c['unchanged']}"]
        for z in self.zones:
            if z["status"] == "removed":
                succ = ", ".join(f"{s['code']} {s['share']:.0%}" for s in z["successors"]) or "none (ground left uncovered)"
                lines.append(f"  撤销 / removed {z['code']} {z['name']} → successors: {succ}")
            elif z["status"] == "added":
                pred = ", ".join(f"{s['code']} {s['share']:.0%}" for s in z["predecessors"]) or "new ground"
                lines.append(f"  新增 / added {z['code']} {z['name']} ← made of: {pred}")
            elif z["status"] == "changed":
                what = (f"IoU {z['iou']:.3f}, area {z['area_change_m2'] / 1e6:+,.3f} km², moved up to "
                        f"{z['hausdorff_m']:,.0f} m" if z.get("geometry_changed") else "same boundary")
                attrs = f"; {', '.join(z['attributes_changed'])} changed" if z.get("attributes_changed") else ""
                lines.append(f"  变更 / changed {z['code']} {z['name']}: {what}{attrs}")
        lines.append(f"悬空任命 / appointments on zones not in force on {self.to_day}: {len(self.dangling_appointments)}")
        for a in self.dangling_appointments:
            to = (f"→ {a['successor_code']} ({a['successor_share']:.0%} of it came from {a['zone_code']})"
                  if a["successor_code"] else f"→ no successor: {a['reason']}")
            also = f" (also {', '.join(a['also'])})" if a.get("also") else ""
            lines.append(f"  {a['planner_id']} {a['role']} of {a['zone_code']} (appointment {a['id']}) {to}{also}")
        lines.append(f"负责人将变化的在办项目 / open projects whose lead changes on {self.to_day}: {len(self.projects)}")
        for p in self.projects:
            lines.append(f"  project {p['id']} {p['name']} ({p['status']}): {p['lead_before'] or '—'} → "
                         f"{p['lead_after'] or '—'}")
        if self.dangling_appointments:
            lines.append(f"To move them: zeren editions carry-over --kind {self.kind} --to {self.to_edition} "
                         f"(then --apply)")
        return "\n".join(lines)


def _state(ws: Workspace, kind: str, day: dt.date):
    return ws.store.zones(kind=kind, as_of=day, with_ids=True).reset_index(drop=True)


def _changed_attributes(old: dict, new: dict) -> list[str]:
    out = []
    for a in _ATTRIBUTES:
        x, y = old.get(a), new.get(a)
        x = None if x is None or (not isinstance(x, str) and pd.isna(x)) else x
        y = None if y is None or (not isinstance(y, str) and pd.isna(y)) else y
        if x != y:
            out.append(a)
    if (old.get("attrs") or {}) != (new.get("attrs") or {}):
        out.append("attrs")
    return out


def diff_editions(ws: Workspace, kind: str, from_edition: int, to_edition: int, *,
                  min_share: float = DEFAULT_MIN_SHARE) -> EditionDiff:
    """The diff between the states of two editions of ``kind`` (see the module's docstring)."""
    if kind not in ALL_KINDS:
        raise ValidationError(f"--kind {kind!r}: use one of {', '.join(ALL_KINDS)}")
    if not 0 < float(min_share) <= 1:
        raise ValidationError(f"--min-share {min_share}: give a share between 0 and 1 (default {DEFAULT_MIN_SHARE})")
    from_day, to_day = edition_start(ws, kind, from_edition), edition_start(ws, kind, to_edition)
    if to_day <= from_day:
        raise ValidationError(f"--from {from_edition} ({from_day}) must be an older edition than --to {to_edition} "
                              f"({to_day})")
    old, new = _state(ws, kind, from_day), _state(ws, kind, to_day)
    result = EditionDiff(kind=kind, from_edition=int(from_edition), to_edition=int(to_edition), from_day=from_day,
                         to_day=to_day, min_share=float(min_share), old=old, new=new)
    bounds = tuple(pd.concat([old.geometry, new.geometry]).total_bounds) if len(old) or len(new) else None
    to_metric = geometry_projector("EPSG:4326", metric_crs(bounds)) if bounds else None

    old_pos = {c: i for i, c in enumerate(old["code"].astype(str))}
    new_pos = {c: i for i, c in enumerate(new["code"].astype(str))}
    pairs = overlap_pairs(old.geometry.to_numpy(), new.geometry.to_numpy(), to_metric) if to_metric else None
    both = [c for c in old_pos if c in new_pos]
    moved = [c for c in both if int(old["fid"].iat[old_pos[c]]) != int(new["fid"].iat[new_pos[c]])]
    geoms_old = np.array([old.geometry.iat[old_pos[c]] for c in moved], dtype=object)
    geoms_new = np.array([new.geometry.iat[new_pos[c]] for c in moved], dtype=object)
    shape_same = same_geometry(geoms_old, geoms_new)
    metrics = shape_change(geoms_old, geoms_new, to_metric).to_dict("records") if len(moved) else []
    changed = {}
    for c, same, m in zip(moved, shape_same, metrics):
        attrs = _changed_attributes(old.iloc[old_pos[c]].to_dict(), new.iloc[new_pos[c]].to_dict())
        if not same or attrs:
            changed[c] = {"geometry_changed": not bool(same), "attributes_changed": attrs, **({} if same else m)}

    def shares(pos: int, side: str) -> list[dict]:
        if pairs is None or not len(pairs):
            return []
        if side == "old":
            rows = pairs[pairs["old"] == pos]
            return [{"code": str(new["code"].iat[int(r.new)]), "share": round(float(r.share_of_old), 4),
                     "share_of_successor": round(float(r.share_of_new), 4)} for r in rows.itertuples()]
        rows = pairs[pairs["new"] == pos].sort_values("share_of_new", ascending=False)
        return [{"code": str(old["code"].iat[int(r.old)]), "share": round(float(r.share_of_new), 4)}
                for r in rows.itertuples()]

    for code in sorted(set(old_pos) | set(new_pos)):
        if code in old_pos and code in new_pos:
            entry = {"code": code, "name": str(new["name"].iat[new_pos[code]])}
            if code in changed:
                entry.update(status="changed", **changed[code])
            else:
                entry.update(status="unchanged")
        elif code in old_pos:
            entry = {"code": code, "name": str(old["name"].iat[old_pos[code]]), "status": "removed",
                     "successors": shares(old_pos[code], "old")}
        else:
            entry = {"code": code, "name": str(new["name"].iat[new_pos[code]]), "status": "added",
                     "predecessors": shares(new_pos[code], "new")}
        result.zones.append(entry)
    result.dangling_appointments = _dangling(ws, kind, old, new, pairs, to_day, float(min_share), to_metric)
    result.projects = _projects_whose_lead_changes(ws, to_day)
    return result


def _dangling(ws: Workspace, kind: str, old, new, pairs, to_day: dt.date, min_share: float, to_metric) -> list[dict]:
    """Appointments in force on ``to_day`` (or starting later) on zones of ``kind`` not in force then, each with
    the successor it would carry over to."""
    appts = ws.store.appointments()
    appts = appts[appts["zone_kind"] == kind]
    ts = pd.Timestamp(to_day)
    current = appts[appts["end"].isna() | (appts["end"] > ts)]
    in_force = set(new["code"].astype(str))
    dangling = current[~current["zone_code"].astype(str).isin(in_force)]
    if dangling.empty:
        return []
    old_codes = {c: i for i, c in enumerate(old["code"].astype(str))}
    extra_codes = sorted(set(dangling["zone_code"].astype(str)) - set(old_codes))
    extra = None
    if extra_codes:  # zones gone before the "from" edition: take their last version
        rows = ws.store.zones(kind=kind)
        rows = rows[rows["code"].astype(str).isin(extra_codes) & (rows["valid_from"] < ts)]
        extra = rows.sort_values("valid_from").drop_duplicates("code", keep="last").reset_index(drop=True)
        if len(extra) and to_metric is not None:
            extra_pairs = overlap_pairs(extra.geometry.to_numpy(), new.geometry.to_numpy(), to_metric)
        else:
            extra_pairs = None
    out = []
    for a in dangling.sort_values("id").to_dict("records"):
        code = str(a["zone_code"])
        if code in old_codes and pairs is not None:
            mine = pairs[pairs["old"] == old_codes[code]]
        elif extra is not None and extra_pairs is not None and code in set(extra["code"].astype(str)):
            pos = int(np.flatnonzero(extra["code"].astype(str).to_numpy() == code)[0])
            mine = extra_pairs[extra_pairs["old"] == pos]
        else:
            mine = pd.DataFrame(columns=["new", "share_of_old", "share_of_new"])
        carried = mine[mine["share_of_new"] > min_share].sort_values(["share_of_old", "new"], ascending=[False, True])
        entry = {"id": int(a["id"]), "planner_id": str(a["planner_id"]), "role": str(a["role"]), "zone_kind": kind,
                 "zone_code": code, "start": pd.Timestamp(a["start"]).date().isoformat(),
                 "end": None if pd.isna(a["end"]) else pd.Timestamp(a["end"]).date().isoformat(),
                 "successor_code": None, "successor_share": None, "also": [], "carry_to": [], "reason": None}
        if len(carried):
            entry["carry_to"] = [{"code": str(new["code"].iat[int(n)]), "share": round(float(s), 4)}
                                 for n, s in zip(carried["new"], carried["share_of_new"])]
            entry["successor_code"] = entry["carry_to"][0]["code"]
            entry["successor_share"] = entry["carry_to"][0]["share"]
            entry["also"] = [c["code"] for c in entry["carry_to"][1:]]
        elif len(mine):
            best = mine.sort_values("share_of_new", ascending=False).iloc[0]
            entry["reason"] = (f"no zone in force on {to_day} is mostly made of {code}'s ground; the most is "
                               f"{new['code'].iat[int(best['new'])]} with {float(best['share_of_new']):.0%} of it "
                               f"from {code} (under {min_share:.0%}): appoint by hand")
        else:
            entry["reason"] = f"no zone in force on {to_day} overlaps {code}'s ground: appoint by hand"
        out.append(entry)
    return out


def _projects_whose_lead_changes(ws: Workspace, to_day: dt.date) -> list[dict]:
    """Open projects (not yet at the last workflow step) whose lead on ``to_day`` differs from the day before."""
    projects = ws.store.projects()
    projects = projects[projects["status"] != PROJECT_STATUSES[-1]]
    if projects.empty or not len(ws.catalogue.index):
        return []
    geoms = projects.geometry.to_numpy()
    before = ws.catalogue.assign(geoms, to_day - dt.timedelta(days=1))
    after = ws.catalogue.assign(geoms, to_day)
    out = []
    for i, row in enumerate(projects.drop(columns="geometry").to_dict("records")):
        lb, la = before.lead_planner[i], after.lead_planner[i]
        zb, za = before.lead_zone[i], after.lead_zone[i]
        if lb != la or (zb >= 0) != (za >= 0):
            ref_b = before.index.zone_ref(int(zb)) if zb >= 0 else None
            ref_a = after.index.zone_ref(int(za)) if za >= 0 else None
            out.append({"id": int(row["id"]), "name": str(row["name"]), "status": str(row["status"]),
                        "lead_before": None if lb is None else str(lb), "zone_before": ref_b,
                        "lead_after": None if la is None else str(la), "zone_after": ref_a})
    return out


# -- carry-over -----------------------------------------------------------------------------------------
@dataclass
class CarryOver:
    kind: str
    to_edition: int
    to_day: dt.date
    min_share: float
    proposals: list[dict] = field(default_factory=list)
    unresolved: list[dict] = field(default_factory=list)
    applied: AppointmentImport | None = None
    ended: list[int] = field(default_factory=list)  # old appointments ended on the edition's first day

    def as_dict(self) -> dict:
        return {"kind": self.kind, "to": self.to_edition, "to_day": self.to_day.isoformat(),
                "min_share": self.min_share, "applied": self.applied is not None, "ended": self.ended,
                "created": self.applied.ids if self.applied else [],
                "already_present": [p.__dict__ for p in self.applied.present] if self.applied else [],
                "proposals": self.proposals, "unresolved": self.unresolved}

    def text(self) -> str:
        head = ("已应用 / applied" if self.applied else "建议（未写入）/ proposed (nothing written; --apply to create)")
        lines = [f"任命延续 / carry-over of {self.kind} appointments to edition {self.to_edition} ({self.to_day}): "
                 f"{head}"]
        for p in self.proposals:
            lines.append(f"  {p['planner_id']} {p['role']}: {p['from_code']} → {p['zone_code']} "
                         f"({p['share']:.0%} of {p['zone_code']} came from {p['from_code']}), from {p['start']}")
        for u in self.unresolved:
            lines.append(f"  未处理 / not carried: {u['planner_id']} {u['role']} of {u['zone_code']}: {u['reason']}")
        if self.applied:
            lines.append(self.applied.text())
            if self.ended:
                lines.append(f"  已结束 / ended on {self.to_day} with their zones: appointment(s) "
                             f"{', '.join(map(str, self.ended))}")
        return "\n".join(lines)


def carry_over(ws: Workspace, kind: str, to_edition: int, *, apply: bool = False, actor: Actor,
               min_share: float = DEFAULT_MIN_SHARE) -> CarryOver:
    """Propose (and with ``apply``, create in one audited transaction) appointments on the successors of the
    zones that edition ``to_edition`` left behind."""
    to_day = edition_start(ws, kind, to_edition)
    table = ws.store.edition_table()
    earlier = table[(table["kind"] == kind) & (table["valid_from"] < pd.Timestamp(to_day))]
    if earlier.empty:
        raise ValidationError(f"{kind} edition {to_edition} is the first one: there is nothing to carry over from")
    from_edition = int(earlier.sort_values("valid_from")["edition"].iloc[-1])
    diff = diff_editions(ws, kind, from_edition, to_edition, min_share=min_share)
    result = CarryOver(kind=kind, to_edition=int(to_edition), to_day=to_day, min_share=float(min_share))
    for a in diff.dangling_appointments:
        if not a["carry_to"]:
            result.unresolved.append(a)
            continue
        start = max(pd.Timestamp(a["start"]).date(), to_day)
        for target in a["carry_to"]:
            result.proposals.append({"appointment_id": a["id"], "planner_id": a["planner_id"], "role": a["role"],
                                     "from_code": a["zone_code"], "zone_kind": kind, "zone_code": target["code"],
                                     "share": target["share"], "start": start.isoformat(), "end": a["end"]})
    _set_aside_clashes(ws, result)
    if apply and result.proposals:
        store = ws.store
        with store.transaction():
            result.applied = add_appointments(ws, _rows(result.proposals), actor=actor,
                                              source=f"carry-over {kind} {to_edition}",
                                              what="carried-over appointments",
                                              reason=f"carried over to edition {to_edition}",
                                              command="carry-over")
            # the old appointments end with their zones: their planners now hold the successors
            for appointment_id in dict.fromkeys(p["appointment_id"] for p in result.proposals):
                current = store.appointment(appointment_id)
                if pd.Timestamp(current["start"]).date() < to_day and (
                        pd.isna(current["end"]) or pd.Timestamp(current["end"]).date() > to_day):
                    store.set_appointment_end(appointment_id, to_day, actor=actor.name)
                    result.ended.append(int(appointment_id))
        ws.changed()
    return result


def _rows(proposals: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"planner_id": p["planner_id"], "zone_kind": p["zone_kind"], "zone_code": p["zone_code"],
                          "role": p["role"], "start": p["start"], "end": p["end"]} for p in proposals],
                        columns=["planner_id", "zone_kind", "zone_code", "role", "start", "end"])


def _set_aside_clashes(ws: Workspace, result: CarryOver) -> None:
    """Proposals that would give a zone two leads are not guessed between: they move to ``unresolved``
    (two predecessors' leads onto one zone, or a lead onto a zone that has one already)."""
    leads: dict[str, set] = {}
    for p in result.proposals:
        if p["role"] == "lead":
            leads.setdefault(p["zone_code"], set()).add(p["planner_id"])
    keep = []
    for p in result.proposals:
        rivals = leads.get(p["zone_code"], set()) - {p["planner_id"]}
        if p["role"] == "lead" and rivals:
            result.unresolved.append(dict(p, reason=f"{p['zone_code']} would get more than one lead "
                                                    f"({', '.join(sorted(leads[p['zone_code']]))}) from the zones it "
                                                    f"was made of: choose one and appoint by hand"))
        else:
            keep.append(p)
    plan = check_appointments(ws.store.appointments(), _rows(keep), set(ws.store.planners()["id"].astype(str)),
                              ws.store.zone_periods())
    plan.raise_for_problems("carried-over appointments") if plan.problems else None
    refused = {row - 2: text.split(": ", 1)[1] for row, text in zip(plan.clash_rows, plan.clashes)}
    result.proposals = []
    for i, p in enumerate(keep):
        if i in refused:
            result.unresolved.append(dict(p, reason=refused[i]))
        else:
            result.proposals.append(p)


__all__ = ["list_editions", "diff_editions", "carry_over", "EditionDiff", "CarryOver", "DEFAULT_MIN_SHARE"]
