"""What the supplies service does on its own: erasures from residents, and cards kept out too long."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import select

from contracts.residents import ResidentErased
from juwei.events import DomainEvent, Envelope, utcnow
from juwei.repository import Repository
from juwei.service import EventHandler, Runtime
from juwei.session import Session
from services.supplies.domain import MedicineCard
from services.supplies.policy import policy_for
from services.supplies.views import cards

log = structlog.get_logger("supplies.handlers")


def resident_erased(runtime: Runtime, session: Session, event: ResidentErased, envelope: Envelope) -> None:
    """An erased resident's prescriptions are sealed under their key here: destroying it erases them."""
    if runtime.vault.shred(session, event.resident):
        log.info("supplies.prescriptions_shredded", resident=event.resident)


def raise_overdue_alerts(runtime: Runtime, now: datetime | None = None) -> int:
    """Periodic: a card out longer than its compound's limit raises CardOverdue (once per trip)."""
    now = now or utcnow()
    repository = Repository(runtime.store, MedicineCard)
    raised = 0
    with runtime.database.unit_of_work() as session:
        out = session.execute(
            select(cards.c.card, cards.c.compound).where(cards.c.holder_kind != "household", cards.c.overdue.is_(False))
        ).all()
        limits: dict[str, int] = {}
        for card_id, compound in out:
            if compound not in limits:
                limits[compound] = policy_for(runtime, session, compound).card_return_hours
            card = repository.load(session, card_id)
            if card.check_overdue(now, limits[compound]):
                repository.save(session, card, compound=compound)
                raised += 1
    if raised:
        log.warning("supplies.cards_overdue", cards=raised)
    return raised


# What supplies does with the other services' events (its projections keep the register besides).
EVENT_HANDLERS: dict[type[DomainEvent], EventHandler] = {ResidentErased: resident_erased}
