"""The call planner and the building→point assignment, as plain Python (no database, no broker).

Every plan is checked by ``assert_sound``, which re-derives the limits on its own: no point's queue ever
above throughput × window, no building's lifts asked for more than they carry in a slot, every resident
called exactly once (bedridden ones visited at home instead), each building's floors called in order.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from juwei.aggregate import DomainRuleViolation
from juwei.problems import status_of
from services.testing.domain import (
    BuildingLayout,
    CallPlan,
    CallRules,
    Occupant,
    PointCapacity,
    natural_key,
    plan_round,
    propose_assignment,
    units_of,
)

START = datetime(2022, 4, 12, 7, 0, tzinfo=UTC)


def building(
    name: str, per_floor: list[int], lifts: int = 2, capacity: int = 10, bedridden: tuple[str, ...] = ()
) -> BuildingLayout:
    """``per_floor[i]`` people on floor i+1, two per household, households numbered by room."""
    occupants = []
    for floor, count in enumerate(per_floor, start=1):
        for n in range(count):
            resident = f"{name}-{floor}-{n}"
            occupants.append(
                Occupant(resident, f"h{name}-{floor}-{n // 2}", floor, resident in bedridden, room=n // 2 + 1)
            )
    return BuildingLayout(name, len(per_floor), lifts, capacity, tuple(occupants))


def assert_sound(plan: CallPlan, rules: CallRules, points: list[PointCapacity], layouts: list[BuildingLayout]) -> None:
    everyone = {o.resident: (layout, o) for layout in layouts for o in layout.occupants}
    called = Counter(plan.called_residents())
    visited = Counter(o.resident for occupants in plan.door_to_door.values() for o in occupants)
    assert all(n == 1 for n in called.values()), "someone is called twice"
    assert all(n == 1 for n in visited.values()), "someone is visited twice"
    assert not set(called) & set(visited)
    assert set(called) | set(visited) == set(everyone), "someone is neither called nor visited"
    assert set(visited) == {r for r, (_, o) in everyone.items() if o.bedridden}
    for point in points:
        table = plan.timetables[point.point]
        limit = math.floor(point.throughput * rules.window_minutes + 1e-9)
        assert table.queue_limit == limit
        arrivals: Counter[int] = Counter()
        lifts: dict[tuple[str, int], int] = defaultdict(int)
        floors_seen: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for number, call in enumerate(table.calls, start=1):
            unit = call.unit
            assert call.call == number
            assert unit.building in point.buildings
            assert call.starts_at == START + timedelta(minutes=call.slot * rules.slot_minutes)
            assert call.ends_at >= call.starts_at
            people = [everyone[r][1] for r in unit.residents]
            assert all(everyone[r][0].building == unit.building for r in unit.residents)
            assert all(unit.lowest_floor <= o.floor <= unit.highest_floor for o in people)
            riders = sum(1 for o in people if o.floor > rules.walk_floors)
            assert unit.lift_riders == riders
            if not unit.rooms:
                assert unit.highest_floor - unit.lowest_floor < rules.floors_per_call or rules.mode != "floor"
            arrivals[call.slot] += unit.people
            lifts[(unit.building, call.slot)] += riders
            floors_seen[unit.building].append((unit.lowest_floor, unit.highest_floor))
        queue = 0.0
        for slot in range(max(arrivals, default=-1) + 1):
            queue += arrivals[slot]
            assert queue <= limit, f"point {point.point} queues {queue} > {limit} in slot {slot}"
            queue = max(0.0, queue - point.throughput * rules.slot_minutes)
        by_name = {layout.building: layout for layout in layouts}
        for (name, slot), riders in lifts.items():
            layout = by_name[name]
            if layout.lifts and layout.lift_capacity:
                carried = layout.lifts * layout.lift_capacity * max(1, rules.slot_minutes // rules.lift_trip_minutes)
                assert riders <= carried, f"building {name} lifts asked for {riders} > {carried} in slot {slot}"
        for name, ranges in floors_seen.items():
            # Floor by floor in order: each call's floors are at or below (down) / above (up) the previous one's.
            for (low_a, high_a), (low_b, high_b) in itertools.pairwise(ranges):
                if rules.floor_order == "down":
                    assert high_b <= low_a, f"building {name}: floors {low_b}-{high_b} after {low_a}-{high_a}"
                else:
                    assert low_b >= high_a, f"building {name}: floors {low_b}-{high_b} after {low_a}-{high_a}"


def random_compound(rng: random.Random) -> tuple[list[BuildingLayout], list[PointCapacity], CallRules]:
    layouts = []
    for number in range(1, rng.randint(1, 9) + 1):
        floors = rng.randint(1, 33)
        per_floor = [rng.choice((0, 1, 2, 3, 4, 6, 8, 12)) for _ in range(floors)]
        bedridden = tuple(
            f"{number}-{f}-{n}" for f, count in enumerate(per_floor, 1) for n in range(count) if rng.random() < 0.02
        )
        layouts.append(
            building(
                str(number), per_floor, lifts=rng.choice((0, 1, 2, 3)), capacity=rng.randint(6, 13), bedridden=bedridden
            )
        )
    names = [layout.building for layout in layouts]
    count = rng.randint(1, min(4, len(names)))
    points = [
        PointCapacity(f"p{n}", rng.choice((1.5, 2, 3, 4, 6)), tuple(names[n - 1 :: count])) for n in range(1, count + 1)
    ]
    rules = CallRules(
        mode=rng.choice(("floor", "auto")),
        floors_per_call=rng.randint(1, 4),
        floor_order=rng.choice(("down", "up")),
        slot_minutes=rng.choice((3, 5, 10)),
        window_minutes=rng.choice((8, 10, 15, 20)),
        lift_trip_minutes=rng.choice((1, 2, 3)),
        walk_floors=rng.choice((0, 1, 2)),
    )
    return layouts, points, rules


@pytest.mark.parametrize("seed", range(60))
def test_random_compounds_get_sound_plans(seed: int) -> None:
    layouts, points, rules = random_compound(random.Random(seed))
    plan = plan_round(START, rules, points, layouts)
    assert_sound(plan, rules, points, layouts)


def test_floor_by_floor_groups_neighbouring_floors_from_the_top() -> None:
    tower = building("7", [0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4])  # 44 people on floors 2-12
    rules = CallRules(mode="floor", floors_per_call=3, window_minutes=10, walk_floors=1)
    units = units_of(tower, rules, queue_limit=40)
    assert [(u.lowest_floor, u.highest_floor) for u in units] == [(10, 12), (7, 9), (4, 6), (2, 3)]
    assert units[0].floors_text() == "floors 10–12"
    upward = units_of(tower, CallRules(mode="floor", floors_per_call=3, floor_order="up"), queue_limit=40)
    assert [(u.lowest_floor, u.highest_floor) for u in upward] == [(2, 4), (5, 7), (8, 10), (11, 12)]
    single = units_of(tower, CallRules(mode="floor", floors_per_call=1), queue_limit=40)
    assert [u.lowest_floor for u in single] == list(range(12, 1, -1))


def test_whole_building_half_building_and_auto() -> None:
    small = building("3", [6, 6, 6, 6])  # 24 people
    big = building("4", [10] * 10)  # 100 people
    whole = CallRules(mode="building")
    assert [u.people for u in units_of(small, whole, queue_limit=30)] == [24]
    with pytest.raises(DomainRuleViolation) as raised:
        units_of(big, whole, queue_limit=30)
    assert raised.value.code == "call-exceeds-queue-limit" and status_of(raised.value) == 422
    halves = units_of(big, CallRules(mode="half_building", lift_trip_minutes=1), queue_limit=60)
    assert [(u.lowest_floor, u.highest_floor, u.people) for u in halves] == [(6, 10, 50), (1, 5, 50)]
    with pytest.raises(DomainRuleViolation) as raised:
        units_of(big, CallRules(mode="half_building"), queue_limit=40)
    assert raised.value.code == "call-exceeds-queue-limit"
    # Auto takes the coarsest way that fits, building by building.
    auto = CallRules(mode="auto", lift_trip_minutes=1)
    assert len(units_of(small, auto, queue_limit=30)) == 1
    assert len(units_of(big, auto, queue_limit=60)) == 2
    assert len(units_of(big, auto, queue_limit=30)) > 2


def test_the_lifts_limit_a_call_and_a_crowded_floor_is_called_room_by_room() -> None:
    # One lift of 8, a 2-minute trip in a 5-minute slot: 16 people per slot; floor 9 has 20 people.
    tower = building("9", [2] * 8 + [20], lifts=1, capacity=8)
    rules = CallRules(mode="floor", floors_per_call=3)
    units = units_of(tower, rules, queue_limit=100)
    assert all(u.lift_riders <= 16 for u in units)
    top = [u for u in units if u.lowest_floor == 9]
    assert len(top) == 2 and all(u.rooms for u in top) and sum(u.people for u in top) == 20
    assert set(top[0].rooms).isdisjoint(top[1].rooms)
    assert "rooms" in top[0].floors_text()
    # Without lifts, people take the stairs: only the queue limits the call.
    stairs = building("10", [2] * 8 + [20], lifts=0, capacity=0)
    assert len(units_of(stairs, CallRules(mode="building"), queue_limit=100)) == 1


def test_a_household_too_big_for_any_call_is_refused_with_its_reason() -> None:
    crowd = tuple(Occupant(f"r{n}", "h1", 5, room=1) for n in range(20))  # one household of 20 on floor 5
    tower = BuildingLayout("5", 5, lifts=1, lift_capacity=8, occupants=crowd)
    with pytest.raises(DomainRuleViolation) as raised:
        units_of(tower, CallRules(mode="floor"), queue_limit=100)  # the lift carries 16 a slot
    assert raised.value.code == "call-exceeds-lift-capacity" and status_of(raised.value) == 422
    with pytest.raises(DomainRuleViolation) as raised:
        units_of(tower, CallRules(mode="floor", lift_trip_minutes=1), queue_limit=10)
    assert raised.value.code == "call-exceeds-queue-limit"


def test_every_building_must_be_served_by_a_point_of_the_round() -> None:
    layouts = [building("1", [2, 2]), building("2", [2, 2]), building("3", [])]
    with pytest.raises(DomainRuleViolation) as raised:
        plan_round(START, CallRules(), [PointCapacity("p1", 2, ("1",))], layouts)
    assert raised.value.code == "buildings-unassigned" and "2" in str(raised.value)
    # A building nobody lives in needs no point.
    plan = plan_round(START, CallRules(), [PointCapacity("p1", 2, ("1", "2"))], layouts)
    assert len(plan.called_residents()) == 8


def test_rules_are_checked() -> None:
    layouts = [building("1", [2])]
    for rules in (CallRules(mode="crowd"), CallRules(slot_minutes=0), CallRules(floor_order="sideways")):
        with pytest.raises(DomainRuleViolation) as raised:
            plan_round(START, rules, [PointCapacity("p1", 2, ("1",))], layouts)
        assert status_of(raised.value) == 422
    with pytest.raises(DomainRuleViolation) as raised:
        plan_round(START, CallRules(window_minutes=1), [PointCapacity("p1", 0.5, ("1",))], layouts)
    assert raised.value.code == "invalid-rules"


def test_the_compound_of_25_buildings_and_5000_residents() -> None:
    rng = random.Random(12)
    layouts = [
        building(
            str(n),
            [rng.choice((4, 6, 8, 9, 12)) for _ in range(rng.choice((18, 26, 33)))],
            lifts=rng.choice((1, 2)),
            capacity=rng.choice((8, 10, 13)),
        )
        for n in range(1, 26)
    ]
    throughputs = {f"p{n}": 4.0 for n in range(1, 7)}
    chosen = propose_assignment(throughputs, {layout.building: len(layout.occupants) for layout in layouts})
    points = [PointCapacity(p, throughputs[p], tuple(bs)) for p, bs in chosen.items()]
    for mode in ("floor", "auto"):
        rules = CallRules(mode=mode, window_minutes=15)
        plan = plan_round(START, rules, points, layouts)
        assert_sound(plan, rules, points, layouts)


def test_the_proposal_balances_residents_per_point() -> None:
    rng = random.Random(5)
    sizes = {str(n): rng.randint(120, 280) for n in range(1, 26)}
    chosen = propose_assignment({f"p{n}": 4.0 for n in range(1, 7)}, sizes)
    assert sorted(b for bs in chosen.values() for b in bs) == sorted(sizes)
    loads = [sum(sizes[b] for b in bs) for bs in chosen.values()]
    assert max(loads) - min(loads) <= max(sizes.values())
    assert all(bs == sorted(bs, key=natural_key) for bs in chosen.values())
    # A point that swabs twice as fast serves about twice the residents.
    weighted = propose_assignment({"fast": 8.0, "slow": 4.0}, sizes)
    fast, slow = (sum(sizes[b] for b in weighted[p]) for p in ("fast", "slow"))
    assert 1.6 < fast / slow < 2.4
    with pytest.raises(DomainRuleViolation):
        propose_assignment({}, sizes)
