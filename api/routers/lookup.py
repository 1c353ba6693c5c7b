"""``GET /lookup``: who is responsible for one point. The hot path.

It is ``async`` and does no blocking I/O: the catalogue is in memory. The matching is geo's own
(:func:`geo.assign.assign` on one point). What is done here is prepared once per zone index instead of per
request: the zone references and reasons (``geo.answer.site_answer`` builds them per call, most of a lookup's
cost) and the tree of zones with a lead that the nearest-zone search of an uncovered point queries (geo's
``_nearest`` builds it per call). The answer is the same dict as ``Catalogue.lookup`` (tests/api/test_lookup.py
compares them on many points, covered and not).
"""
from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
import numpy as np
import shapely
from fastapi import APIRouter, HTTPException, Request, Response
from pyproj import Transformer

from api.deps import WWW_AUTHENTICATE, parse_as_of, parse_input_crs
from api.models import DEMO_LAT, DEMO_LON, LookupAnswer, errors
from layers.errors import ValidationError
from geo.answer import _labels
from geo.assign import NEAREST_TIE_M, NO_LEAD, assign
from geo.crs import _to_wgs84_transformer
from geo.kinds import ROLE_LABELS
from geo.validity import as_timestamp
from layers.catalogue import Site

router = APIRouter(tags=["lookup"])


class _Prepared:
    """Per zone index: zone references and reason texts."""

    def __init__(self, index):
        self.index = index
        zones = index.zones
        name_en = zones["name_en"] if "name_en" in zones else [None] * len(index)
        self.refs = [{"kind": str(k), "code": str(c), "name": str(n), "name_en": None if _missing(e) else str(e)}
                     for k, c, n, e in zip(index.kind, index.code, zones["name"], name_en)]
        self._reasons: dict = {}
        self.nearest = _NearestTrees(index)

    def role_reason(self, pos: int, role: str) -> str:
        key = (pos, role)
        text = self._reasons.get(key)
        if text is None:
            role_zh, role_en = ROLE_LABELS.get(role, (role, role))
            zh, en = _labels(self.refs[pos])
            text = self._reasons[key] = f"{zh}的{role_zh} / {role_en} of {en}"
        return text

    def consult_reason(self, pos: int) -> str:
        key = (pos, None)
        text = self._reasons.get(key)
        if text is None:
            zh, en = _labels(self.refs[pos])
            text = self._reasons[key] = f"项目位于{zh}内，须征询其规划师 / site lies in {en}: consultation required"
        return text


_IDENTITY: dict[str, bool] = {}


def _plain_site(index, x: float, y: float, crs) -> Site | None:
    """The site without conversion when ``crs`` is lon/lat on WGS84/CGCS2000 and the point is plainly valid
    (finite, in range, not a swapped pair); None sends the point through ``Catalogue.site``, which converts
    it or raises the error that explains what is wrong."""
    identity = _IDENTITY.get(crs.label)
    if identity is None:
        identity = _IDENTITY[crs.label] = crs.shift is None and _to_wgs84_transformer(crs.crs.to_wkt()) is None
    if not identity or not (math.isfinite(x) and math.isfinite(y) and abs(x) <= 180 and abs(y) <= 90):
        return None
    if index.bounds is not None:
        minx, miny, maxx, maxy = index.bounds
        inside = minx <= x <= maxx and miny <= y <= maxy
        if not inside and minx <= y <= maxx and miny <= x <= maxy:
            return None  # looks swapped: let Catalogue.site say so
    return Site(float(x), float(y), (x, y), crs.label)


