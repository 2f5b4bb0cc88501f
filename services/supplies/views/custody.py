"""Medicine requests and where every medical-insurance card is, with each step of its way."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    update,
)

from contracts import supplies as ev
from juwei.events import Envelope
from juwei.projection import Projection
from juwei.session import Session
from services.supplies.views.schema import card_history, cards, medicine_requests, own_event


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
        event = own_event(envelope)
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
