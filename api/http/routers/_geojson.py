"""Reading GeoJSON from clients strictly, and writing it (RFC 7946: lon/lat WGS84, no ``crs`` member).

Reading refuses, with a message naming the feature and what to do: JSON with NaN/Infinity, objects that
are not GeoJSON, unknown geometry types, positions that are not 2 or 3 finite numbers, empty geometries,
lines of fewer than 2 positions, rings of fewer than 4 positions or not closed. Self-intersecting polygons
(bow ties) are repaired with ``shapely.make_valid`` and reported as repaired.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import orjson
import shapely

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from zeren.api.http.errors import BadRequest, TextInputError
from zeren.geo.errors import GeoInputError
from zeren.geo.repair import repair_site

GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}


class GeoJSONError(GeoInputError):
    """Valid JSON that is not usable GeoJSON."""


def _no_constants(name: str):
    raise BadRequest(f"the body holds {name}, which is not valid JSON (RFC 8259); send null or a finite number")


def parse_json(body: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate-free guarantees needed beyond that.

    Read with orjson (several times faster than ``json``, which matters for the work budget: a 1 MB body is
    refused in milliseconds); a body orjson refuses is read again with ``json`` for a precise message."""
    if not body or not body.strip():
        raise BadRequest("the body is empty; send JSON (Content-Type: application/json)")
    try:
        value = orjson.loads(body[3:] if body[:3] == b"\xef\xbb\xbf" else body)
    except orjson.JSONDecodeError:
        value = _parse_json_slowly(body)  # says what is wrong, or reads lone surrogates that orjson refuses
    if _SUSPECT_ESCAPE.search(body):
        check_text(value, "body")
    return value


# NUL (\u0000) and UTF-16 surrogates (\ud800-\udfff) can only reach a decoded string through these escapes (raw
# NUL bytes are refused by both readers, raw surrogates are not UTF-8); a pair is fine, a lone one is not.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def bad_text_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored or sent back (NUL, lone surrogate), or None."""
    found = _BAD_TEXT.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000)"
    return f"contains a lone UTF-16 surrogate (\\u{ord(found.group()):04x}), which is not text"


def check_text(value: Any, where: str) -> None:
    """A 422 naming the first string (key or value) in ``value`` that holds NUL or a lone surrogate."""
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            why = bad_text_reason(item)
            if why:
                raise TextInputError(f"{path} {why}; send text without it", [f"{path}: {why}"])
        elif isinstance(item, dict):
            for k, v in item.items():
                why = bad_text_reason(k)
                if why:
                    raise TextInputError(f"{path}: a key {why}; send text without it", [f"{path}: {why}"])
                stack.append((v, f"{path}.{k}"))
        elif isinstance(item, list):
            stack.extend((v, f"{path}.{i}") for i, v in enumerate(item))


def _parse_json_slowly(body: bytes) -> Any:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text; send JSON encoded as UTF-8") from None
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None


def count_positions(coords: Any, depth: int) -> int:
    """How many positions nested ``coords`` of a geometry of nesting ``depth`` hold, counted from the list
    lengths (no per-position work at the innermost level), so the work budget is checked before anything is
    built. Malformed nesting counts what is there; the parser names the problem afterwards."""
    if not isinstance(coords, list):
        return 0
    if depth <= 1:
        return 1 if depth == 0 else len(coords)
    return sum(count_positions(c, depth - 1) for c in coords)


def geometry_positions(obj: Any) -> int:
    """Positions in a GeoJSON geometry object (0 for anything that is not one)."""
    if not isinstance(obj, dict):
        return 0
    depth = _DEPTH.get(obj.get("type"))
    return 0 if depth is None else count_positions(obj.get("coordinates"), depth)


