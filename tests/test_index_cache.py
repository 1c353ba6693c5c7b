"""The zone index's batch structures kept between ``zeren assign`` runs (``layers.index_cache``): a run over the
same zones adopts the point grid and the led zones' segments instead of building them, writes the same bytes,
and a change of appointments or of zones, a damaged or missing cache file, are never answered from a stale
entry."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest
import shapely

from tests.layers._support import cli, demo_store, demo_template  # noqa: F401 - fixtures
from zeren.api.service.workspace import Workspace
from zeren.geo import assign as geo_assign
from zeren.geo.pointgrid import PointGrid
from zeren.layers.index_cache import IndexCache

AS_OF = "2025-03-01"
GAP_UNIT = "510104007"  # a subdistrict of the demo city without a planner on AS_OF (zeren gaps lists it)


def _points_csv(path, n: int = 3000, seed: int = 21) -> None:
    """Points over the demo city and beyond (uncovered: a nearest zone), some inside the gap unit."""
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(103.6, 104.6, n), rng.uniform(30.3, 31.0, n)
    lon[:200], lat[:200] = rng.uniform(104.062, 104.074, 200), rng.uniform(30.652, 30.664, 200)  # the gap unit
    pd.DataFrame({"site_id": [f"S{i}" for i in range(n)], "lon": np.round(lon, 6), "lat": np.round(lat, 6)}).to_csv(
        path, index=False)


@pytest.fixture
def counted_builds(monkeypatch):
    """A batch of 500 points counts as large here (the demo city takes the grid path), and the builds of the
    point grid and of the led zones' segments are counted."""
    monkeypatch.setattr(geo_assign, "_PARALLEL_MIN_SITES", 500)
    builds = {"grid": 0, "segments": 0}
    build, first_of_shared = PointGrid._build, geo_assign._first_of_shared

    def grid(self, *args):
        builds["grid"] += 1
        return build(self, *args)

    def segments(*args):
        builds["segments"] += 1
        return first_of_shared(*args)

    monkeypatch.setattr(PointGrid, "_build", grid)
    monkeypatch.setattr(geo_assign, "_first_of_shared", segments)
    return builds


def _use_cache(monkeypatch, folder) -> None:
    from zeren.api.cli import sites

    monkeypatch.setattr(sites, "ENV", dataclasses.replace(sites.ENV, index_cache=str(folder) if folder else None))


def _assign(capsys, src, out, store) -> bytes:
    run = cli(capsys, "assign", src, "--crs", "wgs84", "--as-of", AS_OF, "--out", out, "--store", store)
    assert run.rc == 0, run.err
    return out.read_bytes()


