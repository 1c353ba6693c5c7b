"""Reading built map pages back: layer specs, decoded geometries."""
from __future__ import annotations

import json
import re

from zeren.maps.display import decode_columns, unpack_polygons

_CALL_RE = re.compile(r"Zeren\.(layer|legend|init)\(\w+, (.*)\);\s*$", re.MULTILINE)


def page_calls(html: str, what: str) -> list[dict]:
    """The JSON specs passed to Zeren.layer / Zeren.legend / Zeren.init in a page."""
    return [json.loads(m.group(2)) for m in _CALL_RE.finditer(html) if m.group(1) == what]


def layer_specs(html: str) -> dict[str, dict]:
    return {spec["id"]: spec for spec in page_calls(html, "layer")}


def layer_rows(spec: dict) -> list[dict]:
    if "packed" in spec:
        return decode_columns(spec["columns"], len(spec["packed"]["f"]))
    if "geojson" in spec:
        return [f["properties"] for f in spec["geojson"]["features"]]
    return decode_columns(spec["columns"], spec["count"])


def layer_geoms(spec: dict) -> list:
    import shapely

    if "packed" in spec:
        return unpack_polygons(spec["packed"])
    return [shapely.geometry.shape(f["geometry"]) for f in spec["geojson"]["features"]]