def feature_positions(features: list) -> list[int]:
    """Positions per GeoJSON Feature (0 for items that are not features or have no geometry)."""
    return [geometry_positions(f.get("geometry")) if isinstance(f, dict) else 0 for f in features]


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positions(coords, depth: int, where: str) -> Any:
    """Check nesting and numbers; returns the coordinates as nested lists of (x, y)."""
    if depth == 0:
        if not isinstance(coords, list) or len(coords) not in (2, 3) or not all(_number(v) for v in coords):
            raise GeoJSONError(f"{where}: a position is [lon, lat] (2 or 3 finite numbers), got {_short(coords)}")
        return (float(coords[0]), float(coords[1]))
    if not isinstance(coords, list):
        raise GeoJSONError(f"{where}: coordinates must be nested arrays, got {_short(coords)}")
    return [_positions(c, depth - 1, where) for c in coords]


def _short(value) -> str:
    text = json.dumps(value, allow_nan=True)[:60] if not isinstance(value, str) else repr(value[:60])
    return text


def _ring(ring: list, where: str) -> list:
    if len(ring) < 4:
        raise GeoJSONError(f"{where}: a polygon ring needs at least 4 positions (the first repeated at the end), "
                           f"got {len(ring)}")
    if ring[0] != ring[-1]:
        raise GeoJSONError(f"{where}: the ring is not closed: its last position {list(ring[-1])} must repeat the "
                           f"first {list(ring[0])} (RFC 7946 §3.1.6)")
    return ring


def _line(line: list, where: str) -> list:
    if len(line) < 2:
        raise GeoJSONError(f"{where}: a line needs at least 2 positions, got {len(line)}")
    return line


def _polygon(rings: list, where: str) -> shapely.Polygon:
    if not rings:
        raise GeoJSONError(f"{where}: empty polygon (no rings)")
    rings = [_ring(r, f"{where}, ring {i}") for i, r in enumerate(rings)]
    return shapely.Polygon(rings[0], rings[1:])


def geometry_from_geojson(obj: Any, where: str = "geometry") -> shapely.Geometry:
    """A shapely geometry (2D) from a GeoJSON geometry object; GeoJSONError when it is not usable."""
    if not isinstance(obj, dict):
        raise GeoJSONError(f"{where}: expected a GeoJSON geometry object, got {type(obj).__name__}")
    gtype = obj.get("type")
    if gtype == "GeometryCollection":
        raise GeoJSONError(f"{where}: GeometryCollection is not supported; send its members as separate features")
    if gtype not in GEOMETRY_TYPES:
        raise GeoJSONError(f"{where}: type {_short(gtype)} is not a GeoJSON geometry type; use one of "
                           f"{', '.join(GEOMETRY_TYPES)}")
    if "coordinates" not in obj:
        raise GeoJSONError(f"{where}: a {gtype} needs 'coordinates'")
    coords = _positions(obj["coordinates"], _DEPTH[gtype], where)
    if _DEPTH[gtype] and not coords:
        raise GeoJSONError(f"{where}: empty {gtype} (no coordinates); send a geometry with coordinates, or "
                           f"leave the feature out")
    if gtype == "Point":
        return shapely.Point(coords)
    if gtype == "MultiPoint":
        return shapely.MultiPoint(coords)
    if gtype == "LineString":
        return shapely.LineString(_line(coords, where))
    if gtype == "MultiLineString":
        if any(not part for part in coords):
            raise GeoJSONError(f"{where}: a MultiLineString has an empty part")
        return shapely.MultiLineString([_line(part, f"{where}, line {i}") for i, part in enumerate(coords)])
    if gtype == "Polygon":
        return _polygon(coords, where)
    if any(not part for part in coords):
        raise GeoJSONError(f"{where}: a MultiPolygon has an empty part")
    return shapely.MultiPolygon([_polygon(part, f"{where}, polygon {i}") for i, part in enumerate(coords)])


def repair(geom: shapely.Geometry, where: str = "geometry") -> tuple[shapely.Geometry, bool]:
    """An invalid polygon (bow tie, self-touching ring) made valid (``zeren.geo.repair``), as a GeoJSON error
    when nothing usable is left; (geometry, whether it was repaired)."""
    try:
        return repair_site(geom, where)
    except GeoInputError as exc:
        raise GeoJSONError(str(exc)) from None


