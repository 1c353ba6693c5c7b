"""Synthetic zones, planners and leads for the map benchmark and tests (seeded, no files).

The zones are a jittered grid whose cell edges wiggle (``edge_points`` points per edge); each edge is
built once and shared by both cells, so the layer is an exact coverage, like real communities.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


def synthetic_zones(n: int, *, bounds=(103.75, 30.45, 104.35, 30.85), edge_points: int = 6,
                    kind: str = "community", seed: int = 0) -> gpd.GeoDataFrame:
    """About ``n`` zones tiling ``bounds`` (lon/lat) as a zones frame (see layers/CONTRACT.md)."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = bounds
    aspect = (maxx - minx) * np.cos(np.radians((miny + maxy) / 2)) / (maxy - miny)
    ny = max(1, int(round(np.sqrt(n / aspect))))
    nx = max(1, int(round(n / ny)))
    dx = (maxx - minx) / nx
    dy = (maxy - miny) / ny
    # grid vertices, jittered inside (the outer frame stays straight)
    gx = minx + dx * np.arange(nx + 1)
    gy = miny + dy * np.arange(ny + 1)
    vx, vy = np.meshgrid(gx, gy)  # (ny+1, nx+1)
    jx = rng.uniform(-0.25, 0.25, vx.shape) * dx
    jy = rng.uniform(-0.25, 0.25, vy.shape) * dy
    jx[:, [0, -1]] = 0
    jy[[0, -1], :] = 0
    vx = vx + jx
    vy = vy + jy
    k = edge_points
    t = (np.arange(1, k + 1) / (k + 1))  # interior positions along an edge
    wiggle = 0.03

    def edges(ax, ay, bx, by, perp_x, perp_y, border_mask):
        # points along a->b, pushed sideways by noise (not on the outer border)
        px = ax[..., None] + (bx - ax)[..., None] * t
        py = ay[..., None] + (by - ay)[..., None] * t
        noise = rng.normal(0, wiggle, px.shape) * np.sin(np.pi * t)
        noise[border_mask] = 0
        return px + noise * perp_x, py + noise * perp_y

    # horizontal edges: (ny+1, nx) from v[i, j] to v[i, j+1]
    hb = np.zeros((ny + 1, nx), dtype=bool)
    hb[[0, -1], :] = True
    hx, hy = edges(vx[:, :-1], vy[:, :-1], vx[:, 1:], vy[:, 1:], 0.0, dy, hb)
    # vertical edges: (ny, nx+1) from v[i, j] to v[i+1, j]
    vb = np.zeros((ny, nx + 1), dtype=bool)
    vb[:, [0, -1]] = True
    ux, uy = edges(vx[:-1, :], vy[:-1, :], vx[1:, :], vy[1:, :], dx, 0.0, vb)

    # vectorised ring assembly
    I, J = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    I = I.ravel()
    J = J.ravel()
    xs = np.concatenate([
        vx[I, J][:, None], hx[I, J], vx[I, J + 1][:, None], ux[I, J + 1], vx[I + 1, J + 1][:, None],
        hx[I + 1, J][:, ::-1], vx[I + 1, J][:, None], ux[I, J][:, ::-1], vx[I, J][:, None]], axis=1)
    ys = np.concatenate([
        vy[I, J][:, None], hy[I, J], vy[I, J + 1][:, None], uy[I, J + 1], vy[I + 1, J + 1][:, None],
        hy[I + 1, J][:, ::-1], vy[I + 1, J][:, None], uy[I, J][:, ::-1], vy[I, J][:, None]], axis=1)
    geoms = shapely.polygons(np.stack([xs, ys], axis=-1))
    m = len(geoms)
    codes = [f"Z{idx:06d}" for idx in range(m)]
    return gpd.GeoDataFrame({
        "kind": kind,
        "code": codes,
        "name": [f"合成第{idx + 1}社区" for idx in range(m)],
        "name_en": [f"Synthetic community {idx + 1}" for idx in range(m)],
        "parent_code": None,
        "edition": 2024,
        "valid_from": pd.Timestamp("2024-01-01"),
        "valid_to": pd.NaT,
        "population": pd.array(rng.integers(2000, 20000, m), dtype="Int64"),
        "attrs": [{} for _ in range(m)],
        "block": (I // 3) * ((nx + 2) // 3) + (J // 3),
    }, geometry=geoms, crs=4326)


def synthetic_planners_and_leads(zones: gpd.GeoDataFrame, *, unassigned: float = 0.08,
                                 seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Planners (one per 3x3 block of a synthetic grid, or per ~9 zones) and their leads."""
    rng = np.random.default_rng(seed)
    block = zones["block"].to_numpy() if "block" in zones else np.arange(len(zones)) // 9
    uniq = np.unique(block)
    planners = pd.DataFrame({
        "id": [f"P{b:05d}" for b in uniq],
        "name": [f"规划师{b}" for b in uniq],
        "organization": [f"第{b % 17 + 1}设计院" for b in uniq],
        "disciplines": [["urban_planning"] for _ in uniq],
        "public_contact": [f"planner{b}@example.org" for b in uniq],
        "private_contact": [f"1380000{b % 10000:04d}" for b in uniq],
    })
    keep = rng.random(len(zones)) >= unassigned
    leads = pd.DataFrame({
        "zone_kind": zones["kind"].to_numpy()[keep],
        "zone_code": zones["code"].to_numpy()[keep],
        "planner_id": [f"P{b:05d}" for b in block[keep]],
    })
    return planners, leads
