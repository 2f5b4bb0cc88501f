"""The call planner (testing without crowds): which floors of which building are called down to which sampling
point and when, so that no point's queue exceeds its limit (throughput × waiting window) and no building's
lifts are asked to carry more people in a time slot than they can; and the balanced building→point assignment.
Who lives where comes from the residents service's events, passed in by the caller. Plain Python, no I/O.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.testing import (
    PlannedCall,
)
from juwei.aggregate import Conflict, DomainRuleViolation, Invalid

MODES = ("building", "half_building", "floor", "auto")
FLOOR_ORDERS = ("down", "up")


def natural_key(value: str) -> tuple[str | int, ...]:
    """ "c1:2" before "c1:10": buildings are numbered, and people read them in number order."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", value))


# --- who lives where (from the residents service's events) -------------------------------------------------


@dataclass(frozen=True)
class Occupant:
    resident: str
    household: str
    floor: int
    bedridden: bool = False
    room: int = 1


@dataclass(frozen=True)
class BuildingLayout:
    """A building as the planner needs it: its lifts and who lives on which floor."""

    building: str
    floors: int
    lifts: int
    lift_capacity: int
    occupants: tuple[Occupant, ...] = ()

    @property
    def called(self) -> list[Occupant]:
        return [o for o in self.occupants if not o.bedridden]

    @property
    def bedridden(self) -> list[Occupant]:
        return [o for o in self.occupants if o.bedridden]


