"""Batches: a sampling point uploads the tubes it collected, a lab reports a 96-well plate; both all or nothing.

And the read models they feed (through ``apply_many``) rebuild to the same rows, whether a rebuild takes
its events in runs of thousands or one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest
from sqlalchemy import func, select

from contracts import roles as r
from juwei.events import Envelope
from juwei.projection import Projection
from juwei.session import Session
from juwei.store import events_table
from services.testing.views import Register, Results
from tests.conftest import both_databases
from tests.testing.compound import Compound
from tests.testing.conftest import Testing, open_points, receive, small_compound
from tests.testing.test_validation_and_replay import _snapshot


def _ready(testing: Testing) -> Compound:
    compound = small_compound(buildings=3, residents=120, bedridden_share=0.05)
    receive(testing.runtime, compound.envelopes)
    open_points(testing, 2)
    testing.ok("POST", "/assignment/proposal")
    testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1", "p2"]})
    return compound


def _in_building(compound: Compound, building: str) -> list[str]:
    return [resident for resident, (b, _h, _f, _bed) in compound.residents.items() if b == building]


def _events(testing: Testing, kind: str | None = None) -> list[dict]:
    """The events of that kind in testing's own log, with the private part it keeps (every version)."""
    query = select(events_table.c.type, events_table.c.data, events_table.c.private).order_by(events_table.c.position)
    with testing.runtime.database.reading() as session:
        rows = session.execute(query).all()
    return [
        {**json.loads(data), **json.loads(private or "{}")}
        for type_name, data, private in rows
        if kind is None or type_name.rsplit(".", 1)[0] == f"juwei.testing.{kind}"
    ]


def _event_count(testing: Testing) -> int:
    with testing.runtime.database.reading() as session:
        return int(session.execute(select(func.count()).select_from(events_table)).scalar() or 0)


def _upload(testing: Testing, tubes: dict[str, list[str]], **extra: object) -> dict:
    return {"tubes": [{"tube": tube, "residents": people} for tube, people in tubes.items()], **extra}


@both_databases
def test_a_sampling_point_uploads_its_tubes_in_one_unit(testing: Testing) -> None:
    compound = _ready(testing)
    people = _in_building(compound, "1")
    volunteer = testing.point_key("p1")
    tubes = {f"U{n}": people[start : start + 10] for n, start in enumerate(range(0, len(people), 10), start=1)}
    uploaded = testing.client.post("/compounds/c1/rounds/r1/tubes", headers=volunteer, json=_upload(testing, tubes))
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["point"] == "p1" and body["samples"] == len(people) and body["repeated"] == []
    assert [t["tube"] for t in body["recorded"]] == list(tubes)
    assert all(t["kind"] == "pooled" for t in body["recorded"])
    counts = testing.ok("GET", "/rounds/r1/counts?building=1")["buildings"][0]
    assert (counts["tested"], counts["awaiting_result"]) == (len(people), len(people))
    # Everyone of building 1 in one upload: the group hears of the highest milestone passed, once.
    progress = _events(testing, "BuildingTestingProgress")
    assert [(e["building"], e["milestone"], e["tested"]) for e in progress] == [("c1:1", 100, len(people))]
    assert testing.ok("GET", "/tubes/U1", headers=volunteer)["residents"] == people[:10]

    # Sent again (the volunteer's phone lost the answer): nothing new is recorded.
    before = _event_count(testing)
    again = testing.client.post("/compounds/c1/rounds/r1/tubes", headers=volunteer, json=_upload(testing, tubes))
    assert again.status_code == 201 and again.json()["repeated"] == list(tubes) and again.json()["recorded"] == []
    assert _event_count(testing) == before


@both_databases
def test_an_upload_with_bad_tubes_lists_each_and_records_nothing(testing: Testing) -> None:
    compound = _ready(testing)
    people = _in_building(compound, "2")
    volunteer = testing.point_key("p1")
    testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json={"tube": "T1", "residents": people[:10]})
    before = _event_count(testing)
    tubes = [
        {"tube": "A1", "residents": people[10:20]},  # fine on its own
        {"tube": "A2", "residents": [people[20], "nobody"]},
        {"tube": "A3", "residents": [people[0]]},  # already sampled in T1
        {"tube": "T1", "residents": [people[21]]},  # T1 is full
        {"tube": "A1", "residents": [people[22]]},  # A1 twice
        {"tube": "A4", "residents": people[23:34]},  # eleven in a pool of ten
    ]
    answer = testing.client.post("/compounds/c1/rounds/r1/tubes", headers=volunteer, json={"tubes": tubes})
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", answer.text
    problem = answer.json()
    assert problem["type"] == "urn:juwei:problem:tubes-refused" and problem["status"] == 422
    listed = [(e["index"], e["tube"], e["type"]) for e in problem["errors"]]
    assert listed == [
        (1, "A2", "resident-unknown"),
        (2, "A3", "already-sampled"),
        (3, "T1", "tube-full"),
        (4, "A1", "tube-twice"),
        (5, "A4", "tube-full"),
    ]
    assert problem["errors"][0]["residents"] == ["nobody"] and problem["errors"][0]["location"] == ["body", "tubes", 1]
    assert _event_count(testing) == before  # all or nothing: A1 was not recorded either
    assert testing.status("GET", "/tubes/A1", volunteer) == 404


