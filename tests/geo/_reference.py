"""The answer of one site as it was built before the hot path moved into geo (commit c52bdf0): zone references
read from the zones frame cell by cell, planner and consultation pairs expanded for every site, and the nearest
zone with a lead found through a tree built for the call. Slow and plain on purpose: tests compare
``geo.answer.site_answer`` with it, so the fast path can never drift from the rule."""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from zeren.geo.assign import NEAREST_TIE_M, NO_LEAD
from zeren.geo.crs import project_geometries
from zeren.geo.kinds import KIND_LABELS, ROLE_LABELS


def zone_ref(index, pos: int) -> dict:
    zones = index.zones
    name_en = zones["name_en"].iat[pos] if "name_en" in zones else None
    return {
        "kind": str(index.kind[pos]),
        "code": str(index.code[pos]),
        "name": str(zones["name"].iat[pos]),
        "name_en": None if pd.isna(name_en) else str(name_en),
    }


def labels(zone: dict) -> tuple[str, str]:
    kind_zh, kind_en = KIND_LABELS.get(zone["kind"], (zone["kind"], zone["kind"]))
    return f"{kind_zh}「{zone['name']}」", f"{kind_en} {zone['name_en'] or zone['name']} ({zone['code']})"


def nearest(index, resp, sites, lead_zone):
    """(zone position, distance in metres) per site; -1 / NaN for covered sites."""
    n = len(sites)
    out = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.nan)
    todo = np.flatnonzero(lead_zone < 0)
    candidates = np.flatnonzero(resp.lead_key != NO_LEAD)
    if not len(todo) or not len(candidates):
        return out, distance
    # brute force, one site at a time: every led zone's distance, then the rule read plainly
    metric_geoms = project_geometries(index.geoms[candidates], "EPSG:4326", index.metric_crs)
    metric_sites = project_geometries(sites[todo], "EPSG:4326", index.metric_crs)
    for site_pos, site in zip(todo, metric_sites):
        d = shapely.distance(metric_geoms, site)
        tied = np.flatnonzero(d <= d.min() + NEAREST_TIE_M)
        best = tied[np.argmin(index.lead_rank[candidates[tied]])]
        out[site_pos] = candidates[best]
        distance[site_pos] = d[best]
    return out, distance


def site_answer(result, i: int, book, sites) -> dict:
    """The answer for site ``i`` of ``result`` (computed from ``sites``), nearest zone recomputed."""
    index = result.index
    mine = np.flatnonzero(result.pair_site == i)
    mine = mine[np.argsort(index.lead_rank[result.pair_zone[mine]], kind="stable")]
    zones = [dict(zone_ref(index, z), share=round(float(s), 6))
             for z, s in zip(result.pair_zone[mine], result.pair_share[mine])]
    lead = None
    if result.lead_zone[i] >= 0:
        lz = int(result.lead_zone[i])
        lead = {"planner": book.get(result.resp.lead_planner[lz]), "zone": zone_ref(index, lz)}
    ps, pz, pp, pr = result.planner_pairs()
    planners = []
    o = np.argsort(index.lead_rank[pz[ps == i]], kind="stable")  # zone by zone, most specific kind first
    for z, p, r in zip(pz[ps == i][o], pp[ps == i][o], pr[ps == i][o]):
        zone = zone_ref(index, int(z))
        role_zh, role_en = ROLE_LABELS.get(r, (r, r))
        zh, en = labels(zone)
        planners.append({"planner": book.get(p), "role": str(r), "zone": zone,
                         "reason": f"{zh}的{role_zh} / {role_en} of {en}"})
    cs, cz, cp = result.consultation_pairs()
    consultations = []
    o = np.argsort(index.lead_rank[cz[cs == i]], kind="stable")
    for z, p in zip(cz[cs == i][o], cp[cs == i][o]):
        zone = zone_ref(index, int(z))
        zh, en = labels(zone)
        consultations.append({"planner": book.get(p), "zone": zone,
                              "reason": f"项目位于{zh}内，须征询其规划师 / site lies in {en}: consultation required"})
    near = None
    nz, nd = nearest(index, result.resp, np.asarray(sites, dtype=object), result.lead_zone)
    if nz[i] >= 0:
        near = {"zone": zone_ref(index, int(nz[i])), "planner": book.get(result.resp.lead_planner[nz[i]]),
                "distance_m": round(float(nd[i]), 1)}
    return {"covered": bool(result.lead_zone[i] >= 0), "lead": lead, "planners": planners,
            "consultations": consultations, "zones": zones, "split": bool(result.split[i]), "nearest": near}
