"""Zones in force and one zone in context: its parents, children, the overlays across it and its
appointments (``GET /zones``, ``GET /zones/{kind}/{code}``). Served from the loaded index: no disk reads."""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from zeren.api.service.workspace import Workspace
from zeren.geo.hierarchy import PARENT_KIND
from zeren.geo.kinds import ALL_KINDS, BASE_KINDS
from zeren.geo.validity import active_mask, as_timestamp
from zeren.layers.errors import NotFoundError


def sorted_positions(index, mask: np.ndarray) -> np.ndarray:
    """Positions where ``mask``, in a stable order: kind (as in geo.kinds.ALL_KINDS), code, edition."""
    pos = np.flatnonzero(mask)
    if not len(pos):
        return pos
    kind_order = {k: i for i, k in enumerate(ALL_KINDS)}
    kinds = np.array([kind_order.get(k, len(ALL_KINDS)) for k in index.kind[pos]])
    editions = index.zones["edition"].to_numpy()[pos].astype(np.int64)
    order = np.lexsort((editions, index.code[pos].astype(str), kinds))
    return pos[order]


def positions_in_force(index, as_of, kind=None, code=None, bbox=None) -> np.ndarray:
    mask = index.active(as_of)
    if kind is not None:
        mask &= index.kind == kind
    if code is not None:
        mask &= index.code == code
    if bbox is not None:
        hits = index.tree.query(shapely.box(*bbox), predicate="intersects")
        inside = np.zeros(len(index), dtype=bool)
        inside[hits] = True
        mask &= inside
    return sorted_positions(index, mask)


def find_zone(index, kind: str, code: str, as_of) -> tuple[int, bool]:
    """(position, in force on as_of) of the edition in force, else of the latest edition; 404 otherwise."""
    if kind not in ALL_KINDS:
        raise NotFoundError(f"no zone kind {kind[:40]!r}; kinds: {', '.join(ALL_KINDS)}")
    positions = index.positions(kind, code)
    if not len(positions):
        raise NotFoundError(f"no {kind} with code {code[:100]!r}")
    active = index.active(as_of)[positions]
    if active.any():
        return int(positions[np.flatnonzero(active)[0]]), True
    editions = index.zones["edition"].to_numpy()[positions]
    return int(positions[int(np.argmax(editions))]), False


def ancestors(index, pos: int, active: np.ndarray) -> list[dict]:
    out, kind, seen = [], str(index.kind[pos]), set()
    parent_code = index.zones["parent_code"].iat[pos]
    while kind in PARENT_KIND and parent_code is not None and parent_code == parent_code and len(out) < 8:
        kind = PARENT_KIND[kind]
        cands = index.positions(kind, str(parent_code))
        if not len(cands) or (kind, str(parent_code)) in seen:
            break
        seen.add((kind, str(parent_code)))
        in_force = cands[active[cands]]
        p = int(in_force[0] if len(in_force) else cands[-1])
        out.append(index.zone_ref(p))
        parent_code = index.zones["parent_code"].iat[p]
    return out


def children(index, pos: int, active: np.ndarray) -> list[dict]:
    kind, code = str(index.kind[pos]), str(index.code[pos])
    child_kinds = [k for k, parent in PARENT_KIND.items() if parent == kind]
    if not child_kinds:
        return []
    parent = index.zones["parent_code"].to_numpy(dtype=object)
    mask = active & np.isin(index.kind, child_kinds) & (parent == code)
    return [index.zone_ref(int(p)) for p in sorted_positions(index, mask)]


def overlays(index, pos: int, active: np.ndarray) -> list[dict]:
    """For a base zone: overlays and life circles across it; for the others: the base zones they lie across."""
    geom = index.zones.geometry.iat[pos]  # the frame's unprepared copy: safe from any thread
    hits = index.tree.query(geom, predicate="intersects")
    hits = hits[active[hits] & (hits != pos)]
    base = np.isin(index.kind[hits], BASE_KINDS)
    hits = hits[~base] if index.kind[pos] in BASE_KINDS else hits[base]
    if len(hits):
        hits = hits[~shapely.touches(index.zones.geometry.to_numpy()[hits], geom)]
    mask = np.zeros(len(index), dtype=bool)
    mask[hits] = True
    return [index.zone_ref(int(p)) for p in sorted_positions(index, mask)]


def zone_appointments(catalogue, kind: str, code: str, as_of, history: bool) -> list[dict]:
    appts = catalogue.appointments
    mask = (appts["zone_kind"] == kind) & (appts["zone_code"].astype(str) == code)
    if not history:
        mask &= active_mask(appts["start"], appts["end"], as_of)
    rows = appts.loc[mask].sort_values(["role", "start", "id"]).to_dict("records")
    return rows


def zone_detail(ws: Workspace, kind: str, code: str, as_of=None) -> tuple[int, dict]:
    """(index position, context) of the edition of one zone in force on ``as_of`` (else its latest edition,
    ``in_force`` False): editions, parents, children, overlays and the appointments in force (records)."""
    catalogue = ws.catalogue
    index = catalogue.index
    pos, in_force = find_zone(index, kind, code, as_of)
    active = index.active(as_of)
    versions = index.zones.iloc[index.positions(kind, code)].sort_values("valid_from")
    return pos, {
        "in_force": in_force,
        "editions": sorted(int(e) for e in versions["edition"]),
        "history": [{"edition": int(e), "valid_from": pd.Timestamp(f).date().isoformat(),
                     "valid_to": None if pd.isna(t) else pd.Timestamp(t).date().isoformat()}
                    for e, f, t in zip(versions["edition"], versions["valid_from"], versions["valid_to"])],
        "as_of": as_timestamp(as_of).date().isoformat(),
        "parents": ancestors(index, pos, active),
        "children": children(index, pos, active),
        "overlays": overlays(index, pos, active),
        "appointments": zone_appointments(catalogue, kind, code, as_of, False),
    }


def zone_lead(ws: Workspace, kind: str, code: str, as_of=None) -> tuple[int, str | None]:
    """(position, lead planner id or None) of the zone's edition in force on ``as_of``."""
    catalogue = ws.catalogue
    index = catalogue.index
    pos, in_force = find_zone(index, kind, code, as_of)
    resp = catalogue.responsibility(as_of)
    lead = resp.lead_planner[pos] if in_force and len(resp.lead_planner) == len(index) else None
    return pos, lead
