"""Turn an :class:`geo.assign.Assignment` into the answers people read: one JSON-able dict per site,
or columns added to a frame of sites. The shapes here are the ones the CLI and the API return.

``site_answer`` is on the API's hot path (``GET /lookup``): it reads the index's precomputed zone references
and the responsibility's arrays, never a DataFrame cell."""
from __future__ import annotations

import json
import re
import threading
from dataclasses import replace

import numpy as np
import pandas as pd

from zeren.geo.assign import Assignment
from zeren.geo.kinds import KIND_LABELS, ROLE_LABELS

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
    """{kind, code, name, name_en} of the zone at ``pos`` (a new dict)."""
    return result.index.zone_ref(pos)


def zone_labels(zone: dict) -> tuple[str, str]:
    """How a zone (a ``zone_ref`` dict) is named in a sentence: (Chinese, English)."""
    kind_zh, kind_en = KIND_LABELS.get(zone["kind"], (zone["kind"], zone["kind"]))
    return f"{kind_zh}「{zone['name']}」", f"{kind_en} {zone['name_en'] or zone['name']} ({zone['code']})"


def role_reason(zone: dict, role) -> str:
    """Why a planner is listed: their role on the zone."""
    role_zh, role_en = ROLE_LABELS.get(role, (role, role))
    zh, en = zone_labels(zone)
    return f"{zh}的{role_zh} / {role_en} of {en}"


def consultation_reason(zone: dict) -> str:
    """Why a planner must be consulted: the site lies in a zone whose kind obliges it."""
    zh, en = zone_labels(zone)
    return f"项目位于{zh}内，须征询其规划师 / site lies in {en}: consultation required"


def site_answer(result: Assignment, i: int, book: PlannerBook, *,
                max_suggestion_m: float | None = None) -> dict:
    """The full answer for site ``i``.

    Zones: every matched zone, the most specific kind first, then by code. Planners: every active appointment
    on a matched zone, zone by zone in the zones' order, appointments by role then planner id (so the answer
    does not depend on which index plan found the pairs).
    Consultations: the same for the zones whose kind obliges consultation. Nearest: for an uncovered site,
    the nearest zone with a lead (when the assignment computed it), as :func:`offered_nearest` offers it: not
    to a site outside every zone when it is farther than ``max_suggestion_m`` (default ``MAX_SUGGESTION_M``).
    """
    index, resp = result.index, result.resp
    refs = index.zone_refs
    mine = result.pair_site == i
    pair_zone = result.pair_zone[mine]  # in the order the pairs were found
    pair_share = result.pair_share[mine]
    by_rank = np.argsort(index.lead_rank[pair_zone], kind="stable")  # most specific kind first, then by code
    zones = [dict(refs[z], share=round(s, 6))
             for z, s in zip(pair_zone[by_rank].tolist(), pair_share[by_rank].tolist())]
    lz = int(result.lead_zone[i])
    lead = None
    if lz >= 0:
        lead = {"planner": book.get(resp.lead_planner[lz]), "zone": dict(refs[lz])}

    offsets, appt_planner, appt_role, consult = resp.appt_offsets, resp.appt_planner, resp.appt_role, resp.consult_zone
    planners, consultations = [], []
    held = [(z, int(offsets[z]), int(offsets[z + 1])) for z in pair_zone[by_rank].tolist()]
    for z, start, stop in held:
        for k in range(start, stop):
            role = appt_role[k]
            planners.append({"planner": book.get(appt_planner[k]), "role": str(role), "zone": dict(refs[z]),
                             "reason": role_reason(refs[z], role)})
    for z, start, stop in held:
        if consult[z]:
            for k in range(start, stop):
                consultations.append({"planner": book.get(appt_planner[k]), "zone": dict(refs[z]),
                                      "reason": consultation_reason(refs[z])})

    nearest = None
    offered, distance = offered_nearest(result, max_suggestion_m, sites=np.array([i]))
    if offered[0] >= 0:
        nz = int(offered[0])
        nearest = {"zone": dict(refs[nz]), "planner": book.get(resp.lead_planner[nz]),
                   "distance_m": round(float(distance[0]), 1)}
    return {
        "covered": lz >= 0,
        "lead": lead,
        "planners": planners,
        "consultations": consultations,
        "zones": zones,
        "split": bool(result.split[i]),
        "nearest": nearest,
    }