def test_a_second_run_adopts_what_the_first_kept_and_a_change_is_never_answered_stale(
        demo_store, tmp_path, capsys, monkeypatch, counted_builds):  # noqa: F811
    src, cache = tmp_path / "sites.csv", tmp_path / "cache"
    _points_csv(src)

    _use_cache(monkeypatch, None)  # what a run without any cache writes: the reference, each time
    before = _assign(capsys, src, tmp_path / "reference.csv", demo_store)

    _use_cache(monkeypatch, cache)
    counted_builds.update(grid=0, segments=0)
    first = _assign(capsys, src, tmp_path / "first.csv", demo_store)
    assert counted_builds == {"grid": 1, "segments": 1}
    assert len(list(cache.glob("*.npz"))) == 2 and first == before

    counted_builds.update(grid=0, segments=0)
    second = _assign(capsys, src, tmp_path / "second.csv", demo_store)
    assert counted_builds == {"grid": 0, "segments": 0}  # both adopted
    assert second == before

    # a planner appointed to the gap unit: who leads changed, the zones did not
    appointments = tmp_path / "appointments.csv"
    pd.DataFrame([{"planner_id": "P001", "zone_kind": "subdistrict", "zone_code": GAP_UNIT, "role": "lead",
                   "start": "2025-01-01", "end": ""}]).to_csv(appointments, index=False)
    assert cli(capsys, "import-appointments", appointments, "--store", demo_store).rc == 0
    counted_builds.update(grid=0, segments=0)
    after = _assign(capsys, src, tmp_path / "after.csv", demo_store)
    assert counted_builds == {"grid": 0, "segments": 1}  # the grid adopted, the segments cut again
    _use_cache(monkeypatch, None)
    assert after == _assign(capsys, src, tmp_path / "after-reference.csv", demo_store)
    table = pd.read_csv(tmp_path / "after.csv", dtype=str, keep_default_na=False)
    old = pd.read_csv(tmp_path / "first.csv", dtype=str, keep_default_na=False)
    moved = (table["lead_zone_code"] == GAP_UNIT) & (old["lead_zone_code"] != GAP_UNIT)
    assert moved.sum() >= 100 and (table.loc[moved, "lead_planner_id"] == "P001").all()  # the change shows
    assert len(list(cache.glob("*.npz"))) == 3

    # damaged files (a run killed while writing, a disk error): built again, the same bytes, written anew
    _use_cache(monkeypatch, cache)
    for kept in cache.glob("*.npz"):
        kept.write_bytes(kept.read_bytes()[: kept.stat().st_size // 2])
    counted_builds.update(grid=0, segments=0)
    assert _assign(capsys, src, tmp_path / "damaged.csv", demo_store) == after
    assert counted_builds == {"grid": 1, "segments": 1}
    counted_builds.update(grid=0, segments=0)
    assert _assign(capsys, src, tmp_path / "again.csv", demo_store) == after
    assert counted_builds == {"grid": 0, "segments": 0}


def test_a_file_larger_than_its_size_promised_keeps_them_too(demo_template, tmp_path, capsys,  # noqa: F811
                                                             monkeypatch, counted_builds):
    """A CSV's rows are guessed from its bytes before it is read (short rows: too few guessed, nothing
    prepared): once its first chunk shows a large batch, the structures are adopted or kept all the same."""
    from zeren.api.service import assign as service

    monkeypatch.setattr(service, "_CSV_BYTES_PER_POINT", 10**9)  # every file guessed small
    src, cache = tmp_path / "sites.csv", tmp_path / "cache"
    _points_csv(src)
    _use_cache(monkeypatch, None)
    reference = _assign(capsys, src, tmp_path / "reference.csv", demo_template)
    _use_cache(monkeypatch, cache)
    counted_builds.update(grid=0, segments=0)
    assert _assign(capsys, src, tmp_path / "first.csv", demo_template) == reference
    assert counted_builds == {"grid": 1, "segments": 1} and len(list(cache.glob("*.npz"))) == 2
    counted_builds.update(grid=0, segments=0)
    assert _assign(capsys, src, tmp_path / "second.csv", demo_template) == reference
    assert counted_builds == {"grid": 0, "segments": 0}


def test_a_file_of_polygons_adopts_the_kept_grid(demo_template, tmp_path, capsys, monkeypatch,  # noqa: F811
                                                counted_builds):
    """Lines and polygons take the grid from 5,000 sites a batch (here 100): the second run adopts it, and
    writes what a run without any cache writes."""
    monkeypatch.setattr(geo_assign, "_GRID_MIN_BOXES", 100)
    rng = np.random.default_rng(5)
    centres = shapely.points(rng.uniform(103.7, 104.5, 600), rng.uniform(30.4, 30.9, 600))
    src = tmp_path / "parcels.geojson"
    import geopandas as gpd

    gpd.GeoDataFrame({"parcel": [f"D{i}" for i in range(600)]},
                     geometry=gpd.GeoSeries(shapely.buffer(centres, 0.004, quad_segs=3), crs="EPSG:4326")).to_file(src)
    _use_cache(monkeypatch, None)
    reference = _assign(capsys, src, tmp_path / "reference.csv", demo_template)
    _use_cache(monkeypatch, tmp_path / "cache")
    counted_builds.update(grid=0, segments=0)
    assert _assign(capsys, src, tmp_path / "first.csv", demo_template) == reference
    assert counted_builds["grid"] == 1
    counted_builds.update(grid=0, segments=0)
    assert _assign(capsys, src, tmp_path / "second.csv", demo_template) == reference
    assert counted_builds["grid"] == 0
    table = pd.read_csv(tmp_path / "second.csv", dtype=str, keep_default_na=False)
    assert (table["split"] == "True").sum() > 10 and (table["covered"] == "True").sum() > 300  # real answers


def test_an_unwritable_cache_folder_changes_nothing(demo_template, tmp_path, capsys, monkeypatch,  # noqa: F811
                                                    counted_builds):
    src = tmp_path / "sites.csv"
    _points_csv(src)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    _use_cache(monkeypatch, blocker / "index")
    run = cli(capsys, "assign", src, "--crs", "wgs84", "--as-of", AS_OF, "--out", tmp_path / "a.csv", "--store",
              demo_template)
    assert run.rc == 0, run.err
    assert "index cache cannot be written" in run.err and str(blocker / "index") in run.err  # said, not silent
    first = (tmp_path / "a.csv").read_bytes()
    _use_cache(monkeypatch, None)
    assert first == _assign(capsys, src, tmp_path / "b.csv", demo_template)
    assert blocker.read_text().startswith("a file")


@pytest.fixture(scope="module")
def index(demo_template):  # noqa: F811
    ws = Workspace.open(demo_template)
    catalogue = ws.catalogue
    yield catalogue.index, catalogue.responsibility(pd.Timestamp(AS_OF)), catalogue.appointments
    ws.close()


def _resp(zones, appointments, day=AS_OF):
    """A Responsibility of its own (its structures not built yet), as a new process would make it."""
    return zones.responsibility(appointments, pd.Timestamp(day))


def test_a_grid_from_its_state_answers_what_the_built_grid_answers(index):
    zones, _, _ = index
    built = PointGrid(zones.prepared_geoms)
    again = PointGrid.from_state(zones.prepared_geoms, built.state())
    rng = np.random.default_rng(4)
    x, y = rng.uniform(103.5, 104.7, 50_000), rng.uniform(30.2, 31.1, 50_000)
    x[:100], y[:100] = shapely.get_coordinates(zones.geoms[:20])[:100].T  # vertices: on the borders
    a, b = built.query_xy(x, y), again.query_xy(x, y)
    assert len(a[0]) > 40_000
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(built.box_labels(np.c_[x, y, x + 1e-3, y + 1e-3]),
                          again.box_labels(np.c_[x, y, x + 1e-3, y + 1e-3]))


@pytest.mark.parametrize("damage", ["version", "short labels", "label beyond", "zone beyond", "missing"])
def test_a_grid_state_that_does_not_fit_is_refused(index, damage):
    zones, _, _ = index
    state = dict(PointGrid(zones.prepared_geoms).state())
    if damage == "version":
        state["version"] = np.array([PointGrid.STATE_VERSION + 1])
    elif damage == "short labels":
        state["labels"] = state["labels"][:-1]
    elif damage == "label beyond":
        state["labels"] = state["labels"].copy()
        state["labels"][0] = state["n_components"][0] + 1
    elif damage == "zone beyond":
        state["zone_ids"] = state["zone_ids"] + len(zones.geoms)
    else:
        del state["offsets"]
    with pytest.raises(ValueError):
        PointGrid.from_state(zones.prepared_geoms, state)


def test_keys_follow_the_geometries_and_the_leads(demo_template, index):  # noqa: F811
    zones, resp, appointments = index
    frame = zones.zones.copy()
    same = geo_assign.ZoneIndex(frame)
    assert geo_assign.point_grid_key(same) == geo_assign.point_grid_key(zones)
    moved = frame.copy()
    moved.loc[0, "geometry"] = shapely.affinity.translate(moved.geometry.iloc[0], 1e-9, 0)  # 0.1 mm
    assert geo_assign.point_grid_key(geo_assign.ZoneIndex(moved)) != geo_assign.point_grid_key(zones)

    key = geo_assign.lead_segments_key(resp)
    assert geo_assign.lead_segments_key(_resp(zones, appointments)) == key
    assert geo_assign.lead_segments_key(_resp(zones, appointments, "2019-01-01")) != key  # no leads yet
    ended = appointments.copy()
    ended.loc[ended.index[0], "end"] = pd.Timestamp("2025-01-01")  # one appointment ended before AS_OF
    assert geo_assign.lead_segments_key(_resp(zones, ended)) != key


def test_segments_from_their_state_give_the_same_nearest_zones(index):
    zones, _, appointments = index
    fresh, other = _resp(zones, appointments), _resp(zones, appointments)
    assert geo_assign.adopt_lead_segments(other, geo_assign.lead_segments_state(fresh))
    assert not geo_assign.adopt_lead_segments(other, geo_assign.lead_segments_state(fresh))  # has them
    rng = np.random.default_rng(8)
    lon, lat = rng.uniform(103.0, 105.2, 5000), rng.uniform(29.8, 31.5, 5000)
    a = geo_assign.assign_xy(zones, fresh, lon, lat)
    b = geo_assign.assign_xy(zones, other, lon, lat)
    assert (a.nearest_zone >= 0).sum() > 1000
    assert np.array_equal(a.nearest_zone, b.nearest_zone)
    assert np.array_equal(a.nearest_distance_m, b.nearest_distance_m, equal_nan=True)

    bad = dict(geo_assign.lead_segments_state(fresh))
    bad["zone_of"] = np.full_like(bad["zone_of"], int(np.flatnonzero(fresh.lead_key == geo_assign.NO_LEAD)[0]))
    assert not geo_assign.adopt_lead_segments(_resp(zones, appointments), bad)


def test_the_cache_folder_keeps_its_size_and_reads_damage_as_a_miss(tmp_path):
    cache = IndexCache(tmp_path / "c", max_bytes=3_500_000)  # three files of 1 MB
    block = {"a": np.zeros(125_000)}  # 1 MB
    keys = [f"{i:040x}" for i in range(5)]
    for i, key in enumerate(keys):
        assert cache.save(key, block)
        os.utime(cache.directory / f"{key}.npz", (1000 + i, 1000 + i))  # saved one after the other
    assert cache.load(keys[2]) is not None  # used: kept longer
    assert cache.save("f" * 40, block)
    kept = sorted(p.stem for p in cache.directory.glob("*.npz"))
    assert kept == sorted([keys[2], keys[4], "f" * 40])
    (cache.directory / f"{keys[4]}.npz").write_bytes(b"not a zip")
    assert cache.load(keys[4]) is None and keys[4] not in cache
    assert cache.load("e" * 40) is None
    leftover = cache.directory / ".abc.tmp"
    leftover.write_bytes(b"x")
    os.utime(leftover, (1000, 1000))
    cache.save("d" * 40, block)
    assert not leftover.exists()
    with pytest.raises(ValueError):
        cache.load("../../etc/passwd")


def test_where_the_cache_lives():
    from zeren.api.settings import command_environment, index_cache_dir

    assert index_cache_dir({"HOME": "/home/a"}) == "/home/a/.cache/zeren/index"
    assert index_cache_dir({"HOME": "/home/a", "XDG_CACHE_HOME": "/var/c"}) == "/var/c/zeren/index"
    assert index_cache_dir({"HOME": "/home/a", "ZEREN_INDEX_CACHE": "/srv/zeren-cache"}) == "/srv/zeren-cache"
    assert index_cache_dir({"HOME": "/home/a", "ZEREN_INDEX_CACHE": "off"}) is None
    assert index_cache_dir({}) is None
    assert command_environment({"ZEREN_INDEX_CACHE": "/x"}).index_cache == "/x"
