"""Life-circle health check (生活圈体检): which daily services each circle has, lacks, and how far they are.

Categories come as a table (see data/facility_categories.csv): ``category, name_zh, name_en, required,
max_distance_m``. POIs are points with a ``category``; those without one, or with one not in the table,
are counted and reported, never fatal.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from zeren.geo.lifecircle._crs import WGS84, bounds_wgs84, metric_crs, require_crs
from zeren.geo.lifecircle.circles import DEFAULT_MAX_SNAP_M, centres_from_circles
from zeren.geo.lifecircle.errors import LifeCircleError
from zeren.geo.lifecircle.network import WalkNetwork, bounded_distances, build_network, insert_points, snap

CATEGORY_COLUMNS = ["category", "name_zh", "name_en", "required", "max_distance_m"]
DEFAULT_SEARCH_M = 3000.0
_TRUE = {"1", "true", "yes", "y", "t", "是", "required", "必配"}
_FALSE = {"0", "false", "no", "n", "f", "否", "", "nan", "none", "optional", "选配"}


@dataclass
class HealthCheck:
    """Per-circle results (EPSG:4326), a summary, and the POIs that could not be used (with why)."""

    circles: gpd.GeoDataFrame
    summary: dict
    unused_pois: pd.DataFrame = field(default_factory=pd.DataFrame)
    categories: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary_text(self) -> str:
        """A short bilingual report (Chinese first)."""
        s = self.summary
        share = "—" if s["share_complete"] is None else f"{s['share_complete']:.0%}"
        lines = [
            f"生活圈 {s['n_circles']} 个，配套齐全 {s['n_complete']} 个（{share}）/ "
            f"{s['n_circles']} circles, {s['n_complete']} complete ({share})",
            f"设施点 {s['pois_total']} 个：已用 {s['pois_used']}，无类别 {s['pois_without_category']}，"
            f"未知类别 {s['pois_unknown_category']} / POIs: {s['pois_total']} total, {s['pois_used']} used, "
            f"{s['pois_without_category']} without category, {s['pois_unknown_category']} with unknown category",
            f"距离计算 / distances: {s['distance_method']}",
        ]
        if s["unknown_categories"]:
            unknown = ", ".join(f"{k} ({v})" for k, v in s["unknown_categories"].items())
            lines.append(f"未知类别 / unknown categories: {unknown}")
        labels = dict(zip(self.categories.get("category", []), self.categories.get("name_zh", [])))
        for cat, n in s["circles_missing"].items():
            if n:
                lines.append(f"缺少{labels.get(cat, cat)}的生活圈 / circles lacking {cat}: {n}")
        return "\n".join(lines)


def validate_categories(categories: pd.DataFrame) -> pd.DataFrame:
    """Check and normalise the category table (required -> bool, max_distance_m -> float, NaN when blank)."""
    if not isinstance(categories, pd.DataFrame):
        raise LifeCircleError("设施类别表必须是表格 / categories must be a DataFrame")
    missing = [c for c in ("category", "required") if c not in categories.columns]
    if missing:
        raise LifeCircleError(f"设施类别表缺少列 / category table lacks columns: {', '.join(missing)} "
                              f"(expected {', '.join(CATEGORY_COLUMNS)})")
    out = categories.copy()
    out["category"] = out["category"].astype(str).str.strip()
    if (out["category"] == "").any() or out["category"].isin(["nan", "None"]).any():
        row = int(np.flatnonzero(out["category"].isin(["", "nan", "None"]).to_numpy())[0]) + 1
        raise LifeCircleError(f"设施类别表第{row}行没有类别 / category table row {row} has no category")
    dup = out["category"][out["category"].duplicated()]
    if len(dup):
        raise LifeCircleError(f"设施类别重复 / duplicate categories: {', '.join(sorted(set(dup)))}")
    req = out["required"].astype(str).str.strip().str.lower()
    bad = ~req.isin(_TRUE | _FALSE)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise LifeCircleError(f"设施类别表第{row}行 required 无效 / category table row {row}: required must be "
                              f"yes/no (1/0), got {out['required'].iloc[row - 1]!r}")
    out["required"] = req.isin(_TRUE).to_numpy()
    for col in ("name_zh", "name_en"):
        if col not in out.columns:
            out[col] = out["category"]
        out[col] = out[col].astype(object).where(out[col].notna(), out["category"]).astype(str)
    if "max_distance_m" not in out.columns:
        out["max_distance_m"] = np.nan
    raw = out["max_distance_m"]
    blank = raw.isna() | (raw.astype(str).str.strip() == "")
    dist = pd.to_numeric(raw.where(~blank), errors="coerce")
    bad = (~blank & ~(dist > 0)).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        raise LifeCircleError(f"设施类别表第{row}行 max_distance_m 无效 / category table row {row}: max_distance_m "
                              f"must be a positive number or blank, got {raw.iloc[row - 1]!r}")
    out["max_distance_m"] = dist.astype(float)
    return out.reset_index(drop=True)


def _poi_categories(pois: gpd.GeoDataFrame, known: pd.Index, category_col: str):
    """Category per POI (str or None), plus masks for usable / no category / unknown category / no geometry."""
    if category_col not in pois.columns:
        raise LifeCircleError(f"设施点没有类别列 {category_col!r} / POIs have no {category_col!r} column "
                              f"(columns: {', '.join(map(str, pois.columns))})")
    raw = pois[category_col]
    cat = raw.astype(object).where(raw.notna(), None)
    cat = cat.map(lambda v: v if v is None else str(v).strip())
    cat = cat.where(cat.astype(str) != "", None)
    values = np.asarray(pois.geometry.values, dtype=object)
    no_geom = shapely.is_missing(values) | shapely.is_empty(values)
    no_cat = cat.isna().to_numpy()
    unknown = ~no_cat & ~cat.isin(known).to_numpy()
    return cat, ~(no_geom | no_cat | unknown), no_cat, unknown, no_geom


def _as_points(values: np.ndarray) -> np.ndarray:
    """Points as they are; areas and lines by a point inside them."""
    pts = values.copy()
    non_point = shapely.get_type_id(values) != 0
    if non_point.any():
        pts[non_point] = shapely.point_on_surface(values[non_point])
    return pts


def health_check(circles: gpd.GeoDataFrame, pois: gpd.GeoDataFrame, categories: pd.DataFrame, *,
                 network=None, category_col: str = "category", search_m: float = DEFAULT_SEARCH_M,
                 max_snap_m: float = DEFAULT_MAX_SNAP_M) -> HealthCheck:
    """For each circle: count per category, categories missing, nearest distance per category, a score.

    The score is the share of required categories present in the circle; a circle is complete when none is
    missing. Distances run from the circle's centre (``centre_lon``/``centre_lat``) to the nearest facility
    of each category: along the network (plus the walk to/from the street, searched up to ``search_m``)
    when ``network`` is given, else straight-line. ``beyond_standard`` lists required categories whose
    nearest facility is farther than the table's ``max_distance_m``.
    """
    cats = validate_categories(categories)
    if not isinstance(circles, gpd.GeoDataFrame) or not isinstance(pois, gpd.GeoDataFrame):
        raise LifeCircleError("生活圈和设施点必须是 GeoDataFrame / circles and POIs must be GeoDataFrames")
    require_crs(circles, "生活圈 circles")
    require_crs(pois, "设施点 POIs")
    if "code" not in circles.columns:
        raise LifeCircleError("生活圈缺少 code 列 / circles lack a 'code' column")
    search_m = float(search_m)
    if not np.isfinite(search_m) or search_m <= 0:
        raise LifeCircleError(f"搜索距离必须大于0 / search_m must be > 0, got {search_m:g}")

    cat, usable, no_cat, unknown, no_geom = _poi_categories(pois, pd.Index(cats["category"]), category_col)
    circle_geoms = np.asarray(circles.geometry.values, dtype=object)
    n, m = len(circles), len(cats)
    net = None
    if network is not None:
        net = network if isinstance(network, WalkNetwork) else build_network(network)
        crs = net.crs
    else:
        extent = pd.concat([circles.geometry.to_crs(WGS84), pois.geometry.to_crs(WGS84)]) if len(pois) else \
            circles.geometry.to_crs(WGS84)
        extent = extent[~(extent.is_empty | extent.isna())]
        crs = metric_crs(bounds_wgs84(extent)) if len(extent) else None

    counts = np.zeros((n, m), dtype=np.int64)
    nearest = np.full((n, m), np.nan)
    off_network = np.zeros(len(pois), dtype=bool)
    if n and usable.any() and crs is not None:
        code_of = pd.Series(np.arange(m), index=cats["category"])
        poi_cat = code_of[cat[usable].to_numpy()].to_numpy()
        poi_xy = np.asarray(pois.geometry[usable].to_crs(crs).values, dtype=object)
        poi_pts = _as_points(poi_xy)
        circ = np.asarray(circles.geometry.to_crs(crs).values, dtype=object)
        ci, pi = shapely.STRtree(poi_pts).query(circ, predicate="intersects")
        np.add.at(counts, (ci, poi_cat[pi]), 1)
        centres = np.asarray(centres_from_circles(circles).to_crs(crs).values, dtype=object)
        if net is None:
            nearest = _straight_nearest(centres, poi_pts, poi_cat, m)
        else:
            nearest, off = _network_nearest(net, centres, poi_pts, poi_cat, m, search_m, max_snap_m)
            off_network[np.flatnonzero(usable)] = off
        nearest[shapely.is_missing(centres) | shapely.is_empty(centres)] = np.nan

    required = cats["required"].to_numpy()
    present = counts > 0
    missing_mask = ~present & required[None, :]
    n_required = int(required.sum())
    score = (present & required[None, :]).sum(axis=1) / n_required if n_required else np.ones(n)
    limit = cats["max_distance_m"].to_numpy()
    beyond = required[None, :] & np.isfinite(limit)[None, :] & ~(nearest <= limit[None, :])

    out = pd.DataFrame({"code": circles["code"].astype(str).to_numpy()})
    if "name" in circles.columns:
        out["name"] = circles["name"].to_numpy()
    for j, c in enumerate(cats["category"]):
        out[f"n_{c}"] = counts[:, j]
    for j, c in enumerate(cats["category"]):
        out[f"dist_{c}_m"] = np.round(nearest[:, j], 1)
    names = cats["category"].to_numpy(dtype=object)
    names_zh = cats["name_zh"].to_numpy(dtype=object)
    out["missing"] = _join_rows(missing_mask, names, ", ")
    out["missing_zh"] = _join_rows(missing_mask, names_zh, "、")
    out["beyond_standard"] = _join_rows(beyond, names, ", ")
    out["n_missing"] = missing_mask.sum(axis=1)
    out["score"] = score
    out["complete"] = ~missing_mask.any(axis=1)
    result = gpd.GeoDataFrame(out, geometry=circle_geoms, crs=circles.crs).to_crs(WGS84)

    unknown_counts = cat[unknown].value_counts().sort_index()
    reasons = np.select([no_geom, no_cat, unknown, off_network],
                        ["无几何 / no geometry", "无类别 / no category", "未知类别 / unknown category",
                         f"距道路超过{max_snap_m:g}米 / farther than {max_snap_m:g} m from any street"], "")
    unused = pd.DataFrame({"row": np.arange(len(pois)) + 1, "category": cat.to_numpy(), "reason": reasons})
    unused = unused[unused["reason"] != ""].reset_index(drop=True)
    summary = {
        "n_circles": n,
        "n_complete": int(out["complete"].sum()),
        "share_complete": float(out["complete"].mean()) if n else None,
        "mean_score": float(out["score"].mean()) if n else None,
        "required_categories": list(names[required]),
        "circles_missing": {c: int(missing_mask[:, j].sum()) for j, c in enumerate(names) if required[j]},
        "pois_total": int(len(pois)),
        "pois_used": int(usable.sum()),
        "pois_without_category": int(no_cat.sum()),
        "pois_unknown_category": int(unknown.sum()),
        "pois_without_geometry": int((no_geom & ~no_cat & ~unknown).sum()),
        "pois_off_network": int(off_network.sum()),
        "unknown_categories": {str(k): int(v) for k, v in unknown_counts.items()},
        "distance_method": "network" if net is not None else "straight_line",
    }
    return HealthCheck(result, summary, unused, cats)


def _join_rows(mask: np.ndarray, labels: np.ndarray, sep: str) -> list[str]:
    """Per row, the labels where ``mask`` is true, joined (loop over rows of a small boolean matrix)."""
    return [sep.join(labels[row]) for row in mask]


def _straight_nearest(centres: np.ndarray, pois: np.ndarray, poi_cat: np.ndarray, m: int) -> np.ndarray:
    """Straight-line distance from each centre to the nearest POI of each category."""
    out = np.full((len(centres), m), np.nan)
    good = ~(shapely.is_missing(centres) | shapely.is_empty(centres))
    for j in np.unique(poi_cat):  # loop over categories (a dozen), vectorised over centres
        tree = shapely.STRtree(pois[poi_cat == j])
        (ci, _), dist = tree.query_nearest(centres[good], return_distance=True, all_matches=False)
        col = np.full(good.sum(), np.nan)
        col[ci] = dist
        out[good, j] = col
    return out


def _network_nearest(net: WalkNetwork, centres, pois, poi_cat, m: int, search_m: float, max_snap_m: float):
    """Network distance (access walks included) from each centre to the nearest POI of each category."""
    points = np.r_[centres, pois]
    where = snap(net, points, max_snap_m)
    split, nodes = insert_points(net, where)
    k = len(centres)
    c_ok, p_ok = where.ok[:k], where.ok[k:]
    out = np.full((k, m), np.nan)
    if not c_ok.any() or not p_ok.any():
        return out, ~p_ok
    p_nodes, p_access, p_cat = nodes[k:][p_ok], where.distance[k:][p_ok], poi_cat[p_ok]
    c_idx = np.flatnonzero(c_ok)
    for block in bounded_distances(split, nodes[:k][c_idx], search_m):
        rows = block.rows
        d = block.at(p_nodes) + p_access[None, :] + where.distance[c_idx[rows]][:, None]
        d[d > search_m] = np.inf
        best = np.full((len(rows), m), np.inf)
        for j in np.unique(p_cat):  # per category, vectorised over centres x POIs
            best[:, j] = d[:, p_cat == j].min(axis=1)
        best[~np.isfinite(best)] = np.nan
        out[c_idx[rows]] = best
    return out, ~p_ok