def test_an_upload_keeps_the_rules_of_who_may_record_where(testing: Testing) -> None:
    compound = _ready(testing)
    people = _in_building(compound, "1")
    body = {"tubes": [{"tube": "A1", "residents": people[:5]}]}
    volunteer = testing.point_key("p1")
    assert testing.problem("POST", "/rounds/r1/tubes", volunteer, json={**body, "point": "p2"}) == (403, "forbidden")
    assert testing.problem("POST", "/rounds/r1/tubes", json=body) == (422, "point-required")
    assert testing.problem("POST", "/rounds/r1/tubes", json={**body, "point": "p9"}) == (404, "point-unknown")
    assert testing.problem("POST", "/rounds/r9/tubes", volunteer, json=body)[0] == 404
    assert testing.status("POST", "/rounds/r1/tubes", {}, json=body) == 401
    assert testing.status("POST", "/rounds/r1/tubes", testing.key(r.HOUSEHOLD), json=body) == 403
    other = testing.key(r.COMMITTEE_STAFF, compound="c2")
    assert testing.status("POST", "/rounds/r1/tubes", other, json={**body, "point": "p1"}) == 403
    too_many = {"tubes": [{"tube": f"A{n}", "residents": [people[0]]} for n in range(101)], "point": "p1"}
    assert testing.problem("POST", "/rounds/r1/tubes", json=too_many) == (422, "validation")
    assert _events(testing, "SampleCollected") == []


@both_databases
def test_a_lab_plate_settles_every_tube_as_single_results_would(testing: Testing) -> None:
    compound = _ready(testing)
    people = _in_building(compound, "1")
    volunteer = testing.point_key("p1")
    pools = {"P1": people[:10], "P2": people[10:20], "P3": people[20:25]}
    testing.ok("POST", "/rounds/r1/tubes", headers=volunteer, json=_upload(testing, pools))
    plate = {
        "results": [
            {"tube": "P1", "result": "negative", "well": "A1"},
            {"tube": "P2", "result": "positive", "well": "A2"},
            {"tube": "P3", "result": "invalid"},
        ]
    }
    assert testing.status("POST", "/plates/L1/results", volunteer, json=plate) == 403  # staff only
    assert testing.status("POST", "/plates/L1/results", {}, json=plate) == 401
    assert (
        testing.status("POST", "/plates/L1/results", testing.key(r.COMMITTEE_STAFF, compound="c2"), json=plate) == 403
    )
    answer = testing.ok("POST", "/plates/L1/results", json=plate)
    assert answer["plate"] == "L1" and answer["repeated"] == []
    assert [(t["tube"], t["result"], t["residents"]) for t in answer["recorded"]] == [
        ("P1", "negative", people[:10]),
        ("P2", "positive", people[10:20]),
        ("P3", "invalid", people[20:25]),
    ]
    assert [e["residents"] for e in _events(testing, "RetestRequested")] == [[f"c1:{p}" for p in people[10:20]]]
    assert _events(testing, "ResidentsRecalled")[-1]["reason"] == "invalid pooled sample"
    counts = testing.ok("GET", "/rounds/r1/counts?building=1")["buildings"][0]
    assert (counts["negative"], counts["to_resample"], counts["awaiting_result"]) == (10, 15, 0)

    # The same plate posted again: nothing new, every tube reported as already recorded.
    before = _event_count(testing)
    again = testing.ok("POST", "/plates/L1/results", json=plate)
    assert again["recorded"] == [] and again["repeated"] == ["P1", "P2", "P3"]
    assert _event_count(testing) == before

    # Individual re-tests on the next plate: a positive one confirms a case.
    singles = {f"S{n}": [person] for n, person in enumerate(people[10:20], start=1)}
    testing.ok("POST", "/rounds/r1/tubes", headers=volunteer, json=_upload(testing, singles))
    second = {"results": [{"tube": tube, "result": "positive" if tube == "S1" else "negative"} for tube in singles]}
    settled = testing.ok("POST", "/plates/L2/results", json=second)["recorded"]
    assert settled[0]["kind"] == "individual" and settled[0]["case"] is not None
    assert all(t["case"] is None for t in settled[1:])
    assert [e["resident"] for e in _events(testing, "CaseConfirmed")] == [f"c1:{people[10]}"]
    counts = testing.ok("GET", "/rounds/r1/counts?building=1")["buildings"][0]
    assert (counts["negative"], counts["positive"]) == (19, 1)


