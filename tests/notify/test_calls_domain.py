"""Reaching the unreachable as plain Python: which messages are urgent, who is called, the done mark."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from contracts.notify import CallsListed, HouseholdCalled
from contracts.residents import HouseholdMarkedReachable, HouseholdMarkedUnreachable, ZoneStatusChanged
from contracts.supplies import BatchDispatched
from contracts.testing import CaseConfirmed, RoundScheduled, UnitCalled
from juwei.aggregate import Conflict, Invalid, NotFound
from services.notify.calls.domain import (
    URGENT,
    CallList,
    Marked,
    call_id,
    call_list_id,
    due_at,
    households_to_call,
    is_urgent,
)
from services.residents.domain import Household

NOW = datetime(2022, 4, 10, 8, 0, tzinfo=UTC)
MARKED = [
    Marked("c1:h-b1-0301", "c1:b1", 3, 1),
    Marked("c1:h-b1-0702", "c1:b1", 7, 2),
    Marked("c1:h-b1-0704", "c1:b1", 7, 4),
    Marked("c1:h-b2-0101", "c1:b2", 1, 1),
]


def _unit_called(low: int, high: int, rooms: list[int]) -> UnitCalled:
    return UnitCalled(
        round="c1:r1", point="c1:p1", call=1, building="c1:b1", lowest_floor=low, highest_floor=high, rooms=rooms,
        people=20, planned_at=NOW, called_at=NOW, called_by="schedule",
    )  # fmt: skip


def test_a_case_a_round_a_floor_call_and_a_zone_change_are_urgent_supplies_are_not() -> None:
    assert {CaseConfirmed, RoundScheduled, UnitCalled, ZoneStatusChanged} <= URGENT
    assert is_urgent(CaseConfirmed(case="c1:k1", building="c1:b1", confirmed_on=date(2022, 4, 10)))
    assert not is_urgent(BatchDispatched(batch="c1:g1", buildings=["c1:b1"], on=date(2022, 4, 10)))


def test_every_marked_household_of_the_building_is_called_for_a_case() -> None:
    case = CaseConfirmed(case="c1:k1", building="c1:b1", confirmed_on=date(2022, 4, 10))
    assert households_to_call(case, "c1:b1", MARKED) == ["c1:h-b1-0301", "c1:h-b1-0702", "c1:h-b1-0704"]
    assert households_to_call(case, "c1:b2", MARKED) == ["c1:h-b2-0101"]
    assert households_to_call(case, "c1:b9", MARKED) == []


def test_a_floor_call_reaches_only_the_called_floors_and_rooms() -> None:
    assert households_to_call(_unit_called(7, 8, []), "c1:b1", MARKED) == ["c1:h-b1-0702", "c1:h-b1-0704"]
    assert households_to_call(_unit_called(7, 7, [4]), "c1:b1", MARKED) == ["c1:h-b1-0704"]
    assert households_to_call(_unit_called(4, 6, []), "c1:b1", MARKED) == []


def test_a_call_list_is_made_once_and_each_household_is_marked_done_once() -> None:
    list_id = call_list_id("c1", "c1:m-1", "c1:b1")
    assert list_id == call_list_id("c1", "c1:m-1", "c1:b1") != call_list_id("c1", "c1:m-1", "c1:b2")
    assert call_id("c1", list_id, "c1:h1") != call_id("c1", list_id, "c1:h2")
    calls = CallList(list_id)
    calls.list("c1:m-1", "c1:b1", ["c1:h2", "c1:h1", "c1:h1"], due_at(NOW, 120))
    (listed,) = calls.pending()
    assert isinstance(listed, CallsListed) and listed.households == ["c1:h1", "c1:h2"]
    assert listed.due_at == NOW + timedelta(hours=2)
    with pytest.raises(Conflict):
        calls.list("c1:m-1", "c1:b1", ["c1:h3"], NOW)
    assert calls.mark_done("c1:h1", "key-1") is True
    assert calls.mark_done("c1:h1", "key-2") is False  # done already: nothing more recorded, the first one stays
    assert [type(e) for e in calls.pending()] == [CallsListed, HouseholdCalled] and calls.done == {"c1:h1": "key-1"}
    with pytest.raises(NotFound):
        calls.mark_done("c1:h9", "key-1")


def test_a_call_list_needs_households_and_a_deadline_not_in_the_past_of_its_listing() -> None:
    with pytest.raises(Invalid):
        CallList("c1:l-1").list("c1:m-1", "c1:b1", [], NOW)
    with pytest.raises(Invalid):
        due_at(NOW, -5)
    with pytest.raises(NotFound):
        CallList("c1:l-2").mark_done("c1:h1", "key-1")


def test_a_household_is_marked_unreachable_with_its_flat_and_cleared_once() -> None:
    home = Household("c1:h1")
    home.register("c1:b1", 3, 2, floors=18, rooms_per_floor=4)
    home.mark_unreachable("no_smartphone")
    home.mark_unreachable("no_smartphone")  # the same mark again records nothing
    home.mark_reachable()
    home.mark_reachable()  # clearing an unmarked household records nothing
    kinds = [type(e) for e in home.pending()]
    assert kinds.count(HouseholdMarkedUnreachable) == 1 and kinds.count(HouseholdMarkedReachable) == 1
    marked = next(e for e in home.pending() if isinstance(e, HouseholdMarkedUnreachable))
    assert (marked.household, marked.building, marked.floor, marked.room) == ("c1:h1", "c1:b1", 3, 2)
    assert set(marked.model_dump()) == {"household", "building", "floor", "room", "reason"}  # ids and the flat only
    with pytest.raises(Invalid):
        home.mark_unreachable("no_landline")
    with pytest.raises(NotFound):
        Household("c1:h9").mark_unreachable("not_in_group")
