"""The testing service's domain rules: plain Python, no I/O.

- The call planner (testing without crowds): which floors of which building are called down to which
  sampling point and when, so that no point's queue exceeds its limit (throughput × waiting window) and no
  building's lifts are asked to carry more people in a time slot than they can.
- The balanced building→point assignment.
- Aggregates: ``SamplingPoint``, ``PointAssignment``, ``Round``, ``CallQueue`` (one point's calls in one
  round), ``Tube`` (pooled or individual PCR), ``SelfReports`` (a household's antigen results in a round),
  ``Case`` (confirmed → transfer scheduled → transferred → closed) and ``Disinfection``.
- A resident's status in a round, which decides what kind of sample they may give next.

Facts that live elsewhere (who lives where, a resident's status in the round) are passed in by the caller.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from contracts.testing import (
    AntigenReported,
    BuildingsAssigned,
    CallPlanMade,
    CaseClosed,
    CaseConfirmed,
    CaseTransferred,
    CloseContactsIsolated,
    DisinfectionRecorded,
    DoorToDoorSamplingAssigned,
    HomeVisit,
    IndividualResultRecorded,
    PcrRequested,
    PlannedCall,
    ResidentsRecalled,
    RetestRequested,
    RoundScheduled,
    SampleCollected,
    SamplingPointChanged,
    SamplingPointClosed,
    SamplingPointOpened,
    StoredPhoto,
    TransferScheduled,
    TubeResulted,
    UnitCalled,
)
from juwei.aggregate import Aggregate, Conflict, DomainRuleViolation, Invalid, NotFound

MODES = ("building", "half_building", "floor", "auto")
FLOOR_ORDERS = ("down", "up")
ROUND_KINDS = ("pcr", "antigen")
RESULTS = ("negative", "positive", "invalid")
OUTCOMES = ("returned", "recovered")
POOL_SIZE = 10  # 10-in-1 pooling, as Shanghai ran it in April 2022
MAX_POOL_SIZE = 20
PLATE_WELLS = 96  # a lab reports by plate: a 96-well plate holds at most 96 tubes
MAX_UPLOAD_TUBES = 100  # tubes a sampling point uploads at once (a cool box of racks)
MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PHOTOS = 10
# How late a clock may run: a record "done" more than this in the future is a typo, not a plan.
CLOCK_SLACK = timedelta(minutes=10)


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


# --- a resident's status in a round ------------------------------------------------------------------------

# Statuses that still want a sample (or a self-report), and the kind of sample each gets.
NEXT_SAMPLE = {
    None: "pooled",
    "recall": "pooled",
    "retest": "individual",
    "recall-individual": "individual",
    "pcr-requested": "individual",
}
AWAITING_RESULT = frozenset({"sampled", "individual-sampled"})
TO_RESAMPLE = frozenset({"recall", "recall-individual", "retest", "pcr-requested", "antigen-invalid"})


def sample_kind(status: str | None, round_kind: str) -> str:
    """The kind of PCR sample a resident with this status gives next, or why they give none."""
    if status is None and round_kind == "antigen":
        raise Conflict(
            "an antigen day is a self-test: a PCR sample is taken only when a positive antigen asks for it",
            code="self-test-round",
        )
    if status not in NEXT_SAMPLE:
        raise Conflict(f"this resident needs no sample now (status {status})", code="already-sampled")
    return NEXT_SAMPLE[status]


def status_after(status: str | None, event: str, result: str | None = None) -> str | None:
    """A resident's status in a round after one of the events concerning them."""
    if event == "SampleCollected":
        return "individual-sampled" if NEXT_SAMPLE.get(status) == "individual" else "sampled"
    if event == "TubeResulted":
        return {"negative": "negative", "positive": "retest", "invalid": "recall"}[result or ""]
    if event == "IndividualResultRecorded":
        return {"negative": "negative", "positive": "positive", "invalid": "recall-individual"}[result or ""]
    if event == "AntigenReported":
        return {"negative": "antigen-negative", "positive": "pcr-requested", "invalid": "antigen-invalid"}[result or ""]
    return status