# An uncovered site outside every zone is offered the nearest zone with a lead only when that zone is at most
# this far: a planner hundreds of kilometres away is not a suggestion, it is a sign the site is elsewhere.
MAX_SUGGESTION_M = 50_000.0


def offered_nearest(result: Assignment, max_suggestion_m: float | None = None, *, sites=None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(nearest zone position, its distance in metres) per site -- of ``sites`` (positions;
    default every site) -- as every answer offers them, lookups, batches and projects alike: -1 and NaN for a
    covered site, where none was computed, and for a site outside every zone in force whose nearest zone with a
    lead is farther than ``max_suggestion_m`` (default ``MAX_SUGGESTION_M``; ``explain_uncovered`` says why).
    A site inside a zone that has no lead is offered its nearest at any distance: it is in the service area."""
    limit = MAX_SUGGESTION_M if max_suggestion_m is None else float(max_suggestion_m)
    n = result.n_sites
    sites = np.arange(n) if sites is None else np.asarray(sites, dtype=np.int64)
    if result.nearest_zone is None:
        return np.full(len(sites), -1, dtype=np.int64), np.full(len(sites), np.nan)
    zone = np.asarray(result.nearest_zone, dtype=np.int64)[sites].copy()
    distance = np.asarray(result.nearest_distance_m, dtype=float)[sites].copy()
    matched = np.bincount(result.pair_site, minlength=n)[sites] > 0 if len(result.pair_site) else np.zeros(
        len(sites), dtype=bool)
    with np.errstate(invalid="ignore"):
        far = (zone >= 0) & ~matched & ~(np.round(distance, 1) <= limit)  # (the distance as answers show it)
    zone[far] = -1
    distance[zone < 0] = np.nan
    return zone, distance


def _km(metres: float) -> str:
    return f"{metres / 1000:,.1f} km" if metres >= 1000 else f"{metres:,.0f} m"


def explain_uncovered(answer: dict, result: Assignment, i: int, metric_site, *,
                      max_suggestion_m: float = MAX_SUGGESTION_M) -> dict:
    """Add to ``answer`` (the ``site_answer`` of site ``i``) why a site is or is not covered, in place:

    * ``outside_service_area``: the site lies outside every zone in force (None when no zone is in force);
    * ``service_area_distance_m``: metres to the nearest zone in force (0 inside one, None when none is);
    * ``notice``: a bilingual sentence for an uncovered site (None when covered): outside the service area
      (and how far), no edition in force on that date (and when the editions run), or no lead here.

    Outside the service area, a nearest zone farther than ``max_suggestion_m`` is not offered (``site_answer``
    left ``nearest`` None, given the same limit; the notice says how far it is). ``metric_site``: the site in
    the index's metric CRS.
    """
    resp, index = result.resp, result.index
    notice = None
    if answer["zones"]:
        outside, distance = False, 0.0
        if not answer["covered"]:
            notice = ("此处的区域尚无责任规划师 / no lead planner is appointed to the zones here"
                      + ("" if answer["nearest"] else " (nor to any zone in force)"))
    elif not resp.zone_active.any():
        outside, distance = None, None
        span = index.edition_span()
        day = resp.as_of.date().isoformat()
        if span is None:
            notice = "尚未导入任何区域 / no zones have been imported yet"
        else:
            first, last = span
            if first is not None and resp.as_of.date() < first:
                notice = (f"该日期无生效的区划版本，最早的版本始于 {first} / no boundary edition is in force on "
                          f"{day}; the earliest starts {first}")
            else:
                notice = (f"该日期无生效的区划版本（版本有效期 {first} 至 {last or '今'}）/ no boundary edition is "
                          f"in force on {day}; the stored editions run from {first} to {last or 'open'}")
    else:
        distance = float(resp.service_area_distance_m(np.asarray([metric_site], dtype=object))[0])
        outside = True
        notice = f"此处在服务范围之外，距最近的区域 {_km(distance)} / outside the service area: {_km(distance)} from the nearest zone"
        if answer["nearest"] is None and result.nearest_zone is not None and result.nearest_zone[i] >= 0:
            far = round(float(result.nearest_distance_m[i]), 1)  # withheld by offered_nearest: say why
            notice += (f"；最近的有规划师的区域远在 {_km(far)}，不作推荐 / the nearest zone with a "
                       f"planner is {_km(far)} away, beyond {_km(max_suggestion_m)}: none is suggested")
        distance = round(distance, 1)
    answer["outside_service_area"] = outside
    answer["service_area_distance_m"] = distance
    answer["notice"] = notice
    return answer


ASSIGNMENT_COLUMNS = ("covered", "lead_planner_id", "lead_zone_kind", "lead_zone_code", "split", "planners",
                      "consultations", "zones", "nearest_zone_code", "nearest_planner_id", "nearest_distance_m")


def assignment_columns(result: Assignment, *, lists: str = "python") -> pd.DataFrame:
    """The columns ``zeren assign`` adds to every input row. The list columns (``planners``, ``consultations``,
    ``zones``) hold Python lists of dicts (``lists="python"``) or the same lists as JSON text (``lists="json"``,
    what every file format stores), built by vectorised string operations over the pair arrays: no per-row
    Python, whatever the number of sites."""
    if lists not in ("python", "json"):
        raise ValueError(f"lists={lists!r}: 'python' or 'json'")
    n = result.n_sites
    idx = result.index
    lead_zone = result.lead_zone

    def text(values):  # object dtype keeps None as None (pandas would turn it into NaN in a string column)
        return pd.Series(values, dtype=object)

    out = pd.DataFrame({
        "covered": lead_zone >= 0,
        "lead_planner_id": text(_at(result.resp.lead_planner, lead_zone)),
        "lead_zone_kind": text(_at(idx.kind, lead_zone)),
        "lead_zone_code": text(_at(idx.code, lead_zone)),
        "split": result.split,
    })
    if lists == "json":
        for column, values in _json_list_columns(result).items():
            out[column] = pd.Series(values, dtype=object)
    else:
        ps, pz, pp, pr = result.planner_pairs()
        out["planners"] = _group_lists(n, ps, idx.lead_rank[pz], [
            {"planner_id": p, "role": r, "zone_kind": k, "zone_code": c}
            for p, r, k, c in zip(pp, pr, idx.kind[pz], idx.code[pz])])
        cs, cz, cp = result.consultation_pairs()
        out["consultations"] = _group_lists(n, cs, idx.lead_rank[cz], [
            {"planner_id": p, "zone_kind": k, "zone_code": c} for p, k, c in zip(cp, idx.kind[cz], idx.code[cz])])
        out["zones"] = _group_lists(n, result.pair_site, idx.lead_rank[result.pair_zone], [
            {"kind": k, "code": c, "share": round(float(s), 6)}
            for k, c, s in zip(idx.kind[result.pair_zone], idx.code[result.pair_zone], result.pair_share)])
    nz, dist = offered_nearest(result)
    out["nearest_zone_code"] = text(_at(idx.code, nz))
    out["nearest_planner_id"] = text(_at(result.resp.lead_planner, nz))
    out["nearest_distance_m"] = np.round(dist, 1)
    return out


def json_literals(values) -> np.ndarray:
    """JSON literals of a sequence of texts (None/NaN -> ``null``), as ``json.dumps(v, ensure_ascii=False)``
    writes them; each distinct value is encoded once."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(values, dtype=object), dtype=object), use_na_sentinel=True)
    # json.dumps(ensure_ascii=False) escapes exactly '"', '\\' and U+0000..U+001F: any other text is its literal
    # between quotes (five times as fast as calling it on each of the 280,000 codes of a 30,000-zone batch)
    encoded = np.array(['"' + u + '"' if _ESCAPED(u) is None else json.dumps(u, ensure_ascii=False)
                        for u in map(str, uniques)] + ["null"], dtype=object)
    return encoded[codes]  # code -1 (missing) takes the trailing "null"


_ESCAPED = re.compile(r'["\\\x00-\x1f]').search


def _number_literals(values: np.ndarray) -> np.ndarray:
    """JSON numbers (Python's shortest repr, as json.dumps) of floats; each distinct value encoded once."""
    uniques, inverse = np.unique(values, return_inverse=True)
    return np.array([repr(float(u)) for u in uniques], dtype=object)[inverse.ravel()]


_MAX_GROUP_ZONES = 8  # sites matching more zones than this are encoded one by one (polygons across many zones)


def _zone_groups(result: Assignment) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """(group per site, one site per group, key per group): sites that match the same zones share a group, so their
    ``planners`` and ``consultations`` lists are the same text (and their ``zones`` too when every share is 1,
    as for points). A million points over a city fall into a few hundred groups: each list is encoded once per
    group and gathered. The key of a site is its zones in lead-rank order, packed exactly into one integer
    (or compared as rows when they do not fit: the keys are None then). None when some site matches more
    than ``_MAX_GROUP_ZONES``."""
    n, site, zone = result.n_sites, result.pair_site, result.pair_zone
    counts = np.bincount(site, minlength=n) if len(site) else np.zeros(n, dtype=np.int64)
    width = int(counts.max()) if n else 0
    if width > _MAX_GROUP_ZONES:
        return None
    order = np.lexsort((result.index.lead_rank[zone], site))
    s, z = site[order], zone[order]
    within = np.arange(len(s)) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = np.zeros((n, max(width, 1)), dtype=np.int64)  # zone + 1 per column, 0 where none
    rows[s, within] = z + 1
    base = len(result.index) + 1
    if base ** rows.shape[1] < 2 ** 63:
        key = rows[:, 0].copy()
        for j in range(1, rows.shape[1]):
            key *= base
            key += rows[:, j]
        codes, _ = pd.factorize(key)  # numbered in order of first appearance
        first = np.flatnonzero(codes > np.r_[-1, np.maximum.accumulate(codes)[:-1]])
        return codes, first, key[first]
    _, first, codes = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return codes.ravel(), first, None


def _json_list_columns(result: Assignment) -> dict[str, np.ndarray]:
    """``planners``, ``consultations`` and ``zones`` as JSON text per site: encoded once per group of sites
    that match the same zones (``_zone_groups``), then gathered; the same text as encoding every site."""
    return {column: texts if codes is None else texts[codes]
            for column, (texts, codes) in _json_list_parts(result).items()}


def assignment_arrays(result: Assignment) -> dict:
    """The columns of :func:`assignment_columns` (``lists="json"``) as Arrow arrays, for writers that take
    Arrow tables: the same values (null for None and NaN), gathered in C from arrays per zone and per group
    of sites, so no Python object is made per site. The list columns may be dictionary-encoded (one text per
    group of sites matching the same zones); ``cast(pa.string())`` gives plain text."""
    import pyarrow as pa

    idx, resp = result.index, result.resp
    lead_zone = result.lead_zone
    nz, dist = offered_nearest(result)
    lists = {}
    for column, (texts, codes) in _json_list_parts(result).items():  # a group's text once: dictionary-encoded
        texts = pa.array(texts, type=pa.string())
        lists[column] = texts if codes is None else pa.DictionaryArray.from_arrays(
            pa.array(np.asarray(codes, dtype=np.int32)), texts)
    return {
        "covered": pa.array(lead_zone >= 0),
        "lead_planner_id": _take_text(resp.lead_planner, lead_zone),
        "lead_zone_kind": _take_text(idx.kind, lead_zone),
        "lead_zone_code": _take_text(idx.code, lead_zone),
        "split": pa.array(np.asarray(result.split, dtype=bool)),
        **lists,
        "nearest_zone_code": _take_text(idx.code, nz),
        "nearest_planner_id": _take_text(resp.lead_planner, nz),
        "nearest_distance_m": pa.array(np.round(dist, 1), type=pa.float64(), from_pandas=True),
    }


def _take_text(values: np.ndarray, positions: np.ndarray):
    """``values[positions]`` as an Arrow text array, null where the position is -1 (or the value None)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    positions = np.asarray(positions, dtype=np.int64)
    if not len(values) or not (positions >= 0).any():
        return pa.nulls(len(positions), type=pa.string())
    table = pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)
    return pc.take(table, pa.array(positions, mask=positions < 0))


def _json_list_parts(result: Assignment) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per list column (texts, codes): the JSON text of site i is ``texts[codes[i]]``, or ``texts[i]`` when
    codes is None (sites encoded one by one)."""
    grouped = _zone_groups(result) if result.n_sites else None
    if grouped is None:
        return {column: (texts, None) for column, texts in _json_lists(result).items()}
    codes, first, keys = grouped
    whole = bool(np.all(np.asarray(result.pair_share) == 1.0))  # (points): a group's zones are one text too
    memo = _GroupTexts.of(result.resp) if whole and keys is not None else None
    known, kept = memo.find(keys) if memo is not None else (np.full(len(first), -1), None)
    new = np.flatnonzero(known < 0)
    keep = np.isin(result.pair_site, first[new])  # the pairs of each new group's first site, renumbered
    group_of_site = np.full(result.n_sites, -1, dtype=np.int64)
    group_of_site[first[new]] = np.arange(len(new))
    one = replace(result, n_sites=len(new), pair_site=group_of_site[result.pair_site[keep]],
                  pair_zone=result.pair_zone[keep], pair_share=result.pair_share[keep])
    lists = _json_lists(one)
    if memo is not None:
        memo.add(keys[new], lists)
        lists = _gather_texts(known, kept, new, lists)
    out = {column: (lists[column], codes) for column in ("planners", "consultations")}
    if whole:
        out["zones"] = (lists["zones"], codes)
    else:  # shares differ between sites of one group: the zones column is encoded site by site
        out["zones"] = (_json_lists(result, columns=("zones",))["zones"], None)
    return out


class _GroupTexts:
    """The list texts of the groups of zones already encoded on one date, kept in the Responsibility's memo:
    the chunks of a large file (30,000 groups in every chunk of 200,000 points against 30,000 zones) and the
    requests of one day meet the same groups again, and encode only the new ones. The keys are
    ``_zone_groups``' packed zone lists (zone positions in this index, in lead-rank order), so a text is
    found only for exactly the same zones, on the same date's appointments. Bounded: once ``MAX_CHARS`` of
    text are kept nothing more is (the rest is encoded as before): 30,000 groups of a 30,000-zone city hold
    8.5M characters, and a server keeps the responsibilities of up to 32 dates."""

    MAX_CHARS = 16_000_000
    COLUMNS = ("planners", "consultations", "zones")

    def __init__(self):
        self.lock = threading.Lock()
        self.keys = np.zeros(0, dtype=np.int64)  # sorted
        self.texts = {c: np.zeros(0, dtype=object) for c in self.COLUMNS}
        self.chars = 0

    @classmethod
    def of(cls, resp) -> "_GroupTexts":
        with _MEMO_LOCK:
            return resp.memo.setdefault("group_texts", cls())

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, dict]:
        """(the position of each key's texts, -1 where none is kept; the texts those positions index)."""
        with self.lock:  # the keys and their texts as one snapshot: add() replaces both together
            kept, texts = self.keys, self.texts
        at = np.searchsorted(kept, keys)
        found = at < len(kept)
        found[found] = kept[at[found]] == keys[found]
        return np.where(found, at, -1), texts

    def add(self, keys: np.ndarray, lists: dict) -> None:
        """Keep the texts of new groups (``lists``: per column, aligned with ``keys``)."""
        with self.lock:
            fresh = ~np.isin(keys, self.keys)  # (another thread may have kept some meanwhile)
            if not fresh.any() or self.chars >= self.MAX_CHARS:
                return
            chars = sum(sum(map(len, np.asarray(lists[c], dtype=object)[fresh])) for c in self.COLUMNS)
            if self.chars + chars > self.MAX_CHARS:
                return
            self.chars += chars
            merged = np.concatenate([self.keys, keys[fresh]])
            order = np.argsort(merged, kind="stable")
            # replaced, not changed in place: a snapshot another thread holds stays whole
            self.texts = {c: np.concatenate([self.texts[c], np.asarray(lists[c], dtype=object)[fresh]])[order]
                          for c in self.COLUMNS}
            self.keys = merged[order]


