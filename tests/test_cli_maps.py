"""`zeren map ...` writes pages that open offline and show what they should."""
import re

import pytest

from zeren.api.cli.main import main
from zeren.api.service.demo import build_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("maps") / "demo.gpkg"
    build_demo(path).close()
    return str(path)


MAPS = {
    "coverage": (["coverage"], "锦江区第1街道"),
    "coverage within a district": (["coverage", "--within", "510104"], "锦江区第1街道"),
    "gaps": (["gaps"], "金堂县"),
    "site": (["site", "--lon", "104.0530", "--lat", "30.6695"], "宽窄巷子"),
    "uncovered site": (["site", "--lon", "104.5", "--lat", "30.85"], "青白江区"),
    "planner": (["planner", "P006"], "青羊区"),
    "project": (["project", "1"], "宽窄巷子院落微更新"),
}


@pytest.mark.parametrize("name", MAPS)
def test_map_page_is_offline_and_names_what_it_shows(demo, tmp_path, capsys, name):
    args, expected = MAPS[name]
    out = tmp_path / "page.html"
    assert main(["map", *args, "--out", str(out), "--store", demo]) == 0, capsys.readouterr().err
    html = out.read_text(encoding="utf-8")
    assert expected in html
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', html)
    assert "合成示意数据" in html  # the demo says its subdistricts are synthetic


@pytest.mark.parametrize("args, message", [
    (["coverage", "--within", "999999"], "no zone with code '999999'"),
    (["planner", "NOPE"], "no planner 'NOPE'"),
    (["project", "999"], "no project 999"),
    (["site", "--lon", "30.66", "--lat", "104.07"], "swap"),
])
def test_map_bad_input_exits_2(demo, tmp_path, capsys, args, message):
    assert main(["map", *args, "--out", str(tmp_path / "x.html"), "--store", demo]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