MILESTONES = (25, 50, 75, 100)


def milestone_passed(before: int, after: int, residents: int) -> int | None:
    """The highest milestone (percent tested) that ``after`` reaches and ``before`` did not, if any."""
    if residents <= 0 or after <= before:
        return None
    passed = [m for m in MILESTONES if before * 100 < m * residents <= after * 100]
    return passed[-1] if passed else None


def listed_twice(tubes: Sequence[str]) -> dict[int, int]:
    """Items naming a tube an earlier item named: {index: index of the first}. A plate or upload lists a tube once."""
    first: dict[str, int] = {}
    repeated: dict[int, int] = {}
    for index, tube in enumerate(tubes):
        if tube in first:
            repeated[index] = first[tube]
        else:
            first[tube] = index
    return repeated


def tested(status: str | None) -> bool:
    """Whether the resident gave a sample or a self-report in the round (what the building counts)."""
    return status is not None


# --- aggregates ----------------------------------------------------------------------------------------------


class SamplingPoint(Aggregate):
    stream_prefix = "point"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name = ""
        self.location = ""
        self.throughput = 0.0
        self.volunteers: list[str] = []
        self.closed = False

    @staticmethod
    def _check(name: str, location: str, throughput: float) -> None:
        if not name.strip():
            raise Invalid("a sampling point needs a name", code="invalid-point")
        if not location.strip():
            raise Invalid("a sampling point needs a location", code="invalid-point")
        if not 0 < throughput <= 100:
            raise Invalid(
                f"throughput must be above 0 and at most 100 swabs a minute, not {throughput}", code="invalid-point"
            )

    def open(self, name: str, location: str, throughput: float, volunteers: Iterable[str] = ()) -> None:
        if self.exists:
            raise Conflict(f"sampling point {self.id} is already open", code="point-exists")
        self._check(name, location, throughput)
        self.record(
            SamplingPointOpened(
                point=self.id,
                name=name.strip(),
                location=location.strip(),
                throughput=throughput,
                volunteers=list(dict.fromkeys(volunteers)),
            )
        )

    def change(
        self,
        *,
        name: str | None = None,
        location: str | None = None,
        throughput: float | None = None,
        volunteers: Iterable[str] | None = None,
    ) -> None:
        self._require_open()
        new_name = self.name if name is None else name.strip()
        new_location = self.location if location is None else location.strip()
        new_throughput = self.throughput if throughput is None else throughput
        new_volunteers = self.volunteers if volunteers is None else list(dict.fromkeys(volunteers))
        self._check(new_name, new_location, new_throughput)
        if (new_name, new_location, new_throughput, new_volunteers) == (
            self.name,
            self.location,
            self.throughput,
            self.volunteers,
        ):
            return
        self.record(
            SamplingPointChanged(
                point=self.id,
                name=new_name,
                location=new_location,
                throughput=new_throughput,
                volunteers=new_volunteers,
            )
        )

    def close(self, reason: str = "") -> None:
        self._require_open()
        self.record(SamplingPointClosed(point=self.id, reason=reason.strip()))

    def _require_open(self) -> None:
        if not self.exists:
            raise NotFound(f"sampling point {self.id} is not open", code="point-unknown")
        if self.closed:
            raise Conflict(f"sampling point {self.id} is closed", code="point-closed")

    def on_SamplingPointOpened(self, event: SamplingPointOpened) -> None:
        self.name, self.location, self.throughput = event.name, event.location, event.throughput
        self.volunteers = list(event.volunteers)

    def on_SamplingPointChanged(self, event: SamplingPointChanged) -> None:
        self.on_SamplingPointOpened(event)  # type: ignore[arg-type]

    def on_SamplingPointClosed(self, _event: SamplingPointClosed) -> None:
        self.closed = True


