"""Shared shaping of records for the routers: zones, planners, appointments, page links."""
from __future__ import annotations

import threading
import weakref

import numpy as np
import pandas as pd
from fastapi import Request

from zeren.api.jsonable import plain  # noqa: F401 (used here and re-exported to the routers)
from zeren.api.http.routers._geojson import geojson_texts
from zeren.geo.validity import as_timestamp

PUBLIC_PLANNER_FIELDS = ("id", "name", "organization", "disciplines", "public_contact")


def day_text(value) -> str | None:
    """A date cell as YYYY-MM-DD (None when missing)."""
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return pd.Timestamp(value).date().isoformat()


# -- planners ---------------------------------------------------------------------------------------
def planner_out(row: dict, include_private: bool) -> dict:
    out = {f: plain(row.get(f)) for f in PUBLIC_PLANNER_FIELDS}
    out["disciplines"] = [str(d) for d in (row.get("disciplines") or [])] \
        if not isinstance(row.get("disciplines"), float) else []
    if include_private:
        out["private_contact"] = plain(row.get("private_contact"))
    return out


# -- appointments -----------------------------------------------------------------------------------
def appointment_out(row: dict, as_of=None, book=None) -> dict:
    ts = as_timestamp(as_of)
    start, end = row.get("start"), row.get("end")
    start_ts = None if start is None or start is pd.NaT else pd.Timestamp(start)
    end_ts = None if end is None or end is pd.NaT or (isinstance(end, float) and end != end) else pd.Timestamp(end)
    active = (start_ts is None or start_ts <= ts) and (end_ts is None or end_ts > ts)
    out = {"id": int(row["id"]), "planner_id": str(row["planner_id"]), "zone_kind": str(row["zone_kind"]),
           "zone_code": str(row["zone_code"]), "role": str(row["role"]), "start": day_text(start),
           "end": day_text(end), "active": bool(active)}
    if book is not None:
        out["planner"] = book.get(row["planner_id"])
    return out


# -- zones ------------------------------------------------------------------------------------------
def zone_properties(index, pos: int) -> dict:
    z = index.zones
    population = z["population"].iat[pos]
    attrs = z["attrs"].iat[pos] if "attrs" in z else {}
    return {
        "kind": str(index.kind[pos]), "code": str(index.code[pos]), "name": str(z["name"].iat[pos]),
        "name_en": plain(z["name_en"].iat[pos]), "parent_code": plain(z["parent_code"].iat[pos]),
        "edition": int(z["edition"].iat[pos]), "valid_from": day_text(z["valid_from"].iat[pos]),
        "valid_to": day_text(z["valid_to"].iat[pos]),
        "population": None if pd.isna(population) else int(population),
        "attrs": plain(attrs) if isinstance(attrs, dict) else {},
    }


class _GeometryTexts:
    """GeoJSON texts of an index's zones, computed on first use and kept for the index's lifetime."""

    def __init__(self, index):
        self.index = index
        self.texts = np.full(len(index), None, dtype=object)
        self.lock = threading.Lock()

    def get(self, positions) -> list[str]:
        positions = np.asarray(positions, dtype=np.int64)
        missing = positions[[t is None for t in self.texts[positions]]] if len(positions) else positions
        if len(missing):
            missing = np.unique(missing)
            texts = geojson_texts(self.index.geoms[missing])
            with self.lock:
                self.texts[missing] = texts
        return self.texts[positions].tolist()


_TEXTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_TEXTS_LOCK = threading.Lock()


def geometry_texts(index, positions) -> list[str]:
    with _TEXTS_LOCK:
        cache = _TEXTS.get(index)
        if cache is None:
            cache = _TEXTS[index] = _GeometryTexts(index)
    return cache.get(positions)


# -- pages ------------------------------------------------------------------------------------------
def base_url(request: Request) -> str:
    public = request.app.state.zeren.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def url_with(request: Request, path: str | None = None, **params) -> str:
    """The request's URL (or ``path``) with query parameters replaced (None removes one)."""
    query = dict(request.query_params)
    for k, v in params.items():
        if v is None:
            query.pop(k, None)
        else:
            query[k] = str(v)
    from urllib.parse import urlencode

    target = path if path is not None else request.url.path
    text = urlencode(query)
    return base_url(request) + target + (f"?{text}" if text else "")


def page_links(request: Request, limit: int, offset: int, total: int, media_type: str = "application/json") -> list:
    links = [{"href": url_with(request, limit=limit, offset=offset), "rel": "self", "type": media_type}]
    if offset + limit < total:
        links.append({"href": url_with(request, limit=limit, offset=offset + limit), "rel": "next",
                      "type": media_type})
    if offset > 0:
        links.append({"href": url_with(request, limit=limit, offset=max(0, offset - limit)), "rel": "prev",
                      "type": media_type})
    return links
