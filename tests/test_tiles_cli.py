"""`zeren tiles export`: a PMTiles v3 file read back with pmtiles' own reader holds the server's tiles; bad
input exits 2 naming the option and leaves nothing under the final name."""
from __future__ import annotations

import datetime as dt
import gzip

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType

from zeren.api.cli.main import main
from zeren.api.http.app import create_app
from zeren.api.service.demo import build_demo
from zeren.geo.tiles import tiles_covering
from zeren.layers.store import open_store
from tests.api.conftest import make_settings


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiles-cli") / "demo.gpkg"
    build_demo(path).close()
    return path


@pytest.fixture(scope="module")
def exported(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "subdistricts.pmtiles"
    rc = main(["tiles", "export", "--kind", "subdistrict", "--out", str(out), "--min-zoom", "4", "--max-zoom",
               "11", "--as-of", "2025-06-30", "--quiet", "--store", str(demo)])
    assert rc == 0
    return out


def test_export_reads_back_with_pmtiles_and_equals_the_endpoint(demo, exported):
    with open(exported, "rb") as f:
        reader = Reader(MmapSource(f))
        header = reader.header()
        assert header["tile_type"] == TileType.MVT and header["tile_compression"] == Compression.GZIP
        assert (header["min_zoom"], header["max_zoom"]) == (4, 11) and header["clustered"]
        (layer,) = reader.metadata()["vector_layers"]
        assert layer["id"] == "subdistrict" and {"code", "has_lead", "lead_planner_id"} <= set(layer["fields"])
        stored = {zxy: gzip.decompress(data) for zxy, data in all_tiles(reader.get_bytes)}
        with TestClient(create_app(make_settings(demo))) as client:
            for z in (4, 8, 11):
                zxy = (z, *(r[0] for r in tiles_covering((104.0530, 30.6695, 104.0530, 30.6695), z)))
                served = client.get("/tiles/subdistrict/{}/{}/{}.mvt".format(*zxy), params={"as_of": "2025-06-30"})
                assert gzip.decompress(reader.get(*zxy)) == served.content != b""
                decoded = mapbox_vector_tile.decode(stored[zxy])
                assert decoded["subdistrict"]["features"]
    assert all(stored.values())  # empty tiles are left out
    assert {z for z, _, _ in stored} == set(range(4, 12))


def test_gdal_reads_the_export_as_the_zones_in_force(demo, exported):
    import pyogrio

    if "PMTiles" not in pyogrio.list_drivers():
        pytest.skip(f"this GDAL ({pyogrio.__gdal_version_string__}) has no PMTiles driver (GDAL >= 3.8)")
    frame = pyogrio.read_dataframe(exported, layer="subdistrict")  # the deepest zoom, 11: every tile
    store = open_store(demo)
    try:
        expected = set(store.zones(as_of=dt.date(2025, 6, 30)).query("kind == 'subdistrict'")["code"])
    finally:
        store.close()
    assert set(frame["code"]) == expected
    assert frame.crs.to_epsg() == 3857


def test_tile_budget_refuses_and_leaves_the_old_file(demo, tmp_path, capsys):
    out = tmp_path / "zones.pmtiles"
    out.write_bytes(b"previous export")
    rc = main(["tiles", "export", "--kind", "subdistrict", "--out", str(out), "--max-zoom", "18", "--store",
               str(demo)])
    err = capsys.readouterr().err
    assert rc == 2 and "--bbox" in err and "--max-zoom" in err and "tiles" in err
    assert out.read_bytes() == b"previous export"
    assert list(tmp_path.iterdir()) == [out]


def test_a_bbox_brings_a_deep_export_under_the_budget(demo, tmp_path):
    out = tmp_path / "centre.pmtiles"
    rc = main(["tiles", "export", "--kind", "subdistrict", "--out", str(out), "--min-zoom", "14", "--max-zoom",
               "15", "--bbox", "104.04,30.66,104.06,30.68", "--quiet", "--store", str(demo)])
    assert rc == 0
    with open(out, "rb") as f:
        zooms = {z for (z, _, _), _ in all_tiles(Reader(MmapSource(f)).get_bytes)}
    assert zooms == {14, 15}


BAD = [
    (["--kind", "parish"], "--kind"),
    (["--kind", "subdistrict", "--max-zoom", "23"], "--max-zoom"),
    (["--kind", "subdistrict", "--min-zoom", "9", "--max-zoom", "3"], "--min-zoom"),
    (["--kind", "subdistrict", "--bbox", "104,30"], "--bbox"),
    (["--kind", "subdistrict", "--bbox", "10,10,11,11"], "--bbox"),
    (["--kind", "community"], "--kind"),  # the demo has no communities
    (["--kind", "subdistrict", "--as-of", "1901-01-01"], "as_of"),
]


@pytest.mark.parametrize("args,named", BAD)
def test_bad_export_exits_2_naming_the_option_and_writes_nothing(demo, tmp_path, capsys, args, named):
    out = tmp_path / "zones.pmtiles"
    try:
        rc = main(["tiles", "export", *args, "--out", str(out), "--quiet", "--store", str(demo)])
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    assert rc == 2
    assert named in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_out_in_a_missing_folder_is_refused(demo, tmp_path, capsys):
    rc = main(["tiles", "export", "--kind", "subdistrict", "--out", str(tmp_path / "no" / "z.pmtiles"), "--store",
               str(demo)])
    assert rc == 2 and "--out" in capsys.readouterr().err
