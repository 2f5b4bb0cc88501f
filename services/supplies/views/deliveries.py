"""Batches, their allocation plans, the shifts called and what became of each household's share."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    update,
)

from contracts import supplies as ev
from juwei.events import Envelope
from juwei.projection import Projection
from juwei.session import Session
from services.supplies.views.schema import batches, own_event, shares, shift_calls


class Deliveries(Projection):
    """Batches, their plans, shift calls and what became of each household's share."""

    name = "deliveries"
    tables = (batches, shares, shift_calls)
    reads = (
        ev.BatchArrived,
        ev.AllocationPlanned,
        ev.BatchDispatched,
        ev.ShiftCalled,
        ev.DeliveryTasksIssued,
        ev.DeliveryConfirmed,
        ev.DeliveryFailed,
        ev.FollowUpResolved,
        ev.BuildingDelivered,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = own_event(envelope)
        compound = envelope.compound
        if isinstance(event, ev.BatchArrived):
            session.execute(
                batches.insert().values(
                    batch=event.batch,
                    compound=compound,
                    source=event.source,
                    label=event.label,
                    arrived_on=event.arrived_on,
                    items=json.dumps([i.model_dump() for i in event.items]),
                    buildings=json.dumps(event.buildings),
                    households=json.dumps(event.households or [o.household for o in event.orders]),
                    donations=json.dumps([d.model_dump() for d in event.donations]),
                    method=None,
                    planned_households=0,
                    dispatched_on=None,
                )
            )
        elif isinstance(event, ev.AllocationPlanned):
            session.execute(
                update(batches)
                .where(batches.c.batch == event.batch)
                .values(method=event.method, planned_households=batches.c.planned_households + event.households)
            )
            session.execute(
                shares.insert(),
                [
                    {
                        "batch": event.batch,
                        "household": share.household,
                        "compound": compound,
                        "building": event.building,
                        "floor": share.floor,
                        "room": share.room,
                        "items": json.dumps(share.items),
                        "status": "planned",
                        "reason": None,
                        "attempts": 0,
                        "recorded_by": None,
                        "updated_at": envelope.time,
                    }
                    for share in event.shares
                ],
            )
        elif isinstance(event, ev.BatchDispatched):
            session.execute(update(batches).where(batches.c.batch == event.batch).values(dispatched_on=event.on))
        elif isinstance(event, ev.ShiftCalled):
            session.execute(
                shift_calls.insert().values(
                    batch=event.batch,
                    building=event.building,
                    compound=compound,
                    called_on=event.on,
                    shift_on_duty=event.shift_on_duty,
                    shifts="".join(event.shifts),
                    both=event.both,
                    reason=event.reason,
                    volunteers=json.dumps(event.volunteers),
                    households=event.households,
                    items=event.items,
                    delivered=0,
                    follow_ups=0,
                    complete=False,
                )
            )
        elif isinstance(event, ev.DeliveryTasksIssued):
            session.execute(
                update(shares)
                .where(shares.c.batch == event.batch, shares.c.building == event.building)
                .values(status="pending", updated_at=envelope.time)
            )
        elif isinstance(event, ev.DeliveryConfirmed | ev.DeliveryFailed | ev.FollowUpResolved):
            values: dict[str, Any] = {"recorded_by": event.by, "updated_at": envelope.time}
            if isinstance(event, ev.DeliveryConfirmed):
                values.update(status="delivered")
            elif isinstance(event, ev.DeliveryFailed):
                values.update(status="failed", reason=event.reason, attempts=event.attempt)
            elif event.resolution != "redelivered":
                values.update(status=event.resolution)
            session.execute(
                update(shares)
                .where(shares.c.batch == event.batch, shares.c.household == event.household)
                .values(**values)
            )
            self._progress(session, event)
        elif isinstance(event, ev.BuildingDelivered):
            self._progress(session, event, complete=True)

    @staticmethod
    def _progress(session: Session, event: Any, complete: bool = False) -> None:
        values: dict[str, Any] = {"delivered": event.delivered, "follow_ups": event.follow_ups}
        if complete:
            values["complete"] = True
        session.execute(
            update(shift_calls)
            .where(shift_calls.c.batch == event.batch, shift_calls.c.building == event.building)
            .values(**values)
        )
