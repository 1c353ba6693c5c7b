"""Resident feedback (居民留言), routed to the responsible planner of the exact site.

A resident sends a point (or a polygon) with a category, a text and, if they like, a contact. The case is
stored with the site's assignment as of that day frozen in it (the lead planner first, then the planners to
consult: the same answer as ``GET /lookup`` / ``POST /assign``) and routed to them. The resident gets a
reference (``FB-2026-7KQ4M2``) to follow the case; the contact is never shown to the public.

Rules (one place, both doors):

* the text has 1 to 2,000 characters, is stored as given (never interpreted) and is escaped wherever shown;
* a site outside every zone is accepted, routed to the planner of the nearest zone with a lead, and flagged
  (``outside``, with the distance); a site outside China's bounds, or farther than ``max_distance_m`` from
  every zone (Zeren holds no coastline: that is how a point in the sea is recognised), is refused (422);
* the workflow is ``received -> accepted -> replied -> closed``; a case that is received, accepted or
  transferred may be ``transferred`` to another zone's planner, with a reason; a transferred case is accepted
  by its new planner. Each step is taken by a planner the case is routed to, or an admin (403 otherwise);
  any other step is a conflict (409);
* the resident may rate the reply 1-5, once, and only once there is a reply (409 otherwise);
* the response time of a case is the time from its receipt to its reply.
"""
from __future__ import annotations

import datetime as dt
import math
import secrets

import numpy as np
import pandas as pd
import shapely

from zeren.api.service.actors import Actor
from zeren.api.service.lookup import input_crs
from zeren.api.service.workspace import Workspace
from zeren.geo.answer import site_answer
from zeren.geo.crs import in_china_box
from zeren.geo.errors import GeoInputError
from zeren.geo.kinds import FEEDBACK_STATUS_LABELS, FEEDBACK_STATUSES
from zeren.geo.sites import sites_to_wgs84
from zeren.geo.validity import as_timestamp
from zeren.layers.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError

MAX_TEXT = 2000
MAX_CONTACT = 200
MAX_NOTE = 2000
MAX_VERTICES = 5000
DEFAULT_MAX_DISTANCE_M = 50_000.0
PUBLIC = "public"
REF_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read over the phone without mistakes
REF_LENGTH = 6

NEXT_STATUS: dict[str, tuple[str, ...]] = {
    "received": ("accepted", "transferred"),
    "accepted": ("replied", "transferred"),
    "transferred": ("accepted", "transferred"),
    "replied": ("closed",),
    "closed": (),
}


# -- categories -----------------------------------------------------------------------------------
def categories(ws: Workspace, *, include_retired: bool = False) -> list[dict]:
    frame = ws.store.feedback_categories(include_retired=include_retired)
    return [{"code": r.code, "name": r.name, "name_en": None if _missing(r.name_en) else r.name_en,
             "active": bool(r.active)} for r in frame.itertuples(index=False)]


def put_category(ws: Workspace, code: str, *, name: str, name_en: str | None = None, active: bool = True,
                 actor: Actor) -> dict:
    """Add a category, or rename / retire one (cases keep the category they were filed under)."""
    code = (code or "").strip()
    if not code or len(code) > 40 or not all(c.isalnum() or c in "_-" for c in code):
        raise ValidationError("code: 1 to 40 letters, digits, '_' or '-', e.g. noise")
    if not isinstance(name, str) or not name.strip() or len(name) > 80:
        raise ValidationError("name: 1 to 80 characters (the Chinese label, e.g. 噪声)")
    if name_en is not None and (not isinstance(name_en, str) or len(name_en) > 80):
        raise ValidationError("name_en: at most 80 characters")
    ws.store.put_feedback_category(code, name.strip(), (name_en or "").strip() or None, active=active,
                                   actor=actor.name)
    return next(c for c in categories(ws, include_retired=True) if c["code"] == code)


def _check_category(ws: Workspace, category) -> str:
    known = categories(ws)
    codes = [c["code"] for c in known]
    if isinstance(category, str):
        text = category.strip()
        if text in codes:
            return text
        for c in known:  # the label a resident sees is accepted too
            if text and text in (c["name"], c["name_en"]):
                return c["code"]
    shown = repr(category)[:40]
    raise ValidationError(f"category: {shown} is not a feedback category; use one of {', '.join(codes)}",
                          [f"category: use one of {', '.join(codes)}"])