# --- the call planner ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRules:
    """How a round calls people down; every number is configurable per round."""

    mode: str = "floor"
    floors_per_call: int = 3
    floor_order: str = "down"  # top floors first: the lifts come down full and do not stop on the way
    slot_minutes: int = 5
    window_minutes: int = 10  # the longest anyone should queue: queue limit = throughput × window
    lift_trip_minutes: int = 2  # one lift's round trip, top to ground and back
    walk_floors: int = 2  # people on floors up to this one take the stairs

    def validate(self) -> None:
        if self.mode not in MODES:
            raise Invalid(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}", code="invalid-mode")
        if self.floor_order not in FLOOR_ORDERS:
            raise Invalid(f"floor order must be down or up, not {self.floor_order!r}", code="invalid-order")
        for name in ("floors_per_call", "slot_minutes", "window_minutes", "lift_trip_minutes"):
            if getattr(self, name) < 1:
                raise Invalid(f"{name} must be at least 1", code="invalid-rules")
        if self.walk_floors < 0:
            raise Invalid("walk_floors cannot be negative", code="invalid-rules")

    def queue_limit(self, throughput: float) -> int:
        """The most people a point should ever have waiting: what it swabs in the waiting window."""
        return math.floor(throughput * self.window_minutes + 1e-9)

    def lift_limit(self, layout: BuildingLayout) -> int | None:
        """People the building's lifts bring down in one time slot; None when there are no lifts (stairs)."""
        if layout.lifts <= 0 or layout.lift_capacity <= 0:
            return None
        trips = max(1, self.slot_minutes // self.lift_trip_minutes)
        return layout.lifts * layout.lift_capacity * trips

    def rides_lift(self, floor: int) -> bool:
        return floor > self.walk_floors


@dataclass(frozen=True)
class Unit:
    """Floors of one building called down together."""

    building: str
    lowest_floor: int
    highest_floor: int
    residents: tuple[str, ...]
    lift_riders: int
    rooms: tuple[int, ...] = ()  # part of one floor: only these rooms (a floor too big for one call)

    @property
    def people(self) -> int:
        return len(self.residents)

    def floors_text(self) -> str:
        if self.lowest_floor == self.highest_floor:
            rooms = f" rooms {', '.join(map(str, self.rooms))}" if self.rooms else ""
            return f"floor {self.lowest_floor}{rooms}"
        return f"floors {self.lowest_floor}–{self.highest_floor}"


@dataclass(frozen=True)
class ScheduledCall:
    point: str
    call: int
    slot: int
    unit: Unit
    starts_at: datetime
    ends_at: datetime

    def planned(self) -> PlannedCall:
        return PlannedCall(
            call=self.call,
            building=self.unit.building,
            lowest_floor=self.unit.lowest_floor,
            highest_floor=self.unit.highest_floor,
            people=self.unit.people,
            lift_riders=self.unit.lift_riders,
            rooms=list(self.unit.rooms),
            starts_at=self.starts_at,
            ends_at=self.ends_at,
        )


@dataclass(frozen=True)
class PointCapacity:
    point: str
    throughput: float
    buildings: tuple[str, ...]


@dataclass(frozen=True)
class Timetable:
    """One point's calls for a round, in the order they are made."""

    point: str
    queue_limit: int
    peak_queue: int
    calls: tuple[ScheduledCall, ...]

    @property
    def people(self) -> int:
        return sum(call.unit.people for call in self.calls)

    @property
    def finishes_at(self) -> datetime | None:
        return max((call.ends_at for call in self.calls), default=None)


@dataclass(frozen=True)
class CallPlan:
    timetables: dict[str, Timetable]
    door_to_door: dict[str, tuple[Occupant, ...]]

    def called_residents(self) -> list[str]:
        return [r for table in self.timetables.values() for call in table.calls for r in call.unit.residents]


def _floors_in_order(layout: BuildingLayout, rules: CallRules) -> list[tuple[int, list[Occupant]]]:
    by_floor: dict[int, list[Occupant]] = {}
    for occupant in layout.called:
        by_floor.setdefault(occupant.floor, []).append(occupant)
    floors = sorted(by_floor, reverse=rules.floor_order == "down")
    return [(floor, sorted(by_floor[floor], key=lambda o: (o.room, o.household, o.resident))) for floor in floors]


def _unit(
    building: str, group: Sequence[tuple[int, list[Occupant]]], rules: CallRules, part_of_floor: bool = False
) -> Unit:
    people = [o for _, occupants in group for o in occupants]
    floors = [floor for floor, _ in group]
    return Unit(
        building=building,
        lowest_floor=min(floors),
        highest_floor=max(floors),
        residents=tuple(o.resident for o in people),
        lift_riders=sum(1 for o in people if rules.rides_lift(o.floor)),
        rooms=tuple(sorted({o.room for o in people})) if part_of_floor else (),
    )


def _fits(unit: Unit, queue_limit: int, lift_limit: int | None) -> bool:
    return unit.people <= queue_limit and (lift_limit is None or unit.lift_riders <= lift_limit)


def _too_large(unit: Unit, queue_limit: int, lift_limit: int | None, hint: str) -> DomainRuleViolation:
    if unit.people > queue_limit:
        return Invalid(
            f"calling {unit.floors_text()} of building {unit.building} brings {unit.people} people to a point whose"
            f" queue limit is {queue_limit}; {hint}",
            code="call-exceeds-queue-limit",
        )
    return Invalid(
        f"calling {unit.floors_text()} of building {unit.building} puts {unit.lift_riders} people in lifts that"
        f" carry {lift_limit} per time slot; {hint}",
        code="call-exceeds-lift-capacity",
    )


def units_of(layout: BuildingLayout, rules: CallRules, queue_limit: int) -> list[Unit]:
    """The units a building is called down in, in calling order; bedridden residents are not called."""
    floors = _floors_in_order(layout, rules)
    if not floors:
        return []
    lift_limit = rules.lift_limit(layout)
    mode = rules.mode
    if mode in ("building", "auto"):
        whole = _unit(layout.building, floors, rules)
        if _fits(whole, queue_limit, lift_limit):
            return [whole]
        if mode == "building":
            raise _too_large(whole, queue_limit, lift_limit, "call it by half building or floor by floor")
    if mode in ("half_building", "auto"):
        halves = _halves(layout.building, floors, rules)
        if all(_fits(half, queue_limit, lift_limit) for half in halves):
            return halves
        if mode == "half_building":
            worst = max(halves, key=lambda u: (u.people, u.lift_riders))
            raise _too_large(worst, queue_limit, lift_limit, "call it floor by floor")
    return _floor_groups(layout.building, floors, rules, queue_limit, lift_limit)


def _halves(building: str, floors: list[tuple[int, list[Occupant]]], rules: CallRules) -> list[Unit]:
    """Two runs of floors with as even a number of people as the floors allow (one when a floor is all)."""
    if len(floors) == 1:
        return [_unit(building, floors, rules)]
    total = sum(len(o) for _, o in floors)
    best, best_gap, running = 1, total, 0
    for cut in range(1, len(floors)):
        running += len(floors[cut - 1][1])
        gap = abs(total - 2 * running)
        if gap < best_gap:
            best, best_gap = cut, gap
    return [_unit(building, floors[:best], rules), _unit(building, floors[best:], rules)]


def _floor_groups(
    building: str,
    floors: list[tuple[int, list[Occupant]]],
    rules: CallRules,
    queue_limit: int,
    lift_limit: int | None,
) -> list[Unit]:
    """Runs of neighbouring floors (at most ``floors_per_call`` apart) as large as the limits allow; a floor
    too big for one call is called room by room."""
    units: list[Unit] = []
    group: list[tuple[int, list[Occupant]]] = []
    for floor, occupants in floors:
        single = _unit(building, [(floor, occupants)], rules)
        if not _fits(single, queue_limit, lift_limit):
            if group:
                units.append(_unit(building, group, rules))
                group = []
            units.extend(_rooms_of(building, floor, occupants, rules, queue_limit, lift_limit))
            continue
        if group:
            candidate = _unit(building, [*group, (floor, occupants)], rules)
            span = candidate.highest_floor - candidate.lowest_floor + 1
            if span <= rules.floors_per_call and _fits(candidate, queue_limit, lift_limit):
                group.append((floor, occupants))
                continue
            units.append(_unit(building, group, rules))
        group = [(floor, occupants)]
    if group:
        units.append(_unit(building, group, rules))
    return units


def _rooms_of(
    building: str,
    floor: int,
    occupants: list[Occupant],
    rules: CallRules,
    queue_limit: int,
    lift_limit: int | None,
) -> list[Unit]:
    """A crowded floor in runs of rooms, whole households each, as large as the limits allow."""
    homes: dict[str, list[Occupant]] = {}
    for occupant in occupants:  # already in room order
        homes.setdefault(occupant.household, []).append(occupant)
    units: list[Unit] = []
    part: list[Occupant] = []
    for home in homes.values():
        alone = _unit(building, [(floor, home)], rules, part_of_floor=True)
        if not _fits(alone, queue_limit, lift_limit):
            raise _too_large(alone, queue_limit, lift_limit, "raise the point's throughput or the waiting window")
        if part and not _fits(
            _unit(building, [(floor, part + home)], rules, part_of_floor=True), queue_limit, lift_limit
        ):
            units.append(_unit(building, [(floor, part)], rules, part_of_floor=True))
            part = []
        part.extend(home)
    if part:
        units.append(_unit(building, [(floor, part)], rules, part_of_floor=True))
    return units


def timetable(
    point: PointCapacity, layouts: Sequence[BuildingLayout], rules: CallRules, starts_at: datetime
) -> Timetable:
    """Calls for one point, slot by slot: a unit is called as soon as the point's queue and the building's
    lifts have room for it in that slot; earlier buildings first, each building's floors in order."""
    queue_limit = rules.queue_limit(point.throughput)
    if queue_limit < 1:
        raise Invalid(
            f"point {point.point} takes {point.throughput} swabs a minute: a {rules.window_minutes}-minute window"
            " lets nobody queue",
            code="invalid-rules",
        )
    ordered = sorted(layouts, key=lambda layout: natural_key(layout.building))
    pending = [deque(units_of(layout, rules, queue_limit)) for layout in ordered]
    lift_limits = [rules.lift_limit(layout) for layout in ordered]
    served_per_slot = point.throughput * rules.slot_minutes
    calls: list[ScheduledCall] = []
    queue = 0.0
    peak = 0.0
    slot = 0
    clock = 0.0  # minutes after the start when the point has swabbed everyone called so far (FIFO)
    while any(pending):
        riding = [0] * len(pending)
        for index, units in enumerate(pending):
            limit = lift_limits[index]
            while units:
                unit = units[0]
                if queue + unit.people > queue_limit:
                    break
                if limit is not None and riding[index] + unit.lift_riders > limit:
                    break
                units.popleft()
                queue += unit.people
                riding[index] += unit.lift_riders
                arrives = slot * rules.slot_minutes
                clock = max(clock, arrives) + unit.people / point.throughput
                calls.append(
                    ScheduledCall(
                        point=point.point,
                        call=len(calls) + 1,
                        slot=slot,
                        unit=unit,
                        starts_at=starts_at + timedelta(minutes=arrives),
                        ends_at=starts_at + timedelta(minutes=round(clock, 2)),
                    )
                )
        peak = max(peak, queue)
        queue = max(0.0, queue - served_per_slot)
        slot += 1
    return Timetable(point=point.point, queue_limit=queue_limit, peak_queue=math.ceil(peak), calls=tuple(calls))


def plan_round(
    starts_at: datetime,
    rules: CallRules,
    points: Sequence[PointCapacity],
    layouts: Sequence[BuildingLayout],
) -> CallPlan:
    """Timetables for every point of a round and the door-to-door list; every resident exactly once."""
    rules.validate()
    if not points:
        raise Invalid("a round needs at least one sampling point", code="no-points")
    serving: dict[str, str] = {}
    for point in points:
        for building in point.buildings:
            serving[building] = point.point
    unserved = sorted((lay.building for lay in layouts if lay.called and lay.building not in serving), key=natural_key)
    if unserved:
        raise Conflict(
            f"buildings {', '.join(unserved)} are not assigned to any point of this round; assign them first",
            code="buildings-unassigned",
        )
    by_point: dict[str, list[BuildingLayout]] = {point.point: [] for point in points}
    for layout in layouts:
        if layout.building in serving:
            by_point[serving[layout.building]].append(layout)
    timetables = {point.point: timetable(point, by_point[point.point], rules, starts_at) for point in points}
    door_to_door = {
        layout.building: tuple(sorted(layout.bedridden, key=lambda o: (o.floor, o.household, o.resident)))
        for layout in sorted(layouts, key=lambda lay: natural_key(lay.building))
        if layout.bedridden
    }
    return CallPlan(timetables=timetables, door_to_door=door_to_door)


def propose_assignment(throughputs: Mapping[str, float], residents: Mapping[str, int]) -> dict[str, list[str]]:
    """Buildings to points so that each point's residents (per swab a minute) are as even as can be.

    Largest building first to the point that would finish earliest with it (longest-processing-time rule).
    """
    if not throughputs:
        raise Conflict("no open sampling point to assign buildings to", code="no-points")
    load = dict.fromkeys(throughputs, 0)
    chosen: dict[str, list[str]] = {point: [] for point in throughputs}
    for building in sorted(residents, key=lambda b: (-residents[b], natural_key(b))):
        point = min(throughputs, key=lambda p: ((load[p] + residents[building]) / throughputs[p], natural_key(p)))
        load[point] += residents[building]
        chosen[point].append(building)
    return {point: sorted(buildings, key=natural_key) for point, buildings in chosen.items()}
