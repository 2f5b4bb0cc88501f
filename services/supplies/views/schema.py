"""The tables of supplies' read models: its copy of the register (from ``juwei.residents``) and what its own
events make of batches, deliveries, medicine runs and donations. Ids are the district-wide ids the events
carry (``<compound>:<id>``); sealed tokens (prescriptions, donors' names) are copied as they are.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from contracts import supplies as ev
from juwei.events import DomainEvent, Envelope

tables = MetaData()

# --- from juwei.residents ---------------------------------------------------------------------------------

buildings = Table(
    "sup_buildings",
    tables,
    Column("building", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("number", String(40), nullable=False),
    Column("floors", Integer, nullable=False),
)
households = Table(
    "sup_households",
    tables,
    Column("household", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", String(100), nullable=False, index=True),
    Column("floor", Integer, nullable=False),
    Column("room", Integer, nullable=False),
)
residents = Table(
    "sup_residents",
    tables,
    Column("resident", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("household", String(100), nullable=False, index=True),
    Column("building", String(100), nullable=False, index=True),
    Column("elderly", Boolean, nullable=False),
    Column("infant", Boolean, nullable=False),
    Column("regular_medication", Boolean, nullable=False),
    Column("mobility_impaired", Boolean, nullable=False),
    Column("bedridden", Boolean, nullable=False),
    Column("pregnant", Boolean, nullable=False),
    Column("erased", Boolean, nullable=False),
)
volunteer_roles = Table(
    "sup_volunteer_roles",
    tables,
    Column("building", String(100), primary_key=True),
    Column("volunteer", String(100), primary_key=True),
    Column("role", String(40), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("shift", String(1), nullable=True),
    Column("leader", Boolean, nullable=False),
)

# --- own events -------------------------------------------------------------------------------------------

batches = Table(
    "sup_batches",
    tables,
    Column("batch", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("source", String(20), nullable=False),
    Column("label", String(200), nullable=False),
    Column("arrived_on", Date, nullable=False),
    Column("items", Text, nullable=False),
    Column("buildings", Text, nullable=False),
    Column("households", Text, nullable=False),
    Column("donations", Text, nullable=False),
    Column("method", String(20), nullable=True),
    Column("planned_households", Integer, nullable=False),
    Column("dispatched_on", Date, nullable=True),
)
shares = Table(
    "sup_shares",
    tables,
    Column("batch", String(100), primary_key=True),
    Column("household", String(100), primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("building", String(100), nullable=False),
    Column("floor", Integer, nullable=False),
    Column("room", Integer, nullable=False),
    Column("items", Text, nullable=False),
    # planned → pending (dispatched) → delivered | failed → collected | exchanged | returned_to_stock | delivered
    Column("status", String(20), nullable=False),
    Column("reason", String(20), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("recorded_by", String(100), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_sup_shares_batch_building", shares.c.batch, shares.c.building)
Index("ix_sup_shares_compound_status", shares.c.compound, shares.c.status)
shift_calls = Table(
    "sup_shift_calls",
    tables,
    Column("batch", String(100), primary_key=True),
    Column("building", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("called_on", Date, nullable=False),
    Column("shift_on_duty", String(1), nullable=False),
    Column("shifts", String(2), nullable=False),
    Column("both", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("volunteers", Text, nullable=False),
    Column("households", Integer, nullable=False),
    Column("items", Integer, nullable=False),
    Column("delivered", Integer, nullable=False),
    Column("follow_ups", Integer, nullable=False),
    Column("complete", Boolean, nullable=False),
)
medicine_requests = Table(
    "sup_medicine_requests",
    tables,
    Column("request", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("card", String(100), nullable=False, index=True),
    Column("household", String(100), nullable=False),
    Column("building", String(100), nullable=False, index=True),
    Column("prescription", Text, nullable=True),
    Column("requested_on", Date, nullable=False),
    Column("recorded_by", String(100), nullable=True),
    # open → purchased → fulfilled (returned with the card)
    Column("status", String(12), nullable=False),
    Column("purchased_by", String(100), nullable=True),
    Column("purchased_at", DateTime(timezone=True), nullable=True),
)
cards = Table(
    "sup_cards",
    tables,
    Column("card", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("household", String(100), nullable=False),
    Column("building", String(100), nullable=False, index=True),
    Column("holder_kind", String(12), nullable=False),
    Column("holder", String(100), nullable=False),
    Column("since", DateTime(timezone=True), nullable=True),
    Column("out_since", DateTime(timezone=True), nullable=True),
    Column("overdue", Boolean, nullable=False),
)
card_history = Table(
    "sup_card_history",
    tables,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("card", String(100), nullable=False, index=True),
    Column("compound", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("step", String(20), nullable=False),
    Column("giver_kind", String(12), nullable=True),
    Column("giver", String(100), nullable=True),
    Column("receiver_kind", String(12), nullable=True),
    Column("receiver", String(100), nullable=True),
    Column("handover", String(100), nullable=True),
    Column("requests", Text, nullable=False),
)
donations = Table(
    "sup_donations",
    tables,
    Column("donation", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("donor", String(100), nullable=False),
    Column("donor_name", Text, nullable=True),
    Column("received_on", Date, nullable=False),
    Column("refusal_reason", Text, nullable=True),
)
donation_items = Table(
    "sup_donation_items",
    tables,
    Column("donation", String(100), primary_key=True),
    Column("item", String(40), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("category", String(40), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit", String(20), nullable=False),
    Column("accepted", Boolean, nullable=False),
    Column("allocated", Integer, nullable=False),
)
donation_batches = Table(
    "sup_donation_batches",
    tables,
    Column("donation", String(100), primary_key=True),
    Column("item", String(40), primary_key=True),
    Column("batch", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("quantity", Integer, nullable=False),
)

FLAGS = ("elderly", "infant", "regular_medication", "mobility_impaired", "bedridden", "pregnant")


HEALTH = ("regular_medication", "mobility_impaired", "bedridden", "pregnant")


def own_event(envelope: Envelope) -> DomainEvent:
    """The typed event, private part included (present when read from this service's own log)."""
    return ev.registry.decode(envelope.type, {**envelope.data, **(envelope.private or {})})
