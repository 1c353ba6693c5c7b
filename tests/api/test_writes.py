"""Writes: tokens and roles, planners, appointments, projects and their workflow, the audit log."""
from __future__ import annotations

import sqlite3

import pytest

from tests.api.conftest import AUTH, AUTH_OTHER, AUTH_PLANNER

NEW_PLANNER = {"id": "P900", "name": "新规划师", "organization": "示例院", "disciplines": ["planning", "heritage"],
               "public_contact": "p900@example.org", "private_contact": "+86-28-0000-0900"}
APPOINTMENT = {"planner_id": "P006", "zone_kind": "subdistrict", "zone_code": "510105002", "role": "member",
               "start": "2025-09-01"}
PROJECT = {"name": "测试项目", "type": "park", "scale": "small", "description": "x",
           "geometry": {"type": "Polygon", "coordinates": [[[104.0515, 30.6685], [104.0545, 30.6685],
                                                            [104.0545, 30.6705], [104.0515, 30.6705],
                                                            [104.0515, 30.6685]]]}}


def audit_rows(path) -> int:
    with sqlite3.connect(path) as con:
        return con.execute("SELECT count(*) FROM audit").fetchone()[0]


def counts(path) -> tuple:
    with sqlite3.connect(path) as con:
        return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("audit", "planners", "appointments", "projects", "project_events"))


WRITES = [
    ("post", "/planners", NEW_PLANNER),
    ("patch", "/planners/P006", {"name": "改名"}),
    ("post", "/appointments", APPOINTMENT),
    ("patch", "/appointments/1", {"end": "2026-01-01"}),
    ("post", "/appointments/1/end", {"end": "2026-01-01"}),
    ("post", "/projects", PROJECT),
    ("post", "/projects/1/status", {"status": "consultation"}),
    ("post", "/projects/1/notes", {"note": "x"}),
]


@pytest.mark.parametrize("headers, status", [
    ({}, 401),
    ({"Authorization": "Bearer wrong-token"}, 401),
    ({"Authorization": "Bearer "}, 401),
    ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401),
    ({"Authorization": f"Bearer {'x' * 5000}"}, 401),
])
def test_writes_without_a_valid_token_write_nothing(wclient, headers, status):
    before = counts(wclient.store_path)
    for method, url, body in WRITES:
        r = getattr(wclient, method)(url, json=body, headers=headers)
        assert r.status_code == status, (url, r.text)
        assert r.headers.get("www-authenticate", "").startswith("Bearer")
    assert counts(wclient.store_path) == before
    assert wclient.get("/audit", headers=headers).status_code == 401


def test_planner_tokens_may_only_move_their_projects(wclient):
    before = counts(wclient.store_path)
    for method, url, body in WRITES[:6]:  # planners, appointments, new projects: admins only
        r = getattr(wclient, method)(url, json=body, headers=AUTH_PLANNER)
        assert r.status_code == 403, (url, r.text)
    assert wclient.get("/audit", headers=AUTH_PLANNER).status_code == 403
    # P001 is neither lead nor consulted on project 1 (宽窄巷子): refused
    assert wclient.post("/projects/1/status", json={"status": "consultation"}, headers=AUTH_OTHER).status_code == 403
    assert wclient.post("/projects/1/notes", json={"note": "x"}, headers=AUTH_OTHER).status_code == 403
    assert counts(wclient.store_path) == before
    # P006 leads project 1: allowed, and recorded as P006 (in /audit; a planner's answer shows the role only)
    r = wclient.post("/projects/1/status", json={"status": "consultation", "note": "调研完成"}, headers=AUTH_PLANNER)
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["status"] == "consultation"
    assert r.json()["properties"]["events"][-1] == {"at": r.json()["properties"]["events"][-1]["at"],
                                                    "status": "consultation", "actor": "planner",
                                                    "note": "调研完成"}
    r = wclient.post("/projects/1/notes", json={"note": "与居民座谈"}, headers=AUTH_PLANNER)
    assert r.status_code == 201 and r.json()["properties"]["events"][-1]["note"] == "与居民座谈"
    audit = wclient.get("/audit", params={"entity": "project", "entity_id": "1"}, headers=AUTH).json()
    assert [e["actor"] for e in audit["entries"][-2:]] == ["planner:P006", "planner:P006"]


