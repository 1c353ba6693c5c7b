"""`zeren import-planners` and `zeren import-appointments`: what a good CSV writes, in UTF-8 or GBK, and that the
writes are logged and audited. (Bad rows: test_bad_input.py.)"""
from __future__ import annotations

import pandas as pd
import pytest

from zeren.layers.store import open_store
from tests.layers._support import cli, store_state

PLANNER_HEADER = "id,name,organization,disciplines,public_contact,private_contact"
PLANNER_ROWS = [
    "Q001,欧阳明,成都市规划设计研究院,planning;heritage;law,q001@example.org,+86-28-9999-0001",
    "Q002,司马青,,landscape,,",
    "Q003,上官雨,四川大学建筑与环境学院, architecture ; operations ,q003@example.org,",
]
ENCODINGS = ["utf-8", "utf-8-sig", "gbk"]


def _write(path, header, rows, encoding="utf-8"):
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    return path


@pytest.fixture(params=ENCODINGS)
def planners_imported(request, demo_store, tmp_path, capsys):
    path = _write(tmp_path / "planners.csv", PLANNER_HEADER, PLANNER_ROWS, request.param)
    run = cli(capsys, "import-planners", path, "--actor", "records-test", "--store", demo_store)
    assert run.rc == 0, run.text
    return demo_store, run


EXPECTED_PLANNERS = [  # (id, field, value)
    pytest.param("Q001", "name", "欧阳明", id="chinese-name"),
    pytest.param("Q001", "organization", "成都市规划设计研究院", id="organization"),
    pytest.param("Q001", "disciplines", ["planning", "heritage", "law"], id="disciplines-split-on-semicolons"),
    pytest.param("Q003", "disciplines", ["architecture", "operations"], id="disciplines-trimmed"),
    pytest.param("Q001", "public_contact", "q001@example.org", id="public-contact"),
    pytest.param("Q001", "private_contact", "+86-28-9999-0001", id="private-contact-kept-in-store"),
    pytest.param("Q002", "organization", None, id="empty-field-is-null"),
]


@pytest.mark.parametrize("planner_id, field, value", EXPECTED_PLANNERS)
def test_planners_are_stored(planners_imported, planner_id, field, value):
    store, _ = planners_imported
    assert open_store(store).planner(planner_id)[field] == value


def test_planner_import_reports_counts(planners_imported):
    _, run = planners_imported
    assert "3 added, 0 updated" in run.out


def test_planner_import_never_prints_private_contacts(planners_imported):
    _, run = planners_imported
    assert "+86-28-9999-0001" not in run.text


def test_planner_import_is_logged_and_audited(planners_imported):
    store, _ = planners_imported
    s = open_store(store)
    log = s.import_log().iloc[-1]
    assert (log["command"], int(log["written"])) == ("import-planners", 3)
    audit = s.audit(limit=100_000)
    mine = audit[audit["actor"].str.startswith("cli:records-test")]
    rows = mine[mine["entity"] == "planner"]
    assert sorted(rows["entity_id"]) == ["Q001", "Q002", "Q003"] and set(rows["action"]) == {"create"}
    (summary,) = mine[mine["action"] == "import"].to_dict("records")  # and one row for the import itself
    assert summary["entity"] == "planners" and summary["detail"]["import_id"] == int(log["id"])


def test_reimporting_planners_updates_them(demo_store, tmp_path, capsys):
    first = _write(tmp_path / "a.csv", PLANNER_HEADER, PLANNER_ROWS)
    assert cli(capsys, "import-planners", first, "--store", demo_store).rc == 0
    second = _write(tmp_path / "b.csv", PLANNER_HEADER, ["Q002,司马青,成都市公园城市建设局,landscape;ecology,,"])
    run = cli(capsys, "import-planners", second, "--store", demo_store)
    assert run.rc == 0 and "0 added, 1 updated" in run.out
    got = open_store(demo_store).planner("Q002")
    assert (got["organization"], got["disciplines"]) == ("成都市公园城市建设局", ["landscape", "ecology"])


