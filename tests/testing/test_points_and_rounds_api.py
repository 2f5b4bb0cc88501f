"""Sampling points, the balanced assignment, rounds, call plans and "call next" over HTTP, with their roles."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select

from contracts import roles as r
from contracts.residents import VolunteerEnlisted
from juwei.store import events_table
from services.testing import handlers
from tests.conftest import both_databases
from tests.testing.compound import Compound
from tests.testing.conftest import Testing, open_points, receive, small_compound


def _events(testing: Testing, kind: str) -> list[dict]:
    """The events of that kind in testing's own log, with the private part it keeps (every version)."""
    query = select(events_table.c.type, events_table.c.data, events_table.c.private).order_by(events_table.c.position)
    with testing.runtime.database.reading() as session:
        rows = session.execute(query).all()
    return [
        {**json.loads(data), **json.loads(private or "{}")}
        for type_name, data, private in rows
        if kind is None or type_name.rsplit(".", 1)[0] == f"juwei.testing.{kind}"
    ]


@both_databases
def test_points_are_opened_balanced_and_changed_by_staff(testing: Testing) -> None:
    receive(testing.runtime, small_compound(buildings=6, residents=300).envelopes)
    open_points(testing, 3)
    proposal = testing.ok("GET", "/assignment/proposal")["points"]
    assert sorted(b for p in proposal for b in p["buildings"]) == [str(n) for n in range(1, 7)]
    assert {p["residents"] for p in proposal} == {100}
    assert _events(testing, "BuildingsAssigned") == []  # a proposal is only a proposal
    testing.ok("POST", "/assignment/proposal")
    assert all(e["proposed"] for e in _events(testing, "BuildingsAssigned"))
    listed = testing.ok("GET", "/points")
    assert listed["unassigned"] == [] and [p["residents"] for p in listed["points"]] == [100, 100, 100]
    # Staff move building 1 to point 3: it leaves the point that served it.
    before = {p["point"]: p["buildings"] for p in listed["points"]}
    old = next(p for p, bs in before.items() if "1" in bs)
    moved = testing.ok("PUT", "/points/p3/buildings", json={"buildings": [*before["p3"], "1"]})
    assert "1" in moved["buildings"]
    after = {p["point"]: p["buildings"] for p in testing.ok("GET", "/points")["points"]}
    assert "1" in after["p3"] and "1" not in after[old]
    # Volunteers of a building point 2 serves, as residents published them (others are refused: test_point_volunteers).
    home = after["p2"][0]
    enlisted = Compound("c1")
    for volunteer in ("v1", "v2"):
        event = VolunteerEnlisted(volunteer=f"c1:{volunteer}", building=f"c1:{home}", skills=[])
        enlisted.publish(f"volunteer-c1:{volunteer}", event)
    receive(testing.runtime, enlisted.envelopes)
    changed = testing.ok("PATCH", "/points/p2", json={"throughput": 5, "volunteers": ["v1", "v2"]})
    assert changed == {"point": "p2", "throughput": 5.0, "volunteers": ["v1", "v2"]}
    assert testing.problem("PUT", "/points/p1/buildings", json={"buildings": ["99"]}) == (404, "building-unknown")
    assert testing.problem("POST", "/points", json={"point": "p1", "name": "x", "location": "y", "throughput": 1}) == (
        409,
        "point-exists",
    )
    assert testing.problem("PATCH", "/points/p1", json={"throughput": 0})[0] == 422
    assert testing.problem("PATCH", "/points/p9", json={"throughput": 2}) == (404, "point-unknown")
    testing.ok("POST", "/points/p2/close", json={"reason": "moved"})
    assert testing.problem("PUT", "/points/p2/buildings", json={"buildings": ["2"]}) == (404, "point-unknown")
    assert not next(p for p in testing.ok("GET", "/points")["points"] if p["point"] == "p2")["open"]


