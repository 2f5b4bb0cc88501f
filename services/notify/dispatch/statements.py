"""A round's statements, built once and run on the connection; and the rows they read, as claims.

Building a statement and its cache lookup cost more than SQLite's own work, and the dispatcher runs a round for
every unit of work that queues.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update

from juwei.session import Session
from services.notify.dispatch.policy import ChannelInfo, Claimed, aware
from services.notify.views import attempts, channel_state, channels, deliveries, groups, messages

# What a claim reads of a delivery (and of its message) to send it.
CLAIM_COLUMNS = (
    deliveries.c.delivery,
    deliveries.c.message,
    deliveries.c.priority,
    deliveries.c.attempts,
    deliveries.c.created_at,
    deliveries.c.digest_title,
    deliveries.c.digest_body,
    deliveries.c.traceparent,
    messages.c.title_zh,
    messages.c.body_zh,
    messages.c.title_en,
    messages.c.body_en,
)


# A round's statements, built once and run on the connection (the module's docstring says why).
NOW, OWNER = bindparam("now"), bindparam("owner")
LEASE_FREE = or_(
    channel_state.c.lease_owner.is_(None), channel_state.c.lease_until < NOW, channel_state.c.lease_owner == OWNER
)
# Channels with due work (or orphans) whose lease is free or ours, with their kind.
DUE_KINDS = (
    select(deliveries.c.channel, channels.c.kind)
    .select_from(
        deliveries.outerjoin(channel_state, channel_state.c.channel == deliveries.c.channel).outerjoin(
            channels, channels.c.channel == deliveries.c.channel
        )
    )
    .where(
        or_(
            and_(
                deliveries.c.status == "pending",
                deliveries.c.next_attempt_at <= NOW,
                channel_state.c.broken.is_(None),
                or_(channel_state.c.blocked_until.is_(None), channel_state.c.blocked_until <= NOW),
            ),
            deliveries.c.status == "sending",  # orphans of a dead process (checked under the lease)
        ),
        or_(channel_state.c.channel.is_(None), LEASE_FREE),
    )
    .distinct()
)
CHANNELS = (
    select(channels, groups.c.number)
    .select_from(channels.outerjoin(groups, groups.c.building == channels.c.building))
    .where(channels.c.channel.in_(bindparam("names", expanding=True)))
)
ORPHANED = (
    select(deliveries.c.channel)
    .where(deliveries.c.channel.in_(bindparam("channels", expanding=True)), deliveries.c.status == "sending")
    .distinct()
)
RENEW = (
    update(channel_state)
    .where(channel_state.c.channel.in_(bindparam("wanted", expanding=True)), channel_state.c.lease_owner == OWNER)
    .values(lease_until=bindparam("until"))
    .returning(channel_state.c.channel)
)
RANKED = (
    select(
        deliveries.c.id,
        func.row_number().over(partition_by=deliveries.c.channel, order_by=deliveries.c.id).label("rank"),
    )
    .select_from(deliveries.outerjoin(channel_state, channel_state.c.channel == deliveries.c.channel))
    .where(
        deliveries.c.channel.in_(bindparam("held", expanding=True)),
        deliveries.c.status == "pending",
        deliveries.c.next_attempt_at <= NOW,
        channel_state.c.broken.is_(None),
        or_(channel_state.c.blocked_until.is_(None), channel_state.c.blocked_until <= NOW),
    )
    .subquery()
)
# Up to ``take`` due deliveries of each channel, with what sending them needs.
DUE_TOGETHER = (
    select(deliveries.c.id, deliveries.c.channel, *CLAIM_COLUMNS)
    .select_from(
        deliveries.join(RANKED, RANKED.c.id == deliveries.c.id).outerjoin(
            messages, messages.c.message == deliveries.c.message
        )
    )
    .where(RANKED.c.rank <= bindparam("take"))
    .order_by(deliveries.c.id)
)
CLAIM_MANY = (
    update(deliveries)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)), deliveries.c.status == "pending")
    .values(status="sending", attempts=deliveries.c.attempts + 1, claimed_by=OWNER, claimed_at=NOW)
    .returning(deliveries.c.id)
)
SENT_MANY = (
    update(deliveries)
    .where(
        deliveries.c.id.in_(bindparam("ids", expanding=True)),
        deliveries.c.claimed_by == OWNER,
        deliveries.c.status == "sending",
    )
    .values(status="sent", sent_at=NOW, last_code=bindparam("code"), claimed_by=None)
    .returning(deliveries.c.id)
)
INSERT_ATTEMPTS = attempts.insert()


def note_unsent(
    session: Session, info: ChannelInfo, ids: Sequence[int], now: datetime, outcome: str, code: str, detail: str
) -> None:
    """One attempt row per delivery the dispatcher handled without a request (digested, deferred)."""
    if not ids:
        return
    session.execute(
        INSERT_ATTEMPTS,
        [
            {
                "delivery_id": delivery_id,
                "channel": info.channel,
                "attempt": 0,
                "at": now,
                "outcome": outcome,
                "requested": False,
                "code": code,
                "detail": detail,
                "duration_ms": 0,
            }
            for delivery_id in ids
        ],
    )


def claimed_delivery(info: ChannelInfo, row: Any, now: datetime) -> Claimed:
    """A claimed delivery in the channel's language, from a row of ``CLAIM_COLUMNS`` read before the claim."""
    if row.message is None:
        title, body = row.digest_title or "", row.digest_body or ""
    elif info.language == "en" and (row.title_en or row.body_en):
        title, body = row.title_en, row.body_en
    else:
        title, body = row.title_zh or "", row.body_zh or ""
    return Claimed(
        row.id,
        row.delivery,
        row.message,
        row.priority,
        row.attempts + 1,
        aware(row.created_at) or now,
        title,
        body,
        row.traceparent,
    )
