"""Samples into pooled tubes, tube and individual results, coverage, counts and the case they confirm."""

from __future__ import annotations

import json

from sqlalchemy import select

from contracts import roles as r
from juwei.store import events_table
from tests.conftest import both_databases
from tests.testing.compound import Compound
from tests.testing.conftest import Testing, open_points, receive, small_compound


def _ready(testing: Testing, **round_extra: object) -> Compound:
    compound = small_compound(buildings=3, residents=120, bedridden_share=0.05)
    receive(testing.runtime, compound.envelopes)
    open_points(testing, 2)
    testing.ok("POST", "/assignment/proposal")
    body = {"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1", "p2"], **round_extra}
    testing.ok("POST", "/rounds", json=body)
    return compound


def _building_residents(compound: Compound, building: str) -> list[str]:
    return [resident for resident, (b, _h, _f, _bed) in compound.residents.items() if b == building]


@both_databases
def test_pooled_tubes_retests_and_a_confirmed_case(testing: Testing) -> None:
    compound = _ready(testing)
    people = _building_residents(compound, "1")
    volunteer = testing.point_key("p1")
    first = testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json={"tube": "T1", "residents": people[:10]})
    assert (first["kind"], first["samples_in_tube"], first["capacity"]) == ("pooled", 10, 10)
    assert testing.problem("POST", "/rounds/r1/samples", volunteer, json={"tube": "T1", "residents": [people[10]]}) == (
        409,
        "tube-full",
    )
    assert testing.problem("POST", "/rounds/r1/samples", volunteer, json={"tube": "T2", "residents": [people[0]]}) == (
        409,
        "already-sampled",
    )
    assert testing.problem("POST", "/rounds/r1/samples", json={"tube": "T2", "residents": [people[10]]}) == (
        422,
        "point-required",
    )
    assert testing.problem(
        "POST", "/rounds/r1/samples", volunteer, json={"tube": "T2", "residents": [people[10]], "point": "p2"}
    ) == (403, "forbidden")
    assert testing.problem("POST", "/rounds/r1/samples", volunteer, json={"tube": "T2", "residents": ["nobody"]}) == (
        404,
        "resident-unknown",
    )
    assert testing.status("POST", "/tubes/T1/result", volunteer, json={"result": "negative"}) == 403  # staff only
    negative = testing.ok("POST", "/tubes/T1/result", json={"result": "negative"})
    assert negative["case"] is None and len(negative["residents"]) == 10
    assert testing.problem("POST", "/tubes/T1/result", json={"result": "positive"}) == (409, "tube-resulted")

    # A positive pool: everyone in it stays home and is re-tested alone; the individual results settle it.
    testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json={"tube": "T2", "residents": people[10:20]})
    testing.ok("POST", "/tubes/T2/result", json={"result": "positive"})
    retests = _events(testing, "RetestRequested")
    assert [e["residents"] for e in retests] == [[f"c1:{p}" for p in people[10:20]]]
    counts = testing.ok("GET", "/rounds/r1/counts?building=1")["buildings"][0]
    assert (counts["tested"], counts["negative"], counts["to_resample"]) == (20, 10, 10)
    assert testing.problem("POST", f"/rounds/r1/residents/{people[10]}/result", json={"result": "negative"}) == (
        409,
        "no-sample-waiting",
    )
    for number, person in enumerate(people[10:20], start=1):
        single = testing.ok(
            "POST", "/rounds/r1/samples", headers=volunteer, json={"tube": f"S{number}", "residents": [person]}
        )
        assert single["kind"] == "individual" and single["capacity"] == 1
    positive = testing.ok("POST", f"/rounds/r1/residents/{people[10]}/result", json={"result": "positive"})
    case = positive["case"]
    assert case is not None
    for person in people[11:20]:
        assert testing.ok("POST", f"/rounds/r1/residents/{person}/result", json={"result": "negative"})["case"] is None
    confirmed = _events(testing, "CaseConfirmed")
    assert confirmed == [
        {
            "case": f"c1:{case}",
            "resident": f"c1:{people[10]}",
            "household": f"c1:{compound.residents[people[10]][1]}",
            "building": "c1:1",
            "confirmed_on": "2022-04-12",
        }
    ]
    staff_view = testing.ok("GET", f"/cases/{case}")
    household = compound.residents[people[10]][1]
    housemates = sorted(p for p, (_, h, _, _) in compound.residents.items() if h == household and p != people[10])
    assert staff_view["status"] == "confirmed" and staff_view["close_contacts"] == housemates
    counts = testing.ok("GET", "/rounds/r1/counts?building=1")["buildings"][0]
    assert (counts["negative"], counts["positive"], counts["to_resample"]) == (19, 1, 0)
    assert counts["text"] == f"Building 1: 20 of {len(people)} tested"

    # An invalid pool is called again, into a new pooled tube.
    testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json={"tube": "T3", "residents": people[20:25]})
    testing.ok("POST", "/tubes/T3/result", json={"result": "invalid"})
    assert _events(testing, "ResidentsRecalled")[-1]["reason"] == "invalid pooled sample"
    again = testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json={"tube": "T4", "residents": people[20:25]})
    assert again["kind"] == "pooled"
    attempts = [e["attempt"] for e in _events(testing, "SampleCollected") if e["resident"] == f"c1:{people[20]}"]
    assert attempts == [1, 2]
    tube = testing.ok("GET", "/tubes/T4", headers=volunteer)
    assert tube["residents"] == people[20:25] and tube["point"] == "p1"
    # Issue 15: a sampling volunteer has no health grant, so a tube's result is left out for them.
    assert "result" not in tube and testing.ok("GET", "/tubes/T4")["result"] is None


