"""Rounds, their call plans per point, the calls made and the door-to-door lists."""

from __future__ import annotations

import json

from sqlalchemy import (
    delete,
    update,
)

from contracts import testing as ev
from juwei.events import Envelope
from juwei.projection import Projection, upsert
from juwei.session import Session
from services.testing.views.schema import calls, door_to_door, own_event, plans, rounds, utc


class Rounds(Projection):
    """Rounds, each point's timetable and how far its calls have got, door-to-door lists."""

    name = "rounds"
    tables = (rounds, plans, calls, door_to_door)
    reads = (ev.RoundScheduled, ev.CallPlanMade, ev.UnitCalled, ev.DoorToDoorSamplingAssigned)

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = ev.registry.decode(envelope.type, own_event(envelope))
        compound = envelope.compound
        if isinstance(event, ev.RoundScheduled):
            rules = event.model_dump(
                mode="json",
                include={
                    "mode",
                    "floors_per_call",
                    "floor_order",
                    "slot_minutes",
                    "window_minutes",
                    "lift_trip_minutes",
                    "walk_floors",
                },
            )
            upsert(
                session,
                rounds,
                {"round": event.round},
                {
                    "compound": compound,
                    "kind": event.kind,
                    "on": event.on,
                    "starts_at": utc(event.starts_at),
                    "points": json.dumps(event.points),
                    "rules": json.dumps(rules),
                    "pool_size": event.pool_size,
                    "auto_advance": event.auto_advance,
                },
            )
        elif isinstance(event, ev.CallPlanMade):
            session.execute(delete(calls).where(calls.c["round"] == event.round, calls.c.point == event.point))
            if event.calls:
                session.execute(
                    calls.insert(),
                    [
                        {
                            "round": event.round,
                            "point": event.point,
                            "call": call.call,
                            "compound": compound,
                            "building": call.building,
                            "lowest_floor": call.lowest_floor,
                            "highest_floor": call.highest_floor,
                            "people": call.people,
                            "lift_riders": call.lift_riders,
                            "rooms": json.dumps(call.rooms),
                            "starts_at": utc(call.starts_at),
                            "ends_at": utc(call.ends_at),
                            "called_at": None,
                            "called_by": None,
                        }
                        for call in event.calls
                    ],
                )
            upsert(
                session,
                plans,
                {"round": event.round, "point": event.point},
                {
                    "compound": compound,
                    "mode": event.mode,
                    "queue_limit": event.queue_limit,
                    "peak_queue": event.peak_queue,
                    "calls": len(event.calls),
                    "called": 0,
                },
            )
        elif isinstance(event, ev.UnitCalled):
            session.execute(
                update(calls)
                .where(calls.c["round"] == event.round, calls.c.point == event.point, calls.c.call == event.call)
                .values(called_at=utc(event.called_at), called_by=event.called_by)
            )
            session.execute(
                update(plans)
                .where(plans.c["round"] == event.round, plans.c.point == event.point)
                .values(called=event.call)
            )
        elif isinstance(event, ev.DoorToDoorSamplingAssigned):
            session.execute(
                delete(door_to_door).where(
                    door_to_door.c["round"] == event.round, door_to_door.c.building == event.building
                )
            )
            for visit in event.visits or ():
                session.execute(
                    door_to_door.insert().values(
                        round=event.round,
                        resident=visit.resident,
                        compound=compound,
                        household=visit.household,
                        building=event.building,
                        floor=visit.floor,
                    )
                )
