"""A boundary change made by hand on the demo city, as a bureau's GIS staff would make one: edition 2025 of
青羊区 (district 510105) merges subdistricts 001 and 002 into a new 101, splits 003 into 301 (east) and 302
(west), redraws 004, and keeps 005-007 as they were. Every other district is left alone."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from zeren.layers.store import open_store

DISTRICT = "510105"
MERGED, (EAST, WEST), REDRAWN = "510105101", ("510105301", "510105302"), "510105004"
GONE = ("510105001", "510105002", "510105003")
KEPT = ("510105005", "510105006", "510105007")


def qingyang_2025(store_path, folder: Path) -> Path:
    """Write the 2025 file of 青羊区's subdistricts (GeoJSON, WGS84) from the store's 2024 edition."""
    store = open_store(store_path)
    try:
        subs = store.zones(kind="subdistrict", as_of="2024-06-01").set_index("code")
    finally:
        store.close()
    g = subs.geometry
    third = g["510105003"]
    minx, miny, maxx, maxy = third.bounds
    mid = (minx + maxx) / 2
    rows = [
        (MERGED, "青羊区合并街道", shapely.union(g["510105001"], g["510105002"])),
        (EAST, "青羊区第3街道东", shapely.intersection(third, shapely.box(mid, miny - 1, maxx + 1, maxy + 1))),
        (WEST, "青羊区第3街道西", shapely.intersection(third, shapely.box(minx - 1, miny - 1, mid, maxy + 1))),
        (REDRAWN, subs.loc[REDRAWN, "name"], shapely.simplify(g[REDRAWN], 0.002)),
        *[(c, subs.loc[c, "name"], g[c]) for c in KEPT],
    ]
    frame = gpd.GeoDataFrame({"code": [r[0] for r in rows], "name": [r[1] for r in rows]},
                             geometry=[r[2] for r in rows], crs="EPSG:4326")
    path = folder / "qingyang_2025.geojson"
    frame.to_file(path, driver="GeoJSON")
    return path


def grid(bounds, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """An n x n grid of points over ``bounds`` (lon, lat)."""
    minx, miny, maxx, maxy = bounds
    xs, ys = np.meshgrid(np.linspace(minx, maxx, n), np.linspace(miny, maxy, n))
    return xs.ravel(), ys.ravel()
