"""Staff coverage, volunteers by skill and building roles over HTTP, with every role boundary."""

from __future__ import annotations

from sqlalchemy import select

from contracts import roles as r
from juwei.store import events_table
from tests.conftest import both_databases
from tests.residents.seed import register_buildings

PROBLEM = "application/problem+json"


@both_databases
def test_coverage_shows_uncovered_buildings_and_overloaded_staff(residents) -> None:
    register_buildings(residents.runtime, "c1", 25)
    staff = residents.key(r.COMMITTEE_STAFF)
    plan = {f"s{n}": [str(b) for b in range(4 * n + 1, 4 * n + 5)] for n in range(5)}  # buildings 1-20
    plan["s5"] = ["21", "22", "23", "1", "2", "3"]  # six: too many
    for member, theirs in plan.items():
        answer = residents.client.put(
            f"/compounds/c1/staff/{member}/buildings", json={"buildings": theirs}, headers=staff
        )
        assert answer.status_code == 200, answer.text
    coverage = residents.client.get("/compounds/c1/coverage", headers=staff).json()
    assert coverage["uncovered"] == ["24", "25"]
    assert coverage["overloaded"] == {"s5": 6}
    assert (
        residents.client.get("/compounds/c1/coverage", params={"max_buildings": 6}, headers=staff).json()["overloaded"]
        == {}
    )
    unknown = residents.client.put("/compounds/c1/staff/s9/buildings", json={"buildings": ["99"]}, headers=staff)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    # Re-assigning the same buildings records nothing new.
    with residents.runtime.database.reading() as session:
        before = len(session.execute(select(events_table.c.position)).all())
    residents.client.put("/compounds/c1/staff/s0/buildings", json={"buildings": plan["s0"]}, headers=staff)
    with residents.runtime.database.reading() as session:
        assert len(session.execute(select(events_table.c.position)).all()) == before


@both_databases
def test_volunteers_are_found_by_skill_in_a_range_of_buildings(residents) -> None:
    register_buildings(residents.runtime, "c1", 8)
    staff = residents.key(r.COMMITTEE_STAFF)
    people = [
        ("v1", "1", ["Spreadsheets", "writing"]),
        ("v2", "4", ["spreadsheets"]),
        ("v3", "7", ["spreadsheets"]),
        ("v4", "2", ["publicity"]),
    ]
    for volunteer, building, skills in people:
        made = residents.client.post(
            "/compounds/c1/volunteers",
            json={"volunteer": volunteer, "building": building, "skills": skills},
            headers=staff,
        )
        assert made.status_code == 201, made.text
    found = residents.client.get(
        "/compounds/c1/volunteers", params={"skill": "spreadsheets", "buildings": "1-5"}, headers=staff
    ).json()["volunteers"]
    assert [(v["volunteer"], v["building"]) for v in found] == [("v1", "1"), ("v2", "4")]
    again = residents.client.post("/compounds/c1/volunteers", json={"volunteer": "v1", "building": "1"}, headers=staff)
    assert again.status_code == 409
    bad_range = residents.client.get("/compounds/c1/volunteers", params={"buildings": "5-1"}, headers=staff)
    assert bad_range.status_code == 422 and bad_range.headers["content-type"] == PROBLEM
    nowhere = residents.client.post(
        "/compounds/c1/volunteers", json={"volunteer": "v9", "building": "99"}, headers=staff
    )
    assert nowhere.status_code == 404


