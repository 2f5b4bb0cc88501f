"""Donations under the no-gifts rule, and the public ledger every household of the compound can read."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from contracts.supplies import DonationAccepted, DonationItem, DonationRefused
from juwei.auth import CompoundId, LocalId
from juwei.problems import Problem
from services.supplies.api.common import (
    Command,
    Compound,
    ItemName,
    LocalIdText,
    StaffOnly,
    global_id,
    local_id,
    runtime_of,
)
from services.supplies.domain import Donation
from services.supplies.views import batches, donation_batches, donation_items, donations

router = APIRouter(tags=["donations"])


class DonationItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: ItemName
    category: str = Field(min_length=1, max_length=40, examples=["antigen_kits"])
    quantity: int = Field(ge=1, le=10_000_000)
    unit: str = Field("piece", min_length=1, max_length=20)


class DonationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "donation": "d-0415-01",
                    "donor": "donor-017",
                    "items": [
                        {"item": "kn95", "category": "masks", "quantity": 2000},
                        {"item": "staff_lunch", "category": "meals", "quantity": 7, "unit": "box"},
                    ],
                }
            ]
        },
    )
    donation: LocalIdText
    donor: LocalIdText = Field(description="a reference for the donor; the ledger shows this, never a name")
    donor_name: str | None = Field(None, min_length=1, max_length=100, description="sealed; staff only; erasable")
    received_on: date | None = None
    items: list[DonationItemIn] = Field(min_length=1, max_length=100)
    refuse_reason: str | None = Field(None, min_length=1, max_length=500, description="refuse it all, for this reason")


def donor_subject(compound: str, donor: str) -> str:
    """The vault subject of a donor's name: erasing it leaves the ledger whole."""
    return f"donor:{global_id(compound, donor)}"


@router.post("/compounds/{compound}/donations", status_code=201, summary="Record a donation: accepted or refused")
def receive_donation(compound: CompoundId, body: DonationIn, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        session = command.session
        sealed = None
        if body.donor_name:
            sealed = runtime_of(request).vault.seal(
                session, donor_subject(compound, body.donor), {"name": body.donor_name}
            )
        donation = command.load(Donation, global_id(compound, body.donation))
        donation.receive(
            global_id(compound, body.donor),
            [DonationItem(item=i.item, category=i.category, quantity=i.quantity, unit=i.unit) for i in body.items],
            categories=command.policy().donation_categories,
            received_on=body.received_on or command.today,
            donor_name=sealed,
            refuse_reason=body.refuse_reason,
        )
        recorded = donation.pending()
    accepted = [i.item for e in recorded if isinstance(e, DonationAccepted) for i in e.items]
    refused = [e for e in recorded if isinstance(e, DonationRefused)]
    return {
        "donation": body.donation,
        "accepted": accepted,
        "refused": [i.item for e in refused for i in e.items],
        "reason": refused[0].reason if refused else None,
    }


@router.get("/compounds/{compound}/donations/{donation}", summary="One donation, with the donor's name (staff)")
def show_donation(compound: CompoundId, donation: LocalId, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    runtime = runtime_of(request)
    with runtime.database.reading() as session:
        row = (
            session.execute(select(donations).where(donations.c.donation == global_id(compound, donation)))
            .mappings()
            .first()
        )
        if row is None:
            raise Problem(404, f"no donation {donation}", "donation-unknown")
        name = runtime.vault.unseal(session, f"donor:{row['donor']}", row["donor_name"])
        items = session.execute(select(donation_items).where(donation_items.c.donation == row["donation"])).mappings()
        listed = [
            {
                "item": i["item"],
                "category": i["category"],
                "quantity": i["quantity"],
                "unit": i["unit"],
                "accepted": i["accepted"],
                "allocated": i["allocated"],
            }
            for i in items
        ]
    return {
        "donation": donation,
        "donor": local_id(row["donor"]),
        "donor_name": name["name"] if name else None,
        "received_on": row["received_on"].isoformat(),
        "items": listed,
        "refusal_reason": row["refusal_reason"],
    }


@router.delete("/compounds/{compound}/donors/{donor}/name", summary="Erase a donor's name (the ledger stays)")
def erase_donor_name(compound: CompoundId, donor: LocalId, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.unit_of_work() as session:
        erased = runtime_of(request).vault.shred(session, donor_subject(compound, donor))
    return {"donor": donor, "erased": erased}


@router.get("/compounds/{compound}/ledger", summary="The public ledger: what came in, where it went, what was refused")
def ledger(compound: CompoundId, request: Request, caller: Compound) -> dict[str, Any]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
        gifts = {
            row["donation"]: dict(row)
            for row in session.execute(select(donations).where(donations.c.compound == compound)).mappings()
        }
        items = session.execute(
            select(donation_items)
            .where(donation_items.c.compound == compound)
            .order_by(donation_items.c.donation, donation_items.c.item)
        ).mappings()
        went = session.execute(
            select(donation_batches, batches.c.label, batches.c.arrived_on)
            .join(batches, batches.c.batch == donation_batches.c.batch)
            .where(donation_batches.c.compound == compound)
            .order_by(batches.c.arrived_on, donation_batches.c.batch)
        ).mappings()
        into: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for use in went:
            into.setdefault((use["donation"], use["item"]), []).append(
                {
                    "batch": local_id(use["batch"]),
                    "label": use["label"],
                    "arrived_on": use["arrived_on"].isoformat(),
                    "quantity": use["quantity"],
                }
            )
        accepted: dict[str, list[dict[str, Any]]] = {}
        refused: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            entry = {
                "item": item["item"],
                "category": item["category"],
                "quantity": item["quantity"],
                "unit": item["unit"],
            }
            if item["accepted"]:
                entry.update(
                    allocated=item["allocated"],
                    in_stock=item["quantity"] - item["allocated"],
                    batches=into.get((item["donation"], item["item"]), []),
                )
                accepted.setdefault(item["donation"], []).append(entry)
            else:
                refused.setdefault(item["donation"], []).append(entry)

    def listing(part: dict[str, list[dict[str, Any]]], with_reason: bool) -> list[dict[str, Any]]:
        rows = []
        for donation, entries in part.items():
            gift = gifts[donation]
            row: dict[str, Any] = {
                "donation": local_id(donation),
                "donor": local_id(gift["donor"]),
                "received_on": gift["received_on"].isoformat(),
                "items": entries,
            }
            if with_reason:
                row["reason"] = gift["refusal_reason"]
            rows.append(row)
        return sorted(rows, key=lambda r: (r["received_on"], r["donation"]))

    return {"compound": compound, "accepted": listing(accepted, False), "refused": listing(refused, True)}
