"""Turn an :class:`geo.assign.Assignment` into the answers people read: one JSON-able dict per site,
or columns added to a frame of sites. The shapes here are the ones the CLI and the API return."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from geo.assign import Assignment
from geo.kinds import KIND_LABELS, ROLE_LABELS

PUBLIC_PLANNER_FIELDS = ("id", "name", "organization", "disciplines", "public_contact")


class PlannerBook:
    """Planner records by id, showing the private contact only when asked to."""

    def __init__(self, planners: pd.DataFrame, include_private: bool = False):
        fields = PUBLIC_PLANNER_FIELDS + (("private_contact",) if include_private else ())
        self._by_id = {
            str(row["id"]): {f: _plain(row.get(f)) for f in fields}
            for row in planners.to_dict("records")
        }

    def get(self, planner_id) -> dict:
        return self._by_id.get(str(planner_id)) or {"id": str(planner_id), "name": None}


def _plain(value):
    if isinstance(value, np.ndarray):
        return [str(v) for v in value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if value is None or (np.isscalar(value) and pd.isna(value)):
        return None
    return value


def zone_ref(result: Assignment, pos: int) -> dict:
    zones = result.index.zones
    name_en = zones["name_en"].iat[pos] if "name_en" in zones else None
    return {
        "kind": str(result.index.kind[pos]),
        "code": str(result.index.code[pos]),
        "name": str(zones["name"].iat[pos]),
        "name_en": None if pd.isna(name_en) else str(name_en),
    }


def _labels(zone: dict) -> tuple[str, str]:
    """How a zone is named in a sentence: (Chinese, English)."""
    kind_zh, kind_en = KIND_LABELS.get(zone["kind"], (zone["kind"], zone["kind"]))
    return f"{kind_zh}「{zone['name']}」", f"{kind_en} {zone['name_en'] or zone['name']} ({zone['code']})"


def site_answer(result: Assignment, i: int, book: PlannerBook) -> dict:
    """The full answer for site ``i``."""
    mine = np.flatnonzero(result.pair_site == i)
    mine = mine[np.argsort(result.index.lead_rank[result.pair_zone[mine]], kind="stable")]  # most specific kind first, then by code
    zones = [dict(zone_ref(result, z), share=round(float(s), 6))
             for z, s in zip(result.pair_zone[mine], result.pair_share[mine])]
    lead = None
    if result.lead_zone[i] >= 0:
        lz = int(result.lead_zone[i])
        lead = {"planner": book.get(result.resp.lead_planner[lz]), "zone": zone_ref(result, lz)}

    ps, pz, pp, pr = result.planner_pairs()
    mine = ps == i
    planners = []
    for z, p, r in zip(pz[mine], pp[mine], pr[mine]):
        zone = zone_ref(result, int(z))
        role_zh, role_en = ROLE_LABELS.get(r, (r, r))
        zh, en = _labels(zone)
        planners.append({"planner": book.get(p), "role": str(r), "zone": zone,
                         "reason": f"{zh}的{role_zh} / {role_en} of {en}"})

    cs, cz, cp = result.consultation_pairs()
    consultations = []
    for z, p in zip(cz[cs == i], cp[cs == i]):
        zone = zone_ref(result, int(z))
        zh, en = _labels(zone)
        consultations.append({"planner": book.get(p), "zone": zone,
                              "reason": f"项目位于{zh}内，须征询其规划师 / site lies in {en}: consultation required"})

    nearest = None
    if result.nearest_zone is not None and result.nearest_zone[i] >= 0:
        nz = int(result.nearest_zone[i])
        nearest = {"zone": zone_ref(result, nz), "planner": book.get(result.resp.lead_planner[nz]),
                   "distance_m": round(float(result.nearest_distance_m[i]), 1)}
    return {
        "covered": bool(result.lead_zone[i] >= 0),
        "lead": lead,
        "planners": planners,
        "consultations": consultations,
        "zones": zones,
        "split": bool(result.split[i]),
        "nearest": nearest,
    }


def assignment_columns(result: Assignment) -> pd.DataFrame:
    """The columns ``zeren assign`` adds to every input row (lists as Python lists; JSON for CSV)."""
    n = result.n_sites
    idx = result.index
    lead_zone = result.lead_zone
    covered = lead_zone >= 0
    safe = np.maximum(lead_zone, 0)
    def text(values):  # object dtype keeps None as None (pandas would turn it into NaN in a string column)
        return pd.Series(values, dtype=object)

    out = pd.DataFrame({
        "covered": covered,
        "lead_planner_id": text(np.where(covered, result.resp.lead_planner[safe], None)),
        "lead_zone_kind": text(np.where(covered, idx.kind[safe], None)),
        "lead_zone_code": text(np.where(covered, idx.code[safe], None)),
        "split": result.split,
    })
    ps, pz, pp, pr = result.planner_pairs()
    out["planners"] = _group_lists(n, ps, [{"planner_id": p, "role": r, "zone_kind": k, "zone_code": c}
                                           for p, r, k, c in zip(pp, pr, idx.kind[pz], idx.code[pz])])
    cs, cz, cp = result.consultation_pairs()
    out["consultations"] = _group_lists(n, cs, [{"planner_id": p, "zone_kind": k, "zone_code": c}
                                                for p, k, c in zip(cp, idx.kind[cz], idx.code[cz])])
    out["zones"] = _group_lists(n, result.pair_site, [
        {"kind": k, "code": c, "share": round(float(s), 6)}
        for k, c, s in zip(idx.kind[result.pair_zone], idx.code[result.pair_zone], result.pair_share)])
    nz = result.nearest_zone if result.nearest_zone is not None else np.full(n, -1)
    has_near = nz >= 0
    out["nearest_zone_code"] = text(np.where(has_near, idx.code[np.maximum(nz, 0)], None))
    out["nearest_planner_id"] = text(np.where(has_near, result.resp.lead_planner[np.maximum(nz, 0)], None))
    dist = result.nearest_distance_m if result.nearest_distance_m is not None else np.full(n, np.nan)
    out["nearest_distance_m"] = np.round(dist, 1)
    return out


def _group_lists(n: int, site: np.ndarray, items: list) -> list:
    lists: list[list] = [[] for _ in range(n)]
    for s, item in zip(site.tolist(), items):
        lists[s].append(item)
    return lists


def lists_as_json(frame: pd.DataFrame, columns=("planners", "consultations", "zones")) -> pd.DataFrame:
    out = frame.copy()
    for c in columns:
        out[c] = [json.dumps(v, ensure_ascii=False) for v in out[c]]
    return out
