"""``life-circles generate`` and ``life-circles check`` run end to end; bad input gives exit 2 and a message."""
from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd

from zeren.api.cli.main import main as zeren_main


def main(argv) -> int:
    """``zeren life-circles ARGV``; an argparse usage error counts as its exit code (2)."""
    try:
        return zeren_main(["life-circles", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)
from zeren.layers.importer import read_zone_layer
from tests.lifecircle.conftest import HELSINKI


def _centres(tmp_path):
    path = tmp_path / "centres.csv"
    path.write_text("id,name,lon,lat\nK1,Kaisaniemi,24.944,60.170\nK2,Kruununhaka,24.950,60.175\n"
                    "X,Espoo,24.80,60.20\n", encoding="utf-8")
    return path


def test_generate_and_check_on_helsinki(tmp_path, capsys):
    out = tmp_path / "circles.gpkg"
    rc = main(["generate", str(_centres(tmp_path)), "--crs", "wgs84", "--network", str(HELSINKI),
               "--minutes", "10", "--speed-kmh", "4", "--buffer-m", "30", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "X Espoo" in captured.err and "300" in captured.err  # the far centre is reported
    circles = gpd.read_file(out)
    assert circles["code"].tolist() == ["K1", "K2"] and circles.crs.to_epsg() == 4326
    assert (circles["walk_m"].round(3) == round(10 * 4000 / 60, 3)).all() and (circles["buffer_m"] == 30).all()
    zones, report = read_zone_layer(out)  # imports as zones (zeren import-layer --kind life_circle)
    assert len(zones) == 2 and not report.rejected

    table = tmp_path / "check.csv"
    summary = tmp_path / "summary.json"
    page = tmp_path / "check.html"
    rc = main(["check", str(out), "--pois", str(HELSINKI), "--network", str(HELSINKI), "--out", str(table),
               "--summary-out", str(summary), "--map", str(page)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "幼儿园" in captured.out and "kindergarten" in captured.out
    result = pd.read_csv(table)
    assert result["code"].tolist() == ["K1", "K2"] and "geometry_wkt" in result.columns
    assert json.loads(summary.read_text("utf-8"))["n_circles"] == 2
    html = page.read_text("utf-8")  # the circles coloured by score, on a page that opens offline
    assert "Kaisaniemi" in html and "评分 / score" in html and 'src="http' not in html


def test_generate_buffer_without_network(tmp_path):
    out = tmp_path / "c.geojson"
    assert main(["generate", str(_centres(tmp_path)), "--crs", "wgs84", "--minutes", "5", "--out", str(out)]) == 0
    assert set(gpd.read_file(out)["radius_m"]) == {300}


def test_bad_input_exits_2_with_a_message(tmp_path, capsys):
    centres = str(_centres(tmp_path))
    out = str(tmp_path / "o.geojson")
    points = tmp_path / "points.geojson"
    gpd.read_file(HELSINKI, layer="points").iloc[:5][["geometry"]].to_file(points)
    cases = [
        (["generate", centres, "--crs", "wgs84", "--minutes", "0", "--out", out], "minutes"),
        (["generate", centres, "--crs", "wgs84", "--speed-kmh", "-2", "--network", str(HELSINKI), "--out", out],
         "speed_kmh"),
        (["generate", str(tmp_path / "none.csv"), "--crs", "wgs84", "--out", out], "no such"),
        (["generate", centres, "--out", out], "--crs"),
        (["generate", centres, "--crs", "wgs84", "--out", str(tmp_path / "o.txt")], "unsupported output"),
        (["generate", centres, "--crs", "wgs84", "--network", str(points), "--out", out], "line"),
        (["check", out, "--pois", str(HELSINKI), "--out", out], "no such"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        assert words in capsys.readouterr().err, argv
    far = tmp_path / "far.csv"
    far.write_text("lon,lat\n24.80,60.20\n")
    assert main(["generate", str(far), "--crs", "wgs84", "--network", str(HELSINKI), "--out", out]) == 2
    assert "no life circle" in capsys.readouterr().err
    assert main(["generate"]) == 2  # argparse usage error
