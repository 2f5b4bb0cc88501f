"""Read models of the supplies service, rebuilt by ``juwei replay supplies``.

``Register`` is this service's own copy of what it needs from ``juwei.residents`` (buildings, households,
residents' needs flags, logistics groups and information officers), fed by the consumer: supplies never
asks the residents service. The others project supplies' own events. Ids are the district-wide ids the
events carry (``<compound>:<id>``); the API speaks in ids local to a compound. Sealed tokens
(prescriptions, donors' names) are copied as they are: unreadable without their subject's key.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

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
    delete,
    update,
)
from sqlalchemy.orm import Session

from contracts import supplies as ev
from contracts.access import Departures
from contracts.residents import (
    BuildingRegistered,
    HouseholdRegistered,
    ResidentArrived,
    ResidentErased,
    ResidentMoved,
    ResidentNeedsChanged,
    ResidentRegistered,
    VolunteerRoleAssigned,
    VolunteerRoleReleased,
)
from contracts.residents import registry as residents_catalogue
from juwei.events import DomainEvent, Envelope
from juwei.projection import Projection, upsert

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


def _own(envelope: Envelope) -> DomainEvent:
    """The typed event, private part included (present when read from this service's own log)."""
    return ev.registry.decode(envelope.type, {**envelope.data, **(envelope.private or {})})


class Register(Projection):
    """Buildings, households, residents' needs and volunteer roles, as ``juwei.residents`` tells them."""

    name = "register"
    tables = (buildings, households, residents, volunteer_roles)
    reads = (
        BuildingRegistered,
        HouseholdRegistered,
        ResidentRegistered,
        ResidentMoved,
        ResidentArrived,
        ResidentNeedsChanged,
        ResidentErased,
        VolunteerRoleAssigned,
        VolunteerRoleReleased,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        # The health flags come opened from their seal in ``private`` (this service holds the keys handed
        # over); a shredded seal reads as no flag.
        event = residents_catalogue.decode(envelope.type, {**envelope.data, **(envelope.private or {})})
        compound = envelope.compound
        if isinstance(event, BuildingRegistered):
            upsert(
                session,
                buildings,
                {"building": event.building},
                {"compound": compound, "number": event.number, "floors": event.floors},
            )
        elif isinstance(event, HouseholdRegistered):
            upsert(
                session,
                households,
                {"household": event.household},
                {"compound": compound, "building": event.building, "floor": event.floor, "room": event.room},
            )
        elif isinstance(event, ResidentRegistered | ResidentArrived):
            upsert(
                session,
                residents,
                {"resident": event.resident},
                {
                    "compound": compound,
                    "household": event.household,
                    "building": event.building,
                    "erased": False,
                    **{flag: bool(getattr(event, flag)) for flag in FLAGS},
                },
            )
        elif isinstance(event, ResidentNeedsChanged):
            session.execute(
                update(residents)
                .where(residents.c.resident == event.resident)
                .values(**{flag: bool(getattr(event, flag)) for flag in FLAGS})
            )
        elif isinstance(event, ResidentMoved):
            session.execute(
                update(residents)
                .where(residents.c.resident == event.resident)
                .values(household=event.to_household, building=event.building)
            )
        elif isinstance(event, ResidentErased):
            session.execute(
                update(residents)
                .where(residents.c.resident == event.resident)
                .values(erased=True, **dict.fromkeys(HEALTH, False))
            )
        elif isinstance(event, VolunteerRoleAssigned):
            if event.role == "sampling_point":
                return
            if event.replaces:
                session.execute(
                    delete(volunteer_roles).where(
                        volunteer_roles.c.building == event.building,
                        volunteer_roles.c.volunteer == event.replaces,
                        volunteer_roles.c.role == event.role,
                    )
                )
            upsert(
                session,
                volunteer_roles,
                {"building": event.building, "volunteer": event.volunteer, "role": event.role},
                {"compound": compound, "shift": event.shift, "leader": event.leader},
            )
        elif isinstance(event, VolunteerRoleReleased):
            session.execute(
                delete(volunteer_roles).where(
                    volunteer_roles.c.building == event.building,
                    volunteer_roles.c.volunteer == event.volunteer,
                    volunteer_roles.c.role == event.role,
                )
            )


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
        event = _own(envelope)
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


def _holder(value: ev.CardHolder | None) -> tuple[str | None, str | None]:
    return (value.kind, value.id) if value is not None else (None, None)


class Custody(Projection):
    """Medicine requests, where each card is now, and every step of each card's way."""

    name = "custody"
    tables = (medicine_requests, cards, card_history)
    reads = (
        ev.MedicineRequested,
        ev.CardCollected,
        ev.CardHandedOver,
        ev.MedicinePurchased,
        ev.MedicineAndCardReturned,
        ev.CardOverdue,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        event = _own(envelope)
        compound = envelope.compound
        if isinstance(event, ev.MedicineRequested):
            session.execute(
                medicine_requests.insert().values(
                    request=event.request,
                    compound=compound,
                    card=event.card,
                    household=event.household,
                    building=event.building,
                    prescription=event.prescription,
                    requested_on=event.requested_on,
                    recorded_by=event.by,
                    status="open",
                )
            )
            exists = session.execute(update(cards).where(cards.c.card == event.card).values(household=event.household))
            if not exists.rowcount:
                session.execute(
                    cards.insert().values(
                        card=event.card,
                        compound=compound,
                        household=event.household,
                        building=event.building,
                        holder_kind="household",
                        holder=event.household,
                        since=None,
                        out_since=None,
                        overdue=False,
                    )
                )
            self._step(
                session,
                envelope.position,
                compound,
                event.card,
                envelope.time,
                "requested",
                None,
                None,
                None,
                [event.request],
            )
        elif isinstance(event, ev.CardCollected | ev.CardHandedOver | ev.MedicineAndCardReturned):
            at_home = isinstance(event, ev.MedicineAndCardReturned)
            values: dict[str, Any] = {
                "holder_kind": event.receiver.kind,
                "holder": event.receiver.id,
                "since": event.at,
            }
            if isinstance(event, ev.CardCollected):
                values.update(out_since=event.at, overdue=False)
            elif at_home:
                values.update(out_since=None, overdue=False)
            session.execute(update(cards).where(cards.c.card == event.card).values(**values))
            if isinstance(event, ev.CardCollected):
                step, handover, requests = "collected", None, event.requests
            elif isinstance(event, ev.CardHandedOver):
                step, handover, requests = "handed_over", event.handover, []
            else:
                step, handover, requests = "returned", None, event.fulfilled
                session.execute(
                    update(medicine_requests)
                    .where(medicine_requests.c.request.in_(event.fulfilled))
                    .values(status="fulfilled")
                )
            self._step(
                session,
                envelope.position,
                compound,
                event.card,
                event.at,
                step,
                event.giver,
                event.receiver,
                handover,
                requests,
            )
        elif isinstance(event, ev.MedicinePurchased):
            session.execute(
                update(medicine_requests)
                .where(medicine_requests.c.request == event.request)
                .values(status="purchased", purchased_by=event.by.id, purchased_at=event.at)
            )
            self._step(
                session,
                envelope.position,
                compound,
                event.card,
                event.at,
                "purchased",
                event.by,
                None,
                None,
                [event.request],
            )
        elif isinstance(event, ev.CardOverdue):
            session.execute(update(cards).where(cards.c.card == event.card).values(overdue=True))
            self._step(
                session, envelope.position, compound, event.card, envelope.time, "overdue", event.holder, None, None, []
            )

    @staticmethod
    def _step(
        session: Session,
        position: int | None,
        compound: str,
        card: str,
        at: datetime,
        step: str,
        giver: ev.CardHolder | None,
        receiver: ev.CardHolder | None,
        handover: str | None,
        requests: list[str],
    ) -> None:
        giver_kind, giver_id = _holder(giver)
        receiver_kind, receiver_id = _holder(receiver)
        session.execute(
            card_history.insert().values(
                # The event's position, not a counter of the table: a rebuild makes the same rows (on
                # PostgreSQL a serial goes on counting after the rows are cleared).
                seq=position,
                card=card,
                compound=compound,
                at=at,
                step=step,
                giver_kind=giver_kind,
                giver=giver_id,
                receiver_kind=receiver_kind,
                receiver=receiver_id,
                handover=handover,
                requests=json.dumps(requests),
            )
        )


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
        event = _own(envelope)
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


def projections() -> list[Projection]:
    return [Register(), Deliveries(), Custody(), Ledger(), Departures()]
