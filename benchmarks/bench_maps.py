"""Map page size and build time: Zeren's coverage map against folium's plain ``GeoJson`` of the raw layer.

    python benchmarks/bench_maps.py            # demo city + 300 / 3,000 / 30,000 synthetic zones
    python benchmarks/bench_maps.py --small    # demo city + 300 / 3,000 (CI)
    python benchmarks/bench_maps.py --json out.json

For each size: the inline page (what a standalone CLI page holds), the page that loads the layer by URL
(``MapSettings.geojson_url``; its GeoJSON payload size is reported too) and the baseline
``folium.GeoJson(raw layer)`` with a tooltip. The baseline for 30,000 zones is skipped when the
3,000-zone baseline predicts more than 60 s. Exit status 1 when a hard size limit is broken
(demo page >= 1.5 MB, any Zeren page >= 5 MB).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import folium  # noqa: E402
import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402

from zeren.maps import MapSettings, coverage_map, zones_geojson  # noqa: E402
from zeren.maps.synthetic import synthetic_planners_and_leads, synthetic_zones  # noqa: E402

DATA = ROOT / "data" / "chengdu_hangzhou.gpkg"
DEMO_LIMIT = 1_500_000
PAGE_LIMIT = 5_000_000
BASELINE_SKIP_S = 60.0


def _timed(func):
    t0 = time.perf_counter()
    out = func()
    return out, time.perf_counter() - t0


def zeren_page(zones, leads, planners, settings=None, districts=None) -> tuple[int, float]:
    def build():
        return coverage_map(zones, leads, planners, districts=districts,
                            settings=settings or MapSettings()).get_root().render()

    html, took = _timed(build)
    return len(html.encode("utf-8")), took


def folium_baseline(zones) -> tuple[int, float]:
    def build():
        m = folium.Map(location=[30.66, 104.06], zoom_start=10)
        raw = zones[["code", "name", "geometry"]]
        folium.GeoJson(raw, tooltip=folium.GeoJsonTooltip(["name", "code"])).add_to(m)
        return m.get_root().render()

    html, took = _timed(build)
    return len(html.encode("utf-8")), took


def run(sizes, *, baseline: bool = True) -> dict:
    results: dict = {"demo": None, "sizes": []}

    districts = gpd.read_file(DATA, layer="districts_chengdu").to_crs(4326)
    demo = gpd.read_file(DATA, layer="subdistricts_chengdu").to_crs(4326)
    demo["kind"] = "subdistrict"
    demo["block"] = np.arange(len(demo)) // 4
    planners, leads = synthetic_planners_and_leads(demo)
    zeren_page(demo.iloc[:5], leads, planners)  # warm-up (imports, pyproj caches)
    size, took = zeren_page(demo, leads, planners, districts=districts)
    b_size, b_took = folium_baseline(demo) if baseline else (None, None)
    results["demo"] = {"zones": len(demo), "page_bytes": size, "build_s": took,
                       "baseline_bytes": b_size, "baseline_s": b_took}

    last_baseline_rate = None
    for n in sizes:
        zones = synthetic_zones(n)
        planners, leads = synthetic_planners_and_leads(zones)
        row = {"zones": len(zones), "raw_vertices": int(zones.geometry.count_coordinates().sum())}
        row["inline_bytes"], row["inline_s"] = zeren_page(zones, leads, planners)
        url_settings = MapSettings(geojson_url="/api/zones.geojson?kind={kind}", max_inline_features=5000)
        if len(zones) > url_settings.max_inline_features:
            row["url_page_bytes"], row["url_page_s"] = zeren_page(zones, leads, planners, url_settings)
            payload, row["geojson_s"] = _timed(lambda: json.dumps(zones_geojson(zones), separators=(",", ":")))
            row["geojson_bytes"] = len(payload.encode("utf-8"))
        predicted = last_baseline_rate * len(zones) if last_baseline_rate else 0.0
        if not baseline:
            row["baseline"] = "not run"
        elif predicted > BASELINE_SKIP_S:
            row["baseline"] = f"skipped: predicted {predicted:.0f} s > {BASELINE_SKIP_S:.0f} s"
        else:
            row["baseline_bytes"], row["baseline_s"] = folium_baseline(zones)
            last_baseline_rate = row["baseline_s"] / len(zones)
        results["sizes"].append(row)
    return results


def _mb(v) -> str:
    return "-" if v is None else f"{v / 1e6:.2f} MB"


def _s(v) -> str:
    return "-" if v is None else f"{v:.2f} s"


def report(results: dict) -> str:
    d = results["demo"]
    lines = [
        f"demo coverage map ({d['zones']} Chengdu subdistricts + districts): {_mb(d['page_bytes'])} in "
        f"{_s(d['build_s'])} (targets < 1.5 MB, < 1 s); folium GeoJson baseline {_mb(d['baseline_bytes'])} "
        f"in {_s(d['baseline_s'])}",
        "",
        f"{'zones':>7} {'vertices':>9} | {'inline page':>12} {'time':>7} | {'URL page':>10} {'time':>7} "
        f"{'GeoJSON':>9} | {'folium GeoJson':>14} {'time':>7}",
    ]
    for r in results["sizes"]:
        base = (f"{_mb(r.get('baseline_bytes')):>14} {_s(r.get('baseline_s')):>7}" if "baseline_bytes" in r
                else f"{r.get('baseline', '-')}")
        lines.append(
            f"{r['zones']:>7} {r['raw_vertices']:>9} | {_mb(r['inline_bytes']):>12} {_s(r['inline_s']):>7} | "
            f"{_mb(r.get('url_page_bytes')):>10} {_s(r.get('url_page_s')):>7} {_mb(r.get('geojson_bytes')):>9} | "
            + base)
    return "\n".join(lines)


def violations(results: dict) -> list[str]:
    out = []
    if results["demo"]["page_bytes"] >= DEMO_LIMIT:
        out.append(f"demo page {results['demo']['page_bytes']} bytes >= {DEMO_LIMIT}")
    for r in results["sizes"]:
        for key in ("inline_bytes", "url_page_bytes"):
            if r.get(key) is not None and r[key] >= PAGE_LIMIT:
                out.append(f"{r['zones']} zones: {key} {r[key]} >= {PAGE_LIMIT}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="300 and 3,000 zones only (CI)")
    parser.add_argument("--no-baseline", action="store_true", help="skip folium's plain GeoJson baseline")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    sizes = (300, 3_000) if args.small else (300, 3_000, 30_000)
    results = run(sizes, baseline=not args.no_baseline)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    bad = violations(results)
    for v in bad:
        print("LIMIT BROKEN:", v, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