@both_databases
def test_a_new_information_officer_replaces_the_old_one_and_the_logistics_group_has_limits(residents) -> None:
    register_buildings(residents.runtime, "c1", 2)
    staff = residents.key(r.COMMITTEE_STAFF)
    for n in range(1, 10):
        residents.client.post("/compounds/c1/volunteers", json={"volunteer": f"v{n}", "building": "1"}, headers=staff)
    residents.client.post("/compounds/c1/volunteers", json={"volunteer": "w1", "building": "2"}, headers=staff)

    def assign(volunteer: str, **body: object):
        return residents.client.put(f"/compounds/c1/buildings/1/roles/{volunteer}", json=body, headers=staff)

    assert assign("v1", role="information_officer").json()["replaces"] is None
    assert assign("v2", role="information_officer").json()["replaces"] == "v1"
    for n, shift in zip(range(3, 9), "AABBAB", strict=True):
        assert assign(f"v{n}", role="logistics", shift=shift, leader=n == 3).status_code == 200
    full = assign("v9", role="logistics", shift="A")
    assert full.status_code == 409 and full.json()["type"] == "urn:juwei:problem:logistics-group-full"
    assert assign("w1", role="sampling_point").json()["type"] == "urn:juwei:problem:volunteer-other-building"
    assert assign("v9", role="logistics").status_code == 422  # no shift
    team = residents.client.get("/compounds/c1/buildings/1/roles", headers=staff).json()
    assert team["information_officer"] == "v2"
    assert [v["volunteer"] for v in team["logistics"]["A"]] == ["v3", "v4", "v7"]
    assert [v["leader"] for v in team["logistics"]["A"]] == [True, False, False]
    released = residents.client.delete("/compounds/c1/buildings/1/roles/v4/logistics", headers=staff)
    assert released.status_code == 200
    assert assign("v9", role="logistics", shift="A", leader=True).json()["type"] == "urn:juwei:problem:leader-exists"
    assert assign("v9", role="logistics", shift="A").status_code == 200
    not_held = residents.client.delete("/compounds/c1/buildings/1/roles/v1/information_officer", headers=staff)
    assert not_held.status_code == 409


def test_role_boundaries_of_the_team_routes(residents) -> None:
    register_buildings(residents.runtime, "c1", 3)
    staff = residents.key(r.COMMITTEE_STAFF)
    residents.client.post("/compounds/c1/volunteers", json={"volunteer": "v1", "building": "1"}, headers=staff)
    officer = residents.key(r.INFORMATION_OFFICER, buildings=["1"])
    logistics = residents.key(r.LOGISTICS_VOLUNTEER, buildings=["1"])
    outsider = residents.key(r.EXTERNAL_CONSUMER)
    district = residents.key(r.DISTRICT_OPERATOR, compound=None)
    elsewhere = residents.key(r.COMMITTEE_STAFF, compound="c2")
    client = residents.client

    def status(method: str, url: str, headers: dict, json: object = None) -> int:
        return client.request(method, url, headers=headers, json=json).status_code

    enlist_here = {"volunteer": "v2", "building": "1"}
    enlist_there = {"volunteer": "v3", "building": "2"}
    assert status("POST", "/compounds/c1/volunteers", officer, enlist_here) == 201
    assert status("POST", "/compounds/c1/volunteers", officer, enlist_there) == 403
    assert status("POST", "/compounds/c1/volunteers", logistics, enlist_there) == 403
    assert status("PUT", "/compounds/c1/buildings/1/roles/v1", officer, {"role": "sampling_point"}) == 403
    assert status("PUT", "/compounds/c1/buildings/1/roles/v1", district, {"role": "sampling_point"}) == 200
    assert status("GET", "/compounds/c1/buildings/1/roles", logistics) == 200
    assert status("GET", "/compounds/c1/buildings/2/roles", logistics) == 403
    assert status("GET", "/compounds/c1/coverage", officer) == 403
    assert status("GET", "/compounds/c1/coverage", elsewhere) == 403
    assert status("GET", "/compounds/c1/volunteers", outsider) == 403
    assert status("GET", "/compounds/c1/volunteers", {"X-API-Key": "jw_x_y"}) == 401
    seen = client.get("/compounds/c1/volunteers", headers=officer).json()["volunteers"]
    assert {v["building"] for v in seen} == {"1"}