@both_databases
def test_a_round_is_planned_and_called_floor_by_floor(testing: Testing) -> None:
    compound = small_compound(buildings=3, residents=120, bedridden_share=0.05)
    receive(testing.runtime, compound.envelopes)
    open_points(testing, 2)
    testing.ok("POST", "/assignment/proposal")
    scheduled = testing.ok(
        "POST",
        "/rounds",
        json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1", "p2"], "floors_per_call": 2},
    )
    assert scheduled["starts_at"] == "2022-04-12T07:00:00+08:00" and scheduled["on"] == "2022-04-12"
    plan = testing.ok("POST", "/rounds/r1/plan")
    bedridden = sum(1 for _, _, _, b in compound.residents.values() if b)
    assert bedridden > 0
    assert plan["called"] + plan["door_to_door"] == 120 and plan["door_to_door"] == bedridden
    for point in plan["points"]:
        assert point["peak_queue"] <= point["queue_limit"] == 20  # 2 swabs a minute × 10 minutes
        assert [c["call"] for c in point["calls"]] == list(range(1, len(point["calls"]) + 1))
    visits = testing.ok("GET", "/rounds/r1/door-to-door")["visits"]
    assert len(visits) == bedridden and {"building", "floor", "household", "resident"} == set(visits[0])
    # An information officer sees the calls of their own building.
    officer = testing.key(r.INFORMATION_OFFICER, buildings=["1"])
    theirs = testing.ok("GET", "/rounds/r1/plan", headers=officer)
    assert {c["building"] for p in theirs["points"] for c in p["calls"]} == {"1"}
    assert testing.status("GET", "/rounds/r1/plan?building=2", officer) == 403

    p1 = next(p for p in plan["points"] if p["point"] == "p1")
    volunteer = testing.point_key("p1")
    first = testing.ok("POST", "/rounds/r1/points/p1/calls/next", headers=volunteer)
    expected = p1["calls"][0]
    assert (first["building"], first["floors"], first["people"]) == (
        expected["building"],
        expected["floors"],
        expected["people"],
    )
    assert first["message"].startswith(f"Building {expected['building']}, floor")
    assert first["message"].endswith("come down to Point 1 now")
    called = _events(testing, "UnitCalled")
    assert called[-1]["building"] == f"c1:{expected['building']}" and called[-1]["called_by"] == "volunteer"
    assert testing.status("POST", "/rounds/r1/points/p2/calls/next", volunteer) == 403  # another point's key
    unbound = testing.key(r.SAMPLING_VOLUNTEER)
    assert testing.status("POST", "/rounds/r1/points/p1/calls/next", unbound) == 403
    assert testing.status("POST", "/rounds/r1/points/p1/calls/next", testing.key(r.HOUSEHOLD)) == 403
    for _ in range(len(p1["calls"]) - 1):
        testing.ok("POST", "/rounds/r1/points/p1/calls/next", headers=volunteer)
    assert testing.problem("POST", "/rounds/r1/points/p1/calls/next", volunteer) == (409, "plan-finished")
    assert testing.problem("POST", "/rounds/r1/plan") == (409, "calls-started")
    progress = testing.ok("GET", "/rounds/r1/plan")["points"]
    assert [(p["calls_planned"] == p["calls_made"]) for p in progress] == [True, False]
    assert testing.problem("POST", "/rounds/r9/plan") == (404, "round-unknown")
    assert testing.problem("POST", "/rounds/r1/points/p9/calls/next") == (409, "no-plan")
    # Anyone of the compound may know when the round is; other systems and compounds may not.
    assert testing.ok("GET", "/rounds/r1", headers=testing.key(r.HOUSEHOLD))["kind"] == "pcr"
    assert testing.status("GET", "/rounds", testing.key(r.EXTERNAL_CONSUMER)) == 403
    assert testing.status("GET", "/rounds", testing.key(r.COMMITTEE_STAFF, compound="c2")) == 403
    assert testing.ok("GET", "/rounds", headers=testing.key(r.DISTRICT_OPERATOR, compound=None))["rounds"]


