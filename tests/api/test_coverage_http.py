"""``/coverage/*`` on the demo city: the same answers as ``zeren gaps | overlaps | coverage | workload``."""
from __future__ import annotations

import json

import geopandas as gpd
import pytest

from zeren.api.cli.main import main as cli_main

AS_OF = "2025-06-30"  # before the demo's lead handover of 2025-07-01


def _cli_json(capsys, *argv) -> dict:
    capsys.readouterr()
    assert cli_main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("params", [{"as_of": AS_OF}, {}, {"within": "510121", "as_of": AS_OF},
                                    {"within": "510105", "as_of": AS_OF}, {"sliver_m2": "0", "as_of": AS_OF}])
def test_gaps_equal_the_cli(client, demo_path, tmp_path, capsys, params):
    r = client.get("/coverage/gaps", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    out = tmp_path / "gaps.gpkg"
    argv = ["gaps", "--store", str(demo_path), "--out", str(out)]
    for key, flag in (("as_of", "--as-of"), ("within", "--within"), ("sliver_m2", "--sliver-m2")):
        if key in params:
            argv += [flag, params[key]]
    capsys.readouterr()
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    cli_units = gpd.read_file(out, layer="units_without_planner")
    cli_gaps = gpd.read_file(out, layer="gaps")

    units = body["units_without_planner"]
    assert [u["code"] for u in units] == sorted(cli_units["code"].astype(str))
    assert units or params.get("within") == "510105"  # 青羊区 has a lead in every subdistrict
    assert len(units) == body["totals"]["units_without_planner"]
    assert len(body["features"]) == len(cli_gaps) == body["totals"]["gap_polygons"]
    http_area = sum(f["properties"]["area_m2"] for f in body["features"])
    assert http_area == pytest.approx(float(cli_gaps["area_m2"].sum()), rel=1e-9)
    assert sorted(f["properties"]["gap_id"] for f in body["features"]) == sorted(cli_gaps["gap_id"].tolist())
    assert sorted(f["id"] for f in body["features"]) == sorted(cli_gaps["gap_id"].tolist())
    assert sum(u["area_m2"] for u in units) == pytest.approx(float(cli_units["area_m2"].sum()), rel=1e-9)
    # the totals are the ones the CLI prints
    totals = body["totals"]
    assert f"有责任规划师 / with a lead: {totals['units_with_lead']}" in printed
    assert f"covered: {totals['covered_pct']:.2f}%" in printed
    assert body["within"] == params.get("within") and body["nothing_to_cover"] is False
    for f in body["features"]:
        p = f["properties"]
        assert p["reason"] in ("unit_without_planner", "sliver", "outside_units") and p["reason_zh"] and p["reason_en"]
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_gaps_name_the_uncovered_districts(client):
    body = client.get("/coverage/gaps", params={"as_of": AS_OF}).json()
    districts = {u["district_code"] for u in body["units_without_planner"]}
    assert {"510121", "510129"} <= districts  # the demo's districts without subdistrict planners
    assert 0 < body["totals"]["covered_pct"] < 100


def test_overlaps_equal_the_cli(client, demo_path, tmp_path, capsys):
    for kind in ("subdistrict", "life_circle"):
        r = client.get("/coverage/overlaps", params={"kind": kind, "as_of": AS_OF})
        assert r.status_code == 200, r.text
        body = r.json()
        out = tmp_path / f"overlaps-{kind}.gpkg"
        capsys.readouterr()
        assert cli_main(["overlaps", "--store", str(demo_path), "--kind", kind, "--as-of", AS_OF,
                         "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        cli = gpd.read_file(out, layer="overlaps")
        assert len(body["features"]) == len(cli) == body["totals"]["overlaps"]
        assert sorted((f["properties"]["code_a"], f["properties"]["code_b"]) for f in body["features"]) == \
            sorted(zip(cli["code_a"], cli["code_b"]))
        assert f"conflicting lead appointments: {len(body['conflicts'])}" in printed
        assert body["totals"]["zones_checked"] > 0 and isinstance(body["conflicts"], list)
    # the demo's life circles (1 km discs around neighbouring centres) overlap each other
    assert body["features"] and body["totals"]["overlap_area_m2"] > 0


def test_summary_and_workload_equal_the_cli(client, demo_path, capsys):
    r = client.get("/coverage/summary", params={"as_of": AS_OF})
    assert r.status_code == 200, r.text
    cli = _cli_json(capsys, "coverage", "--store", str(demo_path), "--as-of", AS_OF, "--json")
    assert r.json() == cli
    assert len(cli["rows"]) == 20 and cli["totals"]["units_total"] == 241

    for weight in ("area", "population", "zones", "projects"):
        r = client.get("/coverage/workload", params={"as_of": AS_OF, "weight": weight})
        assert r.status_code == 200, r.text
        cli = _cli_json(capsys, "workload", "--store", str(demo_path), "--as-of", AS_OF, "--weight", weight,
                        "--json")
        assert r.json() == cli
        assert r.json()["imbalance"]["weight"] == weight
    assert all("private_contact" not in p for p in r.json()["planners"])


def test_coverage_defaults_to_today(client):
    for path in ("/coverage/gaps", "/coverage/overlaps", "/coverage/summary", "/coverage/workload"):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)


@pytest.mark.parametrize("path, params, status, words", [
    ("/coverage/gaps", {"kind": "parish"}, 422, "query.kind"),
    ("/coverage/gaps", {"within": "999999"}, 422, "'999999' not found"),
    ("/coverage/gaps", {"as_of": "1950-01-01"}, 422, "no zone edition is in force"),
    ("/coverage/gaps", {"as_of": "2025-02-30"}, 422, "not a date"),
    ("/coverage/gaps", {"sliver_m2": "-1"}, 422, "sliver_m2"),
    ("/coverage/gaps", {"sliver_m2": "nan"}, 422, "finite"),
    ("/coverage/gaps", {"sliver_m2": "inf"}, 422, "finite"),
    ("/coverage/overlaps", {"kind": "x"}, 422, "query.kind"),
    ("/coverage/overlaps", {"tolerance_m2": "-5"}, 422, "tolerance_m2"),
    ("/coverage/overlaps", {"as_of": "1950-01-01"}, 422, "no zone edition is in force"),
    ("/coverage/summary", {"by": "province"}, 422, "query.by"),
    ("/coverage/summary", {"kind": "district", "by": "subdistrict"}, 422, "not a parent kind"),
    ("/coverage/summary", {"as_of": "1950-01-01"}, 422, "no zone edition is in force"),
    ("/coverage/workload", {"weight": "beauty"}, 422, "query.weight"),
    ("/coverage/workload", {"as_of": "1950-01-01"}, 422, "no zone edition is in force"),
    ("/coverage/workload", {"as_of": "3000-01-01"}, 422, "out of range"),
])
def test_bad_input_is_a_clear_4xx(client, path, params, status, words):
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    body = r.json()
    assert words in body["detail"] and body["error"]


def test_every_kind_and_grouping_answers_without_a_server_error(client):
    from zeren.geo.kinds import ALL_KINDS

    for kind in ALL_KINDS:
        for path, params in (("/coverage/gaps", {"kind": kind}), ("/coverage/overlaps", {"kind": kind}),
                             ("/coverage/gaps", {"kind": kind, "within": "510105"})):
            r = client.get(path, params=params)
            assert r.status_code in (200, 404, 422), (path, params, r.text)
        for by in ALL_KINDS:
            r = client.get("/coverage/summary", params={"kind": kind, "by": by})
            assert r.status_code in (200, 422), (kind, by, r.text)


def test_coverage_is_documented(client):
    spec = client.get("/openapi.json").json()
    for path in ("/coverage/gaps", "/coverage/overlaps", "/coverage/summary", "/coverage/workload"):
        op = spec["paths"][path]["get"]
        assert op["summary"] and op["tags"] == ["coverage"]
        for param in op["parameters"]:
            assert param.get("description") and "example" in param, (path, param["name"])
