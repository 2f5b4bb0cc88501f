"""Rounds (a PCR round or an antigen day) and each point's call queue in a round: the plan, then "call next".
Plain Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime

from contracts.testing import (
    CallPlanMade,
    DoorToDoorSamplingAssigned,
    HomeVisit,
    PlannedCall,
    RoundScheduled,
    UnitCalled,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound
from services.testing.domain.planner import CallRules, Occupant, Timetable

ROUND_KINDS = ("pcr", "antigen")


POOL_SIZE = 10  # 10-in-1 pooling, as Shanghai ran it in April 2022
MAX_POOL_SIZE = 20


class Round(Aggregate):
    """A mass PCR round or an antigen self-test day."""

    stream_prefix = "round"

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        return NotFound(f"round {id} is not scheduled", code="round-unknown")

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
            raise self.unknown(self.id)

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