class PointAssignment(Aggregate):
    """Which point serves each building of a compound (the aggregate's id is the compound)."""

    stream_prefix = "assignment"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.served_by: dict[str, str] = {}

    def buildings_of(self, point: str) -> list[str]:
        return sorted((b for b, p in self.served_by.items() if p == point), key=natural_key)

    def assign(
        self,
        point: str,
        buildings: Iterable[str],
        *,
        open_points: Collection[str],
        known_buildings: Collection[str],
        proposed: bool = False,
    ) -> None:
        """Move ``buildings`` to ``point``; the points they leave record their shorter lists."""
        self.reassign(
            {point: list(buildings)}, open_points=open_points, known_buildings=known_buildings, proposed=proposed
        )

    def reassign(
        self,
        chosen: Mapping[str, Iterable[str]],
        *,
        open_points: Collection[str],
        known_buildings: Collection[str],
        proposed: bool = False,
    ) -> None:
        closed = [p for p in chosen if p not in open_points]
        if closed:
            raise NotFound(f"sampling points {', '.join(closed)} are not open", code="point-unknown")
        wanted = {point: list(dict.fromkeys(buildings)) for point, buildings in chosen.items()}
        unknown = sorted({b for bs in wanted.values() for b in bs if b not in known_buildings}, key=natural_key)
        if unknown:
            raise NotFound(f"unknown buildings: {', '.join(unknown)}", code="building-unknown")
        twice = sorted({b for p, bs in wanted.items() for b in bs if any(b in o for q, o in wanted.items() if q != p)})
        if twice:
            raise Invalid(f"buildings {', '.join(twice)} are given to two points", code="building-twice")
        after = dict(self.served_by)
        for point, buildings in wanted.items():
            for building in buildings:
                after[building] = point
        touched = set(wanted) | {self.served_by[b] for bs in wanted.values() for b in bs if b in self.served_by}
        before = {point: self.buildings_of(point) for point in touched}  # recording changes the state
        for point in sorted(touched, key=natural_key):
            after_list = sorted((b for b, p in after.items() if p == point), key=natural_key)
            if before[point] != after_list:
                self.record(BuildingsAssigned(point=point, buildings=after_list, proposed=proposed))

    def on_BuildingsAssigned(self, event: BuildingsAssigned) -> None:
        for building in [b for b, p in self.served_by.items() if p == event.point]:
            del self.served_by[building]
        for building in event.buildings:
            self.served_by[building] = event.point