def test_workflow_moves_one_step_at_a_time(wclient):
    r = wclient.post("/projects", json=PROJECT, headers=AUTH)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.headers["location"] == f"/projects/{pid}"
    props = r.json()["properties"]
    assert props["status"] == "survey" and props["lead_planner_id"] == "P006"
    assert props["consultation_planner_ids"]  # the historic area's planners, frozen now
    assert props["assignment"]["lead"]["zone"]["code"] == "510105002"
    assert "private_contact" not in str(props["assignment"])
    assert wclient.post(f"/projects/{pid}/status", json={"status": "consultation"}, headers=AUTH).status_code == 409
    for status in ("assessment", "consultation", "implementation", "feedback"):
        r = wclient.post(f"/projects/{pid}/status", json={"status": status}, headers=AUTH)
        assert r.status_code == 200, r.text
    r = wclient.post(f"/projects/{pid}/status", json={"status": "feedback"}, headers=AUTH)
    assert r.status_code == 409 and "finished" in r.json()["detail"]
    assert wclient.post(f"/projects/{pid}/status", json={"status": "done"}, headers=AUTH).status_code == 422
    assert wclient.post("/projects/99999/status", json={"status": "assessment"}, headers=AUTH).status_code == 404
    events = wclient.get(f"/projects/{pid}").json()["properties"]["events"]
    assert [e["status"] for e in events] == ["survey", "assessment", "consultation", "implementation", "feedback"]
    listed = wclient.get("/projects", params={"status": "feedback", "planner_id": "P006"}).json()
    assert pid in [f["id"] for f in listed["features"]]
    assert wclient.get("/projects", params={"bbox": "103.0,29.0,103.1,29.1"}).json()["numberMatched"] == 0


@pytest.mark.parametrize("geometry, needle", [
    ({"type": "Polygon", "coordinates": [[[104.05, 30.66], [104.06, 30.66], [104.06, 30.67], [104.05, 30.67]]]},
     "not closed"),
    ({"type": "Polygon", "coordinates": []}, "empty"),
    ({"type": "Point", "coordinates": [30.66, 104.05]}, "swap"),
    ({"type": "Point", "coordinates": [104.05]}, "position"),
    ({"type": "Feature"}, "geometry type"),
    ({"type": "Polygon", "coordinates": [[[104.05, 30.66], [104.06, 30.66], [104.07, 30.66], [104.05, 30.66]]]},
     "no area"),
])
def test_project_geometry_problems(wclient, geometry, needle):
    before = counts(wclient.store_path)
    r = wclient.post("/projects", json=dict(PROJECT, geometry=geometry), headers=AUTH)
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]
    assert counts(wclient.store_path) == before


def test_project_bow_tie_is_repaired_and_crs_converted(wclient):
    bow = {"type": "Polygon", "coordinates": [[[104.05, 30.66], [104.06, 30.67], [104.06, 30.66], [104.05, 30.67],
                                               [104.05, 30.66]]]}
    r = wclient.post("/projects", json=dict(PROJECT, geometry=bow), headers=AUTH)
    assert r.status_code == 201 and r.json()["properties"]["repaired"] is True
    r = wclient.post("/projects", params={"crs": "bd09", "as_of": "2025-06-30"},
                     json=dict(PROJECT, geometry={"type": "Point", "coordinates": [104.0595, 30.6753]}), headers=AUTH)
    assert r.status_code == 201
    assert r.json()["properties"]["as_of"] == "2025-06-30"
    lon, lat = r.json()["geometry"]["coordinates"]
    assert abs(lon - 104.0595) > 0.005  # moved from Baidu's offset to WGS84