def test_a_round_that_advances_on_its_own_calls_each_unit_at_its_time(testing: Testing) -> None:
    receive(testing.runtime, small_compound(buildings=2, residents=60).envelopes)
    open_points(testing, 1)
    testing.ok("POST", "/assignment/proposal")
    testing.ok(
        "POST",
        "/rounds",
        json={"round": "auto", "starts_at": "2022-04-12T07:00:00+08:00", "points": ["p1"], "auto_advance": True},
    )
    plan = testing.ok("POST", "/rounds/auto/plan")["points"][0]["calls"]
    starts = [datetime.fromisoformat(c["starts_at"]) for c in plan]
    moment = starts[0] + timedelta(minutes=12)
    due = sum(1 for s in starts if s <= moment)
    assert 0 < due < len(plan)
    assert handlers.advance_call_plans(testing.runtime, at=moment) == due
    assert handlers.advance_call_plans(testing.runtime, at=moment) == 0  # nothing called twice
    made = testing.ok("GET", "/rounds/auto/plan")["points"][0]
    assert made["calls_made"] == due
    assert {c["called_by"] for c in made["calls"] if c["called_at"]} == {"schedule"}
    assert handlers.advance_call_plans(testing.runtime, at=starts[-1] + timedelta(hours=1)) == len(plan) - due


def test_role_boundaries_of_points_and_rounds(testing: Testing) -> None:
    receive(testing.runtime, small_compound(buildings=2, residents=40).envelopes)
    open_points(testing, 1)
    new_point = {"point": "p2", "name": "Point 2", "location": "car park", "throughput": 3}
    round_body = {"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1"]}
    for role, compound, allowed in (
        (r.SAMPLING_VOLUNTEER, "c1", False),
        (r.INFORMATION_OFFICER, "c1", False),
        (r.HOUSEHOLD, "c1", False),
        (r.EXTERNAL_CONSUMER, "c1", False),
        (r.COMMITTEE_STAFF, "c2", False),
        (r.DISTRICT_OPERATOR, None, True),
    ):
        headers = testing.key(role, compound=compound)
        expected = 201 if allowed else 403
        assert testing.status("POST", "/points", headers, json=new_point) == expected, role
        assert testing.status("POST", "/rounds", headers, json=round_body) == expected, role
        assert testing.status("POST", "/assignment/proposal", headers) == (200 if allowed else 403), role
        assert testing.status("POST", "/points/p1/keys", headers) == (201 if allowed else 403), role
        new_point = {**new_point, "point": "p3"} if allowed else new_point
        round_body = {**round_body, "round": "r2"} if allowed else round_body
    assert testing.status("GET", "/points", testing.key(r.SAMPLING_VOLUNTEER)) == 200
    assert testing.status("GET", "/points", testing.key(r.INFORMATION_OFFICER, ["1"])) == 200
    assert testing.status("GET", "/points", testing.key(r.HOUSEHOLD)) == 403
    assert testing.status("GET", "/points", {}) == 401
    assert testing.status("GET", "/points", {"X-API-Key": "jw_nope_nope"}) == 401


def test_a_time_far_from_the_lockdown_is_refused_not_shown_with_an_offset_rfc3339_cannot_write(
    testing: Testing,
) -> None:
    open_points(testing, 1)
    # Shanghai's offset in the year 254 is local mean time, +08:05:43: it was answered as such before.
    for starts_at in ("0254-08-21T22:24:24", "2101-01-01T07:00", "1999-12-31T23:59"):
        body = {"round": "r-far", "starts_at": starts_at, "points": ["p1"]}
        assert testing.problem("POST", "/rounds", json=body) == (422, "validation"), starts_at
    assert testing.ok("GET", "/rounds")["rounds"] == []  # nothing was written
    scheduled = testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2100-12-31T07:00", "points": ["p1"]})
    assert scheduled["starts_at"] == "2100-12-31T07:00:00+08:00"
    assert testing.problem("POST", "/cases/none/transfer", json={"scheduled_at": "1900-01-01T08:00"})[0] == 422
