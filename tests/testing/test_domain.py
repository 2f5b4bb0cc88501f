"""Pooled tubes, residents' statuses in a round, self-reports, cases, points, rounds and call queues as plain
Python: each aggregate decides on commands and records events; rebuilt from its events it decides the same."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import pytest

from contracts import testing as ev
from juwei.aggregate import Aggregate, DomainRuleViolation
from services.testing.domain import (
    BuildingLayout,
    CallQueue,
    CallRules,
    Case,
    Disinfection,
    Occupant,
    PointAssignment,
    PointCapacity,
    Round,
    SamplingPoint,
    SelfReports,
    Tube,
    photo_type,
    sample_kind,
    status_after,
    timetable,
)

NOW = datetime(2022, 4, 12, 9, 0, tzinfo=UTC)
TODAY = date(2022, 4, 12)


A = TypeVar("A", bound=Aggregate)


def rebuilt(aggregate: A) -> A:
    """The same aggregate loaded again from the events it recorded."""
    return type(aggregate)(aggregate.id).replay(aggregate.pending())


@contextmanager
def violation(code: str) -> Iterator[None]:
    with pytest.raises(DomainRuleViolation) as raised:
        yield
    assert raised.value.code == code, f"{raised.value.code} != {code}: {raised.value}"


def fill(tube: Tube, people: list[tuple[str, str, str]], status: str | None = None, pool_size: int = 10) -> None:
    for number, (resident, household, building) in enumerate(people, start=1):
        tube.collect(
            "c1:r1",
            resident,
            household,
            building,
            status=status,
            round_kind="pcr",
            pool_size=pool_size,
            attempt=1,
            at=NOW + timedelta(seconds=number),
            point="c1:p1",
        )


PEOPLE = [(f"c1:r{n}", f"c1:h{n // 3}", "c1:7" if n < 6 else "c1:8") for n in range(10)]


def test_a_negative_pool_clears_everyone_in_it() -> None:
    tube = Tube("c1:T1")
    fill(tube, PEOPLE)
    with violation("tube-full"):
        fill(tube, [("c1:r99", "c1:h99", "c1:7")])
    assert tube.record_result("negative", at=NOW) is None
    kinds = [type(e).__name__ for e in tube.pending()]
    assert kinds == ["SampleCollected"] * 10 + ["TubeResulted"]
    resulted = tube.pending()[-1]
    assert isinstance(resulted, ev.TubeResulted) and resulted.residents == [p[0] for p in PEOPLE]
    with violation("tube-resulted"):
        tube.record_result("positive", at=NOW)
    with violation("tube-resulted"):
        fill(rebuilt(tube), [("c1:r99", "c1:h99", "c1:7")])
    assert [status_after("sampled", "TubeResulted", "negative")] == ["negative"]


def test_a_positive_pool_asks_each_building_to_retest_and_individual_results_settle_it() -> None:
    tube = Tube("c1:T2")
    fill(tube, PEOPLE, pool_size=10)
    tube.record_result("positive", at=NOW)
    retests = [e for e in tube.pending() if isinstance(e, ev.RetestRequested)]
    assert [(e.building, len(e.residents)) for e in retests] == [("c1:7", 6), ("c1:8", 4)]
    assert retests[0].households == ["c1:h0", "c1:h1"]
    status = status_after("sampled", "TubeResulted", "positive")
    assert status == "retest" and sample_kind(status, "pcr") == "individual"
    # A re-test goes into a tube of its own: one sample, and only re-tests.
    single = Tube("c1:T3")
    fill(single, [PEOPLE[0]], status="retest")
    with violation("tube-full"):
        fill(single, [PEOPLE[1]], status="retest")
    pooled = Tube("c1:T4")
    fill(pooled, [("c1:r50", "c1:h50", "c1:7")])
    with violation("tube-kind-mismatch"):
        fill(pooled, [PEOPLE[1]], status="retest")
    assert status_after("retest", "SampleCollected") == "individual-sampled"
    confirmation = rebuilt(single).record_result("positive", at=NOW)
    assert confirmation is not None and confirmation.resident == "c1:r0" and confirmation.building == "c1:7"
    negative = Tube("c1:T5")
    fill(negative, [PEOPLE[1]], status="retest")
    assert negative.record_result("negative", at=NOW) is None
    assert isinstance(negative.pending()[-1], ev.IndividualResultRecorded)
    assert status_after("individual-sampled", "IndividualResultRecorded", "negative") == "negative"
    assert status_after("individual-sampled", "IndividualResultRecorded", "positive") == "positive"


def test_an_invalid_sample_is_called_again() -> None:
    tube = Tube("c1:T6")
    fill(tube, PEOPLE[:3])
    tube.record_result("invalid", at=NOW)
    recalled = tube.pending()[-1]
    assert isinstance(recalled, ev.ResidentsRecalled) and recalled.residents == [p[0] for p in PEOPLE[:3]]
    status = status_after("sampled", "TubeResulted", "invalid")
    assert status == "recall" and sample_kind(status, "pcr") == "pooled"
    single = Tube("c1:T7")
    fill(single, [PEOPLE[0]], status="retest")
    single.record_result("invalid", at=NOW)
    assert isinstance(single.pending()[-1], ev.ResidentsRecalled)
    again = status_after("individual-sampled", "IndividualResultRecorded", "invalid")
    assert again == "recall-individual" and sample_kind(again, "pcr") == "individual"


def test_who_may_give_which_sample() -> None:
    assert sample_kind(None, "pcr") == "pooled"
    for done in ("sampled", "negative", "individual-sampled", "positive", "antigen-negative"):
        with violation("already-sampled"):
            sample_kind(done, "pcr")
    with violation("self-test-round"):
        sample_kind(None, "antigen")
    assert sample_kind("pcr-requested", "antigen") == "individual"
    tube = Tube("c1:T8")
    fill(tube, PEOPLE[:1])
    with violation("already-in-tube"):
        fill(tube, PEOPLE[:1])
    with violation("tube-other-round"):
        tube.collect("c1:r2", "c1:r77", "c1:h", "c1:7", status=None, round_kind="pcr", pool_size=10, attempt=1, at=NOW)
    with violation("tube-unknown"):
        Tube("c1:empty").record_result("negative", at=NOW)
    with violation("invalid-result"):
        tube.record_result("maybe", at=NOW)


def test_antigen_self_reports_and_a_positive_asks_for_pcr() -> None:
    reports = SelfReports(SelfReports.id_of("c1:a1", "c1:h1"))
    members = {"c1:r1", "c1:r2"}

    def report(resident: str, result: str, kind: str = "antigen") -> None:
        reports.report("c1:a1", "c1:h1", "c1:7", resident, result, round_kind=kind, members=members, at=NOW)

    report("c1:r1", "invalid")
    report("c1:r1", "negative")  # an invalid cassette is taken again
    with violation("already-reported"):
        report("c1:r1", "positive")
    with violation("not-a-member"):
        report("c1:r9", "negative")
    with violation("not-antigen-round"):
        report("c1:r2", "negative", kind="pcr")
    report("c1:r2", "positive")
    assert [type(e).__name__ for e in reports.pending()] == ["AntigenReported"] * 3 + ["PcrRequested"]
    assert status_after(None, "AntigenReported", "positive") == "pcr-requested"
    with violation("already-reported"):
        rebuilt(reports).report(
            "c1:a1", "c1:h1", "c1:7", "c1:r2", "negative", round_kind="antigen", members=members, at=NOW
        )


def test_a_case_moves_from_confirmed_to_transferred_to_closed() -> None:
    case = Case("c1:case-1")
    case.confirm("c1:r1", "c1:h1", "c1:7", on=TODAY, household_members=["c1:r1", "c1:r2", "c1:r3"])
    confirmed, contacts = case.pending()
    assert isinstance(confirmed, ev.CaseConfirmed) and confirmed.confirmed_on == TODAY
    assert isinstance(contacts, ev.CloseContactsIsolated) and contacts.residents == ["c1:r2", "c1:r3"]
    with violation("case-exists"):
        case.confirm("c1:r1", "c1:h1", "c1:7", on=TODAY, household_members=[])
    with violation("case-wrong-status"):
        case.close("recovered", NOW, now=NOW)
    case.schedule_transfer(NOW + timedelta(hours=5))
    case.schedule_transfer(NOW + timedelta(hours=5))  # the same time again records nothing
    case.schedule_transfer(NOW + timedelta(hours=6))  # rescheduled
    assert [type(e).__name__ for e in case.pending()[2:]] == ["TransferScheduled", "TransferScheduled"]
    with violation("time-in-future"):
        case.transferred(NOW + timedelta(hours=6), now=NOW)
    later = rebuilt(case)
    assert later.status == "transfer-scheduled" and later.scheduled_at == NOW + timedelta(hours=6)
    later.transferred(NOW, now=NOW, facility="central isolation")
    with violation("case-wrong-status"):
        later.schedule_transfer(NOW + timedelta(hours=1))
    with violation("invalid-outcome"):
        later.close("vanished", NOW, now=NOW)
    with violation("invalid-time"):
        later.close("returned", NOW - timedelta(days=1), now=NOW)
    later.close("recovered", NOW + timedelta(minutes=1), now=NOW + timedelta(days=10))
    assert rebuilt(later).status == "closed"
    with violation("case-unknown"):
        Case("c1:none").schedule_transfer(NOW)
    direct = Case("c1:case-2")  # the transfer time is not always known in advance
    direct.confirm("c1:r4", "c1:h2", "c1:8", on=TODAY, household_members=["c1:r4"])
    direct.transferred(NOW, now=NOW)
    assert direct.pending()[1].residents == []  # type: ignore[attr-defined]


def test_points_assignment_and_round() -> None:
    point = SamplingPoint("c1:p1")
    point.open("Clubhouse", "clubhouse", 3, ["c1:v1"])
    with violation("point-exists"):
        point.open("Clubhouse", "clubhouse", 3)
    with violation("invalid-point"):
        SamplingPoint("c1:p2").open("", "gate", 3)
    with violation("invalid-point"):
        point.change(throughput=0)
    point.change(throughput=3)  # nothing new
    point.change(throughput=5, volunteers=["c1:v1", "c1:v2"])
    assert [type(e).__name__ for e in point.pending()] == ["SamplingPointOpened", "SamplingPointChanged"]
    point.close("moved to the car park")
    with violation("point-closed"):
        point.change(throughput=6)

    assignment = PointAssignment("c1")
    known = {"c1:1", "c1:2", "c1:3"}
    assignment.reassign(
        {"c1:p1": ["c1:1", "c1:2"], "c1:p2": ["c1:3"]},
        open_points={"c1:p1", "c1:p2"},
        known_buildings=known,
        proposed=True,
    )
    assignment.assign("c1:p2", ["c1:2", "c1:3"], open_points={"c1:p1", "c1:p2"}, known_buildings=known)
    moved = assignment.pending()[2:]
    assert {(e.point, tuple(e.buildings)) for e in moved} == {("c1:p1", ("c1:1",)), ("c1:p2", ("c1:2", "c1:3"))}
    assert rebuilt(assignment).served_by == {"c1:1": "c1:p1", "c1:2": "c1:p2", "c1:3": "c1:p2"}
    with violation("building-unknown"):
        assignment.assign("c1:p1", ["c1:9"], open_points={"c1:p1"}, known_buildings=known)
    with violation("point-unknown"):
        assignment.assign("c1:p9", ["c1:1"], open_points={"c1:p1"}, known_buildings=known)
    with violation("building-twice"):
        assignment.reassign(
            {"c1:p1": ["c1:1"], "c1:p2": ["c1:1"]}, open_points={"c1:p1", "c1:p2"}, known_buildings=known
        )

    chosen = Round("c1:r1")
    rules = CallRules(mode="floor")
    chosen.schedule("pcr", NOW, ["c1:p1"], rules, on=TODAY, open_points={"c1:p1"})
    with violation("round-exists"):
        chosen.schedule("pcr", NOW, ["c1:p1"], rules, on=TODAY, open_points={"c1:p1"})
    for kind, points, pool, code in (
        ("flu", ["c1:p1"], 10, "invalid-round"),
        ("pcr", [], 10, "no-points"),
        ("pcr", ["c1:p1"], 50, "invalid-round"),
        ("pcr", ["c1:p9"], 10, "point-unknown"),
    ):
        with violation(code):
            Round("c1:r2").schedule(kind, NOW, points, rules, on=TODAY, open_points={"c1:p1"}, pool_size=pool)
    with violation("invalid-round"):
        Round("c1:r2").schedule("pcr", NOW.replace(tzinfo=None), ["c1:p1"], rules, on=TODAY, open_points={"c1:p1"})
    again = rebuilt(chosen)
    assert again.rules == rules and again.points == ["c1:p1"] and again.pool_size == 10
    visit = (Occupant("c1:r5", "c1:h5", 4, True),)
    again.assign_door_to_door({"c1:7": visit})
    again.assign_door_to_door({})  # re-planned: nobody left to visit in building 7
    assert [len(e.visits) for e in again.pending()] == [1, 0]  # type: ignore[attr-defined]


def test_call_next_walks_the_timetable_and_the_plan_is_fixed_once_calls_begin() -> None:
    tower = BuildingLayout(
        "c1:7", 6, 1, 8, tuple(Occupant(f"c1:r{f}{n}", f"c1:h{f}", f, room=1) for f in range(1, 7) for n in range(3))
    )
    table = timetable(PointCapacity("c1:p1", 2, ("c1:7",)), [tower], CallRules(floors_per_call=2), NOW)
    queue = CallQueue(CallQueue.id_of("c1:r1", "c1:p1"))
    with violation("no-plan"):
        queue.call_next("c1:r1", "c1:p1", at=NOW)
    queue.set_plan("c1:r1", "c1:p1", "floor", table)
    queue.set_plan("c1:r1", "c1:p1", "floor", table)  # re-planned before any call: fine
    first = queue.call_next("c1:r1", "c1:p1", at=NOW)
    assert (first.lowest_floor, first.highest_floor, first.people) == (5, 6, 6)
    called = queue.pending()[-1]
    assert isinstance(called, ev.UnitCalled) and called.building == "c1:7" and called.called_by == "volunteer"
    with violation("calls-started"):
        queue.set_plan("c1:r1", "c1:p1", "floor", table)
    again = rebuilt(queue)
    assert again.called == 1
    while again.next_call is not None:
        again.call_next("c1:r1", "c1:p1", at=NOW, by="schedule")
    with violation("plan-finished"):
        again.call_next("c1:r1", "c1:p1", at=NOW)
    restored = CallQueue(queue.id)
    restored.restore_state(again.snapshot_state())
    assert restored.calls == again.calls and restored.called == again.called


def test_disinfection_records_and_photo_types() -> None:
    photo = ev.StoredPhoto(photo="a" * 64, content_type="image/png", size=10)
    record = Disinfection("c1:d1")
    with violation("areas-required"):
        record.record_done("c1:7", NOW, [" "], [photo], now=NOW)
    with violation("photos-required"):
        record.record_done("c1:7", NOW, ["lobby"], [], now=NOW)
    with violation("time-in-future"):
        record.record_done("c1:7", NOW + timedelta(hours=1), ["lobby"], [photo], now=NOW)
    record.record_done("c1:7", NOW, ["lobby", "lifts", "lobby"], [photo], now=NOW, case="c1:case-1")
    assert record.pending()[0].areas == ["lobby", "lifts"]  # type: ignore[attr-defined]
    with violation("disinfection-exists"):
        record.record_done("c1:7", NOW, ["lobby"], [photo], now=NOW)
    assert photo_type(b"\xff\xd8\xff\xe0" + b"\0" * 20) == "image/jpeg"
    assert photo_type(b"\x89PNG\r\n\x1a\n" + b"\0" * 20) == "image/png"
    assert photo_type(b"RIFF\x10\0\0\0WEBPVP8 ") == "image/webp"
    for other in (b"GIF89a" + b"\0" * 10, b"%PDF-1.7", b"RIFF\x10\0\0\0WAVEfmt ", b"", b"<svg/>"):
        assert photo_type(other) is None


def test_milestones_are_passed_once_each_and_only_by_new_people() -> None:
    from services.testing.domain import milestone_passed

    assert milestone_passed(0, 49, 200) is None
    assert milestone_passed(49, 50, 200) == 25
    assert milestone_passed(50, 50, 200) is None
    assert milestone_passed(90, 160, 200) == 75  # two milestones at once: the group hears the latest
    assert milestone_passed(199, 200, 200) == 100
    assert milestone_passed(0, 1, 1) == 100
    assert milestone_passed(0, 0, 0) is None
