"""The annual evaluation through its doors: ``GET /reports/...`` (HTML, JSON and PDF), ``zeren report ...``
(HTML, PDF, JSON) for a planner, a team and the city, names and feedback text escaped on every page and in the
PDF, PDFs whose first page pdftoppm renders, one PDF print at a time within the request deadline, and the same
figures from a PostGIS store."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from fastapi.testclient import TestClient

from tests.api.conftest import make_settings
from zeren.api.cli.main import main
from zeren.api.http.app import create_app
from zeren.api.service import reports
from zeren.api.service.workspace import Workspace
from zeren.layers.store import open_store

SCRIPT = "<script>alert('x')</script>"


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("ZEREN_REQUIRE_BROWSER", "").strip().lower() in {"1", "true", "yes", "on"}:
            pytest.fail(f"{tool} is required here (ZEREN_REQUIRE_BROWSER): .ci/chromium.sh install brings it")
        pytest.skip(f"{tool} is not installed")
    return found


def _read_pgm(path) -> np.ndarray:
    """A binary PGM (P5, 8-bit) as a 2-D array."""
    data = path.read_bytes()
    fields, pos = [], 0
    while len(fields) < 4:  # magic, width, height, maxval, separated by whitespace
        while data[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while not data[pos:pos + 1].isspace():
            pos += 1
        fields.append(data[start:pos])
    assert fields[0] == b"P5" and int(fields[3]) == 255
    width, height = int(fields[1]), int(fields[2])
    return np.frombuffer(data[pos + 1:pos + 1 + width * height], dtype=np.uint8).reshape(height, width).astype(float)


def _busiest(path) -> str:
    """The planner with the most feedback routed to them in 2025 (from the store's cases)."""
    store = open_store(str(path))
    try:
        cases = store.find_feedback()
    finally:
        store.close()
    cases = cases[cases["created_at"].str.startswith("2025")]
    return cases["routed_to"].explode().value_counts().sort_index().idxmax()


def test_planner_report_is_a_bilingual_html_page_set(client, demo_path):
    pid = _busiest(demo_path)
    r = client.get(f"/reports/planners/{pid}", params={"year": 2025})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    for zh, en in (("责任片区", "territory"), ("项目与工作流程", "projects by workflow stage"),
                   ("居民留言", "resident feedback"), ("专业缺口", "discipline gaps"),
                   ("全市百分位", "city percentile")):
        assert zh in page and en in page and page.index(zh) < page.index(en)
    assert "<svg" in page and "@page" in page and "<script" not in page.lower()
    body = client.get(f"/reports/planners/{pid}", params={"year": 2025, "format": "json"}).json()
    assert body["planner"]["id"] == pid and body["feedback"]["received"] > 0
    assert f"<b>{body['feedback']['received']}</b>" in page


def test_json_answer_is_the_service_report(client, demo_path):
    ws = Workspace.open(str(demo_path))
    try:
        expected = reports.report_json(reports.planner_report(ws, "P006", 2025))
    finally:
        ws.close()
    got = client.get("/reports/planners/P006", params={"year": 2025, "format": "json"}).json()
    assert got["facts"] == expected["facts"] and got["figures"] == expected["figures"]
    assert got["feedback"] == expected["feedback"]


def test_city_report_names_the_years_gaps_and_ranks_districts(client):
    body = client.get("/reports/city", params={"year": 2025, "format": "json"}).json()
    assert body["gaps_closed"] and body["gaps_opened"]
    ranks = [d["rank"] for d in body["districts"]]
    assert ranks == sorted(ranks) == list(range(1, len(ranks) + 1))
    rates = [d["answer_rate"] for d in body["districts"] if d["answer_rate"] is not None]
    assert rates == sorted(rates, reverse=True)
    assert 0 < body["workload_gini"]["area"] < 1
    page = client.get("/reports/city", params={"year": 2025}).text
    for g in body["gaps_closed"] + body["gaps_opened"]:
        assert g["name"] in page
    assert "区县排名" in page and "district ranking" in page and "每万人" in page


@pytest.mark.parametrize("url", ["/reports/city?year=1999", "/reports/planners/P006?year=1999"])
def test_a_year_with_no_data_answers_an_empty_report(client, url):
    r = client.get(url)
    assert r.status_code == 200
    assert "无数据" in r.text and "no data for 1999" in r.text
    assert client.get(url + "&format=json").json()["empty"] is True


@pytest.mark.parametrize("url, status, says", [
    ("/reports/planners/P999?year=2025", 404, "no planner"),
    ("/reports/planners/P006", 422, "year"),
    ("/reports/planners/P006?year=20x5", 422, "year"),
    ("/reports/planners/P006?year=1200", 422, "year"),
    ("/reports/city?year=2025&format=docx", 422, "format"),
    ("/reports/teams/T999?year=2025", 404, "no team 'T999'"),
    ("/reports/teams/T14?year=20x5", 422, "year"),
    ("/reports/teams/T14?year=2025&format=docx", 422, "format"),
    ("/reports/teams/T14", 422, "year"),
])
def test_bad_requests_say_what_to_fix(client, url, status, says):
    r = client.get(url)
    assert r.status_code == status and says in r.json()["detail"]


def test_script_in_feedback_and_names_is_escaped_on_the_page_and_in_the_pdf(wclient, tmp_path):
    """A resident's <script> is shown as text: in the HTML and in the PDF."""
    zone = Workspace.open(str(wclient.store_path))
    try:
        point = zone.catalogue.zone_frame(None, "subdistrict").set_index("code").loc["510105004"].geometry
        point = point.representative_point()
    finally:
        zone.close()
    r = wclient.post("/feedback", json={"lon": point.x, "lat": point.y, "category": "other", "text": SCRIPT})
    assert r.status_code == 201, r.text
    pid = r.json()["routed_to"][0]
    year = int(r.json()["received_at"][:4])
    page = wclient.get(f"/reports/planners/{pid}", params={"year": year}).text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert SCRIPT not in page and "<script" not in page.lower()
    _require("chromium")
    pdftotext = _require("pdftotext")
    out = tmp_path / "r.pdf"
    assert main(["report", "planner", pid, "--year", str(year), "--store", str(wclient.store_path),
                 "--out", str(out)]) == 0
    text = subprocess.run([pdftotext, str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert "<script>alert" in text  # printed as the resident wrote it: text, never run


def test_pdf_first_page_renders(demo_path, tmp_path, capsys):
    _require("chromium")
    pdftoppm = _require("pdftoppm")
    pid = _busiest(demo_path)
    out = tmp_path / "report.pdf"
    assert main(["report", "planner", pid, "--year", "2025", "--store", str(demo_path), "--out", str(out),
                 "--format", "pdf"]) == 0
    assert out.read_bytes()[:5] == b"%PDF-"
    subprocess.run([pdftoppm, "-gray", "-r", "50", "-f", "1", "-l", "1", str(out), str(tmp_path / "page")],
                   check=True, capture_output=True, timeout=120)
    image = _read_pgm(next(tmp_path.glob("page*.pgm")))  # page 1 as pdftoppm renders it (8-bit grey)
    subprocess.run([pdftoppm, "-png", "-r", "60", "-f", "1", "-l", "1", str(out), str(tmp_path / "look")],
                   check=True, capture_output=True, timeout=120)  # the PNG a person looks at
    assert next(tmp_path.glob("look*.png")).stat().st_size > 10_000
    assert image.shape[0] > image.shape[1] > 300  # A4 portrait at 50 dpi
    assert image.std() > 10 and (image < 128).mean() > 0.005  # ink on the page: text, tables, the map
    pages = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True).stdout
    assert "Pages:" in pages and int(pages.split("Pages:")[1].split()[0]) >= 2


def test_cli_writes_html_and_json_and_refuses_bad_input(demo_path, tmp_path, capsys):
    html_out, json_out = tmp_path / "p.html", tmp_path / "c.json"
    assert main(["report", "planner", "P006", "--year", "2025", "--store", str(demo_path),
                 "--out", str(html_out)]) == 0
    assert "责任片区" in html_out.read_text(encoding="utf-8")
    assert main(["report", "city", "--year", "2025", "--store", str(demo_path), "--out", str(json_out)]) == 0
    assert json.loads(json_out.read_text(encoding="utf-8"))["kind"] == "city"
    capsys.readouterr()
    assert main(["report", "city", "--year", "2025", "--store", str(demo_path)]) == 0
    assert "gaps closed" in capsys.readouterr().out
    for argv, says in (
        (["report", "planner", "P006", "--year", "20x5"], "year"),
        (["report", "planner", "P999", "--year", "2025"], "no planner"),
        (["report", "city", "--year", "2025", "--out", str(tmp_path / "c.docx")], "format"),
        (["report", "city", "--year", "2025", "--out", str(tmp_path / "no" / "c.html")], "does not exist"),
        (["report", "city", "--year", "2025", "--format", "pdf"], "--out"),
    ):
        assert main([*argv, "--store", str(demo_path)]) == 2
        assert says in capsys.readouterr().err


def test_the_same_figures_from_a_postgis_store(demo_path, pg_demo_url):
    wa, wb = Workspace.open(str(demo_path)), Workspace.open(pg_demo_url)
    try:
        a, b = reports.planner_figures(wa, 2025)[0], reports.planner_figures(wb, 2025)[0]
        ca, cb = reports.report_json(reports.city_report(wa, 2025)), reports.report_json(reports.city_report(wb, 2025))
        ta, tb = reports.team_figures(wa, 2025)[0], reports.team_figures(wb, 2025)[0]
    finally:
        wa.close()
        wb.close()
    cols = ["planner_id", "zones_lead", "life_circles", "projects", "feedback_received", "feedback_answered",
            "discipline_gaps"]
    assert a[cols].equals(b[cols])
    team_cols = ["team_id", *cols[1:], "lead_population", "stage_moves"]
    assert ta[team_cols].equals(tb[team_cols]) and ta["feedback_received"].sum() > 0
    assert np.allclose(ta["lead_area_km2"], tb["lead_area_km2"], atol=1e-3)
    assert np.allclose(a["median_response_hours"].fillna(-1), b["median_response_hours"].fillna(-1))
    assert ca["districts"] == cb["districts"] and ca["gaps_closed"] == cb["gaps_closed"]


# -- a team's year --------------------------------------------------------------------------------------
def _busiest_team(path) -> str:
    """The team with the most 2025 feedback routed to its lead or members (from the store's cases)."""
    store = open_store(str(path))
    try:
        cases = store.find_feedback()
        people = {t: set(store.team_members(t)["planner_id"]) | {store.team(t)["lead_planner_id"]}
                  for t in store.teams()["id"]}
    finally:
        store.close()
    routed = cases.loc[cases["created_at"].str.startswith("2025"), "routed_to"]
    counts = {t: sum(bool(p & set(r)) for r in routed) for t, p in people.items()}
    return max(sorted(counts), key=lambda t: counts[t])


def test_team_report_shows_members_territory_and_the_service_figures(client, demo_path):
    tid = _busiest_team(demo_path)
    body = client.get(f"/reports/teams/{tid}", params={"year": 2025, "format": "json"}).json()
    ws = Workspace.open(str(demo_path))
    try:
        expected = reports.report_json(reports.team_report(ws, tid, 2025))
    finally:
        ws.close()
    assert body["figures"] == expected["figures"] and body["facts"] == expected["facts"]
    assert body["feedback"]["received"] > 0 and body["facts"]["zones_lead"] > 0
    page = client.get(f"/reports/teams/{tid}", params={"year": 2025})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    for m in body["members"]:
        assert m["name"] in text and m["role_label"] in text
    for zh, en in (("团队成员", "members"), ("责任片区", "territory"), ("居民留言", "resident feedback"),
                   ("全市百分位", "city percentile")):
        assert f'{zh} <span class="en">{en}</span>' in text  # Chinese first, English second
    assert "团队片区" in text and f"{body['teams_compared']} 个团队" in text
    assert f"<b>{body['feedback']['received']}</b>" in text and "<script" not in text.lower()


def test_team_report_year_with_no_data(client):
    r = client.get("/reports/teams/T14", params={"year": 1999})
    assert r.status_code == 200 and "无数据" in r.text and "no data for 1999" in r.text
    assert client.get("/reports/teams/T14", params={"year": 1999, "format": "json"}).json()["empty"] is True


def test_team_report_opens_in_chromium_and_shows_its_members(chromium_path, client, tmp_path):
    """The page as headless Chromium lays it out (its DOM after load): the members table is there."""
    body = client.get("/reports/teams/T14", params={"year": 2025, "format": "json"}).json()
    page = tmp_path / "team.html"
    page.write_text(client.get("/reports/teams/T14", params={"year": 2025}).text, encoding="utf-8")
    done = subprocess.run([chromium_path, "--headless", "--no-sandbox", "--disable-gpu",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    dom = done.stdout
    assert done.returncode == 0 and "<svg" in dom and "团队成员" in dom, done.stderr[-500:]
    table = dom[dom.index("团队成员"):]
    for m in body["members"]:
        assert m["name"] in table and m["planner_id"] in table
    assert {m["role_label"] for m in body["members"]} <= {"负责人", "成员", "专家顾问"}


def test_cli_team_report_and_its_bad_input(demo_path, tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["report", "team", "T14", "--year", "2025", "--store", str(demo_path), "--out", str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["kind"] == "team" and written["team"]["id"] == "T14" and written["members"]
    capsys.readouterr()
    assert main(["report", "team", "T14", "--year", "2025", "--store", str(demo_path)]) == 0
    summary = capsys.readouterr().out
    assert "T14" in summary and "成员 members" in summary and written["members"][0]["name"] in summary
    for argv, says in (
        (["report", "team", "T999", "--year", "2025"], "no team 'T999'"),
        (["report", "team", "T14", "--year", "20x5"], "year"),
        (["report", "team", "T14", "--year", "2025", "--format", "docx"], "invalid choice"),
        (["report", "team", "T14", "--year", "2025", "--out", str(tmp_path / "t.docx")], "format"),
    ):
        assert main([*argv, "--store", str(demo_path)]) == 2
        assert says in capsys.readouterr().err


# -- PDF over HTTP ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("url, name", [
    ("/reports/planners/P006?year=2025&format=pdf", "zeren-report-planner-P006-2025.pdf"),
    ("/reports/teams/T14?year=2025&format=pdf", "zeren-report-team-T14-2025.pdf"),
    ("/reports/city?year=2025&format=pdf", "zeren-report-city-2025.pdf"),
])
def test_pdf_over_http_is_an_attachment_whose_first_page_renders(chromium_path, client, tmp_path, url, name):
    pdftoppm = _require("pdftoppm")
    r = client.get(url)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert r.content[:5] == b"%PDF-"
    pdf = tmp_path / name
    pdf.write_bytes(r.content)
    subprocess.run([pdftoppm, "-gray", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                   check=True, capture_output=True, timeout=120)
    image = _read_pgm(next(tmp_path.glob("page*.pgm")))
    assert image.shape[0] > image.shape[1] > 300 and image.std() > 10 and (image < 128).mean() > 0.005
    subprocess.run([pdftoppm, "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "look")],
                   check=True, capture_output=True, timeout=120)
    assert next(tmp_path.glob("look*.png")).stat().st_size > 10_000
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "年度" in text  # the same page set as the HTML: its title


def test_pdf_without_chromium_is_503_naming_what_is_missing(demo_path):
    with TestClient(create_app(make_settings(demo_path, chromium="/nonexistent/chromium"))) as c:
        r = c.get("/reports/teams/T14", params={"year": 2025, "format": "pdf"})
        assert r.status_code == 503
        assert "Chromium" in r.json()["detail"] and "/nonexistent/chromium" in r.json()["detail"]
        assert c.get("/reports/teams/T14", params={"year": 2025}).status_code == 200  # HTML needs no browser


def test_one_pdf_print_at_a_time_and_a_waiting_request_gets_503_within_its_deadline(chromium_path, demo_path):
    """While a print holds the printer, a PDF request waits off the event loop (other requests answer) and
    gives up at the request deadline with 503 and Retry-After."""
    with TestClient(create_app(make_settings(demo_path, request_timeout=3))) as c:
        assert reports._PRINTER.acquire(timeout=60)  # a print in progress
        answers = {}
        try:
            def wait_for_pdf():
                began = time.monotonic()
                answers["pdf"] = c.get("/reports/city", params={"year": 2025, "format": "pdf"})
                answers["waited"] = time.monotonic() - began

            waiting = threading.Thread(target=wait_for_pdf)
            waiting.start()
            time.sleep(0.5)
            other = c.get("/reports/city", params={"year": 2025, "format": "json"})
            assert other.status_code == 200 and "pdf" not in answers  # answered while the PDF request waits
            waiting.join(timeout=60)
        finally:
            reports._PRINTER.release()
        r = answers["pdf"]
        assert r.status_code == 503 and r.headers.get("retry-after")
        assert "printed to PDF" in r.json()["detail"] and answers["waited"] >= 2.5
