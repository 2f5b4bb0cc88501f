"""Donations under the no-gifts rule, and the public ledger every household of the compound can read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from contracts.ids import global_id, local_id
from contracts.supplies import DonationAccepted, DonationItem, DonationRefused
from juwei.aggregate import NotFound
from juwei.service import Runtime
from juwei.unit_of_work import UnitOfWork
from services.supplies.domain import Donation
from services.supplies.models import DonationIn
from services.supplies.policy import policy_for
from services.supplies.views import batches, donation_batches, donation_items, donations


def donor_subject(compound: str, donor: str) -> str:
    """The vault subject of a donor's name: erasing it leaves the ledger whole."""
    return f"donor:{global_id(compound, donor)}"


def receive_donation(unit: UnitOfWork, body: DonationIn) -> dict[str, Any]:
    """Record a donation: accepted, or refused under the no-gifts rule (the donor's name sealed, staff only)."""
    compound = unit.compound
    with unit:
        session = unit.session
        sealed = None
        if body.donor_name:
            sealed = unit.runtime.vault.seal(session, donor_subject(compound, body.donor), {"name": body.donor_name})
        donation = unit.load_or_new(Donation, global_id(compound, body.donation))
        donation.receive(
            global_id(compound, body.donor),
            [DonationItem(item=i.item, category=i.category, quantity=i.quantity, unit=i.unit) for i in body.items],
            categories=policy_for(unit.runtime, session, compound).donation_categories,
            received_on=body.received_on or unit.today,
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


def show_donation(runtime: Runtime, compound: str, donation: str) -> dict[str, Any]:
    """One donation, with the donor's name (staff)."""
    with runtime.database.reading() as session:
        row = (
            session.execute(select(donations).where(donations.c.donation == global_id(compound, donation)))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no donation {donation}", code="donation-unknown")
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


def erase_donor_name(runtime: Runtime, compound: str, donor: str) -> dict[str, Any]:
    """Erase a donor's name: its key is destroyed; the ledger stays."""
    with runtime.database.unit_of_work() as session:
        erased = runtime.vault.shred(session, donor_subject(compound, donor))
    return {"donor": donor, "erased": erased}


def ledger(runtime: Runtime, compound: str) -> dict[str, Any]:
    """The public ledger: what came in, where it went, what was refused (donors by reference, never by name)."""
    with runtime.database.reading() as session:
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
