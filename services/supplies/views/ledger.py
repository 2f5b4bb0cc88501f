"""The public ledger of donations: what came in, what was refused, and which batches the accepted items went to."""

from __future__ import annotations

from sqlalchemy import (
    update,
)

from contracts import supplies as ev
from juwei.events import Envelope
from juwei.projection import Projection, upsert
from juwei.session import Session
from services.supplies.views.schema import donation_batches, donation_items, donations, own_event


class Ledger(Projection):
    """The public ledger: donations accepted and which batches they went into, and donations refused."""

    name = "ledger"
    tables = (donations, donation_items, donation_batches)
    reads = (
        ev.DonationAccepted,
        ev.DonationRefused,
        ev.DonationAllocated,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = own_event(envelope)
        compound = envelope.compound
        if isinstance(event, ev.DonationAccepted | ev.DonationRefused):
            refused = isinstance(event, ev.DonationRefused)
            upsert(
                session,
                donations,
                {"donation": event.donation},
                {
                    "compound": compound,
                    "donor": event.donor,
                    "donor_name": event.donor_name,
                    "received_on": event.received_on,
                    **({"refusal_reason": event.reason} if refused else {}),
                },
            )
            session.execute(
                donation_items.insert(),
                [
                    {
                        "donation": event.donation,
                        "item": item.item,
                        "compound": compound,
                        "category": item.category,
                        "quantity": item.quantity,
                        "unit": item.unit,
                        "accepted": not refused,
                        "allocated": 0,
                    }
                    for item in event.items
                ],
            )
        elif isinstance(event, ev.DonationAllocated):
            for item, quantity in event.items.items():
                session.execute(
                    update(donation_items)
                    .where(donation_items.c.donation == event.donation, donation_items.c.item == item)
                    .values(allocated=donation_items.c.allocated + quantity)
                )
                session.execute(
                    donation_batches.insert().values(
                        donation=event.donation, item=item, batch=event.batch, compound=compound, quantity=quantity
                    )
                )
