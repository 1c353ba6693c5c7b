"""15-minute community life circles (15分钟社区生活圈) from centre points.

By walking network: the streets reachable within ``minutes`` at ``speed_kmh`` (including the reached part
of partly reached edges and the walk from the centre to its street), buffered by ``buffer_m`` and unioned.
By straight line when no network is given: a disc of the GB 50180-2018 radius (5/10/15 min: 300/500/1000 m).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from zeren.geo.kinds import LIFE_CIRCLE
from zeren.geo.lifecircle._crs import WGS84, bounds_wgs84, metric_crs, require_crs
from zeren.geo.lifecircle.errors import LifeCircleError
from zeren.geo.lifecircle.lines import substrings
from zeren.geo.lifecircle.polygons import union_by_row
from zeren.geo.lifecircle.network import (
    WalkNetwork,
    bounded_distances,
    build_network,
    insert_points,
    reached_pieces,
    snap,
)

DEFAULT_SPEED_KMH = 4.5
DEFAULT_BUFFER_M = 40.0
DEFAULT_MAX_SNAP_M = 300.0
# GB 50180-2018 《城市居住区规划设计标准》: walking radius of the 5/10/15-minute life circles.
GB50180_RADII_M: dict[int, float] = {5: 300.0, 10: 500.0, 15: 1000.0}

METHOD_LABELS = {
    "network": ("步行路网", "walking network"),
    "buffer": ("直线距离缓冲", "straight-line buffer"),
}

CIRCLE_COLUMNS = [
    "kind", "code", "name", "centre_code", "method", "method_label", "minutes", "speed_kmh", "walk_m",
    "radius_m", "buffer_m", "snap_m", "centre_lon", "centre_lat", "area_km2", "geometry",
]
SKIPPED_COLUMNS = ["code", "name", "reason", "distance_m"]


@dataclass
class LifeCircles:
    """Generated circles (EPSG:4326, one row per centre and minutes) and the centres that got none, with why."""

    circles: gpd.GeoDataFrame
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKIPPED_COLUMNS))
    streets: gpd.GeoDataFrame | None = None  # reached street pieces (code, geometry), when asked for


def walk_distance_m(minutes: float, speed_kmh: float = DEFAULT_SPEED_KMH) -> float:
    """Metres walked in ``minutes`` at ``speed_kmh`` (15 min at 4.5 km/h = 1125 m)."""
    return float(minutes) * float(speed_kmh) * 1000.0 / 60.0


def _minutes_list(minutes) -> list[float]:
    values = [minutes] if np.isscalar(minutes) else list(minutes)
    if not values:
        raise LifeCircleError("至少需要一个步行时间 / give at least one value of minutes")
    out = []
    for m in values:
        try:
            m = float(m)
        except (TypeError, ValueError):
            raise LifeCircleError(f"步行时间必须是数字 / minutes must be a number, got {m!r}") from None
        if not np.isfinite(m) or m <= 0:
            raise LifeCircleError(f"步行时间必须大于0 / minutes must be > 0, got {m:g}")
        out.append(m)
    return sorted(set(out))


def _positive(value, what_zh: str, what: str, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise LifeCircleError(f"{what_zh}必须是数字 / {what} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise LifeCircleError(f"{what_zh}必须大于0 / {what} must be {'>= 0' if allow_zero else '> 0'}, got {v:g}")
    return v


def _minute_label(m: float) -> str:
    return f"{int(m)}" if float(m).is_integer() else f"{m:g}"


def centre_table(centres: gpd.GeoDataFrame) -> pd.DataFrame:
    """``code`` (the centre's ``code`` or ``id``, else LC0001...) and ``name`` (else 生活圈 N) per centre."""
    n = len(centres)
    for col in ("code", "id"):
        if col in centres.columns:
            codes = centres[col]
            if codes.isna().any():
                row = int(np.flatnonzero(codes.isna().to_numpy())[0]) + 1
                raise LifeCircleError(f"中心点第{row}行缺少{col} / centre row {row} has no {col}")
            codes = codes.map(lambda c: str(int(c)) if isinstance(c, float) and c.is_integer() else str(c))
            break
    else:
        codes = pd.Series([f"LC{i:04d}" for i in range(1, n + 1)], index=centres.index)
    dup = codes[codes.duplicated()]
    if len(dup):
        raise LifeCircleError(f"中心点编码重复 / duplicate centre codes: {', '.join(sorted(set(dup))[:5])}")
    default_names = pd.Series([f"生活圈 {i}" for i in range(1, n + 1)], index=centres.index)
    if "name" in centres.columns:
        names = centres["name"].astype(object).where(centres["name"].notna() & (centres["name"].astype(str) != ""),
                                                     default_names).astype(str)
    else:
        names = default_names
    return pd.DataFrame({"code": codes.to_numpy(), "name": names.to_numpy()})


def _centre_points(centres) -> gpd.GeoSeries:
    if not isinstance(centres, gpd.GeoDataFrame | gpd.GeoSeries):
        raise LifeCircleError("中心点必须是 GeoDataFrame / centres must be a GeoDataFrame of points with a CRS")
    require_crs(centres, "中心点 centres")
    geoms = centres.geometry if isinstance(centres, gpd.GeoDataFrame) else centres
    values = np.asarray(geoms.values, dtype=object)
    present = ~(shapely.is_missing(values) | shapely.is_empty(values))
    types = shapely.get_type_id(values)
    bad = present & (types != 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        kind = shapely.get_type_id(values[bad][0])
        raise LifeCircleError(f"中心点必须是点要素：第{row}行不是 / centres must be points: row {row} is geometry type id {kind}")
    return geoms


def _clip_geometry(clip, crs: pyproj.CRS):
    """The clip polygons as a metric array (one per input polygon)."""
    if clip is None:
        return None
    if isinstance(clip, shapely.Geometry):
        raise LifeCircleError("裁剪范围需带坐标系 / give the clip polygon as a GeoDataFrame/GeoSeries with a CRS")
    if isinstance(clip, gpd.GeoDataFrame):
        clip = clip.geometry
    require_crs(clip, "裁剪范围 clip")
    values = np.asarray(clip.to_crs(crs).values, dtype=object)
    values = values[~(shapely.is_missing(values) | shapely.is_empty(values))]
    values = values[np.isin(shapely.get_type_id(values), (3, 6))]
    if len(values) == 0:
        raise LifeCircleError("裁剪范围中没有面要素 / the clip layer has no polygons")
    return shapely.make_valid(values)


def _apply_clip(geoms: np.ndarray, centres_xy: np.ndarray, clip_polys, by_centre: bool) -> np.ndarray:
    if clip_polys is None or len(geoms) == 0:
        return geoms
    if not by_centre:
        return shapely.intersection(geoms, shapely.union_all(clip_polys))
    # Each circle is cut to the polygon holding its centre (e.g. its own subdistrict); none -> empty.
    tree = shapely.STRtree(clip_polys)
    ci, pi = tree.query(shapely.points(centres_xy), predicate="intersects")
    holder = np.full(len(geoms), None, dtype=object)
    order = np.lexsort((pi, ci))
    ci, pi = ci[order], pi[order]
    first = np.r_[True, ci[1:] != ci[:-1]] if len(ci) else np.zeros(0, bool)
    holder[ci[first]] = clip_polys[pi[first]]
    has = ~shapely.is_missing(holder)
    out = np.full(len(geoms), shapely.Polygon(), dtype=object)
    out[has] = shapely.intersection(geoms[has], holder[has])
    return out


def _finish(rows: pd.DataFrame, geoms: np.ndarray, crs: pyproj.CRS) -> gpd.GeoDataFrame:
    geoms = shapely.make_valid(geoms) if len(geoms) else geoms
    frame = gpd.GeoDataFrame(rows.reset_index(drop=True), geometry=geoms, crs=crs)
    frame["area_km2"] = shapely.area(geoms) / 1e6 if len(geoms) else []
    frame = frame.to_crs(WGS84)
    return frame[CIRCLE_COLUMNS]


def _empty_circles() -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in CIRCLE_COLUMNS if c != "geometry"},
                             geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)
    return frame[CIRCLE_COLUMNS]


