"""Events notify consumes, and the fan-out every message goes through.

A consumed event passes the rule table (``services.notify.rules``); each notice becomes a ``Message``
whose id is derived from the event's id, and one delivery row per (message, building group, channel) is
written with a unique ``delivery_key`` — all inside the consumer's transaction, together with the inbox
row. A redelivered event is stopped by the inbox; should it get past (re-produced by hand, replayed), the
message already exists and the keys already exist: nothing is queued twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from juwei import tracing
from juwei.events import DomainEvent, Envelope, utcnow
from juwei.service import EventHandler, Runtime
from juwei.session import Session
from juwei.store import ConcurrencyError
from services.notify.calls.listing import list_calls
from services.notify.domain import Message, Texts, building_label
from services.notify.rules import RULES, notices_for, render_texts
from services.notify.views import channels, deliveries, groups, households, sampling_points

log = structlog.get_logger("notify.handlers")

_IDS = uuid.UUID("6b1f0c8e-8d36-4a53-9f0e-6e6f74696679")  # namespace of ids derived from other ids
# The dispatcher's periodic job, woken when a unit of work has queued deliveries (``Runtime.wake``).
DISPATCH_JOB = "dispatch_deliveries"


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(_IDS, "|".join(parts)))


# Statements built once and run on the transaction's connection: building one and its cache lookup cost more than
# SQLite's own work, and the consumer runs several for every event it composes from.
_GROUP_NUMBER = select(groups.c.number).where(groups.c.building == bindparam("building"))
_TARGETS = select(channels.c.channel, channels.c.building).where(
    channels.c.building.in_(bindparam("buildings", expanding=True)), channels.c.active.is_(True)
)
_QUEUE = {
    "postgresql": postgresql_insert(deliveries).on_conflict_do_nothing(index_elements=["delivery_key"]),
    "sqlite": sqlite_insert(deliveries).on_conflict_do_nothing(index_elements=["delivery_key"]),
}


class GroupDirectory:
    """The compound's building groups as the rules see them, read in the consumer's own transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def label(self, building: str) -> str:
        number = self.session.connection().execute(_GROUP_NUMBER, {"building": building}).scalar()
        return building_label(number, building)

    def buildings_of(self, compound: str) -> list[str]:
        return list(
            self.session.execute(
                select(groups.c.building).where(groups.c.compound == compound).order_by(groups.c.building)
            ).scalars()
        )

    def buildings_of_households(self, chosen: list[str]) -> list[str]:
        if not chosen:
            return []
        return sorted(
            set(self.session.execute(select(households.c.building).where(households.c.household.in_(chosen))).scalars())
        )

    def point_name(self, point: str) -> str | None:
        return self.session.execute(select(sampling_points.c.name).where(sampling_points.c.point == point)).scalar()

    def has_lifts(self, building: str) -> bool:
        return bool(self.session.execute(select(groups.c.lifts).where(groups.c.building == building)).scalar())


def announce(runtime: Runtime, session: Session, event: DomainEvent, envelope: Envelope) -> None:
    """What the building groups hear of an event a rule reads: one message per notice of the rule; an urgent
    one also goes on the call lists of the households that hear no group (``services.notify.calls``)."""
    for index, notice in enumerate(notices_for(event, envelope, GroupDirectory(session))):
        message_id = f"{envelope.compound}:m-{derived_id(envelope.id, str(index))}"
        compose(
            runtime,
            session,
            envelope.compound,
            message_id=message_id,
            kind="event",
            priority=notice.priority,
            buildings=notice.buildings,
            texts=render_texts(notice.template, notice.params),
            template=notice.template,
            cause=envelope.id,
        )
        list_calls(runtime, session, event, envelope.compound, message_id, notice.buildings)


def compose(
    runtime: Runtime,
    session: Session,
    compound: str,
    *,
    message_id: str,
    kind: str,
    priority: str,
    buildings: Sequence[str],
    texts: Texts,
    template: str = "",
    cause: str | None = None,
    actor: str | None = None,
) -> list[Envelope]:
    """Record the message and queue one delivery per channel of each of its groups (same transaction)."""
    message = Message(message_id)
    message.compose(kind, priority, buildings, texts, template=template, cause=cause)
    try:
        # A message is composed once, so its stream must be empty: the append's own version check says
        # whether it is, and a new message (nearly every one) costs no read of its stream.
        envelopes = runtime.store.append(
            session,
            Message.stream_id(message_id),
            message.pending(),
            expected_version=0,
            compound=compound,
            actor=actor,
        )
    except ConcurrencyError:
        return []  # its cause came again: it was composed and queued the first time
    message.mark_saved()
    queued = fan_out(session, compound, message_id, message.buildings, priority)
    if queued:
        runtime.wake_after_commit(session, DISPATCH_JOB)  # sent now, not at the next tick
    log.info("notify.composed", message=message_id, kind=kind, buildings=len(message.buildings), deliveries=queued)
    return envelopes


def fan_out(session: Session, compound: str, message: str, buildings: Sequence[str], priority: str) -> int:
    now = utcnow()
    targets = session.connection().execute(_TARGETS, {"buildings": list(buildings)}).all()
    return sum(
        queue(session, compound, f"{message}|{building}|{channel}", message, building, channel, priority, now)
        for channel, building in targets
    )


def queue(
    session: Session,
    compound: str,
    key: str,
    message: str | None,
    building: str,
    channel: str,
    priority: str,
    now: datetime,
    **extra: object,
) -> int:
    """Insert one delivery unless its key exists; returns 1 when it was new."""
    values = {
        "delivery": derived_id(key),
        "delivery_key": key,
        "compound": compound,
        "message": message,
        "building": building,
        "channel": channel,
        "priority": priority,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "traceparent": tracing.carried(),
        **extra,
    }
    connection = session.connection()
    statement = _QUEUE.get(connection.dialect.name)
    if statement is None:  # pragma: no cover - the two dialects Juwei runs on
        existing = connection.execute(select(deliveries.c.id).where(deliveries.c.delivery_key == key)).first()
        return 0 if existing else connection.execute(insert(deliveries).values(**values)).rowcount
    return int(connection.execute(statement, values).rowcount or 0)


# Events with a rule are announced; everything else received only feeds the projections.
EVENT_HANDLERS: dict[type[DomainEvent], EventHandler] = dict.fromkeys(RULES, announce)