def rounded(geoms, precision: int = 7) -> np.ndarray:
    """Geometries with coordinates rounded to ``precision`` decimals (7 ≈ 1 cm in lon/lat)."""
    return shapely.transform(np.asarray(geoms, dtype=object), lambda xy: np.round(xy, precision))


def geojson_texts(geoms, precision: int = 7) -> list[str]:
    """GeoJSON geometry texts (``null`` for missing or empty geometries), vectorised."""
    arr = np.asarray(geoms, dtype=object)
    if not len(arr):
        return []
    empty = shapely.is_missing(arr) | shapely.is_empty(np.where(shapely.is_missing(arr), shapely.Point(), arr))
    out = np.full(len(arr), "null", dtype=object)
    if (~empty).any():
        out[~empty] = shapely.to_geojson(rounded(arr[~empty], precision))
    return out.tolist()


def dumps(value) -> str:
    """Compact JSON (UTF-8 text kept as it is); NaN is refused rather than sent as invalid JSON."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default)
    except RecursionError:  # a client's properties nested ~1,000 deep (the reader allows 1,024 levels)
        raise BadRequest("the body is nested too deeply") from None


_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def collection_bytes(head: dict, features: list, chunk: int = 500) -> bytes:
    """A FeatureCollection as UTF-8 JSON: ``head`` members, then ``features`` written ``chunk`` at a time with
    orjson (each call holds the interpreter for a millisecond or two, so the event loop keeps its turns while a
    batch answer is written; ``json.dumps`` of 10,000 features held it for a quarter of a second)."""
    parts = [dumps_bytes(head)[:-1], b',"features":[']
    for start in range(0, len(features), chunk):
        if start:
            parts.append(b",")
        parts.append(dumps_bytes(features[start:start + chunk])[1:-1])
    parts.append(b"]}")
    return b"".join(parts)


def dumps_bytes(value) -> bytes:
    """:func:`dumps` as UTF-8 bytes, through orjson when it can (integers past 64 bits go the slow way)."""
    try:
        return orjson.dumps(value, default=_default, option=_ORJSON_OPTIONS)
    except TypeError:
        return dumps(value).encode("utf-8")


def _default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def feature_text(fid, geometry_text: str, properties: dict, extra: dict | None = None) -> str:
    """One GeoJSON Feature as text, the geometry spliced in as it is (no re-parsing)."""
    more = "".join(f",{dumps(k)}:{dumps(v)}" for k, v in (extra or {}).items())
    return (f'{{"type":"Feature","id":{dumps(fid)},"geometry":{geometry_text},'
            f'"properties":{dumps(properties)}{more}}}')


def collection_text(feature_texts: list[str], members: dict) -> str:
    """A FeatureCollection as text: ``members`` (numberMatched, links...) then the features."""
    head = "".join(f",{dumps(k)}:{dumps(v)}" for k, v in members.items())
    return '{"type":"FeatureCollection"' + head + ',"features":[' + ",".join(feature_texts) + "]}"


class GeoJSONResponse(JSONResponse):
    """``application/geo+json`` (RFC 7946), documented with the route's model in the OpenAPI; text made by
    :func:`collection_text` / :func:`feature_text` is sent as it is."""

    media_type = "application/geo+json"

    def render(self, content) -> bytes:
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode("utf-8")
        return super().render(content)


class _StrictRequest(Request):
    async def json(self):
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json(await self.body())
            except BadRequest as exc:
                raise HTTPException(400, str(exc)) from None
            except TextInputError as exc:  # FastAPI turns any other error while reading the body into a 400
                raise HTTPException(422, str(exc)) from None
        return self._json


class StrictJSONRoute(APIRoute):
    """Routes whose JSON bodies are read strictly: UTF-8, no NaN/Infinity (400 with the reason)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def strict_handler(request: Request):
            return await handler(_StrictRequest(request.scope, request.receive))

        return strict_handler
