"""The coverage commands: pure formatting helpers, and the commands on a demo store (layers.demo)."""
from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest

from zeren.api.cli import coverage as cli_coverage
from zeren.api.cli.main import main


def test_display_width_counts_cjk_twice():
    assert cli_coverage.display_width("abc") == 3
    assert cli_coverage.display_width("锦江区") == 6
    assert cli_coverage.display_width("金堂县第1街道") == 13


def test_format_value():
    assert cli_coverage.format_value(None) == "—"
    assert cli_coverage.format_value(float("nan")) == "—"
    assert cli_coverage.format_value(pd.NA) == "—"
    assert cli_coverage.format_value(float("inf"), ".2f") == "∞"
    assert cli_coverage.format_value(1234.5678, ",.1f") == "1,234.6"
    assert cli_coverage.format_value("锦江区") == "锦江区"


def test_format_table_aligns_bilingual_headers_and_cjk():
    rows = pd.DataFrame({"code": ["510104", "510121"], "name": ["锦江区", "金堂县很长的名字"],
                         "pct": [85.71428, float("nan")]})
    text = cli_coverage.format_table(rows, [("code", "代码", "code", ""), ("name", "名称", "name", ""),
                                            ("pct", "面积 %", "area %", ".1f")])
    lines = text.splitlines()
    assert lines[0].startswith("代码") and lines[1].startswith("code")  # Chinese first
    assert lines[3].endswith("85.7") and lines[4].endswith("—")
    widths = {cli_coverage.display_width(line) for line in lines}
    assert len(widths) == 1  # every line as wide as the others: columns line up on a terminal


def test_summary_and_workload_json_are_json_safe():
    from zeren.api.jsonable import jsonable

    payload = jsonable({"a": float("nan"), "b": float("inf"), "c": pd.NA, "d": [1.5, None],
                        "e": pd.Timestamp("2024-01-01")})
    assert payload == {"a": None, "b": None, "c": None, "d": [1.5, None], "e": "2024-01-01T00:00:00"}
    json.dumps(payload, allow_nan=False)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    from zeren.api.service.demo import build_demo

    path = tmp_path_factory.mktemp("demo") / "demo.gpkg"
    build_demo(path).close()
    return str(path)


def test_gaps_command_writes_both_layers(demo_store, tmp_path, capsys):
    out = tmp_path / "gaps.gpkg"
    assert main(["gaps", "--store", demo_store, "--as-of", "2025-01-01", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "无责任规划师的单元 / units without a lead planner" in printed
    assert "510121001" in printed  # 金堂县 is left without subdistrict leads by the demo
    layers = {name for name, _ in pyogrio.list_layers(out)}
    assert layers == {"gaps", "units_without_planner"}
    units = gpd.read_file(out, layer="units_without_planner")
    assert units["code"].str.startswith("510121").sum() == 16
    gaps = gpd.read_file(out, layer="gaps")
    assert set(gaps["reason"]) <= {"unit_without_planner", "sliver", "outside_units"} and len(gaps)


def test_gaps_command_geojson_within(demo_store, tmp_path, capsys):
    out = tmp_path / "gaps.geojson"
    assert main(["gaps", "--store", demo_store, "--within", "510129", "--as-of", "2025-01-01",
                 "--out", str(out)]) == 0
    gaps = gpd.read_file(out)
    assert set(gaps["district_codes"]) == {"510129"}
    assert "510129" in capsys.readouterr().out


def test_overlaps_command(demo_store, tmp_path, capsys):
    out = tmp_path / "overlaps.geojson"
    assert main(["overlaps", "--store", demo_store, "--tolerance-m2", "1", "--out", str(out)]) == 0
    assert "重叠 / overlapping pairs" in capsys.readouterr().out
    assert out.exists()


def test_coverage_command_table_json_and_files(demo_store, tmp_path, capsys):
    assert main(["coverage", "--store", demo_store, "--as-of", "2025-01-01"]) == 0
    table = capsys.readouterr().out
    assert "全市" in table and "510121" in table and "生活圈 %" in table
    out = tmp_path / "coverage.json"
    assert main(["coverage", "--store", demo_store, "--as-of", "2025-01-01", "--json", "--out", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == json.loads(out.read_text(encoding="utf-8"))
    rows = {r["code"]: r for r in data["rows"]}
    assert rows["510121"]["units_with_lead"] == 0
    assert rows["510121"]["area_covered_pct"] == pytest.approx(0, abs=1e-6)
    assert data["totals"]["units_total"] == 241
    csv = tmp_path / "coverage.csv"
    assert main(["coverage", "--store", demo_store, "--as-of", "2025-01-01", "--out", str(csv)]) == 0
    frame = pd.read_csv(csv, dtype={"code": str})
    assert len(frame) == len(rows) + 1 and frame["code"].iloc[-1] == "ALL"


def test_workload_command(demo_store, capsys):
    assert main(["workload", "--store", demo_store, "--weight", "zones"]) == 0
    text = capsys.readouterr().out
    assert "基尼系数 Gini" in text and "最重 / most loaded" in text
    assert main(["workload", "--store", demo_store, "--json", "--as-of", "2025-01-01"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["imbalance"]["weight"] == "area" and data["imbalance"]["planners"] > 0
    assert {"planner_id", "zones_lead", "lead_area_km2", "projects_open"} <= set(data["planners"][0])


@pytest.mark.parametrize("argv, message", [
    (["gaps", "--kind", "street", "--out", "x.geojson"], "unknown zone kind 'street'; valid kinds"),
    (["gaps", "--within", "999", "--out", "x.geojson"], "'999' not found"),
    (["gaps", "--as-of", "2019-01-01", "--out", "x.geojson"], "no zone edition is in force on 2019-01-01"),
    (["gaps", "--as-of", "soon", "--out", "x.geojson"], "not a date"),
    (["gaps", "--out", "x.shp"], "unsupported output format .shp"),
    (["coverage", "--by", "street"], "unknown zone parent kind 'street'"),
    (["coverage", "--out", "x.xlsx"], "use .csv, .json"),
])
def test_bad_input_exits_2_with_a_message(demo_store, tmp_path, capsys, argv, message):
    argv = [a if a not in ("x.geojson", "x.shp", "x.xlsx") else str(tmp_path / a) for a in argv]
    assert main(argv + ["--store", demo_store]) == 2
    assert message in capsys.readouterr().err


def test_missing_store_exits_2(tmp_path, capsys):
    assert main(["workload", "--store", str(tmp_path / "none.gpkg")]) == 2
    assert "no store at" in capsys.readouterr().err