# -- checks ---------------------------------------------------------------------------------------
def _text(value, field: str, limit: int, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field}: expected text")
    if "\x00" in value:
        raise ValidationError(f"{field}: contains a NUL character; send plain text")
    stripped = value.strip()
    if not stripped:
        if required:
            raise ValidationError(f"{field}: empty; write 1 to {limit:,} characters")
        return None
    if len(stripped) > limit:
        raise ValidationError(f"{field}: {len(stripped):,} characters, over the {limit:,}-character limit; "
                              f"shorten it")
    return stripped


def _site(ws: Workspace, lon, lat, geometry, crs) -> shapely.Geometry:
    """The site as a WGS84 geometry, refused (422) when it cannot be a place in China."""
    if geometry is not None and (lon is not None or lat is not None):
        raise ValidationError("give either lon/lat or a geometry, not both")
    if geometry is None:
        if lon is None or lat is None:
            raise ValidationError("lon and lat: required (or a GeoJSON geometry)",
                                  [f"{n}: required" for n, v in (("lon", lon), ("lat", lat)) if v is None])
        for name, v in (("lon", lon), ("lat", lat)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValidationError(f"{name}: {v!r} is not a finite number"[:120])
        geometry, where = shapely.Point(float(lon), float(lat)), "lon/lat"
    else:
        if shapely.get_num_coordinates(geometry) > MAX_VERTICES:
            raise ValidationError(f"geometry: over {MAX_VERTICES:,} positions; send a simpler outline or a point")
        where = "geometry"
    wgs, problems = sites_to_wgs84(np.array([geometry], dtype=object), input_crs(crs), ws.catalogue.index.bounds,
                                   [where])
    if problems[0]:
        raise GeoInputError(problems[0])
    site = wgs[0]
    if not shapely.is_valid(site):
        site = shapely.make_valid(site)
    xy = shapely.get_coordinates(site)
    if not in_china_box(xy[:, 0], xy[:, 1]).all():
        lon0, lat0 = xy[0]
        raise GeoInputError(f"{where}: [{lon0:.6g}, {lat0:.6g}] is outside China's bounds; feedback is for sites "
                            f"in the city (is the CRS right? give crs=gcj02 for AMap/Tencent, bd09 for Baidu)")
    return site


def new_ref(store, year: int) -> str:
    for _ in range(20):
        ref = f"FB-{year}-" + "".join(secrets.choice(REF_ALPHABET) for _ in range(REF_LENGTH))
        if store.find_feedback(ref=ref).empty:
            return ref
    raise ConflictError("could not make a unique reference; try again")  # pragma: no cover - 1e9 references


def _routing(answer: dict) -> tuple[list[str], bool, float | None]:
    """Planner ids (lead first, then the planners to consult), whether the case went to the nearest zone's
    planner (the site has no lead), and that distance."""
    routed: list[str] = []
    lead = (answer.get("lead") or {}).get("planner")
    by_nearest, distance = False, None
    if lead:
        routed.append(lead["id"])
    elif answer.get("nearest") and answer["nearest"].get("planner"):
        routed.append(answer["nearest"]["planner"]["id"])
        by_nearest, distance = True, answer["nearest"].get("distance_m")
    for c in answer.get("consultations", []):
        pid = (c.get("planner") or {}).get("id")
        if pid and pid not in routed:
            routed.append(pid)
    return routed, by_nearest, distance


# -- the resident's side --------------------------------------------------------------------------
def submit_feedback(ws: Workspace, *, category, text, lon=None, lat=None, geometry=None, crs="wgs84",
                    contact=None, max_distance_m: float = DEFAULT_MAX_DISTANCE_M, at: dt.datetime | None = None,
                    synthetic: bool = False, actor: str = PUBLIC, ref: str | None = None) -> dict:
    """File a case and route it; the resident's receipt (:func:`case_view`, public) with ``ref`` and
    ``routed_to``. ``at``: when it was received (default now; the demo's synthetic year sets it)."""
    text = _text(text, "text", MAX_TEXT, required=True)
    contact = _text(contact, "contact", MAX_CONTACT, required=False)
    category = _check_category(ws, category)
    site = _site(ws, lon, lat, geometry, crs)
    when = at or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    day = when.date()
    catalogue = ws.catalogue
    catalogue.index.require_in_force(day)
    # every nearest zone, however far: feedback applies its own limit (max_distance_m, a setting) just below
    answer = site_answer(catalogue.assign(np.array([site], dtype=object), as_timestamp(day)), 0,
                         catalogue.public_book, max_suggestion_m=np.inf)
    answer["as_of"] = day.isoformat()
    routed, by_nearest, distance = _routing(answer)
    outside = not answer.get("zones")
    if outside and (distance is None or distance > max_distance_m):
        far = "" if distance is None else f" ({distance / 1000:,.1f} km)"
        raise GeoInputError(f"the site is farther than {max_distance_m / 1000:,.0f} km from every zone{far}: in "
                            f"the sea or outside the city served here; put the point where the issue is")
    if not routed:
        raise ConflictError(f"no zone has a lead planner on {day}; the feedback cannot be routed (appoint leads "
                            f"first)")
    zone_codes = [z["code"] for z in answer.get("zones", [])]
    if by_nearest:
        zone_codes.append(answer["nearest"]["zone"]["code"])
    ref = ref or new_ref(ws.store, day.year)
    ws.store.create_feedback(ref=ref, category=category, text=text, contact=contact, geometry=site, as_of=day,
                             assignment=answer, routed_to=routed, zone_codes=list(dict.fromkeys(zone_codes)),
                             outside=outside, nearest_distance_m=distance if by_nearest else None, actor=actor,
                             at=when.isoformat(timespec="seconds"), synthetic=synthetic)
    return case_view(ws.store.feedback_case(ref))


def rate_feedback(ws: Workspace, ref: str, rating) -> dict:
    """The resident's rating of the reply: 1-5, once, only once replied."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationError(f"rating: {rating!r} is not a whole number from 1 to 5"[:120])
    store = ws.store
    with store.transaction():
        case = store.feedback_case(ref)
        if case.get("reply") is None:
            raise ConflictError(f"case {case['ref']} has no reply yet; rate it once the planner has replied")
        if not _missing(case.get("rating")):
            raise ConflictError(f"case {case['ref']} was already rated ({int(case['rating'])}); a reply is rated "
                                f"once")
        store.rate_feedback(int(case["id"]), rating)
    return case_view(store.feedback_case(ref))


# -- the planner's side ---------------------------------------------------------------------------
def check_may_act(case: dict, actor: Actor) -> None:
    if actor.is_admin:
        return
    if actor.planner_id not in (case.get("routed_to") or []):
        raise ForbiddenError(f"case {case['ref']} is not routed to planner {actor.planner_id}; only its planners "
                             f"or an admin may act on it")


def _transfer_target(ws: Workspace, to_planner, to_zone, day: dt.date) -> str:
    catalogue = ws.catalogue
    if (to_planner is None) == (to_zone is None):
        raise ValidationError("a transfer names either to_planner (a planner id) or to_zone ({kind, code})")
    if to_planner is not None:
        ids = set(catalogue.planners["id"].astype(str))
        if str(to_planner) not in ids:
            raise NotFoundError(f"no planner {str(to_planner)[:64]!r}")
        return str(to_planner)
    if not isinstance(to_zone, dict) or not to_zone.get("code"):
        raise ValidationError("to_zone: give {\"kind\": ..., \"code\": ...}")
    leads = catalogue.leads(day)
    hit = leads[(leads["zone_code"].astype(str) == str(to_zone["code"]))
                & ((leads["zone_kind"] == to_zone.get("kind")) if to_zone.get("kind") else True)]
    if hit.empty:
        raise NotFoundError(f"zone {str(to_zone.get('code'))[:40]!r} has no lead planner on {day}; transfer to a "
                            f"planner by id instead")
    return str(hit["planner_id"].iloc[0])


def advance_feedback(ws: Workspace, ref: str, status: str, *, actor: Actor, note: str | None = None,
                     reply: str | None = None, to_planner: str | None = None, to_zone: dict | None = None,
                     at: dt.datetime | None = None) -> dict:
    """Take one workflow step on a case (see the module's rules)."""
    if status not in FEEDBACK_STATUSES or status == "received":
        raise ValidationError(f"status: {str(status)[:40]!r} is not a step; use one of "
                              f"{', '.join(s for s in FEEDBACK_STATUSES if s != 'received')}")
    note = _text(note, "note", MAX_NOTE, required=status == "transferred")
    reply = _text(reply, "reply", MAX_TEXT, required=status == "replied")
    if reply is not None and status != "replied":
        raise ValidationError("reply: only a 'replied' step carries the public reply")
    store = ws.store
    when = (at or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)).isoformat(timespec="seconds")
    with store.transaction():
        case = store.feedback_case(ref)
        check_may_act(case, actor)
        current = case["status"]
        if status not in NEXT_STATUS[current]:
            allowed = ", ".join(NEXT_STATUS[current]) or "none (the case is closed)"
            raise ConflictError(f"case {case['ref']} is {current!r}; its next step can be: {allowed}")
        routed = None
        if status == "transferred":
            target = _transfer_target(ws, to_planner, to_zone, dt.date.fromisoformat(when[:10]))
            if target in case["routed_to"][:1]:
                raise ConflictError(f"case {case['ref']} is already with planner {target}; transfer it to another")
            routed = [target]
        store.add_feedback_event(int(case["id"]), status=status, actor=actor.name, note=note, moved_from=current,
                                 routed_to=routed, reply=reply, at=when)
    return case_view(store.feedback_case(ref), private=True, events=store.feedback_events(int(case["id"])))


def list_feedback(ws: Workspace, *, actor: Actor, status: str | None = None, category: str | None = None,
                  zone: str | None = None, since: dt.date | None = None, until: dt.date | None = None):
    """The cases an actor may see (a planner: those routed to them; an admin: all), filtered; a GeoDataFrame."""
    if status is not None and status not in FEEDBACK_STATUSES:
        raise ValidationError(f"status: {status[:40]!r} is not a status; use one of {', '.join(FEEDBACK_STATUSES)}")
    if since is not None and until is not None and since > until:
        raise ValidationError(f"since {since} is after until {until}")
    return ws.store.find_feedback(status=status, category=category, zone_code=zone, since=since, until=until,
                                  planner_id=None if actor.is_admin else (actor.planner_id or "\x00"))


def get_case(ws: Workspace, ref: str, *, actor: Actor | None = None) -> dict:
    """A case as its viewer may see it: the public view, or everything (contact and events) for an admin or a
    planner the case is routed to."""
    if not isinstance(ref, str) or len(ref) > 40:
        raise NotFoundError("no such feedback case; check the reference (e.g. FB-2026-7KQ4M2)")
    case = ws.store.feedback_case(ref.strip().upper())
    private = actor is not None and (actor.is_admin or actor.planner_id in case["routed_to"])
    return case_view(case, private=private, events=ws.store.feedback_events(int(case["id"])))


# -- views ----------------------------------------------------------------------------------------
def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def response_hours(created_at, replied_at) -> float | None:
    """Hours from receipt to reply (None while unanswered)."""
    if _missing(replied_at) or _missing(created_at):
        return None
    delta = pd.Timestamp(replied_at) - pd.Timestamp(created_at)
    return round(delta.total_seconds() / 3600, 2)


def case_view(case: dict, *, private: bool = False, events: pd.DataFrame | None = None) -> dict:
    """A case as JSON-ready data. The public view never has the contact, the event actors or notes."""
    status = case["status"]
    answer = case.get("assignment") or {}
    lead = answer.get("lead") or {}
    nearest = answer.get("nearest") or {}
    zone = lead.get("zone") or (nearest.get("zone") if case.get("outside") or not lead else None)
    rating = case.get("rating")
    out = {
        "ref": case["ref"], "status": status, "status_label": "/".join(FEEDBACK_STATUS_LABELS[status]),
        "category": case["category"], "text": case["text"], "received_at": str(case["created_at"]),
        "as_of": str(case["as_of"])[:10], "routed_to": list(case.get("routed_to") or []),
        "zone": zone, "outside": bool(case.get("outside")),
        "nearest_distance_m": None if _missing(case.get("nearest_distance_m")) else float(case["nearest_distance_m"]),
        "reply": None if _missing(case.get("reply")) else case["reply"],
        "replied_at": None if _missing(case.get("replied_at")) else str(case["replied_at"]),
        "response_hours": response_hours(case.get("created_at"), case.get("replied_at")),
        "rating": None if _missing(rating) else int(rating),
        "synthetic": bool(case.get("synthetic")),
    }
    if events is not None:
        rows = events.to_dict("records")
        out["events"] = [{"at": str(e["at"]), "status": e["status"]} for e in rows]
        if private:
            for shown, e in zip(out["events"], rows):
                shown["actor"] = None if _missing(e.get("actor")) else e["actor"]
                shown["note"] = None if _missing(e.get("note")) else e["note"]
    if private:
        out["contact"] = None if _missing(case.get("contact")) else case["contact"]
        out["assignment"] = answer
    return out


def export_frame(frame, *, with_contact: bool = False):
    """Cases as a flat layer for CSV / GeoJSON files (lists joined with ';', the response time in hours)."""
    import geopandas as gpd

    rows = []
    for r in frame.drop(columns="geometry").to_dict("records"):
        zone = case_view(r)["zone"] or {}
        row = {"ref": r["ref"], "status": r["status"], "category": r["category"], "text": r["text"],
               "received_at": r["created_at"], "routed_to": ";".join(r["routed_to"]),
               "lead_planner_id": (r["routed_to"] or [None])[0], "zone_kind": zone.get("kind"),
               "zone_code": zone.get("code"), "zone_name": zone.get("name"), "outside": bool(r["outside"]),
               "nearest_distance_m": None if _missing(r["nearest_distance_m"]) else r["nearest_distance_m"],
               "reply": None if _missing(r["reply"]) else r["reply"],
               "replied_at": None if _missing(r["replied_at"]) else r["replied_at"],
               "response_hours": response_hours(r["created_at"], r["replied_at"]),
               "rating": None if _missing(r["rating"]) else int(r["rating"]), "synthetic": bool(r["synthetic"])}
        if with_contact:
            row["contact"] = None if _missing(r["contact"]) else r["contact"]
        rows.append(row)
    columns = list(rows[0]) if rows else ["ref", "status", "category", "text", "received_at", "routed_to"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry=frame.geometry.to_numpy(),
                            crs="EPSG:4326")


# -- the map page ---------------------------------------------------------------------------------
def feedback_page(ws: Workspace, *, settings, status: str | None = None, category: str | None = None,
                  zone: str | None = None, since: dt.date | None = None, until: dt.date | None = None):
    """The map of the cases (public facts only), per zone when ``zone`` is given, coloured by status."""
    from zeren.api.service.pages import page_settings
    from zeren.maps.feedback import feedback_map

    catalogue = ws.catalogue
    frame = list_feedback(ws, actor=Actor("map"), status=status, category=category, zone=zone, since=since,
                          until=until)
    zones = catalogue.zone_frame(None)
    if zone is not None:
        shown = zones[zones["code"].astype(str) == str(zone)]
        if shown.empty:
            raise NotFoundError(f"no zone with code {zone[:40]!r} in force")
    else:
        shown = zones[zones["kind"] == "district"]
    views = [case_view(r) for r in frame.drop(columns="geometry").to_dict("records")]
    table = frame.drop(columns=["text", "contact", "assignment"]).copy()
    table["zone_name"] = [(v["zone"] or {}).get("name") for v in views]
    table["response_hours"] = [v["response_hours"] for v in views]
    labels = {c["code"]: f"{c['name']} / {c['name_en']}" if c["name_en"] else c["name"]
              for c in categories(ws, include_retired=True)}
    where = f"（{shown['name'].iloc[0]}）" if zone is not None else ""
    return feedback_map(table, shown.drop(columns="position"), categories=labels,
                        title=f"居民留言{where} / resident feedback", settings=page_settings(catalogue, settings))