class Round(Aggregate):
    """A mass PCR round or an antigen self-test day."""

    stream_prefix = "round"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.kind = ""
        self.on: date | None = None
        self.starts_at: datetime | None = None
        self.points: list[str] = []
        self.rules = CallRules()
        self.pool_size = POOL_SIZE
        self.auto_advance = False
        self.home_visits: set[str] = set()  # buildings with a door-to-door list

    def schedule(
        self,
        kind: str,
        starts_at: datetime,
        points: Sequence[str],
        rules: CallRules,
        *,
        on: date,
        open_points: Collection[str],
        pool_size: int = POOL_SIZE,
        auto_advance: bool = False,
    ) -> None:
        """``on`` is the date of ``starts_at`` in the compound's time zone."""
        if self.exists:
            raise Conflict(f"round {self.id} is already scheduled", code="round-exists")
        if kind not in ROUND_KINDS:
            raise Invalid(f"a round is pcr or antigen, not {kind!r}", code="invalid-round")
        if starts_at.tzinfo is None:
            raise Invalid("the round's start needs a time zone", code="invalid-round")
        rules.validate()
        if not 1 <= pool_size <= MAX_POOL_SIZE:
            raise Invalid(f"a tube pools 1 to {MAX_POOL_SIZE} samples, not {pool_size}", code="invalid-round")
        chosen = list(dict.fromkeys(points))
        if kind == "pcr" and not chosen:
            raise Invalid("a PCR round needs at least one sampling point", code="no-points")
        closed = [p for p in chosen if p not in open_points]
        if closed:
            raise NotFound(f"sampling points {', '.join(closed)} are not open", code="point-unknown")
        self.record(
            RoundScheduled(
                round=self.id,
                kind=kind,  # type: ignore[arg-type]
                on=on,
                starts_at=starts_at,
                points=chosen,
                mode=rules.mode,  # type: ignore[arg-type]
                floors_per_call=rules.floors_per_call,
                floor_order=rules.floor_order,  # type: ignore[arg-type]
                pool_size=pool_size,
                slot_minutes=rules.slot_minutes,
                window_minutes=rules.window_minutes,
                lift_trip_minutes=rules.lift_trip_minutes,
                walk_floors=rules.walk_floors,
                auto_advance=auto_advance,
            )
        )

    def require_scheduled(self) -> None:
        if not self.exists:
            raise NotFound(f"round {self.id} is not scheduled", code="round-unknown")

    def assign_door_to_door(self, tasks: Mapping[str, Sequence[Occupant]]) -> None:
        """Bedridden residents are sampled at home: one list per building (an emptied list when re-planned)."""
        self.require_scheduled()
        emptied = {building: () for building in self.home_visits if building not in tasks}
        for building, occupants in {**tasks, **emptied}.items():
            self.record(
                DoorToDoorSamplingAssigned(
                    round=self.id,
                    building=building,
                    home_visits=len(occupants),
                    visits=[HomeVisit(resident=o.resident, household=o.household, floor=o.floor) for o in occupants],
                )
            )

    def on_DoorToDoorSamplingAssigned(self, event: DoorToDoorSamplingAssigned) -> None:
        if event.home_visits:
            self.home_visits.add(event.building)
        else:
            self.home_visits.discard(event.building)

    def on_RoundScheduled(self, event: RoundScheduled) -> None:
        self.kind = event.kind
        self.on = event.on
        self.starts_at = event.starts_at
        self.points = list(event.points)
        self.pool_size = event.pool_size
        self.auto_advance = event.auto_advance
        self.rules = CallRules(
            mode=event.mode,
            floors_per_call=event.floors_per_call,
            floor_order=event.floor_order,
            slot_minutes=event.slot_minutes,
            window_minutes=event.window_minutes,
            lift_trip_minutes=event.lift_trip_minutes,
            walk_floors=event.walk_floors,
        )


class CallQueue(Aggregate):
    """One point's timetable in one round and how far the calls have got (id ``<round>/<point>``)."""

    stream_prefix = "calls"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.calls: list[PlannedCall] = []
        self.called = 0

    @staticmethod
    def id_of(round: str, point: str) -> str:
        return f"{round}/{point}"

    def set_plan(self, round: str, point: str, mode: str, table: Timetable) -> None:
        if self.called:
            raise Conflict(
                f"point {point} has already made {self.called} calls in this round; the plan can no longer change",
                code="calls-started",
            )
        self.record(
            CallPlanMade(
                round=round,
                point=point,
                mode=mode,  # type: ignore[arg-type]
                queue_limit=table.queue_limit,
                peak_queue=table.peak_queue,
                calls=[call.planned() for call in table.calls],
            )
        )

    @property
    def next_call(self) -> PlannedCall | None:
        return self.calls[self.called] if self.called < len(self.calls) else None

    def call_next(self, round: str, point: str, *, at: datetime, by: str = "volunteer") -> PlannedCall:
        """ "Call next": the next unit of the timetable comes down now."""
        if not self.exists:
            raise Conflict(f"point {point} has no call plan in this round; make the plan first", code="no-plan")
        upcoming = self.next_call
        if upcoming is None:
            raise Conflict(f"point {point} has called everyone in its plan", code="plan-finished")
        self.record(
            UnitCalled(
                round=round,
                point=point,
                call=upcoming.call,
                building=upcoming.building,
                lowest_floor=upcoming.lowest_floor,
                highest_floor=upcoming.highest_floor,
                rooms=list(upcoming.rooms),
                people=upcoming.people,
                planned_at=upcoming.starts_at,
                called_at=at,
                called_by=by,  # type: ignore[arg-type]
            )
        )
        return upcoming

    def on_CallPlanMade(self, event: CallPlanMade) -> None:
        self.calls = list(event.calls)
        self.called = 0

    def on_UnitCalled(self, _event: UnitCalled) -> None:
        self.called += 1

    def snapshot_state(self) -> dict:
        return {"calls": [c.model_dump(mode="json") for c in self.calls], "called": self.called}

    def restore_state(self, state: dict) -> None:
        self.calls = [PlannedCall.model_validate(c) for c in state["calls"]]
        self.called = state["called"]


