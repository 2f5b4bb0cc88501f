"""Outcomes: each delivery's fate recorded the moment it is known (the attempt, the new status, the event).

A rate-limit answer makes the delivery wait (exponential backoff with jitter, at least the platform's own pause)
and blocks the channel until then; a permanent error dead-letters it and alerts an operator; an error about the
channel itself pauses the channel until an operator reconfigures it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy import update

from contracts.notify import (
    DeliveryDeadLettered,
    DeliveryFailed,
    DeliverySent,
    DeliveryUncertain,
)
from juwei.events import DomainEvent
from juwei.session import Session
from services.notify.channels import Outcome
from services.notify.dispatch.policy import ChannelInfo, Claimed, Seat
from services.notify.dispatch.statements import INSERT_ATTEMPTS, SENT_MANY
from services.notify.domain import (
    CHANNEL_KINDS,
    backoff,
)
from services.notify.views import attempts, channel_state, deliveries

log = structlog.get_logger("notify.dispatch")

OUTCOMES = Counter(
    "notify_delivery_attempts_total", "Delivery attempts by channel kind and outcome", ["kind", "outcome"]
)
# What an operator must look at: a delivery given up (``dead``: a permanent error, or the last attempt failed) or
# ``uncertain`` (it may have arrived, and is never resent). deploy/prometheus/alerts.yml pages on its increase.
UNDELIVERED = Counter(
    "notify_deliveries_undelivered_total",
    "Deliveries given up (dead) or uncertain (may have arrived, not resent), by channel kind",
    ["kind", "outcome"],
)
for _kind in CHANNEL_KINDS:  # at zero from the start: the first one after a restart is an increase too
    for _outcome in ("dead", "uncertain"):
        UNDELIVERED.labels(_kind, _outcome)
LATENCY = Histogram(
    "notify_delivery_latency_seconds",
    "From queued to acknowledged by the platform",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)


class Outcomes(Seat):
    """Writing outcomes: one at a time, or a round's successes in bulk."""

    def _record(self, info: ChannelInfo, claimed: Claimed, outcome: Outcome, elapsed_ms: int) -> None:
        with self.runtime.database.unit_of_work() as session:
            settled = self._settle(session, info, claimed, outcome, elapsed_ms)
        settled()

    def _settle(
        self, session: Session, info: ChannelInfo, claimed: Claimed, outcome: Outcome, elapsed_ms: int
    ) -> Callable[[], None]:
        """Write one outcome into ``session``; returns what to do once it has committed (metrics, alerts)."""
        now = self.clock()
        common = {
            "delivery": claimed.delivery,
            "message": claimed.message,
            "channel": info.channel,
            "building": info.building,
            "attempt": claimed.attempt,
        }
        values: dict[str, Any] = {"last_code": outcome.code[:60], "claimed_by": None}
        event: DomainEvent
        kind = outcome.kind
        block_until: datetime | None = None
        alert = False
        if kind == "sent":
            values.update(status="sent", sent_at=now)
            event = DeliverySent(**common)
        elif kind in ("rate_limited", "transient") and not (
            kind == "transient" and claimed.attempt >= self.policy.max_attempts
        ):
            delay = backoff(claimed.attempt, self.policy.retry_base, self.policy.retry_cap, self.rng)
            if kind == "rate_limited":
                pause = outcome.retry_after or self.policy.rate_limit_pause.get(info.kind, 60.0)
                delay = max(delay, pause)
                block_until = now + timedelta(seconds=pause)
            retry_at = now + timedelta(seconds=delay)
            values.update(status="pending", next_attempt_at=retry_at)
            event = DeliveryFailed(**common, reason=kind, code=outcome.code[:60], retry_at=retry_at)
        elif kind == "uncertain":
            values.update(status="uncertain")
            event = DeliveryUncertain(**common, code=outcome.code[:60])
            alert = True
        else:  # permanent, or transient for the last time
            code = outcome.code if kind == "permanent" else f"gave-up:{outcome.code}"
            values.update(status="dead")
            event = DeliveryDeadLettered(**common, code=code[:60], channel_broken=outcome.channel_broken)
            alert = True
        changed = session.execute(
            update(deliveries)
            .where(
                deliveries.c.id == claimed.id,
                deliveries.c.claimed_by == self.owner,
                deliveries.c.status == "sending",
            )
            .values(**values)
        ).rowcount
        session.execute(
            attempts.insert().values(
                delivery_id=claimed.id,
                channel=info.channel,
                attempt=claimed.attempt,
                at=now,
                outcome=kind,
                requested=outcome.requested,
                code=outcome.code[:60],
                detail=outcome.detail[:1000],
                duration_ms=elapsed_ms,
            )
        )
        if not changed:
            # Another dispatcher took the channel over (our lease ran out mid-send) and settled it.
            log.warning("notify.claim_lost", delivery=claimed.delivery, outcome=kind)
            return lambda: None
        if block_until is not None:
            self._set_state(session, info.channel, blocked_until=block_until)
        if outcome.channel_broken:
            self._set_state(session, info.channel, broken=f"{outcome.code}: {outcome.detail}"[:500])
        self._append(session, info, claimed.delivery, event)

        def committed() -> None:
            OUTCOMES.labels(info.kind, kind).inc()
            if kind == "sent":
                LATENCY.labels(info.kind).observe(max(0.0, (now - claimed.created_at).total_seconds()))
            if alert:
                UNDELIVERED.labels(info.kind, "uncertain" if kind == "uncertain" else "dead").inc()
                self.alert(
                    what="delivery " + ("uncertain: not resent" if kind == "uncertain" else "dead-lettered"),
                    delivery=claimed.delivery,
                    channel=info.channel,
                    kind=info.kind,
                    code=outcome.code,
                    channel_broken=outcome.channel_broken,
                )

        return committed

    def _settle_sent(
        self, session: Session, sent: Sequence[tuple[ChannelInfo, Claimed, Outcome, int]]
    ) -> Callable[[], None]:
        """``_settle`` for many successes at once: a statement per table, not per delivery (the usual round)."""
        now = self.clock()
        by_code: dict[str, list[int]] = {}
        for _, item, outcome, _ in sent:
            by_code.setdefault(outcome.code[:60], []).append(item.id)
        owned: set[int] = set()
        connection = session.connection()
        for code, ids in by_code.items():
            owned.update(
                connection.execute(SENT_MANY, {"ids": ids, "owner": self.owner, "now": now, "code": code}).scalars()
            )
        connection.execute(
            INSERT_ATTEMPTS,
            [
                {
                    "delivery_id": item.id,
                    "channel": info.channel,
                    "attempt": item.attempt,
                    "at": now,
                    "outcome": "sent",
                    "requested": outcome.requested,
                    "code": outcome.code[:60],
                    "detail": outcome.detail[:1000],
                    "duration_ms": elapsed,
                }
                for info, item, outcome, elapsed in sent
            ],
        )
        for _, item, _, _ in sent:
            if item.id not in owned:  # another dispatcher took the channel over (our lease ran out) and settled it
                log.warning("notify.claim_lost", delivery=item.delivery, outcome="sent")
        ours = [(info, item) for info, item, _, _ in sent if item.id in owned]
        self.runtime.store.append_many(
            session,
            [
                (
                    f"delivery-{item.delivery}",
                    [
                        DeliverySent(
                            delivery=item.delivery,
                            message=item.message,
                            channel=info.channel,
                            building=info.building,
                            attempt=item.attempt,
                        )
                    ],
                    None,
                    info.compound,
                )
                for info, item in ours
            ],
        )

        def committed() -> None:
            for info, item in ours:
                OUTCOMES.labels(info.kind, "sent").inc()
                LATENCY.labels(info.kind).observe(max(0.0, (now - item.created_at).total_seconds()))

        return committed

    def _append(self, session: Session, info: ChannelInfo, delivery: str, event: DomainEvent) -> None:
        self.runtime.store.append(
            session, f"delivery-{delivery}", [event], expected_version=None, compound=info.compound
        )

    def _set_state(self, session: Session, channel: str, **values: Any) -> None:
        changed = session.execute(update(channel_state).where(channel_state.c.channel == channel).values(**values))
        if not changed.rowcount:
            session.execute(channel_state.insert().values(channel=channel, **values))
