"""One building's part of a batch: the shifts called, the tasks floor by floor, confirmations, failures and
the follow-up list until every household has its share. Plain Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from contracts.supplies import (
    BuildingDelivered,
    DeliveryConfirmed,
    DeliveryFailed,
    DeliveryTasksIssued,
    FloorTask,
    FollowUpResolved,
    ShiftCalled,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound, NotPermitted
from services.supplies.domain.policy import ShiftCall

FAILURE_REASONS = ("no_one_home", "refused", "wrong_items")
# "redelivered" is not chosen: it is what a confirmation after a failure records.
RESOLUTIONS = ("collected", "exchanged", "returned_to_stock")
# Statuses of a household in a delivery that mean it has its share.
RECEIVED = frozenset({"delivered", "collected", "exchanged"})


# --- deliveries -----------------------------------------------------------------------------------------


def delivery_id(batch: str, building: str) -> str:
    """One building's part of one batch: ``<batch>@<building>`` (both district-wide ids)."""
    return f"{batch}@{building}"


class BuildingDelivery(Aggregate):
    """One building's part of a batch: the shift call, the tasks by floor and what became of each household."""

    stream_prefix = "delivery"
    snapshot_every = 100

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.batch: str | None = None
        self.building: str | None = None
        self.shifts: list[str] = []
        # household -> {"floor", "status", "attempts"}
        self.tasks: dict[str, dict] = {}
        self.complete = False

    def call(
        self,
        batch: str,
        building: str,
        on: date,
        decision: ShiftCall,
        *,
        volunteers: Sequence[str],
        tasks: Sequence[tuple[str, int, int]],
        items: int,
    ) -> None:
        """Call the shift(s) and issue the tasks floor by floor (``tasks``: household, floor, room)."""
        if self.exists:
            raise Conflict(
                f"the shifts of building {building} were already called for batch {batch}", code="already-called"
            )
        if not tasks:
            raise Invalid(f"batch {batch} has nothing for building {building}", code="nothing-to-deliver")
        floors: dict[int, list[str]] = {}
        for household, floor, _room in sorted(tasks, key=lambda t: (t[1], t[2], t[0])):
            floors.setdefault(floor, []).append(household)
        self.record(
            ShiftCalled(
                batch=batch,
                building=building,
                on=on,
                shift_on_duty=decision.shift_on_duty,  # type: ignore[arg-type]
                shifts=list(decision.shifts),  # type: ignore[arg-type]
                both=decision.both,
                reason=decision.reason,
                volunteers=sorted(volunteers),
                households=len(tasks),
                items=items,
            )
        )
        self.record(
            DeliveryTasksIssued(
                batch=batch,
                building=building,
                shifts=list(decision.shifts),  # type: ignore[arg-type]
                floors=[FloorTask(floor=f, households=hs) for f, hs in sorted(floors.items())],
            )
        )

    def _task(self, household: str) -> dict:
        if self.batch is None:
            raise NotFound(
                f"no delivery {self.id}: the batch was not dispatched to this building", code="not-dispatched"
            )
        task = self.tasks.get(household)
        if task is None:
            raise NotFound(f"household {household} has no share in this delivery", code="not-in-task")
        return task

    def check_deliverer(self, by: str | None, group: Mapping[str, str | None]) -> None:
        """``by`` (None: staff recording it) must be in the building's logistics group, on a called shift."""
        if by is None:
            return
        if by not in group:
            raise NotPermitted(
                f"volunteer {by} is not in the logistics group of building {self.building}", code="not-in-group"
            )
        if group[by] not in self.shifts:
            raise NotPermitted(
                f"volunteer {by} works shift {group[by]}; this delivery calls shift {' and '.join(self.shifts)}",
                code="not-on-shift",
            )

    def _progress(self, household: str, status: str) -> dict[str, int]:
        statuses = [status if h == household else t["status"] for h, t in self.tasks.items()]
        return {
            "delivered": sum(1 for s in statuses if s in RECEIVED),
            "households": len(statuses),
            "follow_ups": statuses.count("failed"),
        }

    def _finished(self, household: str) -> str:
        task = self._task(household)
        if task["status"] in RECEIVED or task["status"] == "returned_to_stock":
            raise Conflict(f"household {household} is done with: {task['status']}", code="already-done")
        return task["status"]

    def confirm(self, household: str, by: str | None, group: Mapping[str, str | None]) -> None:
        """The household has its share; a household on the follow-up list comes off it."""
        self.check_deliverer(by, group)
        before = self._finished(household)
        progress = self._progress(household, "delivered")
        floor = self.tasks[household]["floor"]
        assert self.batch is not None and self.building is not None
        self.record(
            DeliveryConfirmed(
                batch=self.batch, building=self.building, household=household, floor=floor, by=by, **progress
            )
        )
        if before == "failed":
            self.record(
                FollowUpResolved(
                    batch=self.batch,
                    building=self.building,
                    household=household,
                    resolution="redelivered",
                    by=by,
                    **progress,
                )
            )
        self._maybe_complete()

    def fail(self, household: str, reason: str, by: str | None, group: Mapping[str, str | None]) -> None:
        """Not delivered, and why: the household goes on (or stays on) the follow-up list."""
        self.check_deliverer(by, group)
        if reason not in FAILURE_REASONS:
            raise Invalid(f"reason is one of {', '.join(FAILURE_REASONS)}, not {reason!r}", code="invalid-reason")
        self._finished(household)
        task = self.tasks[household]
        assert self.batch is not None and self.building is not None
        self.record(
            DeliveryFailed(
                batch=self.batch,
                building=self.building,
                household=household,
                floor=task["floor"],
                reason=reason,  # type: ignore[arg-type]
                attempt=task["attempts"] + 1,
                by=by,
                **self._progress(household, "failed"),
            )
        )

    def resolve(self, household: str, resolution: str, by: str | None, group: Mapping[str, str | None]) -> None:
        """Take a household off the follow-up list: it collected its share, got it exchanged, or it went back."""
        self.check_deliverer(by, group)
        if resolution not in RESOLUTIONS:
            raise Invalid(
                f"resolution is one of {', '.join(RESOLUTIONS)}, not {resolution!r}", code="invalid-resolution"
            )
        task = self._task(household)
        if task["status"] != "failed":
            raise Conflict(
                f"household {household} is not on the follow-up list ({task['status']})", code="no-follow-up"
            )
        assert self.batch is not None and self.building is not None
        self.record(
            FollowUpResolved(
                batch=self.batch,
                building=self.building,
                household=household,
                resolution=resolution,  # type: ignore[arg-type]
                by=by,
                **self._progress(household, resolution),
            )
        )
        self._maybe_complete()

    def _maybe_complete(self) -> None:
        statuses = [t["status"] for t in self.tasks.values()]
        if self.complete or any(s in ("pending", "failed") for s in statuses):
            return
        assert self.batch is not None and self.building is not None
        self.record(
            BuildingDelivered(
                batch=self.batch,
                building=self.building,
                delivered=sum(1 for s in statuses if s in RECEIVED),
                households=len(statuses),
                follow_ups=0,
                resolved_otherwise=statuses.count("returned_to_stock"),
            )
        )

    @property
    def follow_ups(self) -> list[str]:
        return [h for h, t in self.tasks.items() if t["status"] == "failed"]

    def on_ShiftCalled(self, event: ShiftCalled) -> None:
        self.batch = event.batch
        self.building = event.building
        self.shifts = list(event.shifts)

    def on_DeliveryTasksIssued(self, event: DeliveryTasksIssued) -> None:
        for task in event.floors:
            for household in task.households:
                self.tasks[household] = {"floor": task.floor, "status": "pending", "attempts": 0}

    def on_DeliveryConfirmed(self, event: DeliveryConfirmed) -> None:
        self.tasks[event.household]["status"] = "delivered"

    def on_DeliveryFailed(self, event: DeliveryFailed) -> None:
        task = self.tasks[event.household]
        task["status"] = "failed"
        task["attempts"] = event.attempt

    def on_FollowUpResolved(self, event: FollowUpResolved) -> None:
        if event.resolution != "redelivered":
            self.tasks[event.household]["status"] = event.resolution

    def on_BuildingDelivered(self, event: BuildingDelivered) -> None:
        self.complete = True
