"""Queueing each received event for the subscriptions that want it, in the consumer's own transaction.

The inbox row, the group messages and these rows commit together: a redelivered record stops at the inbox, so an
event is queued once per subscription. The body is the event as that key's feed shows it (``juwei.access``): no
identity ever, health fields only with a health grant, and each person whose health data it carries audited.
Paused subscriptions queue too: resuming delivers what happened meanwhile. A subscription whose registering key
no longer opens doors (revoked, expired) gets nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, select

from juwei.access import Disclosure
from juwei.audit import Reading, record_reads
from juwei.auth import authenticate_id
from juwei.callers import Caller, Holder
from juwei.consumer import Delivery
from juwei.events import Envelope, dump_json, utcnow
from juwei.service import Runtime
from juwei.session import Session
from services.notify.handlers import DISPATCH_JOB
from services.notify.subscriptions.domain import lane_of
from services.notify.views import subscription_deliveries, subscriptions

READING = Reading("webhook subscription", "notify subscription delivery")


def base_type(type_name: str) -> str:
    return type_name.rsplit(".v", 1)[0]


def received_by(
    handle: Callable[[Runtime, Session, Delivery], None],
) -> Callable[[Runtime, Session, Delivery], None]:
    """``ServiceDefinition.on_received``: notify's handlers, then the subscriptions' queue."""

    def on_received(runtime: Runtime, session: Session, delivery: Delivery) -> None:
        handle(runtime, session, delivery)
        if queue(runtime, session, [(delivery.envelope, delivery.inbox_seq)], replay=""):
            runtime.wake_after_commit(session, DISPATCH_JOB)

    return on_received


# Read for every event the consumer receives (three per positive result): statements built once and run on the
# transaction's connection, as the handlers' are (building one costs more than SQLite's work). Read every time,
# never cached: HTTP workers (``juwei serve --workers``) register subscriptions in other processes.
_ALL = select(subscriptions)
_ONE = select(subscriptions).where(subscriptions.c.subscription == bindparam("subscription"))


def wanting(session: Session, subscription: str | None = None) -> list[dict[str, Any]]:
    """The subscriptions (one, or all) with what they want, read once per queueing."""
    connection = session.connection()
    found = (
        connection.execute(_ALL) if subscription is None else connection.execute(_ONE, {"subscription": subscription})
    )
    return [
        {**row, "types": frozenset(json.loads(row["types"])), "compounds": frozenset(json.loads(row["compounds"]))}
        for row in found.mappings()
    ]


def queue(
    runtime: Runtime,
    session: Session,
    received: Sequence[tuple[Envelope, int]],
    replay: str,
    only: str | None = None,
) -> int:
    """Queue ``received`` (envelope, inbox seq) for every subscription (or ``only`` one) that may read them."""
    wanted = wanting(session, only)
    if not wanted:
        return 0
    registry = runtime.definition.catalogue
    if registry is None:
        return 0
    now, rows = utcnow(), []
    opens: dict[str, bool] = {}
    for sub in wanted:
        mine = [(e, seq) for e, seq in received if base_type(e.type) in sub["types"] and e.compound in sub["compounds"]]
        if not mine:
            continue
        key = sub["key_id"]
        if key not in opens:
            opens[key] = authenticate_id(session, key)
        if not opens[key]:
            continue
        disclosure = Disclosure(registry, runtime.sealing, bool(sub["health"]))
        shown = disclosure.shown(session, [e for e, _ in mine])
        by_id = {body["id"]: body for body in shown}
        for envelope, seq in mine:
            body = by_id.get(envelope.id)
            if body is None:
                continue  # a type this service no longer knows: nothing shown rather than a guess
            rows.append(
                {
                    "subscription": sub["subscription"],
                    "lane": lane_of(envelope.building, envelope.subject),
                    "event_id": envelope.id,
                    "event_type": envelope.type,
                    "compound": envelope.compound or "",
                    "position": envelope.position,
                    "inbox_seq": seq,
                    "replay": replay,
                    "body": dump_json(body).decode(),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
        _audit(session, sub, disclosure.reads)
    if rows:
        session.execute(subscription_deliveries.insert(), rows)
    return len(rows)


def _audit(session: Session, sub: dict[str, Any], reads: Iterable[Any]) -> None:
    """Health data shown to a subscriber is accounted for like a feed read: one row per person."""
    by_compound: dict[str, list[Any]] = {}
    for read in reads:
        by_compound.setdefault(read.subject.split(":", 1)[0], []).append(read)
    if not by_compound:
        return
    kind, _, name = str(sub["holder"]).partition(":")
    caller = Caller(sub["key_id"], sub["role"], None, None, Holder(kind, name) if name else None)
    for compound, found in by_compound.items():
        record_reads(session, READING, caller, compound, found)
