"""The rough edges a newcomer met (issue 11), each reproduced on the demo city as they saw it, through the
command line and the HTTP API (both doors answer from the same use case)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from zeren.api.http.app import create_app
from zeren.api.service.demo import build_demo
from zeren.layers.store import open_store

from tests.api.conftest import make_settings
from tests.layers._support import cli

BEIJING = (116.40, 39.90)


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory):
    """The demo city, built once for this module; never written to (copy it with ``demo_store``)."""
    path = tmp_path_factory.mktemp("edges") / "demo.gpkg"
    build_demo(path).close()
    path.chmod(0o444)
    return path


@pytest.fixture
def demo_store(demo_template, tmp_path):
    path = tmp_path / "store.gpkg"
    shutil.copyfile(demo_template, path)
    path.chmod(0o644)
    return path


@pytest.fixture(scope="module")
def demo_frames(demo_template):
    store = open_store(str(demo_template))
    try:
        return {"zones": store.zones(), "planners": store.planners(), "appointments": store.appointments()}
    finally:
        store.close()


@pytest.fixture(scope="module")
def http(demo_template):
    with TestClient(create_app(make_settings(demo_template))) as c:
        yield c


def lookup_both(capsys, http, store, lon, lat, *extra) -> dict:
    """The CLI's --json answer, checked equal to GET /lookup's."""
    run = cli(capsys, "lookup", "--lon", lon, "--lat", lat, "--json", "--store", store, *extra)
    assert run.rc == 0, run.text
    answer = json.loads(run.out)
    params = {"lon": lon, "lat": lat}
    if extra:
        params["as_of"] = extra[1]
    r = http.get("/lookup", params=params)
    assert r.status_code == 200, r.text
    assert r.json() == answer
    return answer


# -- 1. /lookup far outside every zone, and before every edition ----------------------------------
def test_lookup_far_outside_every_zone_is_flagged_and_offers_no_distant_planner(capsys, http, demo_template,
                                                                                demo_frames):
    answer = lookup_both(capsys, http, demo_template, *BEIJING)
    assert answer["covered"] is False and answer["zones"] == []
    assert answer["outside_service_area"] is True
    zones = demo_frames["zones"]
    assert answer["service_area_distance_m"] > 1_000_000  # Beijing is ~1,500 km from Chengdu
    assert answer["nearest"] is None  # no planner 1,474 km away offered as a suggestion
    assert "outside the service area" in answer["notice"] and "服务范围之外" in answer["notice"]
    assert len(zones)
    text = cli(capsys, "lookup", "--lon", BEIJING[0], "--lat", BEIJING[1], "--store", demo_template).out
    assert "outside the service area" in text and "nearest zone with a planner:" not in text


def _just_outside(frames) -> tuple[float, float]:
    """A point ~500 m east of the demo city's easternmost vertex: outside every zone, close to one."""
    zones = frames["zones"]
    coords = shapely.get_coordinates(zones.geometry.to_numpy())
    east = coords[np.argmax(coords[:, 0])]
    point = shapely.Point(east[0] + 0.005, east[1])
    assert not zones.geometry.covers(point).any()
    return point.x, point.y


def test_lookup_just_outside_the_service_area_still_suggests_the_nearest(capsys, http, demo_template, demo_frames):
    lon, lat = _just_outside(demo_frames)
    answer = lookup_both(capsys, http, demo_template, lon, lat)
    assert answer["outside_service_area"] is True
    assert 0 < answer["service_area_distance_m"] < 1_000
    assert answer["nearest"] is not None and answer["nearest"]["distance_m"] >= answer["service_area_distance_m"]


def test_lookup_inside_the_city_is_not_outside_the_service_area(capsys, http, demo_template):
    answer = lookup_both(capsys, http, demo_template, 104.0530, 30.6695)
    assert answer["covered"] is True
    assert answer["outside_service_area"] is False and answer["service_area_distance_m"] == 0
    assert answer["notice"] is None


def test_lookup_before_every_edition_says_why(capsys, http, demo_template, demo_frames):
    earliest = pd.Timestamp(demo_frames["zones"]["valid_from"].min()).date()
    answer = lookup_both(capsys, http, demo_template, 104.0530, 30.6695, "--as-of", "1990-01-01")
    assert answer["covered"] is False and answer["zones"] == [] and answer["nearest"] is None
    assert "no boundary edition is in force on 1990-01-01" in answer["notice"]
    assert f"the earliest starts {earliest.isoformat()}" in answer["notice"]
    text = cli(capsys, "lookup", "--lon", 104.0530, "--lat", 30.6695, "--as-of", "1990-01-01",
               "--store", demo_template).out
    assert "the earliest starts" in text