APPOINTMENT_HEADER = "planner_id,zone_kind,zone_code,role,start,end"
APPOINTMENT_ROWS = [
    "P001,subdistrict,510104001,consultant,2025-09-01,",
    "P002,historic_area,HA-002,member,2025-09-01,2026-09-01",
    "P003,district,510104,member,2024-02-29,2025-02-28",
]


@pytest.fixture(params=ENCODINGS)
def appointments_imported(request, demo_store, tmp_path, capsys):
    before = open_store(demo_store).appointments()
    path = _write(tmp_path / "appointments.csv", APPOINTMENT_HEADER, APPOINTMENT_ROWS, request.param)
    run = cli(capsys, "import-appointments", path, "--actor", "records-test", "--store", demo_store)
    assert run.rc == 0, run.text
    after = open_store(demo_store).appointments()
    return demo_store, before, after, run


def test_appointments_are_added_after_the_existing_ones(appointments_imported):
    _, before, after, run = appointments_imported
    assert len(after) == len(before) + 3 and "3 added" in run.out
    assert after.iloc[:len(before)].to_json(date_format="iso") == before.to_json(date_format="iso")


EXPECTED_APPOINTMENTS = [  # (row of APPOINTMENT_ROWS, field, value)
    pytest.param(0, "zone_code", "510104001", id="zone-code-as-text"),
    pytest.param(0, "end", pd.NaT, id="open-end"),
    pytest.param(1, "zone_kind", "historic_area", id="overlay-zone"),
    pytest.param(1, "end", pd.Timestamp("2026-09-01"), id="end-date"),
    pytest.param(2, "start", pd.Timestamp("2024-02-29"), id="leap-day-start"),
    pytest.param(2, "role", "member", id="role"),
]


@pytest.mark.parametrize("row, field, value", EXPECTED_APPOINTMENTS)
def test_appointment_fields_are_stored(appointments_imported, row, field, value):
    _, before, after, _ = appointments_imported
    got = after.iloc[len(before) + row][field]
    assert (pd.isna(got) and pd.isna(value)) or got == value


def test_appointment_import_is_logged_and_audited(appointments_imported):
    store, _, after, _ = appointments_imported
    s = open_store(store)
    assert s.import_log().iloc[-1]["command"] == "import-appointments"
    audit = s.audit(limit=100_000)
    mine = audit[audit["actor"].str.startswith("cli:records-test")]
    rows = mine[mine["entity"] == "appointment"]
    assert sorted(map(int, rows["entity_id"])) == sorted(after["id"].iloc[-3:])
    (summary,) = mine[mine["action"] == "import"].to_dict("records")
    assert summary["entity"] == "appointments" and sorted(summary["detail"]["appointment_ids"]) == sorted(rows["entity_id"].astype(int))


def test_appointments_need_an_existing_store(tmp_path, capsys):
    path = _write(tmp_path / "a.csv", APPOINTMENT_HEADER, APPOINTMENT_ROWS)
    run = cli(capsys, "import-appointments", path, "--store", tmp_path / "new.gpkg")
    assert run.rc == 2 and "no store" in run.err and not (tmp_path / "new.gpkg").exists()


def test_appointments_on_a_planner_imported_in_the_same_session(demo_store, tmp_path, capsys):
    planners = _write(tmp_path / "p.csv", PLANNER_HEADER, PLANNER_ROWS)
    appointments = _write(tmp_path / "a.csv", APPOINTMENT_HEADER, ["Q001,subdistrict,510104002,member,2025-01-01,"])
    assert cli(capsys, "import-planners", planners, "--store", demo_store).rc == 0
    before = store_state(demo_store)
    run = cli(capsys, "import-appointments", appointments, "--store", demo_store)
    assert run.rc == 0, run.text
    assert store_state(demo_store)["appointments"] != before["appointments"]
    assert open_store(demo_store).appointments("Q001")["zone_code"].tolist() == ["510104002"]