@both_databases
def test_coverage_lists_who_has_not_been_tested_by_building_floor_and_household(testing: Testing) -> None:
    compound = _ready(testing)
    staff = testing.staff
    people = _building_residents(compound, "2")
    sampled = people[:-3]
    for n, start in enumerate(range(0, len(sampled), 10), start=1):
        batch = sampled[start : start + 10]
        testing.ok("POST", "/rounds/r1/samples", json={"tube": f"A{n}", "residents": batch, "point": "p2"})
    left = [p for p in people if p not in sampled]
    assert len(left) == 3
    report = testing.ok("GET", "/rounds/r1/coverage?building=2", headers=staff)["buildings"][0]
    assert (report["residents"], report["tested"], report["not_tested"]) == (len(people), len(people) - 3, 3)
    listed = {
        resident: (floor["floor"], home["household"])
        for floor in report["floors"]
        for home in floor["households"]
        for resident in home["not_tested"]
    }
    assert listed == {p: (compound.residents[p][2], compound.residents[p][1]) for p in left}
    text = json.dumps(report)
    assert "name" not in text and "phone" not in text
    # The information officer of building 2 chases building 2 only.
    officer = testing.key(r.INFORMATION_OFFICER, buildings=["2"])
    mine = testing.ok("GET", "/rounds/r1/coverage", headers=officer)["buildings"]
    assert [b["building"] for b in mine] == ["2"]
    assert testing.status("GET", "/rounds/r1/coverage?building=1", officer) == 403
    assert testing.status("GET", "/rounds/r1/coverage", testing.key(r.HOUSEHOLD)) == 403
    assert testing.status("GET", "/rounds/r1/coverage", testing.key(r.SAMPLING_VOLUNTEER)) == 403
    # Counts are aggregates: households and volunteers may read them.
    counts = testing.ok("GET", "/rounds/r1/counts", headers=testing.key(r.HOUSEHOLD))
    assert counts["residents"] == 120 and counts["tested"] == len(people) - 3
    assert [b["text"] for b in counts["buildings"]][1] == f"Building 2: {len(people) - 3} of {len(people)} tested"
    assert testing.status("GET", "/rounds/r1/counts", testing.key(r.EXTERNAL_CONSUMER)) == 403
    assert testing.status("GET", "/rounds/r9/counts", staff) == 404


def test_door_to_door_samples_and_antigen_days_need_no_call(testing: Testing) -> None:
    compound = _ready(testing)
    testing.ok("POST", "/rounds/r1/plan")
    visits = testing.ok("GET", "/rounds/r1/door-to-door")["visits"]
    assert visits
    volunteer = testing.point_key("p2")
    home = testing.ok(
        "POST",
        "/rounds/r1/samples",
        headers=volunteer,
        json={"tube": "D1", "residents": [v["resident"] for v in visits[:3]], "door_to_door": True},
    )
    assert home["samples_in_tube"] == min(3, len(visits))
    sampled = [e for e in _events(testing, "SampleCollected") if e["tube"] == "c1:D1"]
    assert all(e["door_to_door"] and e["point"] == "c1:p2" for e in sampled)
    # On an antigen day nobody gives a PCR sample unless a positive self-test asked for one.
    testing.ok("POST", "/rounds", json={"round": "a1", "kind": "antigen", "starts_at": "2022-04-13T08:00"})
    person = next(iter(compound.residents))
    assert testing.problem("POST", "/rounds/a1/samples", volunteer, json={"tube": "X1", "residents": [person]}) == (
        409,
        "self-test-round",
    )
    assert testing.problem("POST", "/rounds/a1/plan") == (409, "self-test-round")


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
def test_a_building_group_hears_each_milestone_of_its_testing_once(testing: Testing) -> None:
    compound = _ready(testing)
    people = _building_residents(compound, "2")
    sampled = people[:-3]
    for n, start in enumerate(range(0, len(sampled), 7), start=1):
        testing.ok(
            "POST", "/rounds/r1/samples", json={"tube": f"M{n}", "residents": sampled[start : start + 7], "point": "p2"}
        )
    progress = _events(testing, "BuildingTestingProgress")
    assert [p["milestone"] for p in progress] == [25, 50, 75]  # not 100: three residents were not sampled
    assert all(p["building"] == "c1:2" and p["residents"] == len(people) for p in progress)
    assert all(p["tested"] * 100 >= p["milestone"] * len(people) for p in progress)
    assert not any({"resident", "household"} & set(p) for p in progress)  # counts only
    testing.ok("POST", "/rounds/r1/samples", json={"tube": "M100", "residents": people[-3:], "point": "p2"})
    assert [p["milestone"] for p in _events(testing, "BuildingTestingProgress")][-1] == 100