@dataclass
class Swab:
    household: str
    building: str


@dataclass(frozen=True)
class Confirmation:
    """What a positive individual result asks the caller to open a case for."""

    resident: str
    household: str
    building: str


class Tube(Aggregate):
    """A PCR tube: a pool of up to ``pool_size`` samples, or one resident's individual re-test."""

    stream_prefix = "tube"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.round: str | None = None
        self.kind: str | None = None
        self.samples: dict[str, Swab] = {}
        self.result: str | None = None

    def collect(
        self,
        round: str,
        resident: str,
        household: str,
        building: str,
        *,
        status: str | None,
        round_kind: str,
        pool_size: int,
        attempt: int,
        at: datetime,
        point: str | None = None,
        door_to_door: bool = False,
    ) -> str:
        """Put one resident's swab in this tube; ``status`` is their status in the round so far."""
        kind = sample_kind(status, round_kind)
        if self.result is not None:
            raise Conflict(f"tube {self.id} already has its result", code="tube-resulted")
        if self.round is not None and self.round != round:
            raise Conflict(f"tube {self.id} belongs to another round", code="tube-other-round")
        if self.kind is not None and self.kind != kind:
            raise Conflict(
                f"tube {self.id} holds {self.kind} samples; this resident needs a {kind} one", code="tube-kind-mismatch"
            )
        if resident in self.samples:
            raise Conflict(f"resident {resident} is already in tube {self.id}", code="already-in-tube")
        capacity = pool_size if kind == "pooled" else 1
        if len(self.samples) >= capacity:
            raise Conflict(f"tube {self.id} is full ({capacity} samples)", code="tube-full")
        self.record(
            SampleCollected(
                round=round,
                tube=self.id,
                point=point,
                resident=resident,
                household=household,
                building=building,
                kind=kind,  # type: ignore[arg-type]
                attempt=attempt,
                door_to_door=door_to_door,
                collected_at=at,
            )
        )
        return kind

    def record_result(self, result: str, *, at: datetime) -> Confirmation | None:
        """The lab's result; returns the resident to open a case for when an individual test is positive."""
        if not self.exists:
            raise NotFound(f"tube {self.id} holds no sample", code="tube-unknown")
        if result not in RESULTS:
            raise Invalid(f"a result is negative, positive or invalid, not {result!r}", code="invalid-result")
        if self.result is not None:
            raise Conflict(f"tube {self.id} already has its result ({self.result})", code="tube-resulted")
        assert self.round is not None
        if self.kind == "individual":
            resident, swab = next(iter(self.samples.items()))
            self.record(
                IndividualResultRecorded(
                    round=self.round,
                    tube=self.id,
                    resident=resident,
                    household=swab.household,
                    building=swab.building,
                    result=result,  # type: ignore[arg-type]
                    resulted_at=at,
                )
            )
            if result == "invalid":
                self._follow_up(ResidentsRecalled, reason="invalid individual sample")
            return Confirmation(resident, swab.household, swab.building) if result == "positive" else None
        self.record(
            TubeResulted(
                round=self.round,
                tube=self.id,
                result=result,  # type: ignore[arg-type]
                residents=list(self.samples),
                resulted_at=at,
            )
        )
        if result == "positive":
            self._follow_up(RetestRequested)
        elif result == "invalid":
            self._follow_up(ResidentsRecalled, reason="invalid pooled sample")
        return None

    def already_resulted(self, result: str) -> bool:
        """The lab sent this tube's result again (a re-posted plate): nothing to record, nothing refused."""
        return self.result is not None and self.result == result

    def already_holds(self, round: str, residents: Iterable[str]) -> bool:
        """This tube holds exactly these residents' samples of this round (a re-sent upload)."""
        return self.exists and self.round == round and set(self.samples) == set(residents)

    def _follow_up(self, kind: type[RetestRequested] | type[ResidentsRecalled], **extra: str) -> None:
        """One event per building, so that notify tells each building only about its own residents."""
        by_building: dict[str, list[tuple[str, Swab]]] = {}
        for resident, swab in self.samples.items():
            by_building.setdefault(swab.building, []).append((resident, swab))
        assert self.round is not None
        for building in sorted(by_building, key=natural_key):
            people = by_building[building]
            self.record(
                kind(
                    round=self.round,
                    tube=self.id,
                    building=building,
                    residents=[r for r, _ in people],
                    households=list(dict.fromkeys(s.household for _, s in people)),
                    **extra,
                )
            )

    def on_SampleCollected(self, event: SampleCollected) -> None:
        self.round = event.round
        self.kind = event.kind
        self.samples[event.resident] = Swab(event.household, event.building)

    def on_TubeResulted(self, event: TubeResulted) -> None:
        self.result = event.result

    def on_IndividualResultRecorded(self, event: IndividualResultRecorded) -> None:
        self.result = event.result