def _gather_texts(known: np.ndarray, texts: dict, new: np.ndarray, lists: dict) -> dict:
    """Per column, the texts of every group: the kept ones (``texts`` at ``known``), the new ones from
    ``lists`` (aligned with the positions ``new``)."""
    out = {}
    for column, kept in texts.items():
        values = np.empty(len(known), dtype=object)
        old = np.flatnonzero(known >= 0)
        values[old] = kept[known[old]]
        values[new] = lists[column]
        out[column] = values
    return out


_MEMO_LOCK = threading.Lock()


def _json_lists(result: Assignment, columns=("planners", "consultations", "zones")) -> dict[str, np.ndarray]:
    """The list columns of every site of ``result``: items are concatenations of pre-encoded pieces (one
    encoding per distinct zone / appointment), then joined per site in one pass."""
    n, idx, resp = result.n_sites, result.index, result.resp
    out = {}
    for column, consult in (("planners", False), ("consultations", True)):
        if column not in columns:
            continue
        sites, zones, slot = result.planner_slots(consultations=consult)
        used, inverse = np.unique(slot, return_inverse=True)
        zone_of = zones[np.unique(inverse.ravel(), return_index=True)[1]] if len(slot) else zones
        head = '{"planner_id": ' + json_literals(resp.appt_planner[used])
        if not consult:
            head = head + ', "role": ' + json_literals(resp.appt_role[used])
        item = head + ', "zone_kind": ' + json_literals(idx.kind[zone_of]) + ', "zone_code": ' + \
            json_literals(idx.code[zone_of]) + "}"
        out[column] = _join_per_site(n, sites, idx.lead_rank[zones], item[inverse.ravel()] if len(slot) else item)
    if "zones" not in columns:
        return out
    zones = result.pair_zone
    used, inverse = np.unique(zones, return_inverse=True)
    head = ('{"kind": ' + json_literals(idx.kind[used]) + ', "code": ' + json_literals(idx.code[used]) +
            ', "share": ')[inverse.ravel()] if len(zones) else np.array([], dtype=object)
    shares = _number_literals(np.round(np.asarray(result.pair_share, dtype=float), 6))
    out["zones"] = _join_per_site(n, result.pair_site, idx.lead_rank[zones], head, shares, "}")
    return out


