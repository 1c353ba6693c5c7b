"""``zeren assign`` at disk speed, on the demo city: list columns encoded as JSON text by vectorised string
operations (the same text ``json.dumps`` writes), files read and written chunk by chunk (the same output
whatever the chunk size), GeoParquet 1.1 in and out, and outputs that are complete or absent, never half written."""
from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely

from tests.layers._support import cli, demo_store, demo_template  # noqa: F401 - fixtures
from zeren.api.service.workspace import Workspace
from zeren.geo.answer import assignment_columns, json_literals

AS_OF = "2025-03-01"
LIST_COLUMNS = ("planners", "consultations", "zones")


def _sites(n: int, seed: int = 3) -> gpd.GeoDataFrame:
    """Points over the demo city and beyond it (some uncovered), polygons across zone borders, and a line."""
    rng = np.random.default_rng(seed)
    pts = shapely.points(rng.uniform(103.6, 104.6, n), rng.uniform(30.3, 31.0, n))
    polys = shapely.buffer(pts[: max(1, n // 10)], 0.01, quad_segs=4)
    line = [shapely.LineString([(104.02, 30.64), (104.09, 30.69)])]
    geoms = np.concatenate([pts, polys, np.array(line, dtype=object)])
    return gpd.GeoDataFrame({"site_id": [f"S{i:05d}" for i in range(len(geoms))], "名称": "地块"},
                            geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"))


@pytest.fixture(scope="module")
def workspace(demo_template):  # noqa: F811
    return Workspace.open(demo_template)


@pytest.mark.parametrize("only_points", [False, True], ids=["mixed", "points"])
def test_json_list_columns_are_what_json_dumps_writes(workspace, only_points):
    """Lists are encoded once per group of sites matching the same zones (for points, the zones list too) and
    gathered: the text is still json.dumps of each site's own list."""
    sites = _sites(3000)
    if only_points:
        sites = sites[sites.geom_type == "Point"]
    result = workspace.catalogue.assign(np.asarray(sites.geometry.to_numpy(), dtype=object), pd.Timestamp(AS_OF))
    python = assignment_columns(result)
    text = assignment_columns(result, lists="json")
    consulted = 0
    for column in LIST_COLUMNS:
        expected = [json.dumps(v, ensure_ascii=False) for v in python[column]]
        assert list(text[column]) == expected, column
        assert [json.loads(t) for t in text[column]] == list(python[column])
    consulted = sum(t != "[]" for t in text["consultations"])
    assert consulted > 0 and (text["zones"] != "[]").sum() > len(sites) // 2  # the test sees real lists
    pd.testing.assert_frame_equal(python.drop(columns=list(LIST_COLUMNS)), text.drop(columns=list(LIST_COLUMNS)))


def test_json_literals_escape_like_json_dumps():
    every = [chr(c) for c in range(0x3100)] + [chr(c) + "x" for c in (0x2028, 0x2029, 0xFEFF, 0x1F600, 0xD800)]
    values = np.array(['a"b', "c\\d", "换行\n", None, "\u202e", "\x00", "plain", *every], dtype=object)
    assert list(json_literals(values)) == [json.dumps(v, ensure_ascii=False) if v is not None else "null"
                                           for v in values]


def _assign(capsys, src, out, store, *extra):
    run = cli(capsys, "assign", src, "--crs", "wgs84", "--as-of", AS_OF, "--out", out, "--store", store, *extra)
    assert run.rc == 0, run.err
    return run


def _read(path) -> pd.DataFrame:
    if str(path).endswith(".csv"):
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = gpd.read_parquet(path) if str(path).endswith(".parquet") else gpd.read_file(path)
    frame["wkt"] = shapely.to_wkt(frame.geometry.to_numpy(), rounding_precision=6)
    return pd.DataFrame(frame.drop(columns="geometry"))


@pytest.mark.parametrize("src_suffix", [".csv", ".gpkg", ".parquet", ".geojson"])
@pytest.mark.parametrize("out_suffix", [".csv", ".gpkg", ".parquet", ".geojson"])
def test_chunked_runs_write_what_one_chunk_writes(demo_template, tmp_path, capsys, src_suffix, out_suffix):  # noqa: F811
    sites = _sites(400)
    src = tmp_path / f"sites{src_suffix}"
    if src_suffix == ".csv":
        pd.DataFrame({"site_id": sites["site_id"], "名称": sites["名称"],
                      "wkt": shapely.to_wkt(sites.geometry.to_numpy())}).to_csv(src, index=False)
    elif src_suffix == ".parquet":
        sites.to_parquet(src)
    else:
        sites.to_file(src)
    whole, chunked = tmp_path / f"whole{out_suffix}", tmp_path / f"chunked{out_suffix}"
    _assign(capsys, src, whole, demo_template)
    _assign(capsys, src, chunked, demo_template, "--chunk-rows", "37")
    a, b = _read(whole), _read(chunked)
    assert len(a) == len(sites) and len(b) == len(sites)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
    zones = a["zones"].map(json.loads) if out_suffix == ".csv" else a["zones"].map(
        lambda v: json.loads(v) if isinstance(v, str) else v)
    assert zones.map(len).gt(0).sum() > len(sites) // 2
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_geoparquet_output_is_geoparquet_1_1(demo_template, tmp_path, capsys):  # noqa: F811
    src = tmp_path / "sites.gpkg"
    _sites(50).to_file(src)
    out = tmp_path / "assigned.parquet"
    _assign(capsys, src, out, demo_template)
    geo = json.loads(pq.read_schema(out).metadata[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    back = gpd.read_parquet(out)
    assert back.crs.to_epsg() == 4326 and len(back) == 56
    assert back["covered"].dtype == bool and back["covered"].any()
    assert json.loads(back["zones"].iloc[0])[0]["kind"] in ("subdistrict", "district", "community")


def test_a_failed_run_leaves_the_output_as_it_was(demo_template, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "out.csv"
    out.write_text("previous result\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    rows = [f"S{i},104.0{i % 10},30.6{i % 10}" for i in range(60)] + ["BAD,30.66,104.05"]  # lat/lon swapped
    bad.write_text("site_id,lon,lat\n" + "\n".join(rows) + "\n", encoding="utf-8")
    run = cli(capsys, "assign", bad, "--crs", "wgs84", "--out", out, "--store", demo_template, "--chunk-rows", "10")
    assert run.rc == 2 and "row 62:" in run.err and "nothing was written" in run.err
    assert out.read_text(encoding="utf-8") == "previous result\n"
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_geopackage_output_keeps_its_other_layers(demo_template, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "work.gpkg"
    gpd.GeoDataFrame({"note": ["mine"]}, geometry=[shapely.Point(104, 30.6)], crs=4326).to_file(out, layer="notes")
    src = tmp_path / "sites.csv"
    src.write_text("site_id,lon,lat\nA,104.05,30.66\n", encoding="utf-8")
    _assign(capsys, src, out, demo_template)
    _assign(capsys, src, out, demo_template)  # the second run replaces its own layer
    layers = {str(n) for n in pyogrio.list_layers(out)[:, 0]}
    assert layers == {"notes", "assigned"}
    assert len(gpd.read_file(out, layer="assigned")) == 1


def test_csv_output_keeps_the_input_text_and_writes_booleans_as_before(demo_template, tmp_path, capsys):  # noqa: F811
    src = tmp_path / "sites.csv"
    src.write_text("site_id,lon,lat,code\nA,104.05,30.66,007\nB,103.00,29.00,010\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    _assign(capsys, src, out, demo_template)
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert table["code"].tolist() == ["007", "010"]  # text stays text: leading zeros kept
    assert table["covered"].tolist() == ["True", "False"]
    # B lies 150 km from the demo city: outside every zone, too far for a nearest planner to be offered
    assert table.loc[1, "zones"] == "[]" and table.loc[1, "nearest_zone_code"] == ""
    assert table.loc[1, "nearest_distance_m"] == ""


def test_csv_output_cells_are_those_of_the_per_row_writer(demo_template, tmp_path, capsys):  # noqa: F811
    """Row for row, column for column, the text the earlier writer (one json.dumps per list cell, pandas'
    to_csv) wrote: the columnar path changes the speed, not the file."""
    from zeren.api.service import assign as service
    from zeren.api.service.lookup import input_crs
    from zeren.layers.importer import read_table

    sites = _sites(600)
    src = tmp_path / "sites.csv"
    pd.DataFrame({"site_id": sites["site_id"], "名称": sites["名称"],
                  "wkt": shapely.to_wkt(sites.geometry.to_numpy())}).to_csv(src, index=False)
    out = tmp_path / "new.csv"
    _assign(capsys, src, out, demo_template, "--chunk-rows", "101")

    frame, crs = read_table(src, crs="wgs84")
    ws = Workspace.open(demo_template)
    batch = service.assign_sites(ws, np.asarray(frame.geometry.to_numpy(), dtype=object), input_crs(crs), AS_OF)
    ws.close()
    old = pd.DataFrame(frame.drop(columns="geometry")).reset_index(drop=True).join(batch.columns)
    for column in LIST_COLUMNS:
        old[column] = [json.dumps(v, ensure_ascii=False) for v in old[column]]
    reference = tmp_path / "old.csv"
    old.to_csv(reference, index=False, encoding="utf-8")
    a = pd.read_csv(reference, dtype=str, keep_default_na=False)
    b = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert (b["nearest_distance_m"] != "").sum() > 0 and b["covered"].eq("True").sum() > 0
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("suffix", [".gpkg", ".csv", ".parquet"])
def test_an_empty_layer_keeps_its_columns(tmp_path, suffix):
    from zeren.layers.writers import write_layers

    empty = gpd.GeoDataFrame({"code": pd.Series([], dtype=object), "area_m2": pd.Series([], dtype=float)},
                             geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    out = write_layers(tmp_path / f"empty{suffix}", {"units": empty})
    back = _read(out)
    assert len(back) == 0 and {"code", "area_m2"} <= set(back.columns)


@pytest.mark.parametrize("suffix", [".csv", ".gpkg", ".parquet"])
def test_skip_bad_in_chunks_writes_every_row_with_one_error_column(demo_template, tmp_path, capsys, suffix):  # noqa: F811
    src = tmp_path / "sites.csv"
    rows = [f"S{i},104.0{i % 10},30.6{i % 10}" for i in range(30)]
    rows[25] = "BAD,30.66,104.05"  # lat/lon swapped, in the third chunk only
    src.write_text("site_id,lon,lat\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / f"out{suffix}"
    _assign(capsys, src, out, demo_template, "--chunk-rows", "10", "--skip-bad")
    back = _read(out)
    assert len(back) == 30
    errors = back["error"].replace("", None)
    assert errors.notna().sum() == 1 and "swapped" in str(errors.dropna().iloc[0])


def _lonlat_csv(path, n: int, seed: int = 11) -> None:
    """Points over the demo city and beyond (uncovered), on its historic areas (consultations), with bad rows:
    empty, text, out of range, lat/lon swapped (and a number with spaces around it, which pandas reads)."""
    rng = np.random.default_rng(seed)
    lon = np.round(rng.uniform(103.6, 104.6, n), 6).astype(str).astype(object)
    lat = np.round(rng.uniform(30.3, 31.0, n), 6).astype(str).astype(object)
    lon[:3], lat[:3] = ["104.0530", "104.0840", "104.0725"], ["30.6695", "30.6555", "30.6765"]  # historic areas
    for i, (x, y) in zip((5, 401, 702, 1333, 1999), (("", ""), ("abc", "30.6"), ("200", "30"),
                                                      ("30.66", "104.05"), (" 104.06", "30.65 "))):
        lon[i], lat[i] = x, y
    pd.DataFrame({"site_id": [f"S{i}" for i in range(n)], "lon": lon, "lat": lat, "note": "地块, \"引号\""}).to_csv(
        path, index=False)


def _reference(src, store, out) -> pd.DataFrame:
    """What the simple in-memory path writes: the whole file read as one frame of points, ``assign_sites``
    with Python lists, one json.dumps per list cell, the error column, the frame writer (``LayerWriter.write``:
    CSV through pandas' frame to Arrow, GeoPackage through geopandas/pyogrio)."""
    from zeren.api.service import assign as service
    from zeren.api.service.lookup import input_crs
    from zeren.layers.importer import read_table
    from zeren.layers.writers import LayerWriter

    frame, crs = read_table(src, crs="wgs84")
    ws = Workspace.open(store)
    batch = service.assign_sites(ws, np.asarray(frame.geometry.to_numpy(), dtype=object), input_crs(crs), AS_OF,
                                 where=[f"row {i + 2}" for i in range(len(frame))])
    ws.close()
    table = pd.DataFrame(frame.drop(columns="geometry")).reset_index(drop=True).join(batch.columns)
    for column in LIST_COLUMNS:
        table[column] = pd.Series([json.dumps(v, ensure_ascii=False) for v in table[column]], dtype=object)
    table["error"] = pd.Series(batch.problems, dtype=object)
    with LayerWriter(out, "assigned", csv_wkt_column=None, geometry_type="Point") as writer:
        writer.write(gpd.GeoDataFrame(table, geometry=gpd.GeoSeries(batch.wgs84, crs="EPSG:4326")))
    return table


@pytest.mark.parametrize("suffix", [".csv", ".gpkg", ".parquet", ".geojson"])
def test_lonlat_csv_at_disk_speed_writes_what_the_in_memory_path_writes(demo_template, tmp_path,  # noqa: F811
                                                                        capsys, monkeypatch, suffix):
    """The Arrow path of a lon/lat CSV (coordinates to numpy, no geometry per point, Arrow columns, chunks
    of 700 rows assigned 300 at a time) against the frame path: row for row, column for column, with
    uncovered points, consultations, bad rows under --skip-bad and chunk boundaries."""
    from zeren.api.service import assign as service

    monkeypatch.setattr(service, "CHUNK", 300)
    src = tmp_path / "sites.csv"
    _lonlat_csv(src, 2500)
    out, ref = tmp_path / f"new{suffix}", tmp_path / f"old{suffix}"
    run = _assign(capsys, src, out, demo_template, "--chunk-rows", "700", "--skip-bad")
    expected = _reference(src, demo_template, ref)
    assert "errors: 4" in run.out  # " 104.06" is a number to pandas (and to the Arrow path, which falls back)
    assert expected["error"].notna().sum() == 4 and expected["covered"].sum() > 500
    assert expected.loc[1999, "error"] is None and bool(expected.loc[1999, "covered"])
    assert (expected["consultations"] != "[]").sum() >= 3 and expected["nearest_distance_m"].notna().sum() > 200
    if suffix == ".csv":
        assert out.read_bytes() == ref.read_bytes()
        assert pd.read_csv(out, dtype=str, keep_default_na=False).equals(
            pd.read_csv(ref, dtype=str, keep_default_na=False))
        return
    a, b = _read(ref), _read(out)
    pd.testing.assert_frame_equal(a, b)
    if suffix == ".gpkg":
        info_a, info_b = pyogrio.read_info(ref, layer="assigned"), pyogrio.read_info(out, layer="assigned")
        for key in ("fields", "dtypes", "geometry_type", "crs", "features", "geometry_name"):
            assert np.array_equal(np.asarray(info_a[key]), np.asarray(info_b[key])), key
    elif suffix == ".parquet":
        assert pq.read_schema(out).remove_metadata() == pq.read_schema(ref).remove_metadata()
        assert json.loads(pq.read_schema(out).metadata[b"geo"]) == json.loads(pq.read_schema(ref).metadata[b"geo"])


def test_a_large_file_prepares_the_index_while_it_is_read_and_writes_the_same(demo_template, tmp_path,  # noqa: F811
                                                                             capsys, monkeypatch):
    """A file of many points has the point grid and the nearest-zone segments built on a thread while its first
    chunk is read (here "many" is lowered to 500 points so the demo city takes that path): the same rows as
    the frame path, and the preparation really ran before the first chunk was assigned."""
    import zeren.geo.assign as geo_assign

    monkeypatch.setattr(geo_assign, "_PARALLEL_MIN_SITES", 500)
    calls = []
    prepare = geo_assign.prepare_for_points

    def spy(index, resp, n):  # records whether the grid and the segments were built by it
        prepare(index, resp, n)
        calls.append("point_grid" in vars(index) and "lead_segments" in vars(resp))

    monkeypatch.setattr(geo_assign, "prepare_for_points", spy)
    src = tmp_path / "sites.csv"
    _lonlat_csv(src, 2500)
    out, ref = tmp_path / "new.csv", tmp_path / "old.csv"
    _assign(capsys, src, out, demo_template, "--chunk-rows", "700", "--skip-bad")
    assert len(calls) == 1 and calls[0]
    _reference(src, demo_template, ref)
    assert out.read_bytes() == ref.read_bytes()


def test_zeren_assign_imports_neither_the_web_server_nor_the_map_pages():
    """A fresh ``zeren assign`` process registers its own command only: none of the seconds of imports of the
    web server, the map pages or the coverage reports it never uses (and the other commands still parse)."""
    import subprocess
    import sys

    script = ("import sys; from zeren.api.cli.main import build_parser; "
              "args = build_parser('assign').parse_args(['assign', 'x.csv', '--out', 'y.csv']); "
              "assert args.func.__name__ == 'cmd_assign'; "
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'uvicorn', 'starlette', 'folium', "
              "'jinja2', 'branca', 'networkx'}))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
    from zeren.api.cli.main import build_parser

    assert build_parser("demo").parse_args(["demo"]).command == "demo"  # every other command: all registered


def test_csv_floats_are_written_as_pandas_writes_them_at_every_magnitude(tmp_path):
    """A float column through the columnar CSV writer: the text pandas' to_csv writes (Python's repr), from
    5e-324 to 1e300, whole numbers of 10 digits and more (which Arrow alone writes as 1e+10) included."""
    from zeren.layers.writers import write_layers

    rng = np.random.default_rng(2)
    values = np.concatenate([10.0 ** np.arange(-12, 22), 1.5 * 10.0 ** np.arange(-12, 22),
                             np.round(rng.uniform(0, 1, 200) * 10.0 ** rng.integers(-6, 20, 200), 1),
                             [0.0, -0.0, 5e-324, 1e300, -2.5e11, 12345678901.0, 99999999999999.9, np.nan]])
    names = [f"r{i}" for i in range(len(values))]
    frame = gpd.GeoDataFrame({"name": names, "v": values},
                             geometry=gpd.GeoSeries([None] * len(values), crs="EPSG:4326"))
    ours, theirs = tmp_path / "ours.csv", tmp_path / "pandas.csv"
    write_layers(ours, {"t": frame}, csv_wkt_column=None)
    pd.DataFrame({"name": names, "v": values}).to_csv(theirs, index=False)
    import csv

    def cells(path):
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.reader(f))

    assert len(cells(ours)) == len(values) + 1
    assert cells(ours) == cells(theirs)


def _point_sites(n: int, seed: int = 12) -> gpd.GeoDataFrame:
    """Points over the demo city and beyond (uncovered), on its historic areas (consultations), with typed
    columns (text, whole numbers, floats with gaps, booleans) and bad rows: a missing point, an empty one, one
    out of range, one with lat/lon swapped."""
    rng = np.random.default_rng(seed)
    x, y = np.round(rng.uniform(103.6, 104.6, n), 6), np.round(rng.uniform(30.3, 31.0, n), 6)
    x[:3], y[:3] = [104.0530, 104.0840, 104.0725], [30.6695, 30.6555, 30.6765]  # historic areas
    x[702], y[702] = 200.0, 30.0
    x[1333], y[1333] = 30.66, 104.05
    geoms = shapely.points(x, y)
    geoms[5] = None
    geoms[401] = shapely.Point()
    return gpd.GeoDataFrame({"site_id": [f"S{i}" for i in range(n)], "名称": "地块, \"引号\"",
                             "floor": np.arange(n) % 7, "area": np.where(np.arange(n) % 5 == 0, np.nan, 12.5),
                             "public": np.arange(n) % 2 == 0},
                            geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"))


@pytest.mark.parametrize("src_suffix", [".gpkg", ".parquet", ".wkt.csv", ".geojson"])
@pytest.mark.parametrize("out_suffix", [".csv", ".gpkg", ".parquet"])
def test_point_files_on_the_arrow_path_write_what_the_frame_path_writes(demo_template, tmp_path, capsys,  # noqa: F811
                                                                        monkeypatch, src_suffix, out_suffix):
    """GeoPackage, GeoParquet and WKT-CSV points read as Arrow tables (coordinates from the WKB / WKT in one
    vectorised call, no frame per chunk) against the frame path (a GeoDataFrame per chunk, assign_sites): row
    for row, column for column, with uncovered points, consultations, bad rows under --skip-bad and chunk
    boundaries (chunks of 700 rows assigned 300 at a time)."""
    from zeren.api.service import assign as service

    monkeypatch.setattr(service, "CHUNK", 300)
    sites = _point_sites(2500)
    src = tmp_path / f"sites{src_suffix}"
    if src_suffix == ".parquet":
        sites.to_parquet(src)
    elif src_suffix in (".gpkg", ".geojson"):
        sites.to_file(src, **({"layer": "sites"} if src_suffix == ".gpkg" else {}))
    else:
        wkt = shapely.to_wkt(sites.geometry.to_numpy(), rounding_precision=-1)
        pd.DataFrame(sites.drop(columns="geometry")).assign(wkt=np.where(pd.isna(wkt), "", wkt)).to_csv(
            src, index=False)
    frames = _count_frame_chunks(monkeypatch)
    out, ref = tmp_path / f"new{out_suffix}", tmp_path / f"old{out_suffix}"
    run = _assign(capsys, src, out, demo_template, "--chunk-rows", "700", "--skip-bad")
    assert frames == []  # every chunk on the Arrow path
    monkeypatch.setattr(service, "_point_file", lambda table: False)
    _assign(capsys, src, ref, demo_template, "--chunk-rows", "700", "--skip-bad")
    assert sum(frames) == len(sites)  # the reference took the frame path
    assert "errors: 4" in run.out
    a, b = _read(ref), _read(out)
    assert len(a) == len(sites) and (a["consultations"] != "[]").sum() >= 3
    assert a["error"].replace("", None).notna().sum() == 4 and (a["covered"].astype(str) == "True").sum() > 500
    if out_suffix == ".csv":
        assert out.read_bytes() == ref.read_bytes()
        return
    pd.testing.assert_frame_equal(a, b)
    if out_suffix == ".gpkg":
        info_a, info_b = pyogrio.read_info(ref, layer="assigned"), pyogrio.read_info(out, layer="assigned")
        for key in ("fields", "dtypes", "geometry_type", "crs", "features", "geometry_name"):
            assert np.array_equal(np.asarray(info_a[key]), np.asarray(info_b[key])), key
    else:
        assert pq.read_schema(out).remove_metadata() == pq.read_schema(ref).remove_metadata()
        assert json.loads(pq.read_schema(out).metadata[b"geo"]) == json.loads(pq.read_schema(ref).metadata[b"geo"])


def _count_frame_chunks(monkeypatch) -> list[int]:
    """The sizes of the chunks that take the frame path (``_assign_frame``), appended as they run."""
    from zeren.api.service import assign as service

    frames = []
    real = service._assign_frame

    def frame_path(*args, **kwargs):
        frames.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "_assign_frame", frame_path)
    return frames


def test_a_wkt_csv_chunk_of_other_geometries_takes_the_frame_path(demo_template, tmp_path, capsys,  # noqa: F811
                                                                   monkeypatch):
    """Points in the first chunks, polygons and a line in the last: the point chunks stay Arrow tables, the
    last becomes a frame, and the file is the one the frame path writes for all of it."""
    from zeren.api.service import assign as service
    from zeren.layers import sources

    monkeypatch.setattr(sources, "_BLOCK_BYTES", 2048)  # CSV chunks of about --chunk-rows rows, not 16 MB
    sites = _sites(300)  # 300 points, then 30 polygons and a line
    src = tmp_path / "sites.csv"
    pd.DataFrame({"site_id": sites["site_id"], "名称": sites["名称"],
                  "wkt": shapely.to_wkt(sites.geometry.to_numpy())}).to_csv(src, index=False)
    frames = _count_frame_chunks(monkeypatch)
    out, ref = tmp_path / "new.gpkg", tmp_path / "old.gpkg"
    _assign(capsys, src, out, demo_template, "--chunk-rows", "100")
    assert len(frames) == 1 and 31 <= frames[0] < 200  # the only chunk that is not all points: the last
    monkeypatch.setattr(service, "_point_file", lambda table: False)
    _assign(capsys, src, ref, demo_template, "--chunk-rows", "100")
    pd.testing.assert_frame_equal(_read(ref), _read(out))
    assert pyogrio.read_info(out, layer="assigned")["geometry_type"] == "Unknown"


def test_a_parquet_file_without_geoparquet_metadata_is_named(demo_template, tmp_path, capsys):  # noqa: F811
    import pyarrow as pa

    src = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"site_id": ["A"], "geometry": [shapely.to_wkb(shapely.Point(104.05, 30.66))]}), src)
    run = cli(capsys, "assign", src, "--crs", "wgs84", "--out", tmp_path / "out.csv", "--store", demo_template)
    assert run.rc == 2
    assert str(src) in run.err and "GeoParquet metadata ('geo')" in run.err and "Traceback" not in run.err
    assert not (tmp_path / "out.csv").exists()


def test_point_wkb_is_read_in_place_as_shapely_reads_it():
    """2D point WKB (with nulls, an empty point, sliced, chunked, large binary) gives the coordinates shapely
    decodes; other geometries, Z and big-endian points are left to shapely (None)."""
    import pyarrow as pa

    from zeren.layers.sources import wkb_point_xy

    rng = np.random.default_rng(1)
    geoms = shapely.points(rng.uniform(-180, 180, (5000, 2)))
    geoms[::7] = None
    geoms[5] = shapely.Point()
    arr = pa.array(shapely.to_wkb(geoms), type=pa.binary())
    for wkb, part in ((arr, geoms), (arr.slice(3), geoms[3:]), (pa.chunked_array([arr[:10], arr[10:]]), geoms),
                      (arr.cast(pa.large_binary()), geoms)):
        x, y = wkb_point_xy(wkb)
        coords, at = shapely.get_coordinates(part, return_index=True)
        ex, ey = np.full(len(part), np.nan), np.full(len(part), np.nan)
        ex[at], ey[at] = coords[:, 0], coords[:, 1]
        assert np.array_equal(x, ex, equal_nan=True) and np.array_equal(y, ey, equal_nan=True)
        assert 700 < np.isnan(x).sum() == (shapely.is_missing(part) | shapely.is_empty(part)).sum()
    for other in ([shapely.Point(1, 2, 3)], [shapely.box(0, 0, 1, 1)], [shapely.MultiPoint([(1, 2)])]):
        assert wkb_point_xy(pa.array(shapely.to_wkb(other))) is None
    assert wkb_point_xy(pa.array(shapely.to_wkb([shapely.Point(1, 2)], byte_order=0))) is None


def _point_texts(ws, points, day=AS_OF):
    from zeren.geo.answer import assignment_arrays

    result = ws.catalogue.assign(points, pd.Timestamp(day))
    arrays = assignment_arrays(result)
    return {c: arrays[c].cast("string").to_pylist() for c in LIST_COLUMNS}, result


def _fresh_texts(ws, points, day=AS_OF):
    """The texts with nothing kept from before: the date's memo emptied first."""
    ws.catalogue.responsibility(pd.Timestamp(day)).memo.clear()
    return _point_texts(ws, points, day)[0]


def test_list_texts_kept_per_date_are_the_ones_a_fresh_encoding_gives(demo_store, monkeypatch):  # noqa: F811
    """The chunks of a file (and the requests of one day) meet the same groups of zones again: their texts are
    kept with the date's responsibility and only new groups are encoded. What is gathered is exactly what a
    fresh encoding writes, for a batch that shares groups with the one before and for one that does not; an
    appointment ended in between gives a new responsibility, whose texts name the change."""
    import zeren.geo.answer as answer
    from zeren.api.service import appointments as appointment_uc
    from zeren.api.service.actors import Actor

    ws = Workspace.open(demo_store)
    rng = np.random.default_rng(21)
    first = shapely.points(rng.uniform(103.9, 104.2, 4000), rng.uniform(30.55, 30.8, 4000))
    second = shapely.points(rng.uniform(103.95, 104.25, 4000), rng.uniform(30.5, 30.75, 4000))
    want_second = _fresh_texts(ws, second)
    _fresh_texts(ws, first)  # the memo now holds the groups of the first batch only
    memo = ws.catalogue.responsibility(pd.Timestamp(AS_OF)).memo["group_texts"]
    kept = len(memo.keys)
    assert kept > 20
    encoded = []
    lists = answer._json_lists
    monkeypatch.setattr(answer, "_json_lists", lambda result, **k: encoded.append(result.n_sites) or
                        lists(result, **k))
    got, result = _point_texts(ws, second)
    assert got == want_second
    groups = len(answer._zone_groups(result)[1])
    assert 0 < encoded[0] < groups  # some groups came from the memo, the new ones were encoded
    assert len(memo.keys) == kept + encoded[0]
    encoded.clear()
    assert _point_texts(ws, second)[0] == want_second and encoded == [0]  # every group kept: nothing encoded
    # an appointment ends: the next answers come from a new responsibility, with the planners as they are now
    lead = ws.catalogue.appointments
    lead = lead[(lead["role"] == "lead") & (lead["zone_kind"] == "subdistrict")].iloc[0]
    appointment_uc.end_appointment(ws, int(lead["id"]), "2025-01-01", actor=Actor("tester"))
    after, _ = _point_texts(ws, second)
    assert after == _fresh_texts(ws, second)
    item = json.dumps({"planner_id": lead["planner_id"], "role": "lead", "zone_kind": "subdistrict",
                       "zone_code": lead["zone_code"]}, ensure_ascii=False)
    assert sum(item in t for t in want_second["planners"]) > 0  # the batch falls in that subdistrict
    assert not any(item in t for t in after["planners"])


def test_list_texts_kept_per_date_under_threads(workspace):
    """Threads encoding batches of one date at once (requests of a server) share the memo and each gets the
    texts a fresh serial encoding gives."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(22)
    batches = [shapely.points(rng.uniform(103.9, 104.2, 3000), rng.uniform(30.55, 30.8, 3000)) for _ in range(8)]
    want = [_fresh_texts(workspace, b) for b in batches]
    workspace.catalogue.responsibility(pd.Timestamp(AS_OF)).memo.clear()
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda b: _point_texts(workspace, b)[0], batches * 2))
    assert got == want * 2


def test_list_texts_kept_per_date_are_bounded(workspace, monkeypatch):
    """Past its budget of text the memo keeps nothing more, and the texts are still the fresh ones."""
    from zeren.geo.answer import _GroupTexts

    rng = np.random.default_rng(23)
    a = shapely.points(rng.uniform(103.9, 104.2, 3000), rng.uniform(30.55, 30.8, 3000))
    b = shapely.points(rng.uniform(104.0, 104.3, 3000), rng.uniform(30.5, 30.7, 3000))
    want_b = _fresh_texts(workspace, b)
    _fresh_texts(workspace, a)
    memo = workspace.catalogue.responsibility(pd.Timestamp(AS_OF)).memo["group_texts"]
    assert 0 < memo.chars == sum(len(t) for c in memo.COLUMNS for t in memo.texts[c])
    kept, chars = len(memo.keys), memo.chars
    monkeypatch.setattr(_GroupTexts, "MAX_CHARS", chars + 10)  # no room for b's new groups
    assert _point_texts(workspace, b)[0] == want_b
    assert len(memo.keys) == kept and memo.chars == chars


def test_the_index_build_gives_its_freed_memory_back(monkeypatch):
    """After the batch structures are built, the heap their temporaries used goes back to the system
    (glibc's malloc_trim: 300 MB at 30,000 zones): found on this Linux, and harmless to call again."""
    import sys

    from zeren.api.service import assign as service

    service._give_back_freed_memory()
    service._give_back_freed_memory()
    if sys.platform.startswith("linux") and "glibc" in " ".join(__import__("platform").libc_ver()):
        assert callable(service._MALLOC_TRIM)


def test_a_csv_read_whole_or_streamed_writes_the_same(demo_template, tmp_path, capsys, monkeypatch):  # noqa: F811
    """A CSV up to 64 MB is read in one call on every core, a larger one streamed block by block in flat
    memory: the same rows reach the same chunks (quoted fields holding commas and newlines across the streamed
    blocks), the outputs are the same bytes, and a ragged row is refused the same way by both."""
    from zeren.layers import sources

    sites = _sites(500)
    names = [f"地块{i}" if i % 7 else f'多行,"名称"\n第{i}行' for i in range(len(sites))]
    src = tmp_path / "sites.csv"
    pd.DataFrame({"site_id": sites["site_id"], "名称": names,
                  "wkt": shapely.to_wkt(sites.geometry.to_numpy())}).to_csv(src, index=False)
    outs = {}
    for how in ("whole", "streamed"):
        if how == "streamed":
            monkeypatch.setattr(sources, "_WHOLE_READ_BYTES", -1)
            monkeypatch.setattr(sources, "_BLOCK_BYTES", 4096)  # many blocks: boundaries inside quoted fields
        for chunk in ("37", "1000000"):
            out = tmp_path / f"{how}-{chunk}.csv"
            _assign(capsys, src, out, demo_template, "--chunk-rows", chunk)
            outs[how, chunk] = out.read_bytes()
        ragged = tmp_path / f"ragged-{how}.csv"
        lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
        ragged.write_text("".join(lines[:300] + ["S99999,地块\n"] + lines[300:]), encoding="utf-8")
        run = cli(capsys, "assign", ragged, "--crs", "wgs84", "--out", tmp_path / "r.csv", "--store", demo_template)
        assert run.rc == 2 and "not a readable CSV" in run.err and "as many fields as the header" in run.err
        assert not (tmp_path / "r.csv").exists()
    assert len(set(outs.values())) == 1
    assert pd.read_csv(tmp_path / "whole-37.csv", dtype=str)["名称"].tolist() == names


def test_zeren_assign_gives_the_collector_back_what_it_set_aside(demo_template, tmp_path, capsys):  # noqa: F811
    """The run sets the objects that existed before it aside from the cycle collector (gc.freeze) and gives them
    back when it ends, on success and on failure alike: in a long-lived process nothing stays frozen."""
    import gc

    src = tmp_path / "sites.csv"
    _lonlat_csv(src, 2500)
    before = gc.get_freeze_count()
    assert _assign(capsys, src, tmp_path / "out.csv", demo_template, "--skip-bad").rc == 0
    assert gc.get_freeze_count() == before
    failed = cli(capsys, "assign", src, "--crs", "wgs84", "--out", tmp_path / "bad.csv", "--store", demo_template)
    assert failed.rc == 2 and "cannot be assigned" in failed.err  # (bad rows, no --skip-bad)
    assert gc.get_freeze_count() == before