class SelfReports(Aggregate):
    """A household's antigen self-test results on one antigen day (id ``<round>/<household>``)."""

    stream_prefix = "antigen"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.results: dict[str, str] = {}

    @staticmethod
    def id_of(round: str, household: str) -> str:
        return f"{round}/{household}"

    def report(
        self,
        round: str,
        household: str,
        building: str,
        resident: str,
        result: str,
        *,
        round_kind: str,
        members: Collection[str],
        at: datetime,
        photo: str | None = None,
    ) -> None:
        if round_kind != "antigen":
            raise Conflict("antigen self-reports belong to an antigen day, not a PCR round", code="not-antigen-round")
        if result not in RESULTS:
            raise Invalid(f"a result is negative, positive or invalid, not {result!r}", code="invalid-result")
        if resident not in members:
            raise Invalid(f"resident {resident} does not live in household {household}", code="not-a-member")
        earlier = self.results.get(resident)
        if earlier is not None and earlier != "invalid":
            raise Conflict(f"resident {resident} has already reported ({earlier}) today", code="already-reported")
        self.record(
            AntigenReported(
                round=round,
                resident=resident,
                household=household,
                building=building,
                result=result,  # type: ignore[arg-type]
                photo=photo,
                reported_at=at,
            )
        )
        if result == "positive":
            self.record(
                PcrRequested(
                    round=round,
                    resident=resident,
                    household=household,
                    building=building,
                    reason="positive antigen self-test",
                )
            )

    def on_AntigenReported(self, event: AntigenReported) -> None:
        self.results[event.resident] = event.result


CASE_STATUSES = ("confirmed", "transfer-scheduled", "transferred", "closed")


