"""Appointments are imported in bulk (one insert of the appointments and one of their audit rows, a COPY each on
PostGIS, in one transaction; issue #10) and keep every rule of the one-row-at-a-time import: each new
appointment has its id and one audit row, a re-import adds nothing, a clashing lead is refused naming its row
(exit 2) with nothing written, and a write that fails after the rows went in leaves the store as it was."""
from __future__ import annotations

import pandas as pd
import pytest

from zeren.api.cli.main import main as zeren
from zeren.api.service.actors import Actor
from zeren.api.service.appointments import add_appointments
from zeren.api.service.workspace import Workspace
from zeren.layers.store import open_store


@pytest.fixture(params=["gpkg", "postgis"])
def store_location(request, demo_store):
    if request.param == "gpkg":
        return demo_store
    from tests.api.test_postgis import copy_demo  # the copy itself imports the demo's appointments in bulk

    url = request.getfixturevalue("pg_url_clean")
    copy_demo(demo_store, url)
    return url


def _new_rows(store) -> pd.DataFrame:
    """A member appointment of the first planner on every zone in force that has none yet (a few hundred)."""
    zones = store.zones(as_of="2025-06-01", with_geometry=False)
    planner = sorted(store.planners()["id"])[0]
    held = store.appointments()
    taken = set(zip(held["zone_kind"], held["zone_code"], held["planner_id"], held["role"]))
    rows = [{"planner_id": planner, "zone_kind": k, "zone_code": c, "role": "member", "start": "2025-01-01",
             "end": ""} for k, c in zip(zones["kind"], zones["code"]) if (k, c, planner, "member") not in taken]
    assert len(rows) > 100
    return pd.DataFrame(rows)


def test_a_bulk_import_audits_every_appointment_with_its_id(store_location, tmp_path, capsys):
    store = open_store(store_location)
    rows = _new_rows(store)
    before, audit_before = store.appointments(), store.find_audit(limit=1)[1]
    csv = tmp_path / "members.csv"
    rows.to_csv(csv, index=False)
    store.close()
    assert zeren(["import-appointments", str(csv), "--store", store_location]) == 0
    assert f"{len(rows)} added, 0 already present" in capsys.readouterr().out

    store = open_store(store_location)
    after = store.appointments()
    new = after[~after["id"].isin(before["id"])]
    assert len(after) == len(before) + len(rows)
    assert new["id"].is_monotonic_increasing and new["id"].min() > before["id"].max()
    got = new[["planner_id", "zone_kind", "zone_code", "role"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, rows[["planner_id", "zone_kind", "zone_code", "role"]], check_dtype=False)
    audit, total = store.find_audit(entity="appointment", action="create", limit=10**6)
    created = audit[audit["entity_id"].isin(new["id"].astype(str))]
    assert len(created) == len(rows) and created["entity_id"].is_unique  # one row each, no more
    by_id = dict(zip(created["entity_id"], created["detail"]))
    for r in new.itertuples(index=False):
        assert by_id[str(r.id)] == {"planner_id": r.planner_id, "zone_kind": r.zone_kind, "zone_code": r.zone_code,
                                    "role": r.role, "start": "2025-01-01", "end": None}
    # plus the import's own row (import log + audit), which lists the ids
    assert store.find_audit(limit=1)[1] == audit_before + len(rows) + 1
    imported = store.find_audit(action="import", entity="appointments", limit=10**6)[0]["detail"].iloc[-1]
    assert imported["appointment_ids"] == new["id"].tolist()
    store.close()

    assert zeren(["import-appointments", str(csv), "--store", store_location]) == 0
    assert f"0 added, {len(rows)} already present" in capsys.readouterr().out
    assert len(open_store(store_location).appointments()) == len(after)


def test_a_clashing_lead_is_refused_by_row_and_nothing_is_written(store_location, tmp_path, capsys):
    store = open_store(store_location)
    rows = _new_rows(store)
    held = store.appointments()
    lead = held[(held["role"] == "lead") & held["end"].isna()].iloc[0]
    other = sorted(set(store.planners()["id"]) - {lead["planner_id"]})[0]
    before, audit_before = len(held), store.find_audit(limit=1)[1]
    store.close()
    clash = pd.DataFrame([{"planner_id": other, "zone_kind": lead["zone_kind"], "zone_code": lead["zone_code"],
                           "role": "lead", "start": "2025-03-01", "end": ""}])
    csv = tmp_path / "with_clash.csv"
    pd.concat([rows, clash], ignore_index=True).to_csv(csv, index=False)
    assert zeren(["import-appointments", str(csv), "--store", store_location]) == 2
    err = capsys.readouterr().err
    assert f"row {len(rows) + 2}:" in err and str(lead["zone_code"]) in err
    store = open_store(store_location)
    assert len(store.appointments()) == before and store.find_audit(limit=1)[1] == audit_before
    store.close()


class _Killed(Exception):
    pass


def test_a_write_that_fails_after_the_bulk_insert_leaves_the_store_as_it_was(store_location):
    ws = Workspace.open(store_location)
    rows = _new_rows(ws.store)
    before, audit_before = ws.store.appointments(), ws.store.find_audit(limit=1)[1]
    with pytest.raises(_Killed), ws.store.transaction():
        result = add_appointments(ws, rows, actor=Actor("test"), source="members.csv")
        assert len(result.ids) == len(rows) and len(ws.store.appointments()) == len(before) + len(rows)
        raise _Killed  # the process dies before the commit
    pd.testing.assert_frame_equal(ws.store.appointments(), before)
    assert ws.store.find_audit(limit=1)[1] == audit_before
    ws.close()
