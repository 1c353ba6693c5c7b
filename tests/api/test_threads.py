"""Requests run in threads of their own and share the catalogue's geometries: no request prepares a shared
geometry in place (GEOS prepared geometries are not safe in two threads at once: geo.prepared). Eight threads
on the same zones, which crashed the interpreter before, are in tests/coverage/test_threads.py."""
from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from fastapi.testclient import TestClient

from zeren.api.http.app import create_app
from tests.api.conftest import make_settings

SQUARE = {"type": "Polygon", "coordinates": [[[104.0515, 30.6685], [104.0545, 30.6685], [104.0545, 30.6705],
                                              [104.0515, 30.6705], [104.0515, 30.6685]]]}
LINE = {"type": "LineString", "coordinates": [[104.04, 30.66], [104.08, 30.67]]}
ASSIGN = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {}, "geometry": g}
    for g in (SQUARE, LINE, {"type": "Point", "coordinates": [104.0530, 30.6695]})]}
# The analyses that evaluate predicates on the shared zones: coverage, gaps, overlaps, reports, maps, tiles, sites
READS = ("/coverage/summary", "/coverage/gaps", "/coverage/overlaps", "/coverage/workload", "/coverage/disciplines",
         "/reports/city?year=2025", "/reports/planners/P006?year=2025",
         "/maps/coverage", "/maps/gaps", "/maps/site?lon=104.0530&lat=30.6695", "/lookup?lon=104.0530&lat=30.6695",
         "/embed/find?lon=104.0530&lat=30.6695", "/tiles/subdistrict/10/824/422.mvt",
         "/zones?kind=subdistrict&bbox=104.0,30.6,104.1,30.7", "/projects?bbox=104.0,30.6,104.1,30.7")


def _geometries(root) -> list[tuple[str, shapely.Geometry]]:
    """Every shapely geometry reachable from ``root`` through attributes, cached properties, containers, numpy
    object arrays and (Geo)DataFrames, with the path that reaches it."""
    found, seen, stack = [], set(), [("state", root)]
    while stack:
        path, obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool, type)):
            continue
        seen.add(id(obj))
        if isinstance(obj, shapely.Geometry):
            found.append((path, obj))
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend((f"{path}[{i}]", v) for i, v in enumerate(obj.ravel()))
        elif isinstance(obj, pd.DataFrame):
            stack.extend((f"{path}.{c}", obj[c].to_numpy()) for c in obj.columns if obj[c].dtype == object
                         or str(obj[c].dtype) == "geometry")
        elif isinstance(obj, pd.Series):
            stack.append((path, obj.to_numpy()))
        elif isinstance(obj, dict):
            stack.extend((f"{path}[{k!r}]", v) for k, v in obj.items())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(obj))
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("zeren"):
            stack.extend((f"{path}.{k}", v) for k, v in vars(obj).items())
    return found


def test_no_request_prepares_a_shared_geometry(demo_path):
    settings = make_settings(demo_path, batch_in_process=True)  # batches in this process: they share the index
    with TestClient(create_app(settings)) as client:
        for path in READS:
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert client.post("/assign", json=ASSIGN).status_code == 200
        many = {"type": "FeatureCollection", "features": [  # enough points for the point grid
            {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [x, y]}}
            for x, y in np.random.default_rng(3).uniform((103.9, 30.55), (104.2, 30.8), (6000, 2))]}
        assert client.post("/assign", json=many).status_code == 200
        geoms = _geometries(client.app.state.zeren)
    index = client.app.state.zeren.workspace.catalogue.index
    # the copies kept for the batch predicates, used under index.prepared_lock, are the one exception
    private = {id(g) for g in index.__dict__.get("prepared_geoms", ())}
    shared = [(p, g) for p, g in geoms if id(g) not in private]
    assert len(shared) > len(index.geoms), "the walk should reach the catalogue's zones"
    prepared = [p for p, g in shared if shapely.is_prepared(g)]
    assert not prepared, f"{len(prepared)} shared geometries prepared in place, e.g. {prepared[:3]}"