class Case(Aggregate):
    """A confirmed case: awaiting transfer (with a time when known) → transferred → returned or recovered."""

    stream_prefix = "case"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status: str | None = None
        self.building: str | None = None
        self.scheduled_at: datetime | None = None
        self.transferred_at: datetime | None = None

    def confirm(
        self, resident: str, household: str, building: str, *, on: date, household_members: Iterable[str]
    ) -> None:
        """Open the case; the rest of the household become close contacts in home isolation."""
        if self.exists:
            raise Conflict(f"case {self.id} is already confirmed", code="case-exists")
        self.record(
            CaseConfirmed(case=self.id, resident=resident, household=household, building=building, confirmed_on=on)
        )
        contacts = [m for m in dict.fromkeys(household_members) if m != resident]
        self.record(
            CloseContactsIsolated(case=self.id, household=household, building=building, residents=contacts, since=on)
        )

    def _require(self, *statuses: str) -> str:
        if self.status is None:
            raise NotFound(f"case {self.id} is not known", code="case-unknown")
        if self.status not in statuses:
            raise Conflict(
                f"case {self.id} is {self.status}; this needs it {' or '.join(statuses)}", code="case-wrong-status"
            )
        assert self.building is not None
        return self.building

    def schedule_transfer(self, at: datetime) -> None:
        building = self._require("confirmed", "transfer-scheduled")
        if at.tzinfo is None:
            raise Invalid("the transfer time needs a time zone", code="invalid-time")
        if at == self.scheduled_at:
            return
        self.record(TransferScheduled(case=self.id, building=building, scheduled_at=at))

    def transferred(self, at: datetime, *, now: datetime, facility: str = "") -> None:
        building = self._require("confirmed", "transfer-scheduled")
        if at > now + CLOCK_SLACK:
            raise Invalid("a transfer cannot be recorded before it happens", code="time-in-future")
        self.record(CaseTransferred(case=self.id, building=building, transferred_at=at, facility=facility.strip()))

    def close(self, outcome: str, at: datetime, *, now: datetime) -> None:
        building = self._require("transferred")
        if outcome not in OUTCOMES:
            raise Invalid(f"a case closes as returned or recovered, not {outcome!r}", code="invalid-outcome")
        if at > now + CLOCK_SLACK:
            raise Invalid("a case cannot be closed before it happens", code="time-in-future")
        if self.transferred_at is not None and at < self.transferred_at:
            raise Invalid("a case closes after its transfer", code="invalid-time")
        self.record(CaseClosed(case=self.id, building=building, outcome=outcome, closed_at=at))  # type: ignore[arg-type]

    def on_CaseConfirmed(self, event: CaseConfirmed) -> None:
        self.status = "confirmed"
        self.building = event.building

    def on_TransferScheduled(self, event: TransferScheduled) -> None:
        self.status = "transfer-scheduled"
        self.scheduled_at = event.scheduled_at

    def on_CaseTransferred(self, event: CaseTransferred) -> None:
        self.status = "transferred"
        self.transferred_at = event.transferred_at

    def on_CaseClosed(self, _event: CaseClosed) -> None:
        self.status = "closed"


def photo_type(data: bytes) -> str | None:
    """The photo's content type from its first bytes (JPEG, PNG or WebP), never from what the sender says."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class Disinfection(Aggregate):
    """Common areas of a building disinfected after a case: time, areas, photos."""

    stream_prefix = "disinfection"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.building: str | None = None

    def record_done(
        self,
        building: str,
        done_at: datetime,
        areas: Sequence[str],
        photos: Sequence[StoredPhoto],
        *,
        now: datetime,
        case: str | None = None,
    ) -> None:
        if self.exists:
            raise Conflict(f"disinfection {self.id} is already recorded", code="disinfection-exists")
        clean = list(dict.fromkeys(a.strip() for a in areas if a.strip()))
        if not clean:
            raise Invalid("say which common areas were disinfected", code="areas-required")
        if not photos:
            raise Invalid("a disinfection record needs at least one photo", code="photos-required")
        if len(photos) > MAX_PHOTOS:
            raise Invalid(f"at most {MAX_PHOTOS} photos per record", code="too-many-photos")
        if done_at.tzinfo is None:
            raise Invalid("the time needs a time zone", code="invalid-time")
        if done_at > now + CLOCK_SLACK:
            raise Invalid("a disinfection cannot be recorded before it is done", code="time-in-future")
        self.record(
            DisinfectionRecorded(
                disinfection=self.id, building=building, done_at=done_at, areas=clean, photos=list(photos), case=case
            )
        )

    def on_DisinfectionRecorded(self, event: DisinfectionRecorded) -> None:
        self.building = event.building


__all__ = [
    "BuildingLayout",
    "CallPlan",
    "CallQueue",
    "CallRules",
    "Case",
    "Confirmation",
    "Disinfection",
    "Occupant",
    "PointAssignment",
    "PointCapacity",
    "Round",
    "SamplingPoint",
    "SelfReports",
    "Timetable",
    "Tube",
    "Unit",
    "natural_key",
    "photo_type",
    "plan_round",
    "propose_assignment",
    "sample_kind",
    "status_after",
    "timetable",
    "units_of",
]