def _join_per_site(n: int, site: np.ndarray, rank: np.ndarray, *pieces) -> np.ndarray:
    """``[item, item, ...]`` per site (``[]`` where none); each item is the concatenation of ``pieces`` (arrays
    aligned with ``site``, or constant texts). Items come in the order of ``site_answer``: zone by zone, most
    specific kind first (stable within), as :func:`_group_lists` orders them. One join and one split over the
    whole batch (JSON text never holds a raw NUL, so NUL can mark where one site's list ends)."""
    out = np.full(n, "[]", dtype=object)
    m = len(site)
    if m == 0:
        return out
    order = np.lexsort((rank, site))
    site = site[order]
    first = np.flatnonzero(np.r_[True, site[1:] != site[:-1]])
    k = len(pieces) + 1
    flat = np.empty(m * k, dtype=object)
    for j, piece in enumerate(pieces):
        flat[j::k] = np.asarray(piece, dtype=object)[order] if not isinstance(piece, str) else piece
    sep = np.full(m, ", ", dtype=object)
    sep[first[1:] - 1] = "]\x00["
    sep[-1] = "]"
    flat[k - 1::k] = sep
    out[site[first]] = ("[" + "".join(flat.tolist())).split("\x00")
    return out


def _at(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``values[positions]`` as objects, None where the position is -1 (works when ``values`` is empty)."""
    out = np.full(len(positions), None, dtype=object)
    ok = positions >= 0
    out[ok] = values[positions[ok]]
    return out


def _group_lists(n: int, site: np.ndarray, rank: np.ndarray, items: list) -> list:
    """Items per site, in the order of site_answer: zone by zone, most specific kind first (stable within)."""
    lists: list[list] = [[] for _ in range(n)]
    for j in np.lexsort((rank, site)).tolist():
        lists[int(site[j])].append(items[j])
    return lists


def json_members(columns: pd.DataFrame, names=ASSIGNMENT_COLUMNS) -> np.ndarray:
    """Per row of ``columns`` (what :func:`assignment_columns` gives with ``lists="json"``), the JSON object
    members ``"covered":true,"lead_planner_id":"P001",...`` of ``names``, in that order, as text: what
    ``POST /assign`` splices into each feature's properties. Vectorised like the list columns: each distinct
    value is encoded once, then the pieces are concatenated column by column."""
    n = len(columns)
    out = np.full(n, "", dtype=object)
    for j, name in enumerate(names):
        values = columns[name].to_numpy()
        if name in ("planners", "consultations", "zones"):
            literal = np.asarray(values, dtype=object)  # already JSON text
        elif values.dtype == bool:
            literal = np.where(values, "true", "false").astype(object)
        elif name == "nearest_distance_m":
            number = np.asarray(values, dtype=float)
            literal = np.full(n, "null", dtype=object)
            finite = np.isfinite(number)
            if finite.any():
                literal[finite] = _number_literals(number[finite])
        else:
            literal = json_literals(values)
        out = out + (("," if j else "") + json.dumps(name) + ":") + literal
    return out
