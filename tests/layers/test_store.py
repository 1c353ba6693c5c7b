"""The store on both engines (GeoPackage file and PostGIS): zones round trip, editions and as-of dates,
appointments ended never deleted, the append-only audit log, the project workflow, consultation kinds,
all-or-nothing writes, and the demo built on PostGIS answering like the GeoPackage demo."""
from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3

import numpy as np
import pandas as pd
import pytest
import shapely

from zeren.layers.catalogue import Catalogue
from zeren.layers.errors import ConflictError, NotFoundError, ValidationError
from zeren.layers.importer import read_zone_layer
from zeren.geo.kinds import PROJECT_STATUSES
from zeren.layers.store import Store, open_store
from zeren.api.service import appointments as appointment_uc
from zeren.api.service import boundaries
from zeren.api.service import planners as planner_uc
from zeren.api.service import projects as project_uc
from zeren.api.service.actors import Actor
from zeren.api.service.workspace import Workspace
from tests.layers._support import DATA, store_state

ENGINES = [pytest.param("gpkg", id="geopackage"), pytest.param("postgis", id="postgis", marks=pytest.mark.postgis)]


@pytest.fixture(params=ENGINES)
def location(request, tmp_path) -> str:
    if request.param == "gpkg":
        return str(tmp_path / "store.gpkg")
    return request.getfixturevalue("pg_url_clean")


@pytest.fixture
def store(location):
    s = open_store(location, create=True)
    yield s
    s.close()


@pytest.fixture(scope="module")
def module_database(request):
    """For read-only catalogues: a fresh PostGIS database per module (made like ``pg_url_clean``, from the
    session's PostGIS template), so a catalogue of cases reads one store instead of building one per case."""
    from psycopg import sql

    from tests.conftest import _connect, _drop_database, _with_database

    pg_url, template = request.getfixturevalue("pg_url"), request.getfixturevalue("_pg_template")
    made = []

    def make() -> str:
        name = f"zeren_m_{secrets.token_hex(6)}"
        with _connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                          sql.Identifier(template)))
        made.append(name)
        return _with_database(pg_url, name)

    yield make
    for name in made:
        _drop_database(pg_url, name)


@pytest.fixture(scope="module", params=ENGINES)
def module_location(request, tmp_path_factory):
    """A new, empty store location per engine, shared by a module's read-only tests."""
    if request.param == "gpkg":
        return str(tmp_path_factory.mktemp("store") / "store.gpkg")
    return request.getfixturevalue("module_database")()