def _row_codes(codes: pd.Series, minutes: list[float]) -> list[str]:
    if len(minutes) == 1:
        return list(codes)
    return [f"{c}-{_minute_label(m)}min" for m in minutes for c in codes]


def _skipped(table: pd.DataFrame, mask: np.ndarray, reason: str, distance=None) -> pd.DataFrame:
    out = table.loc[mask, ["code", "name"]].copy()
    out["reason"] = reason
    out["distance_m"] = np.nan if distance is None else np.asarray(distance)[mask]
    return out.reset_index(drop=True)


def buffer_life_circles(centres, *, minutes=15, radius_m=None, radii: dict | None = None, clip=None,
                        clip_by_centre: bool = False) -> LifeCircles:
    """Straight-line circles: a disc of ``radius_m`` (default GB 50180-2018 radius for the minutes) per centre."""
    minutes = _minutes_list(minutes)
    radii = dict(GB50180_RADII_M if radii is None else radii)
    if radius_m is not None:
        if len(minutes) > 1:
            raise LifeCircleError("多个时间时请用 radii 指定各自半径 / with several minutes give radii={minutes: metres}")
        radius_for = {minutes[0]: _positive(radius_m, "半径", "radius_m")}
    else:
        radius_for = {}
        for m in minutes:
            r = radii.get(m, radii.get(int(m)) if float(m).is_integer() else None)
            if r is None:
                raise LifeCircleError(
                    f"{_minute_label(m)}分钟没有默认半径（GB 50180-2018 只规定5/10/15分钟）/ no default radius for "
                    f"{_minute_label(m)} minutes (GB 50180-2018 gives 5/10/15 min): pass radius_m")
            radius_for[m] = _positive(r, "半径", "radius_m")
    geoms = _centre_points(centres)
    table = centre_table(centres if isinstance(centres, gpd.GeoDataFrame) else gpd.GeoDataFrame(geometry=centres))
    values = np.asarray(geoms.values, dtype=object)
    present = ~(shapely.is_missing(values) | shapely.is_empty(values))
    skipped = _skipped(table, ~present, "几何为空 / empty geometry")
    if not present.any():
        return LifeCircles(_empty_circles(), skipped)
    pts = geoms[present]
    crs = metric_crs(bounds_wgs84(pts))
    xy = shapely.get_coordinates(pts.to_crs(crs).values)
    lonlat = shapely.get_coordinates(pts.to_crs(WGS84).values)
    table = table.loc[present].reset_index(drop=True)
    clip_polys = _clip_geometry(clip, crs)
    rows, geom_parts = [], []
    for m in minutes:
        r = radius_for[m]
        discs = shapely.buffer(shapely.points(xy), r, quad_segs=16)
        geom_parts.append(_apply_clip(discs, xy, clip_polys, clip_by_centre))
        rows.append(pd.DataFrame({
            "kind": LIFE_CIRCLE, "centre_code": table["code"], "name": table["name"], "method": "buffer",
            "method_label": " / ".join(METHOD_LABELS["buffer"]), "minutes": m, "speed_kmh": np.nan,
            "walk_m": np.nan, "radius_m": r, "buffer_m": np.nan, "snap_m": np.nan,
            "centre_lon": lonlat[:, 0], "centre_lat": lonlat[:, 1]}))
    frame = pd.concat(rows, ignore_index=True)
    frame.insert(1, "code", _row_codes(table["code"], minutes))
    return LifeCircles(_finish(frame, np.concatenate(geom_parts), crs), skipped)


