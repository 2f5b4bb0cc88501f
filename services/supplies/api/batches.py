"""Supply batches: arrival, the allocation plan per household, dispatch with the shift call, progress."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.supplies import DonationUse, GroupOrder, Need, SupplyItem
from juwei.auth import CompoundId, LocalId
from juwei.problems import Problem
from services.supplies.api.common import (
    Command,
    ItemName,
    LocalIdText,
    StaffOnly,
    Volunteers,
    global_id,
    local_id,
    logistics_group,
    runtime_of,
    visible_buildings,
)
from services.supplies.domain import (
    Batch,
    BuildingDelivery,
    Donation,
    HouseholdFacts,
    call_shifts,
    delivery_id,
)
from services.supplies.views import FLAGS, batches, buildings, households, residents, shares, shift_calls

router = APIRouter(tags=["batches"])
Quantity = Annotated[int, Field(ge=1, le=1_000_000)]
Unit = Annotated[str, Field(min_length=1, max_length=20)]


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: ItemName
    quantity: Quantity
    unit: Unit = "box"


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order: LocalIdText
    household: LocalIdText = Field(description="the household the order is for, whoever placed it")
    items: dict[ItemName, Quantity] = Field(min_length=1, max_length=50)
    placed_from_outside: bool = False


class DonationUseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    donation: LocalIdText
    item: ItemName
    quantity: Quantity


class BatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "batch": "gov-0412",
                    "source": "government",
                    "label": "保供 vegetables and rice",
                    "items": [{"item": "vegetables", "quantity": 1800, "unit": "box"}],
                    "whole_compound": True,
                }
            ]
        },
    )
    batch: LocalIdText
    source: Literal["government", "group_purchase", "donation"]
    label: str = Field("", max_length=200, description="published with the batch: what it is, never who")
    arrived_on: date | None = None
    items: list[ItemIn] = Field(default_factory=list, max_length=200)
    whole_compound: bool = Field(False, description="for every building of the compound")
    buildings: list[LocalIdText] = Field(default_factory=list, max_length=500)
    households: list[LocalIdText] = Field(default_factory=list, max_length=20_000)
    orders: list[OrderIn] = Field(default_factory=list, max_length=20_000)
    donations: list[DonationUseIn] = Field(default_factory=list, max_length=500)


class AllocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"method": "household_size"}]})
    method: Literal["equal", "household_size", "needs", "orders"] | None = Field(
        None, description="default: orders for a group purchase, equal otherwise"
    )
    needs: list[Need] = Field(default_factory=list, description="for method 'needs'; default elderly, infant")


class DispatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on: date | None = Field(None, description="the day the shifts go out; default today")


def _known(session: Session, compound: str, table: Any, column: str, wanted: Sequence[str], what: str) -> None:
    if not wanted:
        return
    ids = {global_id(compound, w) for w in wanted}
    found = set(session.execute(select(table.c[column]).where(table.c.compound == compound)).scalars())
    missing = sorted(ids - found)
    if missing:
        raise Problem(404, f"{what} {local_id(missing[0])} is not registered", f"{what}-unknown")


@router.post("/compounds/{compound}/batches", status_code=201, summary="A batch of supplies has arrived")
def batch_arrived(compound: CompoundId, body: BatchIn, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        session = command.session
        if body.whole_compound:
            targets = [
                local_id(b)
                for b in session.execute(select(buildings.c.building).where(buildings.c.compound == compound)).scalars()
            ]
        else:
            targets = list(body.buildings)
        _known(session, compound, buildings, "building", targets, "building")
        _known(session, compound, households, "household", body.households, "household")
        _known(session, compound, households, "household", [o.household for o in body.orders], "household")
        batch_id = global_id(compound, body.batch)
        uses: list[tuple[DonationUse, str]] = []
        by_donation: dict[str, dict[str, int]] = {}
        for use in body.donations:
            by_donation.setdefault(use.donation, {})
            if use.item in by_donation[use.donation]:
                raise Problem(422, f"item {use.item} of donation {use.donation} is listed twice", "item-twice")
            by_donation[use.donation][use.item] = use.quantity
        for donation_local, items in by_donation.items():
            donation = command.load(Donation, global_id(compound, donation_local))
            donation.allocate(batch_id, items)
            uses.extend(
                (DonationUse(donation=donation.id, item=item, quantity=q), donation.unit_of(item))
                for item, q in items.items()
            )
        batch = command.load(Batch, batch_id)
        batch.arrive(
            body.source,
            [SupplyItem(item=i.item, quantity=i.quantity, unit=i.unit) for i in body.items],
            arrived_on=body.arrived_on or command.today,
            label=body.label,
            buildings=[global_id(compound, b) for b in targets],
            households=[global_id(compound, h) for h in body.households],
            orders=[
                GroupOrder(
                    order=global_id(compound, o.order),
                    household=global_id(compound, o.household),
                    items=o.items,
                    placed_from_outside=o.placed_from_outside,
                )
                for o in body.orders
            ],
            donations=uses,
        )
    return {"batch": body.batch, "source": body.source, "items": batch.items, "buildings": len(targets)}


def household_facts(session: Session, compound: str, batch: Batch) -> list[HouseholdFacts]:
    """The targets' households with each living member's needs flags (erased residents do not count)."""
    target_buildings, listed = batch.targets()
    wanted_buildings, wanted = set(target_buildings), set(listed)
    members: dict[str, list[frozenset[str]]] = {}
    for row in session.execute(
        select(residents).where(residents.c.compound == compound, residents.c.erased.is_(False))
    ).mappings():
        members.setdefault(row["household"], []).append(frozenset(flag for flag in FLAGS if row[flag]))
    return [
        HouseholdFacts(row.household, row.building, row.floor, row.room, tuple(members.get(row.household, ())))
        for row in session.execute(select(households).where(households.c.compound == compound))
        if row.building in wanted_buildings or row.household in wanted
    ]


@router.post("/compounds/{compound}/batches/{batch}/allocation", status_code=201, summary="Plan who gets what")
def plan_allocation(
    compound: CompoundId, batch: LocalId, body: AllocationIn, request: Request, caller: StaffOnly
) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        found = command.load(Batch, global_id(compound, batch))
        if not found.exists:
            raise Problem(404, f"batch {batch} has not arrived", "batch-unknown")
        found.plan(household_facts(command.session, compound, found), body.method, body.needs)
        planned = found.pending()
    return {
        "batch": batch,
        "method": found.method,
        "households": len(found.shares),
        "buildings": [
            {"building": local_id(e.building), "households": e.households, "items": e.items}  # type: ignore[attr-defined]
            for e in planned
        ],
    }


@router.post("/compounds/{compound}/batches/{batch}/dispatch", summary="Send the batch out: call the shifts")
def dispatch(
    compound: CompoundId, batch: LocalId, request: Request, caller: StaffOnly, body: DispatchIn | None = None
) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    calls = []
    with command.unit():
        found = command.load(Batch, global_id(compound, batch))
        if not found.exists:
            raise Problem(404, f"batch {batch} has not arrived", "batch-unknown")
        on = (body.on if body else None) or command.today
        policy = command.policy()
        for building in found.dispatch(on):
            tasks, items = found.load_of(building)
            decision = call_shifts(len(tasks), items, on, policy)
            group = logistics_group(command.session, building)
            called = [v for v, shift in group.items() if shift in decision.shifts]
            delivery = command.load(BuildingDelivery, delivery_id(found.id, building))
            delivery.call(found.id, building, on, decision, volunteers=called, tasks=tasks, items=items)
            calls.append(
                {
                    "building": local_id(building),
                    "shifts": list(decision.shifts),
                    "both": decision.both,
                    "reason": decision.reason,
                    "volunteers": sorted(local_id(v) for v in called),
                    "households": len(tasks),
                    "items": items,
                }
            )
    return {"batch": batch, "on": on.isoformat(), "calls": calls}


def _batch_row(session: Session, compound: str, batch: str) -> dict[str, Any]:
    row = session.execute(select(batches).where(batches.c.batch == global_id(compound, batch))).mappings().first()
    if row is None:
        raise Problem(404, f"batch {batch} has not arrived", "batch-unknown")
    return dict(row)


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch": local_id(row["batch"]),
        "source": row["source"],
        "label": row["label"],
        "arrived_on": row["arrived_on"].isoformat(),
        "items": json.loads(row["items"]),
        "method": row["method"],
        "households": row["planned_households"],
        "dispatched_on": row["dispatched_on"].isoformat() if row["dispatched_on"] else None,
    }


@router.get("/compounds/{compound}/batches", summary="Batches, newest first")
def list_batches(compound: CompoundId, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        rows = session.execute(
            select(batches).where(batches.c.compound == compound).order_by(batches.c.arrived_on.desc(), batches.c.batch)
        ).mappings()
        return {"batches": [_summary(dict(row)) for row in rows]}


@router.get("/compounds/{compound}/batches/{batch}", summary="One batch: items, targets, plan, dispatch")
def show_batch(compound: CompoundId, batch: LocalId, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        row = _batch_row(session, compound, batch)
    return {
        **_summary(row),
        "buildings": [local_id(b) for b in json.loads(row["buildings"])],
        "for_households": [local_id(h) for h in json.loads(row["households"])],
        "donations": [{**d, "donation": local_id(d["donation"])} for d in json.loads(row["donations"])],
    }


@router.get("/compounds/{compound}/batches/{batch}/allocation", summary="The plan: each household's share")
def show_allocation(
    compound: CompoundId,
    batch: LocalId,
    request: Request,
    caller: StaffOnly,
    building: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        row = _batch_row(session, compound, batch)
        query = select(shares).where(shares.c.batch == row["batch"])
        if building is not None:
            query = query.where(shares.c.building == global_id(compound, building))
        found = session.execute(query.order_by(shares.c.building, shares.c.floor, shares.c.room)).mappings().all()
    return {
        "batch": batch,
        "method": row["method"],
        "shares": [
            {
                "household": local_id(s["household"]),
                "building": local_id(s["building"]),
                "floor": s["floor"],
                "room": s["room"],
                "items": json.loads(s["items"]),
                "status": s["status"],
            }
            for s in found
        ],
    }


@router.get("/compounds/{compound}/batches/{batch}/progress", summary="Per building: 180/200 delivered")
def progress(
    compound: CompoundId,
    batch: LocalId,
    request: Request,
    caller: Volunteers,
    building: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
) -> dict[str, Any]:
    caller.require_scope(compound)
    shown = visible_buildings(caller, building)
    with runtime_of(request).database.reading() as session:
        row = _batch_row(session, compound, batch)
        numbers = dict(
            session.execute(
                select(buildings.c.building, buildings.c.number).where(buildings.c.compound == compound)
            ).all()
        )
        calls = (
            session.execute(
                select(shift_calls).where(shift_calls.c.batch == row["batch"]).order_by(shift_calls.c.building)
            )
            .mappings()
            .all()
        )
    found = []
    for call in calls:
        if shown is not None and local_id(call["building"]) not in shown:
            continue
        number = numbers.get(call["building"], local_id(call["building"]))
        found.append(
            {
                "building": local_id(call["building"]),
                "shifts": list(call["shifts"]),
                "households": call["households"],
                "delivered": call["delivered"],
                "follow_ups": call["follow_ups"],
                "complete": call["complete"],
                "text": f"Building {number}: {call['delivered']}/{call['households']} delivered",
            }
        )
    found.sort(key=lambda b: (len(b["building"]), b["building"]))
    return {
        "batch": batch,
        "dispatched_on": row["dispatched_on"].isoformat() if row["dispatched_on"] else None,
        "households": sum(b["households"] for b in found),
        "delivered": sum(b["delivered"] for b in found),
        "follow_ups": sum(b["follow_ups"] for b in found),
        "buildings": found,
    }