class _NearestTrees:
    """geo.assign._nearest for one point, with its tree of the zones that have a lead built once per
    Responsibility (geo builds it per call: milliseconds at 30,000 zones, on every uncovered lookup).
    The rule is geo's: the closest zone with a lead, zones within NEAREST_TIE_M of it tie, and the lowest
    lead rank (most specific kind, then code) wins; tests/api/test_lookup.py checks the answers agree."""

    def __init__(self, index):
        self.index = index
        self.transformer = (Transformer.from_crs("EPSG:4326", index.metric_crs, always_xy=True)
                            if index.metric_crs is not None else None)
        self.trees: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def tree(self, resp):
        with self.lock:
            entry = self.trees.get(id(resp))
            if entry is not None and entry[0] is resp:
                self.trees.move_to_end(id(resp))
                return entry
        candidates = np.flatnonzero(resp.lead_key != NO_LEAD)
        tree = shapely.STRtree(self.index.metric_geoms[candidates]) if len(candidates) else None
        entry = (resp, candidates, tree)
        with self.lock:
            self.trees[id(resp)] = entry
            while len(self.trees) > 8:
                self.trees.popitem(last=False)
        return entry

    def __call__(self, resp, lon: float, lat: float) -> tuple[int, float]:
        _, candidates, tree = self.tree(resp)
        if tree is None or self.transformer is None:
            return -1, float("nan")
        site = shapely.Point(*self.transformer.transform(lon, lat))
        _, d = tree.query_nearest(site, return_distance=True)
        hits = tree.query(site, predicate="dwithin", distance=float(np.min(d)) + NEAREST_TIE_M)
        best = candidates[hits[np.argmin(self.index.lead_rank[candidates[hits]])]]
        return int(best), float(shapely.distance(site, self.index.metric_geoms[best]))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


_PREPARED: dict = {}
_PREPARED_LOCK = threading.Lock()


def prepared(index) -> _Prepared:
    entry = _PREPARED.get(id(index))
    if entry is None or entry.index is not index:
        with _PREPARED_LOCK:
            entry = _PREPARED.get(id(index))
            if entry is None or entry.index is not index:
                entry = _Prepared(index)
                _PREPARED.clear()  # one index at a time per process: the catalogue's current one
                _PREPARED[id(index)] = entry
    return entry


def warm(catalogue) -> None:
    """Prepare the current index and today's nearest-zone tree now (at start-up, after a zone reload), so
    the first lookups do not pay for it."""
    prepared(catalogue.index).nearest.tree(catalogue.responsibility(None))


def answer(catalogue, x: float, y: float, crs="wgs84", as_of=None, *, include_private: bool = False) -> dict:
    """The same dict as ``catalogue.lookup(...)``, built faster."""
    crs = parse_input_crs(crs) if isinstance(crs, str) else crs
    index = catalogue.index
    site = _plain_site(index, x, y, crs) or catalogue.site(x, y, crs)
    resp = catalogue.responsibility(as_of)
    if len(resp.zone_active) != len(index):  # the zones were reloaded under us: compute for this index
        resp = index.responsibility(catalogue.appointments, as_timestamp(as_of), catalogue.consultation_kinds)
    prep = prepared(index)
    book = catalogue.private_book if include_private else catalogue.public_book
    points = np.array([shapely.Point(site.lon, site.lat)], dtype=object)
    result = assign(index, resp, points, with_nearest=False)
    refs = prep.refs
    pair_zone = result.pair_zone  # one site: every pair is ours
    by_rank = np.argsort(index.lead_rank[pair_zone], kind="stable")  # most specific kind first, then code
    zones = [dict(refs[z], share=round(float(s), 6)) for z, s in zip(pair_zone[by_rank].tolist(),
                                                                       result.pair_share[by_rank].tolist())]
    lead_zone = int(result.lead_zone[0])
    lead = None
    if lead_zone >= 0:
        lead = {"planner": book.get(resp.lead_planner[lead_zone]), "zone": refs[lead_zone]}
    planners, consultations = [], []
    off = resp.appt_offsets
    for z in pair_zone.tolist():
        for k in range(off[z], off[z + 1]):
            role = str(resp.appt_role[k])
            planners.append({"planner": book.get(resp.appt_planner[k]), "role": role, "zone": refs[z],
                             "reason": prep.role_reason(z, role)})
    for z in pair_zone.tolist():
        if resp.consult_zone[z]:
            for k in range(off[z], off[z + 1]):
                consultations.append({"planner": book.get(resp.appt_planner[k]), "zone": refs[z],
                                      "reason": prep.consult_reason(z)})
    nearest = None
    if lead_zone < 0:  # uncovered: the nearest zone with a lead
        nz, distance = prep.nearest(resp, site.lon, site.lat)
        if nz >= 0:
            nearest = {"zone": refs[nz], "planner": book.get(resp.lead_planner[nz]), "distance_m": round(distance, 1)}
    return {
        "covered": lead_zone >= 0,
        "lead": lead,
        "planners": planners,
        "consultations": consultations,
        "zones": zones,
        "split": bool(result.split[0]),
        "nearest": nearest,
        "site": site.as_dict(),
        "as_of": as_timestamp(as_of).date().isoformat(),
    }