def raw_execute(location: str, sql: str) -> None:
    """Run SQL on the store's database with a plain driver connection, as another tool would."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as con:
            con.execute(sql)
    else:
        con = sqlite3.connect(location)
        try:
            con.execute(sql)
            con.commit()
        finally:
            con.close()


def refused_errors():
    import psycopg

    return (sqlite3.DatabaseError, psycopg.Error)


# -- writes go through the use cases (the store only checks types and keeps the logs) -------------------
def import_zones(store, zones, *, kind, edition, valid_from, retire_missing=True, actor="tester", **_ignored):
    """An edition of ``kind`` declared complete (as every edition of these tests is)."""
    return boundaries.import_frame(Workspace(store), zones, kind=kind, edition=edition, valid_from=valid_from,
                                   retire_missing=retire_missing, actor=Actor(actor))


def save_planners(store, frame, actor="tester"):
    return planner_uc.save_planners(Workspace(store), frame, actor=Actor(actor))


def add_appointments(store, frame, actor="tester"):
    return appointment_uc.add_appointments(Workspace(store), frame, actor=Actor(actor)).ids


def end_appointment(store, appointment_id, end, actor="tester"):
    appointment_uc.end_appointment(Workspace(store), appointment_id, end, actor=Actor(actor))


def advance_project(store, project_id, status, actor="tester"):
    project_uc.advance_project(Workspace(store), project_id, status, actor=Actor(actor))


# -- zones ---------------------------------------------------------------------------------------
def chengdu_subdistricts():
    zones, _ = read_zone_layer(DATA, layer="subdistricts_chengdu")
    zones = zones.sort_values("code").reset_index(drop=True)
    n = len(zones)
    zones["name_en"] = [f"Subdistrict {c}" if i % 2 else None for i, c in enumerate(zones["code"])]
    zones["population"] = pd.array([None if i % 7 == 0 else p for i, p in enumerate(zones["population"])],
                                   dtype="Int64")
    zones["attrs"] = [{"rank": i, "tags": ["街道", str(i % 3)], "area_km2": round(1.5 * i, 3), "note": None}
                      for i in range(n)]
    return zones


@pytest.fixture(scope="module")
def stored_subdistricts(module_location):
    store = open_store(module_location, create=True)
    zones = chengdu_subdistricts()
    plan = import_zones(store, zones, kind="subdistrict", edition=2024, valid_from=dt.date(2024, 1, 1))
    assert len(plan.added) == len(zones) and plan.written
    got = store.zones(kind="subdistrict").sort_values("code").reset_index(drop=True)
    store.close()
    return zones, got


def _nulls(values) -> list:
    return [None if pd.isna(v) else v for v in values]


ROUND_TRIP = [
    pytest.param(lambda given, got: bool(shapely.equals_exact(np.asarray(given.geometry.to_numpy(), dtype=object),
                                                              np.asarray(got.geometry.to_numpy(), dtype=object),
                                                              tolerance=0).all()), id="geometry-exact"),
    pytest.param(lambda given, got: list(given["code"]) == list(got["code"]), id="codes"),
    pytest.param(lambda given, got: list(given["name"]) == list(got["name"]), id="chinese-names"),
    pytest.param(lambda given, got: _nulls(given["name_en"]) == list(got["name_en"]), id="english-names-and-nulls"),
    pytest.param(lambda given, got: list(given["parent_code"]) == list(got["parent_code"]), id="parent-codes"),
    pytest.param(lambda given, got: given["population"].equals(got["population"]), id="population-with-nulls"),
    pytest.param(lambda given, got: list(given["attrs"]) == list(got["attrs"]), id="attrs-json"),
    pytest.param(lambda given, got: set(got["edition"]) == {2024}, id="edition"),
    pytest.param(lambda given, got: set(got["valid_from"]) == {pd.Timestamp("2024-01-01")}, id="valid-from"),
    pytest.param(lambda given, got: got["valid_to"].isna().all(), id="valid-to-open"),
    pytest.param(lambda given, got: str(got["valid_from"].dtype) == "datetime64[ns]"
                 and str(got["valid_to"].dtype) == "datetime64[ns]", id="date-dtypes-as-contract"),
    pytest.param(lambda given, got: (got.geometry.geom_type == "MultiPolygon").all() and got.crs == "EPSG:4326",
                 id="multipolygons-in-4326"),
]


@pytest.mark.parametrize("same", ROUND_TRIP)
def test_zones_round_trip(stored_subdistricts, same):
    given, got = stored_subdistricts
    assert len(got) == len(given) == 241
    assert same(given, got)


def test_single_polygons_are_stored_as_multipolygons(store):
    zones = chengdu_subdistricts().head(3)
    zones["geometry"] = [g.geoms[0] for g in zones.geometry]  # plain Polygons, as a caller may pass them
    import_zones(store, zones, kind="key_area", edition=2024, valid_from=dt.date(2024, 1, 1), report={}, source="t")
    got = store.zones(kind="key_area").sort_values("code")
    assert (got.geometry.geom_type == "MultiPolygon").all()
    assert all(a.equals(b) for a, b in zip(got.geometry, zones.geometry))


def _edition(zones, edition: int, valid_from: dt.date):
    z = zones.copy()
    z["name"] = z["name"] + f"（{edition}版）"
    return z, dict(kind="subdistrict", edition=edition, valid_from=valid_from, report={}, source=f"e{edition}")


def _write_two_editions(store):
    zones = chengdu_subdistricts()
    for edition in (2024, 2025):
        frame, kwargs = _edition(zones, edition, dt.date(edition, 1, 1))
        import_zones(store, frame, **kwargs)
    return store


@pytest.fixture
def two_editions(store):
    return _write_two_editions(store)


@pytest.fixture(scope="module")
def two_editions_shared(module_location):
    store = _write_two_editions(open_store(module_location, create=True))
    yield store
    store.close()


def test_new_edition_closes_the_open_one(two_editions):
    zones = two_editions.zones()
    assert set(zones.loc[zones["edition"] == 2024, "valid_to"]) == {pd.Timestamp("2025-01-01")}
    assert zones.loc[zones["edition"] == 2025, "valid_to"].isna().all()


AS_OF = [  # (as_of, edition in force or None) — start inclusive, end exclusive
    pytest.param("2023-12-31", None, id="before-first-edition"),
    pytest.param("2024-01-01", 2024, id="first-day-of-2024-inclusive"),
    pytest.param("2024-12-31", 2024, id="last-day-of-2024"),
    pytest.param("2025-01-01", 2025, id="2024-ends-exclusive-2025-starts"),
    pytest.param(dt.date(2031, 6, 1), 2025, id="open-ended-2025"),
]


@pytest.mark.parametrize("as_of, edition", AS_OF)
def test_as_of_picks_the_edition_in_force(two_editions_shared, as_of, edition):
    zones = two_editions_shared.zones(as_of=as_of)
    if edition is None:
        assert zones.empty
    else:
        assert set(zones["edition"]) == {edition} and len(zones) == 241
        assert zones["name"].str.endswith(f"（{edition}版）").all()


def test_reimporting_the_latest_edition_corrects_it_in_place(two_editions):
    zones = chengdu_subdistricts()
    frame, kwargs = _edition(zones, 2025, dt.date(2025, 1, 1))
    frame.loc[frame.index[:3], "name"] = frame["name"].iloc[:3] + "（更正）"
    plan = import_zones(two_editions, frame, **kwargs)
    assert len(plan.changed) == 3 and all(c["correction"] for c in plan.changed) and not plan.retired
    zones_after = two_editions.zones()
    assert (zones_after["edition"] == 2025).sum() == 241 and (zones_after["edition"] == 2024).sum() == 241
    assert zones_after["name"].str.endswith("（更正）").sum() == 3  # corrected, not duplicated
    assert set(zones_after.loc[zones_after["edition"] == 2025, "valid_from"]) == {pd.Timestamp("2025-01-01")}


def test_an_edition_older_than_the_stored_one_is_refused(two_editions):
    before = store_state(two_editions.location)
    frame, kwargs = _edition(chengdu_subdistricts().head(10), 2024, dt.date(2024, 1, 1))
    with pytest.raises(ConflictError, match="older than editions already stored"):
        import_zones(two_editions, frame, **kwargs)
    assert store_state(two_editions.location) == before


# -- people: planners and appointments -------------------------------------------------------------
PLANNERS = pd.DataFrame([
    {"id": "A1", "name": "林一", "organization": "甲院", "disciplines": "planning;heritage",
     "public_contact": "a1@example.org", "private_contact": "+86-28-1"},
    {"id": "A2", "name": "叶二", "organization": None, "disciplines": "landscape", "public_contact": None,
     "private_contact": None},
])


@pytest.fixture
def peopled(store):
    zones = chengdu_subdistricts().head(5)
    import_zones(store, zones, kind="subdistrict", edition=2024, valid_from=dt.date(2024, 1, 1), report={}, source="t")
    save_planners(store, PLANNERS, "tester")
    code = zones["code"].iloc[0]
    ids = add_appointments(store, pd.DataFrame([
        {"planner_id": "A1", "zone_kind": "subdistrict", "zone_code": code, "role": "lead", "start": "2024-01-01",
         "end": None},
        {"planner_id": "A2", "zone_kind": "subdistrict", "zone_code": code, "role": "member", "start": "2024-03-01",
         "end": "2026-01-01"},
    ]), "tester")
    return store, code, ids


def test_planners_round_trip(peopled):
    store, _, _ = peopled
    got = store.planners().set_index("id")
    assert got.loc["A1", "disciplines"] == ["planning", "heritage"]
    assert got.loc["A1", "private_contact"] == "+86-28-1"
    assert got.loc["A2", "organization"] is None and got.loc["A2", "disciplines"] == ["landscape"]


def test_upsert_updates_an_existing_planner(peopled):
    store, _, _ = peopled
    counts = save_planners(store, pd.DataFrame([{"id": "A2", "name": "叶二", "organization": "乙院",
                                                  "disciplines": "landscape;ecology"}]), "tester")
    assert (counts.added, counts.updated, counts.unchanged) == ([], ["A2"], [])
    assert store.planner("A2")["organization"] == "乙院"
    assert len(store.planners()) == 2


def test_appointments_round_trip(peopled):
    store, code, ids = peopled
    got = store.appointments().set_index("id").loc[ids]
    assert list(got["planner_id"]) == ["A1", "A2"] and set(got["zone_code"]) == {code}
    assert list(got["start"]) == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-01")]
    assert pd.isna(got["end"].iloc[0]) and got["end"].iloc[1] == pd.Timestamp("2026-01-01")


def test_ending_an_appointment_keeps_it(peopled):
    store, _, ids = peopled
    end_appointment(store, ids[0], "2025-07-01", "tester")
    got = store.appointments().set_index("id")
    assert len(got) == 2
    assert got.loc[ids[0], "end"] == pd.Timestamp("2025-07-01")
    assert got.loc[ids[0], "start"] == pd.Timestamp("2024-01-01")


@pytest.mark.parametrize("end", ["2024-01-01", "2023-12-31"], ids=["end-equals-start", "end-before-start"])
def test_ending_before_the_start_is_refused(peopled, end):
    store, _, ids = peopled
    with pytest.raises(ValidationError):
        end_appointment(store, ids[0], end, "tester")
    assert pd.isna(store.appointments().set_index("id").loc[ids[0], "end"])


def test_ending_an_unknown_appointment_is_not_found(peopled):
    store, _, _ = peopled
    with pytest.raises(NotFoundError):
        end_appointment(store, 99999, "2025-01-01", "tester")


REFUSED = [  # (SQL a careless tool might run, table whose row count must not change)
    pytest.param("DELETE FROM appointments", "appointments", id="delete-appointments"),
    pytest.param("DELETE FROM audit", "audit", id="delete-audit"),
    pytest.param("UPDATE audit SET actor = 'someone else'", "audit", id="rewrite-audit"),
    pytest.param("DELETE FROM project_events", "project_events", id="delete-project-events"),
    pytest.param("UPDATE project_events SET status = 'feedback'", "project_events", id="rewrite-project-events"),
]


def _rows(location, table):
    s = open_store(location)
    try:
        return s._read(f"SELECT * FROM {table} ORDER BY fid").to_json(date_format="iso", default_handler=str)
    finally:
        s.close()


@pytest.mark.parametrize("sql, table", REFUSED)
def test_store_refuses_to_delete_or_rewrite_history(location, peopled, sql, table):
    store, _, _ = peopled
    store.create_project(name="p", geometry=shapely.Point(104.0, 30.6), type=None, scale=None, description=None,
                         as_of=dt.date(2025, 1, 1), assignment={}, actor="tester")
    store.close()
    before = _rows(location, table)
    assert before != _rows(location, "zeren_meta")  # the table is not empty
    with pytest.raises(refused_errors(), match="never|append-only"):
        raw_execute(location, sql)
    assert _rows(location, table) == before


WRITES = [  # (write, audited entity)
    pytest.param(lambda s, code, ids: save_planners(s, pd.DataFrame([{"id": "A9", "name": "新"}]), "auditor"),
                 "planner", id="planner"),
    pytest.param(lambda s, code, ids: add_appointments(s, pd.DataFrame([{
        "planner_id": "A2", "zone_kind": "subdistrict", "zone_code": code, "role": "consultant",
        "start": "2025-01-01", "end": None}]), "auditor"), "appointment", id="appointment"),
    pytest.param(lambda s, code, ids: end_appointment(s, ids[1], "2025-06-01", "auditor"), "appointment",
                 id="end-appointment"),
    pytest.param(lambda s, code, ids: s.set_consultation_kinds(["historic_area"], actor="auditor"),
                 "consultation_rules", id="consultation-rules"),
    pytest.param(lambda s, code, ids: s.create_project(
        name="p", geometry=shapely.Point(104.0, 30.6), type=None, scale=None, description=None,
        as_of=dt.date(2025, 1, 1), assignment={}, actor="auditor"), "project", id="project"),
]


@pytest.mark.parametrize("write, entity", WRITES)
def test_every_write_appends_to_the_audit_log(peopled, write, entity):
    store, code, ids = peopled
    before = store.audit(limit=10_000)
    write(store, code, ids)
    after = store.audit(limit=10_000)
    # earlier rows untouched
    assert after.iloc[:len(before)].to_json(date_format="iso") == before.to_json(date_format="iso")
    new = after.iloc[len(before):]
    assert len(new) >= 1 and set(new["actor"]) == {"auditor"} and entity in set(new["entity"])


# -- projects ------------------------------------------------------------------------------------
@pytest.fixture
def project(store):
    pid = store.create_project(name="社区口袋公园", geometry=shapely.Point(104.0657, 30.657).buffer(0.001),
                               type="park", scale="small", description="测试", as_of=dt.date(2025, 3, 1),
                               assignment={"lead": {"planner": {"id": "P1"}, "zone": {"kind": "subdistrict",
                                                                                     "code": "510104001"}},
                                           "consultations": [{"planner": {"id": "P9"}}]}, actor="tester")
    return store, pid


def test_project_round_trip(project):
    store, pid = project
    got = store.projects().set_index("id").loc[pid]
    assert (got["name"], got["status"], got["lead_planner_id"], got["lead_zone_code"]) == \
        ("社区口袋公园", "survey", "P1", "510104001")
    assert got["consultation_planner_ids"] == ["P9"]
    assert got.geometry.equals(shapely.Point(104.0657, 30.657).buffer(0.001))


def test_project_moves_through_the_whole_workflow(project):
    store, pid = project
    for status in PROJECT_STATUSES[1:]:
        advance_project(store, pid, status, "tester")
    assert store.projects().set_index("id").loc[pid, "status"] == "feedback"
    assert list(store.project_events(pid)["status"]) == list(PROJECT_STATUSES)


ILLEGAL = [  # (steps taken first, illegal next status)
    pytest.param([], "assessment", id="legal-control"),
    pytest.param([], "consultation", id="skip-a-step"),
    pytest.param([], "feedback", id="jump-to-the-end"),
    pytest.param([], "survey", id="stay-put"),
    pytest.param(["assessment"], "survey", id="go-back"),
    pytest.param(["assessment", "consultation", "implementation", "feedback"], "survey", id="after-the-end"),
]


@pytest.mark.parametrize("steps, target", ILLEGAL)
def test_illegal_workflow_moves_are_conflicts(project, steps, target):
    store, pid = project
    for status in steps:
        advance_project(store, pid, status, "tester")
    current = store.projects().set_index("id").loc[pid, "status"]
    events = len(store.project_events(pid))
    legal = PROJECT_STATUSES.index(target) == PROJECT_STATUSES.index(current) + 1
    if legal:
        advance_project(store, pid, target, "tester")
        assert store.projects().set_index("id").loc[pid, "status"] == target
        return
    with pytest.raises(ConflictError):
        advance_project(store, pid, target, "tester")
    assert store.projects().set_index("id").loc[pid, "status"] == current
    assert len(store.project_events(pid)) == events


def test_unknown_status_is_a_validation_error(project):
    store, pid = project
    with pytest.raises(ValidationError):
        advance_project(store, pid, "approved", "tester")


# -- consultation kinds --------------------------------------------------------------------------
def test_default_consultation_kinds(store):
    assert store.consultation_kinds() == ("historic_area", "key_area")


@pytest.mark.parametrize("kinds", [["renewal_area"], ["historic_area", "key_area", "renewal_area"], []],
                         ids=["renewal-only", "all-overlays", "none"])
def test_consultation_kinds_are_stored(store, kinds):
    store.set_consultation_kinds(kinds, actor="tester")
    assert store.consultation_kinds() == tuple(sorted(kinds))


def test_unknown_consultation_kind_is_refused(store):
    with pytest.raises(ValidationError):
        store.set_consultation_kinds(["palace"], actor="tester")
    assert store.consultation_kinds() == ("historic_area", "key_area")


# -- all or nothing ------------------------------------------------------------------------------
def _boom(*args, **kwargs):
    raise RuntimeError("disk full (simulated)")


FAILING = [  # (write that fails at its last step, the step made to fail)
    pytest.param(lambda s: import_zones(s, chengdu_subdistricts().head(3).assign(name="更正"), kind="subdistrict",
                                        edition=2024, valid_from=dt.date(2024, 1, 1)),
                 "audit_event", id="correct-an-edition"),
    pytest.param(lambda s: import_zones(s, chengdu_subdistricts().head(3), kind="subdistrict", edition=2025,
                                        valid_from=dt.date(2025, 1, 1)),
                 "audit_event", id="new-edition-closing-the-old"),
    pytest.param(lambda s: save_planners(s, pd.DataFrame([{"id": "A1", "name": "改名"}, {"id": "A7", "name": "新"}]),
                                             "t"), "audit_event", id="planners"),
    pytest.param(lambda s: add_appointments(s, pd.DataFrame([{
        "planner_id": "A2", "zone_kind": "subdistrict", "zone_code": s.zones()["code"].iloc[0], "role": "consultant",
        "start": "2030-01-01", "end": None}]), "t"), "audit_events", id="appointments"),  # one bulk audit write
]


@pytest.mark.parametrize("write, step", FAILING)
def test_a_write_that_fails_midway_leaves_the_store_as_it_was(location, peopled, monkeypatch, write, step):
    store, _, _ = peopled
    store.close()
    before = store_state(location)
    monkeypatch.setattr(Store, step, _boom)
    with pytest.raises(RuntimeError, match="simulated"):
        write(store)
    monkeypatch.undo()
    store.close()
    assert store_state(location) == before


# -- the demo on PostGIS -------------------------------------------------------------------------
POINTS = [  # (lon, lat, as_of)
    pytest.param(104.0530, 30.6695, "2025-03-01", id="kuanzhai-historic-area"),
    pytest.param(104.0657, 30.6570, "2025-03-01", id="tianfu-square-key-area"),
    pytest.param(104.1270, 30.6700, "2025-03-01", id="east-suburb-renewal-area"),
    pytest.param(104.4200, 30.8400, "2025-03-01", id="jintang-uncovered"),
    pytest.param(104.0530, 30.6695, "2023-06-01", id="before-the-demo-edition"),
]


@pytest.fixture(scope="module")
def demo_on_postgis(module_database):
    from zeren.api.service.demo import build_demo

    store = build_demo(module_database())
    yield store
    store.close()


@pytest.mark.postgis
def test_demo_on_postgis_holds_the_same_records(demo_on_postgis, demo_template):
    pg = store_state(demo_on_postgis.location)
    gpkg = store_state(demo_template)
    for table in ("zones", "planners", "appointments"):
        assert pg[table] == gpkg[table], table


@pytest.mark.postgis
@pytest.mark.parametrize("lon, lat, as_of", POINTS)
def test_lookup_on_postgis_demo_matches_geopackage_demo(demo_on_postgis, demo_template, lon, lat, as_of):
    pg = Catalogue(demo_on_postgis).lookup(lon, lat, "wgs84", as_of)
    gpkg_store = open_store(str(demo_template))
    try:
        gpkg = Catalogue(gpkg_store).lookup(lon, lat, "wgs84", as_of)
    finally:
        gpkg_store.close()
    assert json.dumps(pg, sort_keys=True, ensure_ascii=False) == json.dumps(gpkg, sort_keys=True, ensure_ascii=False)
