"""Webhook subscriptions of outside systems: register, list, pause, resume, replay, and the delivery log.

A subscription is configuration of the outside world, like a board's link, not part of the compound's story: its
rows live in notify's tables (``views.subscriptions``), its URL and secret sealed in the vault under the
subscription's own key. What it may receive is bounded by the registering key exactly as the feed is
(``contracts.access``): the types and compounds of an ``external-consumer``'s grant, health fields only with a
health grant; a district operator (of one compound: that compound) reads everything.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select, update

from contracts import roles as r
from contracts.notify import registry as own_registry
from juwei.aggregate import Invalid, NotFound
from juwei.callers import Caller, Forbidden
from juwei.events import Envelope, utcnow
from juwei.service import Runtime
from juwei.store import inbox_table
from services.notify.handlers import DISPATCH_JOB
from services.notify.models import (
    Replayed,
    ReplayIn,
    SubscriptionAttemptOut,
    SubscriptionDeliveries,
    SubscriptionDeliveryOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionRegistered,
)
from services.notify.subscriptions.domain import checked_url, endpoint_of, new_secret, within
from services.notify.subscriptions.fanout import queue
from services.notify.views import subscription_attempts, subscription_deliveries, subscriptions

REPLAY_BATCH = 500


def vault_subject(subscription: str) -> str:
    return f"subscription-{subscription}"


def offered_types(runtime: Runtime) -> frozenset[str]:
    """The base types a subscription may ask for: every event notify receives from the other services."""
    catalogue = runtime.definition.catalogue
    return frozenset() if catalogue is None else frozenset(cls.event_type for cls in catalogue.classes.values())


def _checked_types(runtime: Runtime, caller: Caller, asked: list[str]) -> list[str]:
    types = sorted(set(asked))
    offered = offered_types(runtime)
    own = {cls.event_type for cls in own_registry.classes.values()}
    mine = [name for name in types if name in own]
    if mine:
        raise Invalid(
            f"notify's own events are not offered by subscription (read notify's feed): {', '.join(mine)}",
            code="type-not-offered",
        )
    unknown = [name for name in types if name not in offered]
    if unknown:
        raise Invalid(f"unknown event types (see the event catalogue): {', '.join(unknown)}", code="type-unknown")
    if caller.role == r.EXTERNAL_CONSUMER:
        grant = caller.grant
        outside = [name for name in types if grant is None or not grant.names_type(name)]
        if outside:
            raise Forbidden(f"this key's grant does not name {', '.join(outside)}", code="type-not-granted")
    return types


def _checked_compounds(caller: Caller, asked: list[str]) -> list[str]:
    compounds = sorted(set(asked))
    allowed = None if caller.compound is None else frozenset({caller.compound})
    outside = within(compounds, allowed) or [c for c in compounds if not caller.may_see_compound(c)]
    if outside:
        raise Forbidden(f"this key does not reach compound(s) {', '.join(outside)}", code="compound-not-granted")
    return compounds


def _health(caller: Caller) -> bool:
    """Health fields as on the feed: the operator reads them, another system only with a health grant."""
    if caller.role == r.DISTRICT_OPERATOR:
        return True
    return caller.grant is not None and caller.grant.health


def register(runtime: Runtime, caller: Caller, body: SubscriptionIn) -> SubscriptionRegistered:
    url = checked_url(body.url)
    types = _checked_types(runtime, caller, body.types)
    compounds = _checked_compounds(caller, body.compounds)
    subscription, secret, now = uuid.uuid4().hex, new_secret(), utcnow()
    with runtime.database.unit_of_work() as session:
        sealed = runtime.vault.seal(session, vault_subject(subscription), {"url": url, "secret": secret})
        session.execute(
            subscriptions.insert().values(
                subscription=subscription,
                key_id=caller.key_id,
                holder=str(caller.holder) if caller.holder else f"key:{caller.key_id}",
                role=caller.role,
                types=json.dumps(types),
                compounds=json.dumps(compounds),
                health=_health(caller),
                endpoint=endpoint_of(url)[:300],
                config=sealed,
                active=True,
                created_at=now,
                changed_at=now,
            )
        )
        row = _row(session, caller, subscription)
        out = _out(session, row)
        session.info["juwei.secret_shown"] = True  # an Idempotency-Key replay never gets the secret back
    return SubscriptionRegistered(**out.model_dump(), secret=secret)


def _row(session: Any, caller: Caller, subscription: str) -> dict[str, Any]:
    """The subscription, if the caller may see it: the operator every one, others those of their holder."""
    row = session.execute(select(subscriptions).where(subscriptions.c.subscription == subscription)).mappings().first()
    if row is None or not _sees(caller, row):
        raise NotFound(f"no subscription {subscription}", code="subscription-unknown")
    return dict(row)


def _sees(caller: Caller, row: Any) -> bool:
    if caller.role == r.DISTRICT_OPERATOR:
        return caller.compound is None or json.loads(row["compounds"]) == [caller.compound]
    return row["key_id"] == caller.key_id or (caller.holder is not None and row["holder"] == str(caller.holder))


def _out(session: Any, row: dict[str, Any]) -> SubscriptionOut:
    counts = dict(
        session.execute(
            select(subscription_deliveries.c.status, func.count())
            .where(subscription_deliveries.c.subscription == row["subscription"])
            .group_by(subscription_deliveries.c.status)
        ).all()
    )
    return SubscriptionOut(
        subscription=row["subscription"],
        endpoint=row["endpoint"],
        types=json.loads(row["types"]),
        compounds=json.loads(row["compounds"]),
        health=bool(row["health"]),
        active=bool(row["active"]),
        created_at=row["created_at"],
        pending=counts.get("pending", 0) + counts.get("sending", 0),
        sent=counts.get("sent", 0),
        dead=counts.get("dead", 0),
    )


def list_subscriptions(runtime: Runtime, caller: Caller) -> list[SubscriptionOut]:
    with runtime.database.reading() as session:
        rows = session.execute(select(subscriptions).order_by(subscriptions.c.created_at)).mappings().all()
        return [_out(session, dict(row)) for row in rows if _sees(caller, row)]


def get_subscription(runtime: Runtime, caller: Caller, subscription: str) -> SubscriptionOut:
    with runtime.database.reading() as session:
        return _out(session, _row(session, caller, subscription))


def set_active(runtime: Runtime, caller: Caller, subscription: str, active: bool) -> SubscriptionOut:
    """Pause (its events queue up and wait) or resume (they go, in order)."""
    with runtime.database.unit_of_work() as session:
        _row(session, caller, subscription)
        session.execute(
            update(subscriptions)
            .where(subscriptions.c.subscription == subscription)
            .values(active=active, changed_at=utcnow())
        )
        if active:
            runtime.wake_after_commit(session, DISPATCH_JOB)
        return _out(session, _row(session, caller, subscription))


def replay(runtime: Runtime, caller: Caller, subscription: str, body: ReplayIn) -> Replayed:
    """Queue again, after what is queued, the events notify received from a position or an event on.

    The replayed deliveries carry the same ``webhook-id`` (the event's id) and a ``juwei-replay`` header.
    """
    if (body.from_event is None) == (body.from_position is None):
        raise Invalid("give from_event, or service with from_position", code="replay-start")
    if body.from_position is not None and body.service is None:
        raise Invalid("from_position needs the service whose feed it is a position of", code="replay-start")
    replay_id = uuid.uuid4().hex
    group = runtime.group
    with runtime.database.unit_of_work() as session:
        _row(session, caller, subscription)
        start = 0
        if body.from_event is not None:
            found = session.execute(
                select(inbox_table.c.seq).where(
                    inbox_table.c.consumer == group, inbox_table.c.event_id == body.from_event
                )
            ).scalar()
            if found is None:
                raise NotFound(f"notify has received no event {body.from_event}", code="event-unknown")
            start = found - 1
        prefix = f"juwei.{body.service}." if body.service else None
        queued, after = 0, start
        while True:
            query = (
                select(inbox_table.c.seq, inbox_table.c.envelope)
                .where(inbox_table.c.consumer == group, inbox_table.c.seq > after)
                .order_by(inbox_table.c.seq)
                .limit(REPLAY_BATCH)
            )
            if prefix is not None:
                query = query.where(inbox_table.c.type.startswith(prefix))
            rows = session.execute(query).all()
            if not rows:
                break
            after = rows[-1].seq
            batch = [(Envelope.from_cloudevent(json.loads(row.envelope)), row.seq) for row in rows]
            if body.from_position is not None:
                batch = [(e, seq) for e, seq in batch if (e.position or 0) >= body.from_position]
            queued += queue(runtime, session, batch, replay=replay_id, only=subscription)
        if queued:
            runtime.wake_after_commit(session, DISPATCH_JOB)
    return Replayed(replay=replay_id, queued=queued)


def delivery_log(
    runtime: Runtime, caller: Caller, subscription: str, after: int, limit: int, status: str | None
) -> SubscriptionDeliveries:
    """The subscription's deliveries, oldest first, each with every attempt (status code, time, duration)."""
    with runtime.database.reading() as session:
        _row(session, caller, subscription)
        query = (
            select(subscription_deliveries)
            .where(subscription_deliveries.c.subscription == subscription, subscription_deliveries.c.id > after)
            .order_by(subscription_deliveries.c.id)
            .limit(limit)
        )
        if status is not None:
            query = query.where(subscription_deliveries.c.status == status)
        rows = session.execute(query).mappings().all()
        tried: dict[int, list[SubscriptionAttemptOut]] = {}
        if rows:
            for a in session.execute(
                select(subscription_attempts)
                .where(subscription_attempts.c.delivery_id.in_([row["id"] for row in rows]))
                .order_by(subscription_attempts.c.seq)
            ).mappings():
                tried.setdefault(a["delivery_id"], []).append(
                    SubscriptionAttemptOut(
                        attempt=a["attempt"],
                        at=a["at"],
                        outcome=a["outcome"],
                        status_code=a["status_code"],
                        code=a["code"],
                        duration_ms=a["duration_ms"],
                    )
                )
    return SubscriptionDeliveries(
        deliveries=[
            SubscriptionDeliveryOut(
                id=row["id"],
                event_id=row["event_id"],
                event_type=row["event_type"],
                compound=row["compound"],
                position=row["position"],
                replay=row["replay"] or None,
                status=row["status"],
                attempts=tried.get(row["id"], []),
                created_at=row["created_at"],
                sent_at=row["sent_at"],
                last_code=row["last_code"],
            )
            for row in rows
        ],
        next_after=rows[-1]["id"] if rows else after,
    )
