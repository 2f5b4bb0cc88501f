"""Deliveries: the tasks of a building floor by floor, confirmations and failures, the follow-up list."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from contracts import roles as r
from juwei.auth import CompoundId, LocalId
from juwei.callers import Caller
from juwei.problems import Problem
from juwei.store import ConcurrencyError
from services.supplies.api.common import (
    Command,
    LocalIdText,
    Logistics,
    building_known,
    global_id,
    local_id,
    logistics_group,
    runtime_of,
    visible_buildings,
)
from services.supplies.domain import BuildingDelivery, delivery_id
from services.supplies.views import batches, shares, shift_calls

router = APIRouter(tags=["deliveries"])
# Two volunteers of one building confirming different floors at once: retry the loser on the fresh stream.
ATTEMPTS = 3


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    household: LocalIdText
    outcome: Literal["delivered", "no_one_home", "refused", "wrong_items"]


class OutcomesIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "volunteer": "v-1201",
                    "outcomes": [
                        {"household": "12-0301", "outcome": "delivered"},
                        {"household": "12-0302", "outcome": "no_one_home"},
                    ],
                }
            ]
        },
    )
    volunteer: LocalIdText | None = Field(None, description="who delivered; required of a logistics volunteer's key")
    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=500)


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"resolution": "collected"}]})
    resolution: Literal["collected", "exchanged", "returned_to_stock"]
    volunteer: LocalIdText | None = None


def _volunteer(caller: Caller, compound: str, volunteer: str | None) -> str | None:
    """The volunteer who did it; a logistics volunteer's key must say who (the key names no person)."""
    if volunteer is None and caller.role == r.LOGISTICS_VOLUNTEER:
        raise Problem(422, "body.volunteer: a logistics volunteer says who delivered", "validation")
    return global_id(compound, volunteer) if volunteer else None


def _progress(delivery: BuildingDelivery) -> dict[str, Any]:
    statuses = [t["status"] for t in delivery.tasks.values()]
    return {
        "households": len(statuses),
        "delivered": sum(1 for s in statuses if s in ("delivered", "collected", "exchanged")),
        "follow_ups": statuses.count("failed"),
        "complete": delivery.complete,
    }


@router.post(
    "/compounds/{compound}/batches/{batch}/buildings/{building}/outcomes",
    summary="Record deliveries of a floor: delivered, or why not (no one home, refused, wrong items)",
)
def record_outcomes(
    compound: CompoundId, batch: LocalId, building: LocalId, body: OutcomesIn, request: Request, caller: Logistics
) -> dict[str, Any]:
    caller.require_scope(compound, building)
    by = _volunteer(caller, compound, body.volunteer)
    seen = [o.household for o in body.outcomes]
    if len(set(seen)) != len(seen):
        raise Problem(422, "each household appears once in one report", "household-twice")
    for attempt in range(1, ATTEMPTS + 1):
        command = Command(request, caller, compound)
        try:
            with command.unit():
                building_id = building_known(command.session, compound, building)
                delivery = command.load(BuildingDelivery, delivery_id(global_id(compound, batch), building_id))
                group = logistics_group(command.session, building_id)
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


@router.post(
    "/compounds/{compound}/batches/{batch}/buildings/{building}/follow-ups/{household}/resolution",
    summary="Take a household off the follow-up list",
)
def resolve_follow_up(
    compound: CompoundId,
    batch: LocalId,
    building: LocalId,
    household: LocalId,
    body: ResolutionIn,
    request: Request,
    caller: Logistics,
) -> dict[str, Any]:
    caller.require_scope(compound, building)
    by = _volunteer(caller, compound, body.volunteer)
    command = Command(request, caller, compound)
    with command.unit():
        building_id = building_known(command.session, compound, building)
        delivery = command.load(BuildingDelivery, delivery_id(global_id(compound, batch), building_id))
        delivery.resolve(
            global_id(compound, household), body.resolution, by, logistics_group(command.session, building_id)
        )
    return {"batch": batch, "building": building, "household": household, **_progress(delivery)}


@router.get("/compounds/{compound}/buildings/{building}/deliveries", summary="Open delivery tasks, floor by floor")
def building_tasks(compound: CompoundId, building: LocalId, request: Request, caller: Logistics) -> dict[str, Any]:
    caller.require_scope(compound, building)
    with runtime_of(request).database.reading() as session:
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


@router.get("/compounds/{compound}/follow-ups", summary="Households not yet delivered, until resolved")
def follow_ups(
    compound: CompoundId,
    request: Request,
    caller: Logistics,
    building: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
    batch: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
) -> dict[str, Any]:
    caller.require_scope(compound)
    shown = visible_buildings(caller, building)
    query = select(shares).where(shares.c.compound == compound, shares.c.status == "failed")
    if shown is not None:
        query = query.where(shares.c.building.in_([global_id(compound, b) for b in shown]))
    if batch is not None:
        query = query.where(shares.c.batch == global_id(compound, batch))
    with runtime_of(request).database.reading() as session:
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