def test_planners_create_update_conflict(wclient):
    r = wclient.post("/planners", json=NEW_PLANNER, headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["private_contact"] == NEW_PLANNER["private_contact"]
    assert "private_contact" not in wclient.get("/planners/P900").json()
    assert wclient.post("/planners", json=NEW_PLANNER, headers=AUTH).status_code == 409
    r = wclient.patch("/planners/P900", json={"organization": "新院", "disciplines": ["law"]}, headers=AUTH)
    assert r.status_code == 200 and r.json()["organization"] == "新院" and r.json()["disciplines"] == ["law"]
    assert r.json()["name"] == NEW_PLANNER["name"]
    assert wclient.patch("/planners/NOPE", json={"name": "x"}, headers=AUTH).status_code == 404
    for bad in ({"id": "P 1", "name": "x"}, {"id": "P901"}, {"id": "P901", "name": ""},
                {"id": "P901", "name": "x", "disciplines": ["magic"]}, {"id": "P901", "name": "x", "extra": 1},
                {"id": "P901", "name": 5}, {"id": ["P901"], "name": "x"}):
        assert wclient.post("/planners", json=bad, headers=AUTH).status_code == 422, bad
    assert wclient.patch("/planners/P900", json={"id": "P999"}, headers=AUTH).status_code == 422
    assert wclient.patch("/planners/P900", json={"name": None}, headers=AUTH).status_code == 422
    # the lookup answer sees the change at once
    wclient.patch("/planners/P006", json={"name": "新名字"}, headers=AUTH)
    body = wclient.get("/lookup", params={"lon": 104.0530, "lat": 30.6695}).json()
    assert body["lead"]["planner"]["name"] == "新名字"
    actions = [(e["action"], e["entity_id"]) for e in wclient.get("/audit", params={"entity": "planner"},
                                                                  headers=AUTH).json()["entries"]]
    assert ("create", "P900") in actions and ("update", "P006") in actions


def test_appointments_create_end_and_conflicts(wclient):
    r = wclient.post("/appointments", json=APPOINTMENT, headers=AUTH)
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    assert r.json()["active"] is True and r.json()["planner"]["private_contact"]
    # a second lead over the current lead's dates: 409, naming the current one
    r = wclient.post("/appointments", json=dict(APPOINTMENT, role="lead", planner_id="P001"), headers=AUTH)
    assert r.status_code == 409 and "already has lead" in r.json()["detail"]
    # handover: end the lead, appoint the next from that day; lookups follow
    lead = wclient.get("/zones/subdistrict/510105002/planners").json()["appointments"]
    lead_id = [a["id"] for a in lead if a["role"] == "lead"][0]
    assert wclient.patch(f"/appointments/{lead_id}", json={"end": "2026-01-01"}, headers=AUTH).status_code == 200
    r = wclient.post("/appointments", json=dict(APPOINTMENT, role="lead", planner_id="P001", start="2026-01-01"),
                     headers=AUTH)
    assert r.status_code == 201, r.text
    after = wclient.get("/lookup", params={"lon": 104.0530, "lat": 30.6695, "as_of": "2026-02-01"}).json()
    before = wclient.get("/lookup", params={"lon": 104.0530, "lat": 30.6695, "as_of": "2025-12-31"}).json()
    assert after["lead"]["planner"]["id"] == "P001" and before["lead"]["planner"]["id"] == "P006"
    # ending
    r = wclient.post(f"/appointments/{aid}/end", json={"end": "2025-08-01"}, headers=AUTH)
    assert r.status_code == 422 and "not after" in r.json()["detail"]
    assert wclient.post(f"/appointments/{aid}/end", json={"end": "2025-12-01"}, headers=AUTH).status_code == 200
    assert wclient.patch(f"/appointments/{aid}", json={"role": "lead"}, headers=AUTH).status_code == 422
    assert wclient.patch("/appointments/999999", json={"end": "2026-01-01"}, headers=AUTH).status_code == 404
    for bad in (dict(APPOINTMENT, planner_id="NOPE"), dict(APPOINTMENT, zone_code="000"),
                dict(APPOINTMENT, zone_kind="planet"), dict(APPOINTMENT, role="boss"),
                dict(APPOINTMENT, start="2025-02-30"), dict(APPOINTMENT, start="soon"),
                dict(APPOINTMENT, start="2025-09-01", end="2025-01-01"), dict(APPOINTMENT, start="0001-01-01"),
                {k: v for k, v in APPOINTMENT.items() if k != "start"}):
        r = wclient.post("/appointments", json=bad, headers=AUTH)
        assert r.status_code == 422, (bad, r.text)


@pytest.mark.parametrize("content", [
    b"{not json", b'{"name": NaN}', b'{"name": Infinity, "id": "P1"}', b"[]", b'"x"', b"null", b"\xff",
    b'{"id": "P1", "name": "x", "disciplines": "planning"}',
])
def test_bad_bodies_on_writes(wclient, content):
    before = counts(wclient.store_path)
    r = wclient.post("/planners", content=content, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert set(r.json()) == {"detail", "error", "problems"}
    assert counts(wclient.store_path) == before


def test_audit_log_pages(wclient):
    page = wclient.get("/audit", params={"limit": 5, "offset": 0}, headers=AUTH).json()
    assert page["numberReturned"] == 5 and page["numberMatched"] > 300
    assert page["entries"][0]["id"] < page["entries"][1]["id"]


def test_store_trouble_is_503_not_500(wclient, monkeypatch):
    def busy(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(wclient.app.state.zeren.store, "write_planners", busy)
    r = wclient.post("/planners", json=NEW_PLANNER, headers=AUTH)
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert "locked" not in r.json()["detail"]  # the driver's words stay in the log
    monkeypatch.setattr(wclient.app.state.zeren.store, "change_marks", busy)
    assert wclient.get("/health").status_code == 503


def test_changes_made_elsewhere_are_picked_up(wclient):
    """Another worker or the CLI writes to the store: the periodic refresh reloads people and zones."""
    import datetime as dt

    from zeren.api.service.actors import Actor
    from zeren.api.service.boundaries import import_frame
    from zeren.api.service.planners import create_planner
    from zeren.api.service.workspace import Workspace

    other = Workspace.open(wclient.store_path)  # another process's workspace (a CLI command)
    create_planner(other, {"id": "P777", "name": "外部导入"}, actor=Actor("cli"))
    areas = other.store.zones(kind="historic_area")
    import_frame(other, areas.drop(columns="kind").iloc[:1], kind="historic_area", edition=2025,
                 valid_from=dt.date(2025, 1, 1), retire_missing=True, actor=Actor("cli"))
    other.close()
    assert wclient.get("/planners/P777").status_code == 404  # not yet seen
    assert wclient.app.state.zeren.refresh() == "zones"
    assert wclient.get("/planners/P777").status_code == 200
    assert wclient.get("/zones", params={"kind": "historic_area"}).json()["numberMatched"] == 1
    assert wclient.get("/zones", params={"kind": "historic_area", "as_of": "2024-06-01"}).json()["numberMatched"] == 3
    assert wclient.app.state.zeren.refresh() is None  # nothing new
    body = wclient.get("/lookup", params={"lon": 104.0530, "lat": 30.6695}).json()
    assert any(z["code"] == "HA-001" for z in body["zones"])
