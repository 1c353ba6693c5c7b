"""Feedback at the command line (``zeren feedback list|export|categories``), the demo's synthetic year of cases,
and older stores gaining the feedback tables when opened."""
from __future__ import annotations

import csv
import json
import shutil
import sqlite3

import pytest

from zeren.api.cli.main import main
from zeren.api.service import feedback as service
from zeren.api.service.workspace import Workspace
from zeren.api.service.actors import Actor
from zeren.layers.store import SCHEMA_VERSION, open_store


@pytest.fixture
def store(demo_path, tmp_path):
    dest = tmp_path / "store.gpkg"
    shutil.copy(demo_path, dest)
    return dest


def test_list_json_matches_the_store(store, capsys):
    assert main(["feedback", "list", "--json", "--store", str(store)]) == 0
    rows = json.loads(capsys.readouterr().out)
    s = open_store(store)
    assert len(rows) == len(s.find_feedback()) > 100
    assert all("contact" not in r for r in rows)


def test_list_for_a_planner_and_filters(store, capsys):
    assert main(["feedback", "list", "--json", "--planner", "P006", "--store", str(store)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all("P006" in r["routed_to"] for r in rows)
    assert main(["feedback", "list", "--json", "--status", "closed", "--since", "2025-03-01", "--until",
                 "2025-03-31", "--store", str(store)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["status"] == "closed" and r["received_at"][:7] == "2025-03" for r in rows)
    assert main(["feedback", "list", "--status", "lost", "--store", str(store)]) == 2
    assert main(["feedback", "list", "--since", "2025-13-01", "--store", str(store)]) == 2


def test_export_csv_guards_formulas_and_keeps_contacts_private(store, tmp_path, capsys):
    ws = Workspace.open(store)
    ref = service.submit_feedback(ws, category="other", text="=HYPERLINK(\"http://x\")", lon=104.053, lat=30.6695,
                                  contact="secret-contact")["ref"]
    out = tmp_path / "cases.csv"
    assert main(["feedback", "export", "--out", str(out), "--store", str(store)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == len(ws.store.find_feedback())
    mine = next(r for r in rows if r["ref"] == ref)
    assert mine["text"].startswith("'=")
    assert "contact" not in rows[0] and "secret-contact" not in out.read_text(encoding="utf-8")
    assert main(["feedback", "export", "--out", str(out), "--with-contact", "--store", str(store)]) == 0
    assert "secret-contact" in out.read_text(encoding="utf-8")


def test_export_geojson(store, tmp_path):
    out = tmp_path / "cases.geojson"
    assert main(["feedback", "export", "--out", str(out), "--status", "replied", "--store", str(store)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["features"] and all(f["properties"]["status"] == "replied" for f in data["features"])
    assert all(f["properties"]["response_hours"] > 0 for f in data["features"])
    assert main(["feedback", "export", "--out", str(tmp_path / "cases.txt"), "--store", str(store)]) == 2


def test_categories_command(store, capsys):
    assert main(["feedback", "categories", "--json", "--store", str(store)]) == 0
    assert [c["code"] for c in json.loads(capsys.readouterr().out)][:2] == ["public_space", "traffic"]


# -- the demo's year ------------------------------------------------------------------------------
def test_the_demo_has_a_synthetic_year_of_feedback(demo_path):
    s = open_store(demo_path)
    cases = s.find_feedback()
    assert len(cases) > 100
    assert cases["synthetic"].all() and cases["text"].str.startswith("【合成示例】").all()
    assert set(cases["created_at"].str[:4]) == {"2025"}
    assert set(cases["status"]) >= {"received", "accepted", "replied", "closed"}
    assert cases["category"].nunique() == 6
    assert cases["outside"].sum() >= 1  # routed to the nearest zone, flagged
    views = [service.case_view(r) for r in cases.drop(columns="geometry").to_dict("records")]
    hours = [v["response_hours"] for v in views if v["response_hours"] is not None]
    assert len(hours) > 50 and min(hours) > 0 and max(hours) > 5 * min(hours)  # a spread, not one value
    # every case is routed as the lookup of its day answers
    ws = Workspace(s)
    for row in cases.head(10).to_dict("records"):
        from zeren.api.service.lookup import lookup

        geom = cases.loc[cases["ref"] == row["ref"]].geometry.iloc[0]
        answer = lookup(ws, geom.x, geom.y, as_of=row["as_of"])
        first = (answer["lead"] or answer["nearest"])["planner"]["id"]
        events = s.feedback_events(int(row["id"]))
        initial = json.loads(events["routed_to"].iloc[0])
        assert initial[0] == first


def test_demo_cases_follow_the_workflow_rules(demo_path):
    ws = Workspace(open_store(demo_path))
    cases = ws.store.find_feedback()
    for row in cases.head(40).to_dict("records"):
        statuses = ws.store.feedback_events(int(row["id"]))["status"].tolist()
        assert statuses[0] == "received" and statuses[-1] == row["status"]
        for a, b in zip(statuses, statuses[1:]):
            assert b in service.NEXT_STATUS[a]
    listed = service.list_feedback(ws, actor=Actor("x", "planner", "P006"))
    assert all("P006" in r for r in listed["routed_to"])


# -- older stores ---------------------------------------------------------------------------------
def test_a_store_from_before_feedback_gains_the_tables(store):
    from zeren.layers.store.tables import NEW_TABLES

    con = sqlite3.connect(store)
    for table in NEW_TABLES[3]:
        con.execute(f"DROP TABLE {table}")
        con.execute("DELETE FROM gpkg_contents WHERE table_name = ?", (table,))
        con.execute("DELETE FROM gpkg_geometry_columns WHERE table_name = ?", (table,))
    con.execute("UPDATE zeren_meta SET value = '2' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    s = open_store(store)
    assert s.meta("schema_version") == str(SCHEMA_VERSION)
    assert len(s.feedback_categories()) == 6 and s.find_feedback().empty
    assert s.teams().empty and set(s.discipline_requirements()) == {"historic_area", "village", "community",
                                                                    "key_area"}
    ref = service.submit_feedback(Workspace(s), category="traffic", text="ok", lon=104.053, lat=30.6695)["ref"]
    assert s.feedback_case(ref)["status"] == "received"