LOOKUP_PARAMETERS = [
    {"name": "lon", "in": "query", "required": True, "description": "Longitude (or x in `crs`).",
     "schema": {"type": "number", "examples": [DEMO_LON]}, "example": DEMO_LON},
    {"name": "lat", "in": "query", "required": True, "description": "Latitude (or y in `crs`).",
     "schema": {"type": "number", "examples": [DEMO_LAT]}, "example": DEMO_LAT},
    {"name": "crs", "in": "query", "required": False,
     "description": "CRS of lon/lat: `wgs84` (default), `cgcs2000`, `gcj02` (AMap, Tencent), `bd09` (Baidu) or "
                    "`EPSG:n`.",
     "schema": {"type": "string", "maxLength": 2000, "default": "wgs84", "examples": ["wgs84"]}, "example": "wgs84"},
    {"name": "as_of", "in": "query", "required": False,
     "description": "Date of the answer, YYYY-MM-DD (default today).",
     "schema": {"type": "string", "format": "date", "maxLength": 40, "examples": ["2025-06-30"]},
     "example": "2025-06-30"},
]


def _number(query, name: str) -> float:
    text = query.get(name)
    if text is None:
        raise ValidationError(f"query.{name}: required", [f"query.{name}: Field required"])
    try:
        return float(text)
    except ValueError:
        raise ValidationError(f"query.{name}: {text[:40]!r} is not a number",
                              [f"query.{name}: Input should be a valid number (got {text[:40]!r})"]) from None


@router.get(
    "/lookup", response_model=LookupAnswer, summary="Who is the responsible planner for this point?",
    responses=errors(401, 422), openapi_extra={"parameters": LOOKUP_PARAMETERS},
    description="The lead planner (and the zone that makes them lead: a fall-back to the district shows), every "
                "planner appointed to the zones here, the planners that must be consulted (historic and key areas), "
                "the zones with their share, and, for an uncovered point, the nearest zone that has a lead. The "
                "same answer as `zeren lookup --json`. Send an admin token to see private contacts.")
async def lookup(request: Request) -> Response:
    # The hot path reads its four parameters itself (documented above): FastAPI's per-parameter machinery
    # costs more than the answer. The checks are the same: numbers, a CRS of at most 2,000 characters, a date.
    query = request.query_params
    lon, lat = _number(query, "lon"), _number(query, "lat")
    crs = query.get("crs") or "wgs84"
    if len(crs) > 2000:
        raise ValidationError("query.crs: at most 2,000 characters; give an EPSG code or a name")
    as_of = query.get("as_of")
    if as_of is not None and len(as_of) > 40:
        raise ValidationError("query.as_of: write the date as YYYY-MM-DD")
    include_private = False
    if "authorization" in request.headers:
        include_private = _is_admin(request)
    body = answer(request.app.state.zeren.catalogue, lon, lat, parse_input_crs(crs), parse_as_of(as_of),
                  include_private=include_private)
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), media_type="application/json")


def _is_admin(request: Request) -> bool:
    scheme, _, token = request.headers["authorization"].partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "the Authorization header must be `Bearer <token>`", headers=WWW_AUTHENTICATE)
    principal = request.app.state.zeren.tokens.authenticate(token.strip())
    if principal is None:
        raise HTTPException(401, "the token is not valid (unknown or revoked)", headers=WWW_AUTHENTICATE)
    return principal.is_admin
