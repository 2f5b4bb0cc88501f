"""Supply batches: arrival, the allocation plan per household, dispatch with the shift call, progress."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Table, select

from contracts.ids import global_id, local_id
from contracts.supplies import DonationUse, GroupOrder, SupplyItem
from juwei.aggregate import Invalid, NotFound
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.session import Session
from juwei.unit_of_work import UnitOfWork
from services.supplies.application.register import household_facts, logistics_group, visible_buildings
from services.supplies.domain import Batch, BuildingDelivery, Donation, call_shifts, delivery_id
from services.supplies.models import AllocationIn, BatchIn
from services.supplies.policy import policy_for
from services.supplies.views import batches, buildings, households, shares, shift_calls


def _known(session: Session, compound: str, table: Table, column: str, wanted: Sequence[str], what: str) -> None:
    if not wanted:
        return
    ids = {global_id(compound, w) for w in wanted}
    found = set(session.execute(select(table.c[column]).where(table.c.compound == compound)).scalars())
    missing = sorted(ids - found)
    if missing:
        raise NotFound(f"{what} {local_id(missing[0])} is not registered", code=f"{what}-unknown")


def batch_arrived(unit: UnitOfWork, body: BatchIn) -> dict[str, Any]:
    """A batch of supplies has arrived: for the whole compound, some buildings, households or orders."""
    compound = unit.compound
    with unit:
        session = unit.session
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
                raise Invalid(f"item {use.item} of donation {use.donation} is listed twice", code="item-twice")
            by_donation[use.donation][use.item] = use.quantity
        for donation_local, items in by_donation.items():
            donation = unit.load(Donation, global_id(compound, donation_local))
            donation.allocate(batch_id, items)
            uses.extend(
                (DonationUse(donation=donation.id, item=item, quantity=q), donation.unit_of(item))
                for item, q in items.items()
            )
        batch = unit.load_or_new(Batch, batch_id)
        batch.arrive(
            body.source,
            [SupplyItem(item=i.item, quantity=i.quantity, unit=i.unit) for i in body.items],
            arrived_on=body.arrived_on or unit.today,
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


def plan_allocation(unit: UnitOfWork, batch: str, body: AllocationIn) -> dict[str, Any]:
    """Plan who gets what."""
    with unit:
        found = unit.load(Batch, global_id(unit.compound, batch))
        found.plan(household_facts(unit.session, unit.compound, found), body.method, body.needs)
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


def dispatch(unit: UnitOfWork, batch: str, on: date | None) -> dict[str, Any]:
    """Send the batch out: call the shifts of each building (both of them for a large part)."""
    calls = []
    with unit:
        found = unit.load(Batch, global_id(unit.compound, batch))
        day = on or unit.today
        policy = policy_for(unit.runtime, unit.session, unit.compound)
        for building in found.dispatch(day):
            tasks, items = found.load_of(building)
            decision = call_shifts(len(tasks), items, day, policy)
            group = logistics_group(unit.session, building)
            called = [v for v, shift in group.items() if shift in decision.shifts]
            delivery = unit.load_or_new(BuildingDelivery, delivery_id(found.id, building))
            delivery.call(found.id, building, day, decision, volunteers=called, tasks=tasks, items=items)
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
    return {"batch": batch, "on": day.isoformat(), "calls": calls}


def _batch_row(session: Session, compound: str, batch: str) -> dict[str, Any]:
    row = session.execute(select(batches).where(batches.c.batch == global_id(compound, batch))).mappings().first()
    if row is None:
        raise NotFound(f"batch {batch} has not arrived", code="batch-unknown")
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


def list_batches(runtime: Runtime, compound: str) -> dict[str, Any]:
    """Batches, newest first."""
    with runtime.database.reading() as session:
        rows = session.execute(
            select(batches).where(batches.c.compound == compound).order_by(batches.c.arrived_on.desc(), batches.c.batch)
        ).mappings()
        return {"batches": [_summary(dict(row)) for row in rows]}


def show_batch(runtime: Runtime, compound: str, batch: str) -> dict[str, Any]:
    """One batch: items, targets, plan, dispatch."""
    with runtime.database.reading() as session:
        row = _batch_row(session, compound, batch)
    return {
        **_summary(row),
        "buildings": [local_id(b) for b in json.loads(row["buildings"])],
        "for_households": [local_id(h) for h in json.loads(row["households"])],
        "donations": [{**d, "donation": local_id(d["donation"])} for d in json.loads(row["donations"])],
    }


def show_allocation(runtime: Runtime, compound: str, batch: str, building: str | None) -> dict[str, Any]:
    """The plan: each household's share."""
    with runtime.database.reading() as session:
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


def progress(runtime: Runtime, caller: Caller, compound: str, batch: str, building: str | None) -> dict[str, Any]:
    """Per building: 180/200 delivered, of the buildings the caller may see."""
    shown = visible_buildings(caller, building)
    with runtime.database.reading() as session:
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
