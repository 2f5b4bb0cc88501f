"""The consumer's step after an urgent message is composed: list the calls it obliges, in the same transaction.

For each building the message reaches, the households marked as hearing no group (those on the called floors,
for a floor call) go on one ``CallList``; its stream is new, so a redelivered cause lists nothing twice.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import structlog
from sqlalchemy import select

from juwei.events import DomainEvent, utcnow
from juwei.service import Runtime
from juwei.session import Session
from juwei.store import ConcurrencyError
from services.notify.calls.domain import (
    DEFAULT_DUE_MINUTES,
    CallList,
    Marked,
    call_list_id,
    due_at,
    households_to_call,
    is_urgent,
)
from services.notify.calls.views import unreachable

log = structlog.get_logger("notify.calls")
DUE_MINUTES_ENV = "JUWEI_NOTIFY_CALL_DUE_MINUTES"


def due_minutes() -> int:
    """How long an officer has for a call before staff see it overdue (``JUWEI_NOTIFY_CALL_DUE_MINUTES``)."""
    raw = os.environ.get(DUE_MINUTES_ENV, "").strip()
    return int(raw) if raw.isdigit() else DEFAULT_DUE_MINUTES


def list_calls(
    runtime: Runtime, session: Session, event: DomainEvent, compound: str, message: str, buildings: Sequence[str]
) -> int:
    """How many households were put on their officers' call lists for this message."""
    if not is_urgent(event) or not buildings:
        return 0
    marked = [
        Marked(row.household, row.building, row.floor, row.room)
        for row in session.execute(
            select(unreachable.c.household, unreachable.c.building, unreachable.c.floor, unreachable.c.room).where(
                unreachable.c.building.in_(list(buildings)), unreachable.c.marked.is_(True)
            )
        )
    ]
    if not marked:
        return 0
    due, listed = due_at(utcnow(), due_minutes()), 0
    for building in sorted(set(buildings)):
        households = households_to_call(event, building, marked)
        if not households:
            continue
        list_id = call_list_id(compound, message, building)
        calls = CallList(list_id)
        calls.list(message, building, households, due)
        try:
            runtime.store.append(
                session, CallList.stream_id(list_id), calls.pending(), expected_version=0, compound=compound
            )
        except ConcurrencyError:
            continue  # its message came again: the list was made the first time
        listed += len(households)
    if listed:
        log.info("notify.calls_listed", message=message, households=listed)
    return listed