@both_databases
def test_a_plate_with_bad_wells_lists_each_and_records_nothing(testing: Testing) -> None:
    compound = _ready(testing)
    people = _in_building(compound, "1")
    testing.ok("POST", "/rounds/r1/tubes", json=_upload(testing, {"P1": people[:10], "P2": people[10:20]}, point="p1"))
    testing.ok("POST", "/plates/L1/results", json={"results": [{"tube": "P1", "result": "negative"}]})
    before = _event_count(testing)
    plate = {
        "results": [
            {"tube": "P2", "result": "negative"},  # fine on its own
            {"tube": "NOPE", "result": "negative"},
            {"tube": "P1", "result": "positive"},  # P1 already has its result (negative)
            {"tube": "P2", "result": "negative"},  # P2 twice
        ]
    }
    answer = testing.client.post("/compounds/c1/plates/L2/results", headers=testing.staff, json=plate)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", answer.text
    problem = answer.json()
    assert problem["type"] == "urn:juwei:problem:plate-refused" and problem["plate"] == "L2"
    assert [(e["index"], e["tube"], e["type"]) for e in problem["errors"]] == [
        (1, "NOPE", "tube-unknown"),
        (2, "P1", "tube-resulted"),
        (3, "P2", "tube-twice"),
    ]
    assert all(e["message"] for e in problem["errors"])
    assert _event_count(testing) == before
    assert testing.ok("GET", "/tubes/P2")["result"] is None
    wells = {"results": [{"tube": f"X{n}", "result": "negative"} for n in range(97)]}
    assert testing.problem("POST", "/plates/L3/results", json=wells) == (422, "validation")
    assert testing.problem("POST", "/plates/L3/results", json={"results": []}) == (422, "validation")
    bad_well = {"results": [{"tube": "P2", "result": "negative", "well": "Z99"}]}
    assert testing.problem("POST", "/plates/L3/results", json=bad_well) == (422, "validation")


def _full_round(testing: Testing) -> Compound:
    """A whole round through the batch routes: pools, a positive and an invalid pool, re-tests, a case, antigen."""
    compound = small_compound(buildings=3, residents=150, bedridden_share=0.05)
    receive(testing.runtime, compound.envelopes)
    open_points(testing, 2)
    testing.ok("POST", "/assignment/proposal")
    testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1", "p2"]})
    people = list(compound.residents)
    pools = {f"P{n}": people[start : start + 10] for n, start in enumerate(range(0, len(people), 10), start=1)}
    names = list(pools)
    testing.ok("POST", "/rounds/r1/tubes", json=_upload(testing, dict(list(pools.items())[:8]), point="p1"))
    testing.ok("POST", "/rounds/r1/tubes", json=_upload(testing, dict(list(pools.items())[8:]), point="p2"))
    results = {name: "negative" for name in names} | {names[1]: "positive", names[4]: "invalid"}
    testing.ok("POST", "/plates/L1/results", json={"results": [{"tube": t, "result": x} for t, x in results.items()]})
    singles = {f"S{n}": [person] for n, person in enumerate(pools[names[1]], start=1)}
    testing.ok("POST", "/rounds/r1/tubes", json=_upload(testing, singles, point="p1"))
    testing.ok("POST", "/rounds/r1/tubes", json=_upload(testing, {"R1": pools[names[4]]}, point="p2"))
    # S10 is left awaiting its result: a status that only the status before the sample decides.
    second = [{"tube": t, "result": "positive" if t == "S1" else "negative"} for t in list(singles)[:-1]]
    testing.ok("POST", "/plates/L2/results", json={"results": [*second, {"tube": "R1", "result": "negative"}]})
    testing.ok("POST", "/rounds", json={"round": "a1", "kind": "antigen", "starts_at": "2022-04-13T07:00"})
    household = compound.residents[people[40]][1]
    testing.ok(
        "POST",
        f"/rounds/a1/households/{household}/antigen",
        data={"resident": people[40], "result": "positive"},
    )
    testing.ok("POST", "/rounds/a1/tubes", json=_upload(testing, {"AG1": [people[40]]}, point="p1"))
    testing.ok("POST", "/plates/L3/results", json={"results": [{"tube": "AG1", "result": "negative"}]})
    return compound


@both_databases
def test_a_full_round_rebuilds_to_the_same_rows_in_runs_or_one_event_at_a_time(
    testing: Testing, monkeypatch: pytest.MonkeyPatch
) -> None:
    _full_round(testing)
    live = _snapshot(testing)
    assert all(live[name] for name in ("tst_residents", "tst_samples", "tst_tubes", "tst_round_residents"))
    assert len(live["tst_samples"]) == 150 + 10 + 10 + 1 and live["tst_antigen"] and live["tst_cases"]
    statuses = {row[5] for row in live["tst_round_residents"]}
    assert statuses == {"negative", "positive", "individual-sampled"}  # the antigen positive was cleared by its PCR
    # Runs of thousands (what a rebuild feeds apply_many) ...
    assert testing.runtime.projector.rebuild() > 0
    assert _snapshot(testing) == live
    # ... and one event at a time give the live rows too.
    for kind in (Register, Results):
        monkeypatch.setattr(kind, "apply_many", _one_at_a_time(kind.apply_many))
    testing.runtime.projector.rebuild()
    assert _snapshot(testing) == live


def _one_at_a_time(set_based: Callable[..., None]) -> Callable[..., None]:
    """The set-based ``apply_many`` fed single events, as the Projection default feeds ``apply``."""

    def apply_many(self: Projection, session: Session, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            set_based(self, session, [envelope])

    return apply_many