def _whole_edge_polygons(net: WalkNetwork, row: np.ndarray, edge: np.ndarray, buffer_m: float, quad_segs: int,
                         tile_m: float | None, min_tile_edges: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Buffered whole edges per circle row, with whole tiles merged: ``(polygons, rows)``.

    Edges are grouped in square tiles (by midpoint). A circle that reaches every edge of a dense tile (at
    least ``min_tile_edges``, e.g. a mesh of OSM footways) gets the tile's precomputed union instead of
    the tile's edges one by one: the same shape, far less union work.
    """
    if len(edge) == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    used, inv = np.unique(edge, return_inverse=True)
    if not tile_m:
        return shapely.buffer(net.geometry[used], buffer_m, quad_segs=quad_segs)[inv], row
    mid = shapely.get_coordinates(shapely.line_interpolate_point(net.geometry, 0.5, normalized=True))
    cell = np.floor(mid / tile_m).astype(np.int64)
    _, tile = np.unique(cell, axis=0, return_inverse=True)
    tile = tile.ravel()
    per_tile = np.bincount(tile)
    # (row, tile) pairs whose reached whole edges are all of the tile's edges.
    key = row.astype(np.int64) * len(per_tile) + tile[edge]
    pair, pair_inv, pair_count = np.unique(key, return_inverse=True, return_counts=True)
    complete = pair_count == per_tile[pair % len(per_tile)]
    complete &= per_tile[pair % len(per_tile)] >= min_tile_edges  # few simple buffers union faster alone
    single = ~complete[pair_inv.ravel()]
    tiles_needed = np.unique(pair[complete] % len(per_tile))
    in_needed = np.isin(tile, tiles_needed)
    tile_edges = np.flatnonzero(in_needed)
    tile_poly = np.full(len(per_tile), None, dtype=object)
    if len(tile_edges):
        merged = union_by_row(shapely.buffer(net.geometry[tile_edges], buffer_m, quad_segs=quad_segs),
                              np.searchsorted(tiles_needed, tile[tile_edges]), len(tiles_needed))
        tile_poly[tiles_needed] = merged
    e_used, e_inv = np.unique(edge[single], return_inverse=True)
    singles = shapely.buffer(net.geometry[e_used], buffer_m, quad_segs=quad_segs)[e_inv]
    return (np.r_[tile_poly[pair[complete] % len(per_tile)], singles],
            np.r_[pair[complete] // len(per_tile), row[single]])


def network_life_circles(centres, network, *, minutes=15, speed_kmh: float = DEFAULT_SPEED_KMH,
                         buffer_m: float = DEFAULT_BUFFER_M, max_snap_m: float = DEFAULT_MAX_SNAP_M,
                         count_access: bool = True, clip=None, clip_by_centre: bool = False,
                         keep_streets: bool = False, quad_segs: int = 4, batch: int = 64,
                         tile_m: float | None = 200.0, min_tile_edges: int = 30) -> LifeCircles:
    """Walking-network circles: reachable street pieces within the walk, buffered by ``buffer_m`` and unioned.

    ``network`` is a GeoDataFrame of street lines (any CRS) or a prebuilt ``WalkNetwork``. Each centre is
    put on its nearest street (split at the projected point); centres farther than ``max_snap_m`` from any
    street are listed in ``skipped``. With ``count_access`` the walk from the centre to its street uses up
    part of the walking budget and is part of the circle.
    """
    minutes = _minutes_list(minutes)
    speed = _positive(speed_kmh, "步行速度", "speed_kmh")
    buffer_m = _positive(buffer_m, "缓冲距离", "buffer_m")
    max_snap_m = _positive(max_snap_m, "吸附距离上限", "max_snap_m", allow_zero=True)
    net = network if isinstance(network, WalkNetwork) else build_network(network)
    geoms = _centre_points(centres)
    table = centre_table(centres if isinstance(centres, gpd.GeoDataFrame) else gpd.GeoDataFrame(geometry=centres))
    pts = np.asarray(geoms.to_crs(net.crs).values, dtype=object)
    present = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    where = snap(net, pts, max_snap_m)
    far = present & ~where.ok
    skipped = pd.concat([
        _skipped(table, ~present, "几何为空 / empty geometry"),
        _skipped(table, far, f"距最近道路超过{max_snap_m:g}米（可能在路网范围外）/ farther than {max_snap_m:g} m "
                             f"from any street (outside the network?)", where.distance),
    ], ignore_index=True)
    ok = np.flatnonzero(where.ok)
    if len(ok) == 0:
        return LifeCircles(_empty_circles(), skipped)

    split, nodes = insert_points(net, where)
    walks = np.array([walk_distance_m(m, speed) for m in minutes])
    access = where.distance[ok] if count_access else np.zeros(len(ok))
    centre_xy = shapely.get_coordinates(pts[ok])
    snapped_xy = where.point_xy[ok]
    k, n_min = len(ok), len(minutes)

    # Reached pieces for every (minutes, centre) row: one bounded Dijkstra pass per batch of centres.
    piece_rows, piece_edges, piece_start, piece_end = [], [], [], []
    for block in bounded_distances(split, nodes[ok], max(walks.max() - access.min(), 0.0), batch=batch):
        rows = block.rows
        for j, walk in enumerate(walks):
            r, e, s, t = reached_pieces(split, block, np.maximum(walk - access[rows], -1.0))
            piece_rows.append(j * k + rows[r])
            piece_edges.append(e)
            piece_start.append(s)
            piece_end.append(t)
    row = np.concatenate(piece_rows)
    edge = np.concatenate(piece_edges)
    start, end = np.concatenate(piece_start), np.concatenate(piece_end)

    # The walk from each centre to its street (its reachable part), so the circle holds its centre.
    n_rows = n_min * k
    conn_len = np.minimum(np.tile(where.distance[ok], n_min), np.repeat(walks, k))
    connectors = substrings(shapely.linestrings(np.stack([np.tile(centre_xy, (n_min, 1)),
                                                          np.tile(snapped_xy, (n_min, 1))], axis=1)),
                            0.0, conn_len)

    # Buffer the partial pieces and connectors one by one, whole edges once each (or whole tiles, see
    # _whole_edge_polygons), and union per circle.
    full = (start <= 0) & (end >= split.length[edge])
    full_poly, full_row = _whole_edge_polygons(split, row[full], edge[full], buffer_m, quad_segs, tile_m,
                                                min_tile_edges)
    part_geom = substrings(split.geometry[edge[~full]], start[~full], end[~full])
    part_buf = shapely.buffer(part_geom, buffer_m, quad_segs=quad_segs)
    conn_buf = shapely.buffer(connectors, buffer_m, quad_segs=quad_segs)  # a point when the length is 0
    circles = union_by_row(np.r_[full_poly, part_buf, conn_buf],
                           np.r_[full_row, row[~full], np.arange(n_rows)], n_rows)

    tab = table.iloc[ok].reset_index(drop=True)
    centre_ll = gpd.GeoSeries(shapely.points(centre_xy), crs=net.crs).to_crs(WGS84)
    lonlat = shapely.get_coordinates(centre_ll.values)
    clip_polys = _clip_geometry(clip, net.crs)
    circles = _apply_clip(circles, np.tile(centre_xy, (n_min, 1)), clip_polys, clip_by_centre)
    frame = pd.DataFrame({
        "kind": LIFE_CIRCLE,
        "centre_code": np.tile(tab["code"].to_numpy(), n_min),
        "name": np.tile(tab["name"].to_numpy(), n_min),
        "method": "network",
        "method_label": " / ".join(METHOD_LABELS["network"]),
        "minutes": np.repeat(minutes, k),
        "speed_kmh": speed,
        "walk_m": np.repeat(walks, k),
        "radius_m": np.nan,
        "buffer_m": buffer_m,
        "snap_m": np.tile(where.distance[ok], n_min),
        "centre_lon": np.tile(lonlat[:, 0], n_min),
        "centre_lat": np.tile(lonlat[:, 1], n_min),
    })
    codes = _row_codes(tab["code"], minutes)
    frame.insert(1, "code", codes)
    streets = None
    if keep_streets:
        geom = np.r_[split.geometry[edge[full]], part_geom, connectors]
        street_row = np.r_[row[full], row[~full], np.arange(n_rows)]
        keep = shapely.length(geom) > 0
        streets = gpd.GeoDataFrame({"code": np.asarray(codes, dtype=object)[street_row[keep]],
                                    "part": np.r_[np.full(full.sum(), "street"), np.full((~full).sum(), "street"),
                                                  np.full(n_rows, "access")][keep]},
                                   geometry=geom[keep], crs=net.crs).to_crs(WGS84)
    return LifeCircles(_finish(frame, circles, net.crs), skipped, streets)


def life_circles(centres, network=None, *, minutes=15, speed_kmh: float = DEFAULT_SPEED_KMH,
                 buffer_m: float = DEFAULT_BUFFER_M, max_snap_m: float = DEFAULT_MAX_SNAP_M,
                 radius_m=None, clip=None, clip_by_centre: bool = False, **kwargs) -> LifeCircles:
    """Life circles by walking network when ``network`` is given, else by straight-line buffer."""
    if network is None:
        return buffer_life_circles(centres, minutes=minutes, radius_m=radius_m, clip=clip,
                                   clip_by_centre=clip_by_centre)
    return network_life_circles(centres, network, minutes=minutes, speed_kmh=speed_kmh, buffer_m=buffer_m,
                                max_snap_m=max_snap_m, clip=clip, clip_by_centre=clip_by_centre, **kwargs)


def centres_from_circles(circles: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """The centre of each circle (``centre_lon``/``centre_lat`` when present, else the circle's inner point)."""
    require_crs(circles, "生活圈 circles")
    if {"centre_lon", "centre_lat"} <= set(circles.columns):
        lon = pd.to_numeric(circles["centre_lon"], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(circles["centre_lat"], errors="coerce").to_numpy(dtype=float)
        if np.isfinite(lon).all() and np.isfinite(lat).all():
            return gpd.GeoSeries(shapely.points(lon, lat), index=circles.index, crs=WGS84)
    return gpd.GeoSeries(shapely.point_on_surface(circles.geometry.values), index=circles.index, crs=circles.crs)
