"""Build the README walk-through's example files in data/examples/ from the demo's own data (run once; the
outputs are committed). Deterministic: running it again rewrites the same content.

    python3 data/examples/make_examples.py

* ``subdistricts.zip`` — a zipped Shapefile, GBK-encoded (``.cpg`` says GBK), CGCS2000 (EPSG:4490), fields
  ``XZQDM`` (code) and ``XZQMC`` (name) as Chinese boundary files name them: a fictional 2025 redrawing
  (区划调整) of the demo's 7 synthetic subdistricts of 青羊区 (510105): 第2 and 第5街道 merged into 第8街道,
  第3街道 split into 第9 (west) and 第10街道 (east), the other four unchanged.
* ``planners.csv`` — three fictional planners (``disciplines`` separated by ``;``).
* ``appointments.csv`` — their appointments on the 2025 subdistricts and a district.
* ``projects.csv`` — project sites as Baidu (BD-09) lon/lat, as copied from Baidu Maps.
* ``centres.csv`` — three life-circle centres in central Helsinki (WGS84), where the shipped walking network
  (data/helsinki.osm.pbf) is.
"""
from __future__ import annotations

import csv
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from zeren.geo.crs import wgs84_to_bd09

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "chengdu_hangzhou.gpkg"
DISTRICT = "510105"  # 青羊区

PLANNERS = [
    ("P101", "石清远（虚构）", "青羊区责任规划师团队（虚构示例团队）", "planning;heritage", "p101@planners.example.org",
     "+86-28-5550-0101"),
    ("P102", "杜若川（虚构）", "青羊区责任规划师团队（虚构示例团队）", "architecture;landscape;operations",
     "p102@planners.example.org", "+86-28-5550-0102"),
    ("P103", "何知秋（虚构）", "成都社区营造中心（虚构示例机构）", "sociology", "p103@planners.example.org", ""),
]

# Sites (WGS84 here; written as BD-09): name, type, lon, lat
PROJECTS = [
    ("宽窄巷子院落微更新", "micro-renewal", 104.0520, 30.6690),
    ("天府广场地下空间改造", "public-space", 104.0660, 30.6575),
    ("社区口袋公园", "park", 104.0200, 30.6950),
    ("老旧小区加装电梯", "housing", 104.1000, 30.6300),
    ("文殊院片区街巷整治", "street", 104.0725, 30.6760),
    ("金堂县社区养老服务中心", "facility", 104.4150, 30.8620),
]

CENTRES = [
    ("K1", "Kaisaniemi", 24.9440, 60.1700),
    ("K2", "Kruununhaka", 24.9500, 60.1750),
    ("K3", "Rautatientori", 24.9425, 60.1710),
]


def _halves(zone) -> tuple[shapely.Polygon, shapely.Polygon]:
    """Split a one-part polygon along a chord between two of its own vertices (no new vertex on its border,
    so the halves still meet their neighbours exactly): the chord that halves the area most evenly, western half
    first."""
    (part,) = shapely.get_parts(zone)
    ring = list(part.exterior.coords)[:-1]
    n, best = len(ring), None
    for i in range(n):
        for j in range(i + 2, min(n, i + n - 1)):
            a, b = shapely.Polygon(ring[i:j + 1]), shapely.Polygon(ring[j:] + ring[:i + 1])
            if not (a.is_valid and b.is_valid) or abs(a.area + b.area - part.area) > 1e-12:
                continue
            score = abs(a.area - b.area)
            if best is None or score < best[0]:
                best = (score, a, b)
    _, a, b = best
    return (a, b) if a.centroid.x <= b.centroid.x else (b, a)


def redrawn_subdistricts() -> gpd.GeoDataFrame:
    subs = gpd.read_file(SOURCE, layer="subdistricts_chengdu")
    subs = subs[subs["parent_code"] == DISTRICT].set_index("code").sort_index()
    geom = subs.geometry
    rows = [(c, subs.loc[c, "name"], geom[c]) for c in ("510105001", "510105004", "510105006", "510105007")]
    rows.append(("510105008", "青羊区第8街道", shapely.union(geom["510105002"], geom["510105005"])))
    west, east = _halves(geom["510105003"])
    rows += [("510105009", "青羊区第9街道", west), ("510105010", "青羊区第10街道", east)]
    gdf = gpd.GeoDataFrame({"XZQDM": [r[0] for r in rows], "XZQMC": [r[1] for r in rows]},
                           geometry=gpd.GeoSeries([shapely.force_2d(r[2]) for r in rows]), crs=subs.crs)
    gdf.geometry = gdf.geometry.apply(lambda g: g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]))
    return gdf


def write_shapefile_zip(gdf: gpd.GeoDataFrame, dest: Path, stem: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / f"{stem}.shp"
        gdf.to_file(shp, driver="ESRI Shapefile", engine="pyogrio", encoding="GBK")
        cpg = shp.with_suffix(".cpg")
        cpg.write_text("GBK", encoding="ascii")  # what Chinese GIS software writes
        dbf = shp.with_suffix(".dbf").read_bytes()
        assert "青羊区".encode("gbk") in dbf, "the .dbf is not GBK-encoded"
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(Path(tmp).iterdir()):
                info = zipfile.ZipInfo(part.name, date_time=(2025, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, part.read_bytes())


def write_csv(dest: Path, header: list[str], rows: list[tuple]) -> None:
    with dest.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    write_shapefile_zip(redrawn_subdistricts(), HERE / "subdistricts.zip", "qingyang_subdistricts_2025")
    write_csv(HERE / "planners.csv", ["id", "name", "organization", "disciplines", "public_contact",
                                      "private_contact"], PLANNERS)
    write_csv(HERE / "appointments.csv", ["planner_id", "zone_kind", "zone_code", "role", "start", "end"], [
        ("P101", "subdistrict", "510105009", "member", "2025-01-01", ""),
        ("P102", "subdistrict", "510105010", "member", "2025-01-01", ""),
        ("P103", "subdistrict", "510105008", "consultant", "2025-01-01", "2026-12-31"),
        ("P103", "district", "510105", "consultant", "2025-01-01", ""),
    ])
    lon, lat = wgs84_to_bd09(np.array([p[2] for p in PROJECTS]), np.array([p[3] for p in PROJECTS]))
    write_csv(HERE / "projects.csv", ["name", "type", "lon", "lat"],
              [(p[0], p[1], f"{x:.6f}", f"{y:.6f}") for p, x, y in zip(PROJECTS, lon, lat, strict=True)])
    write_csv(HERE / "centres.csv", ["id", "name", "lon", "lat"], CENTRES)
    for path in sorted(HERE.iterdir()):
        if path.suffix in (".zip", ".csv"):
            print(f"{path.relative_to(HERE.parent.parent)}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
