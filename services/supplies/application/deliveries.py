"""Deliveries: the tasks of a building floor by floor, confirmations and failures, the follow-up list."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from contracts import roles as r
from contracts.ids import global_id, local_id
from juwei.aggregate import Invalid
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.store import ConcurrencyError
from juwei.unit_of_work import UnitOfWork
from services.supplies.application.register import building_known, logistics_group, visible_buildings
from services.supplies.domain import BuildingDelivery, delivery_id
from services.supplies.models import OutcomesIn, ResolutionIn
from services.supplies.views import batches, shares, shift_calls

# Two volunteers of one building confirming different floors at once: retry the loser on the fresh stream.
ATTEMPTS = 3


def _volunteer(caller: Caller, compound: str, volunteer: str | None) -> str | None:
    """The volunteer who did it; a logistics volunteer's key must say who (the key names no person)."""
    if volunteer is None and caller.role == r.LOGISTICS_VOLUNTEER:
        raise Invalid("body.volunteer: a logistics volunteer says who delivered", code="validation")
    return global_id(compound, volunteer) if volunteer else None


def _progress(delivery: BuildingDelivery) -> dict[str, Any]:
    statuses = [t["status"] for t in delivery.tasks.values()]
    return {
        "households": len(statuses),
        "delivered": sum(1 for s in statuses if s in ("delivered", "collected", "exchanged")),
        "follow_ups": statuses.count("failed"),
        "complete": delivery.complete,
    }


def record_outcomes(unit: UnitOfWork, caller: Caller, batch: str, building: str, body: OutcomesIn) -> dict[str, Any]:
    """Deliveries of a floor: delivered, or why not (no one home, refused, wrong items)."""
    compound = unit.compound
    caller.require_scope(compound, building)
    by = _volunteer(caller, compound, body.volunteer)
    seen = [o.household for o in body.outcomes]
    if len(set(seen)) != len(seen):
        raise Invalid("each household appears once in one report", code="household-twice")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with unit:
                building_id = building_known(unit.session, compound, building)
                # Not ``load``: the delivery refuses who may not report first, then a batch not sent here.
                delivery = unit.load_or_new(BuildingDelivery, delivery_id(global_id(compound, batch), building_id))
                group = logistics_group(unit.session, building_id)
                for outcome in body.outcomes:
                    household = global_id(compound, outcome.household)
                    if outcome.outcome == "delivered":
                        delivery.confirm(household, by, group)
                    else:
                        delivery.fail(household, outcome.outcome, by, group)
            break
        except ConcurrencyError:
            if attempt == ATTEMPTS:
                raise
    return {"batch": batch, "building": building, **_progress(delivery)}


def resolve_follow_up(
    unit: UnitOfWork, caller: Caller, batch: str, building: str, household: str, body: ResolutionIn
) -> dict[str, Any]:
    """Take a household off the follow-up list."""
    compound = unit.compound
    caller.require_scope(compound, building)
    by = _volunteer(caller, compound, body.volunteer)
    with unit:
        building_id = building_known(unit.session, compound, building)
        # Not ``load``: the delivery refuses who may not report first, then a batch not sent here.
        delivery = unit.load_or_new(BuildingDelivery, delivery_id(global_id(compound, batch), building_id))
        delivery.resolve(
            global_id(compound, household), body.resolution, by, logistics_group(unit.session, building_id)
        )
    return {"batch": batch, "building": building, "household": household, **_progress(delivery)}


def building_tasks(runtime: Runtime, caller: Caller, compound: str, building: str) -> dict[str, Any]:
    """Open delivery tasks of a building, floor by floor."""
    caller.require_scope(compound, building)
    with runtime.database.reading() as session:
        building_id = building_known(session, compound, building)
        calls = (
            session.execute(
                select(shift_calls, batches.c.label, batches.c.source)
                .join(batches, batches.c.batch == shift_calls.c.batch)
                .where(shift_calls.c.building == building_id, shift_calls.c.complete.is_(False))
                .order_by(shift_calls.c.called_on, shift_calls.c.batch)
            )
            .mappings()
            .all()
        )
        tasks = []
        for call in calls:
            rows = session.execute(
                select(shares)
                .where(shares.c.batch == call["batch"], shares.c.building == building_id)
                .order_by(shares.c.floor, shares.c.room)
            ).mappings()
            floors: dict[int, list[dict[str, Any]]] = {}
            for row in rows:
                floors.setdefault(row["floor"], []).append(
                    {
                        "household": local_id(row["household"]),
                        "room": row["room"],
                        "items": json.loads(row["items"]),
                        "status": row["status"],
                        "reason": row["reason"],
                    }
                )
            tasks.append(
                {
                    "batch": local_id(call["batch"]),
                    "label": call["label"],
                    "source": call["source"],
                    "on": call["called_on"].isoformat(),
                    "shifts": list(call["shifts"]),
                    "both": call["both"],
                    "volunteers": [local_id(v) for v in json.loads(call["volunteers"])],
                    "progress": f"{call['delivered']}/{call['households']} delivered",
                    "floors": [{"floor": f, "households": hs} for f, hs in sorted(floors.items())],
                }
            )
    return {"building": building, "deliveries": tasks}


def follow_ups(
    runtime: Runtime, caller: Caller, compound: str, building: str | None, batch: str | None
) -> dict[str, Any]:
    """Households not yet delivered, until resolved."""
    shown = visible_buildings(caller, building)
    query = select(shares).where(shares.c.compound == compound, shares.c.status == "failed")
    if shown is not None:
        query = query.where(shares.c.building.in_([global_id(compound, b) for b in shown]))
    if batch is not None:
        query = query.where(shares.c.batch == global_id(compound, batch))
    with runtime.database.reading() as session:
        rows = session.execute(
            query.order_by(shares.c.batch, shares.c.building, shares.c.floor, shares.c.room)
        ).mappings()
        found = [
            {
                "batch": local_id(row["batch"]),
                "building": local_id(row["building"]),
                "household": local_id(row["household"]),
                "floor": row["floor"],
                "room": row["room"],
                "reason": row["reason"],
                "attempts": row["attempts"],
                "items": json.loads(row["items"]),
            }
            for row in rows
        ]
    return {"follow_ups": found, "count": len(found)}
