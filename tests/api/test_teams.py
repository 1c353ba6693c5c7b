"""Teams and discipline requirements (issue 12, part 3): the demo's short zones, the report recomputed from
the appointments and teams themselves, teams and requirements edited by an admin (and refused otherwise),
the command line giving the same answer, and the same on PostGIS."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AUTH, AUTH_PLANNER, make_settings
from tests.api.test_feedback import pg_demo  # noqa: F401 - the module's PostGIS copy of the demo
from zeren.api.cli.main import main
from zeren.api.http.app import create_app
from zeren.geo.kinds import DEFAULT_DISCIPLINE_REQUIREMENTS
from zeren.layers.store import open_store


def recompute(store, as_of=None) -> dict[str, set]:
    """Zone code -> disciplines of its people, from the tables directly (appointments in force, the planners'
    own disciplines, and the members of the teams the appointments name)."""
    import datetime as dt

    day = as_of or dt.date.today()
    appts = store.appointments()
    live = appts[(appts["start"].dt.date <= day) & (appts["end"].isna() | (appts["end"].dt.date > day))]
    planners = dict(zip(store.planners()["id"], store.planners()["disciplines"]))
    links = dict(zip(store.appointment_teams()["appointment_id"], store.appointment_teams()["team_id"]))
    members = store.team_members()
    out: dict[str, set] = {}
    for a in live.itertuples(index=False):
        have = out.setdefault(a.zone_code, set())
        have |= set(planners.get(a.planner_id, []))
        team = links.get(int(a.id))
        if team is not None:
            for m in members[members["team_id"] == team].itertuples(index=False):
                have |= set(planners.get(m.planner_id, []))
                if m.discipline:
                    have.add(m.discipline)
    return out


def test_the_demo_report_names_its_short_zones(client, demo_path):
    report = client.get("/coverage/disciplines").json()
    short = {z["code"]: z for z in report["short"]}
    assert set(short) == {"KA-001", "KA-002"}
    assert short["KA-001"]["missing"] == [["urban_design"]]  # its team borrowed a transport adviser
    assert short["KA-002"]["missing"] == [["urban_design"], ["transport"]]
    assert "城市设计" in short["KA-001"]["missing_text"]
    assert report["zones_checked"] == 5 and report["zones_staffed"] == 3
    assert {z["code"] for z in report["zones"] if z["staffed"]} == {"HA-001", "HA-002", "HA-003"}
    # every figure from the tables themselves
    store = open_store(demo_path)
    have = recompute(store)
    needs = store.discipline_requirements()
    for z in report["zones"]:
        assert set(z["disciplines"]) == have.get(z["code"], set())
        assert z["missing"] == [g for g in needs[z["kind"]] if not set(g) & have.get(z["code"], set())]
    per = {d["district_code"]: d for d in report["districts"]}
    assert sum(d["zones"] for d in per.values()) == 5
    for d in per.values():
        assert d["share_staffed"] == pytest.approx(d["staffed"] / d["zones"])


def test_default_requirements_are_data(client):
    got = client.get("/disciplines/requirements").json()
    assert got == {k: [list(g) for g in v] for k, v in DEFAULT_DISCIPLINE_REQUIREMENTS.items()}


def test_teams_are_listed_with_roles_and_disciplines(client):
    teams = client.get("/teams").json()
    assert len(teams) > 20
    t = next(t for t in teams if "天府广场" in t["name"])
    roles = {m["role"] for m in t["members"]}
    assert roles == {"lead", "adviser"} and t["lead_planner_id"] in {m["planner_id"] for m in t["members"]}
    assert client.get(f"/teams/{t['id']}").json() == t
    mine = client.get("/teams", params={"planner_id": t["lead_planner_id"]}).json()
    assert t in mine and all(t["lead_planner_id"] in {m["planner_id"] for m in x["members"]} for x in mine)
    assert client.get("/teams/T999").status_code == 404


def test_an_urban_designer_in_the_team_closes_the_gap(wclient):
    team = next(t for t in wclient.get("/teams").json() if "天府广场" in t["name"])
    body = {k: team[k] for k in ("name", "organization", "lead_planner_id", "appointments")}
    body["members"] = team["members"] + [{"planner_id": "P001", "discipline": "urban_design", "role": "adviser"}]
    assert wclient.put(f"/teams/{team['id']}", json=body, headers=AUTH_PLANNER).status_code == 403
    assert wclient.put(f"/teams/{team['id']}", json=body).status_code == 401
    r = wclient.put(f"/teams/{team['id']}", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    short = {z["code"] for z in wclient.get("/coverage/disciplines").json()["short"]}
    assert short == {"KA-002"}
    # a new team is 201
    r = wclient.put("/teams/T-NEW", json={"name": "新团队", "members": [{"planner_id": "P002", "role": "member",
                                                                        "discipline": "planning"}]}, headers=AUTH)
    assert r.status_code == 201 and r.json()["members"][0]["planner_id"] == "P002"


@pytest.mark.parametrize("body, says", [
    pytest.param({"name": "x", "members": [{"planner_id": "P999", "role": "member"}]}, "P999", id="unknown-planner"),
    pytest.param({"name": "x", "members": [{"planner_id": "P001", "role": "boss"}]}, "boss", id="bad-role"),
    pytest.param({"name": "x", "members": [{"planner_id": "P001", "discipline": "magic"}]}, "magic",
                 id="bad-discipline"),
    pytest.param({"name": "x", "appointments": [999999]}, "999999", id="unknown-appointment"),
    pytest.param({"name": "x", "lead_planner_id": "NOPE"}, "NOPE", id="unknown-lead"),
    pytest.param({"name": "  "}, "name", id="blank-name"),
])
def test_bad_teams_are_422(wclient, body, says):
    r = wclient.put("/teams/T-BAD", json=body, headers=AUTH)
    assert r.status_code == 422 and says in r.text
    assert wclient.get("/teams/T-BAD").status_code == 404


def test_requirements_are_editable(wclient):
    r = wclient.put("/disciplines/requirements/historic_area", json={"groups": [["heritage"], ["ecology"]]},
                    headers=AUTH)
    assert r.status_code == 200 and r.json()["historic_area"] == [["heritage"], ["ecology"]]
    short = {z["code"]: z["missing"] for z in wclient.get("/coverage/disciplines").json()["short"]}
    assert short["HA-001"] == [["ecology"]] and {"HA-002", "HA-003"} <= set(short)
    assert wclient.put("/disciplines/requirements/historic_area", json={"groups": [["heritage"]]},
                       headers=AUTH_PLANNER).status_code == 403
    assert wclient.put("/disciplines/requirements/historic_area", json={"groups": [["alchemy"]]},
                       headers=AUTH).status_code == 422
    assert wclient.put("/disciplines/requirements/historic_area", json={"groups": [[]]},
                       headers=AUTH).status_code == 422
    assert wclient.put("/disciplines/requirements/castle", json={"groups": [["heritage"]]},
                       headers=AUTH).status_code == 404
    # nothing required: the kind is no longer checked
    wclient.put("/disciplines/requirements/key_area", json={"groups": []}, headers=AUTH)
    codes = {z["code"] for z in wclient.get("/coverage/disciplines").json()["zones"]}
    assert not any(c.startswith("KA-") for c in codes)


def test_a_date_with_no_edition_is_422(client):
    assert client.get("/coverage/disciplines", params={"as_of": "1990-01-01"}).status_code == 422


def test_the_command_line_gives_the_same_answer(client, demo_path, tmp_path, capsys):
    assert main(["coverage", "disciplines", "--json", "--store", str(demo_path)]) == 0
    assert json.loads(capsys.readouterr().out) == client.get("/coverage/disciplines").json()
    out = tmp_path / "disciplines.csv"
    assert main(["coverage", "disciplines", "--out", str(out), "--store", str(demo_path)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "KA-002" in text and "urban_design|" not in text and "urban_design" in text
    assert "天府新区区域中心" in capsys.readouterr().out
    assert main(["teams", "--json", "--store", str(demo_path)]) == 0
    assert len(json.loads(capsys.readouterr().out)) > 20


def test_teams_and_the_report_on_postgis(pg_demo):  # noqa: F811 - the fixture imported above
    with TestClient(create_app(make_settings(pg_demo))) as c:
        before = c.get("/coverage/disciplines").json()
        assert {"KA-001", "KA-002"} <= {z["code"] for z in before["short"]}
        ids = [a["id"] for a in open_store(pg_demo).appointments().to_dict("records") if a["zone_code"] == "KA-002"]
        members = [{"planner_id": "P069", "role": "lead", "discipline": "urban_design"},
                   {"planner_id": "P004", "role": "adviser", "discipline": "transport"}]
        r = c.put("/teams/T-KA2", json={"name": "天府新区专项团队", "lead_planner_id": "P069", "appointments": ids,
                                        "members": members}, headers=AUTH)
        assert r.status_code == 201, r.text
        after = {z["code"] for z in c.get("/coverage/disciplines").json()["short"]}
        assert "KA-002" not in after and "KA-001" in after
