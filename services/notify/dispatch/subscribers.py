"""Webhook subscriptions' deliveries, with the dispatcher's leases, claims, retries and orphan rule.

Per subscription, one dispatcher at a time holds a lease (a ``notify_channel_state`` row named
``subscription:<id>``). A round recovers what a dead process left in ``sending``, claims per building (lane) its
oldest pending delivery, if due, and those after it, sends each lane in order (lanes side by side) and records
every outcome in one transaction. A failure keeps the rest of its lane back (in order per building) and is
retried with backoff until ``max_attempts``, then given up (``dead``, counted in
``notify_deliveries_undelivered_total{kind="subscription"}``, an operator alerted): the lane goes on.

A process killed between sending and recording leaves its claims in ``sending``; the next holder of the lease
sends them again, as notify does for every idempotent channel: the subscriber dedupes on ``webhook-id`` (the
event's id, the same on every attempt).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import func, select, update

from juwei.failpoints import failpoint
from services.notify.dispatch.leases import Leases
from services.notify.dispatch.outcomes import OUTCOMES, UNDELIVERED
from services.notify.dispatch.policy import aware
from services.notify.domain import backoff
from services.notify.subscriptions.domain import Queued, due_runs, signature
from services.notify.views import subscription_attempts, subscription_deliveries, subscriptions

log = structlog.get_logger("notify.dispatch")

KIND = "subscription"  # its label in the delivery metrics
LEASE_PREFIX = "subscription:"
ROUND_MAX = 500  # deliveries of one subscription claimed in one round, over all its lanes
UNDELIVERED.labels(KIND, "dead")  # at zero from the start, like the channels' kinds
UNDELIVERED.labels(KIND, "uncertain")  # never counted: a webhook in doubt is sent again


@dataclass(frozen=True)
class Sending:
    id: int
    lane: str
    event_id: str
    body: str
    attempt: int
    replay: str


@dataclass(frozen=True)
class Answer:
    outcome: str  # sent | rate_limited | transient
    status_code: int | None
    code: str
    retry_after: float | None = None
    duration_ms: int = 0


def send(client: httpx.Client, url: str, secret: str, item: Sending) -> Answer:
    """One signed POST (Standard Webhooks headers); any answer but 2xx is retried."""
    body = item.body.encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "webhook-id": item.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, item.event_id, timestamp, body),
    }
    if item.replay:
        headers["juwei-replay"] = item.replay
    started = time.monotonic()
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:  # nothing arrived, or we do not know: either way it goes again
        elapsed = int((time.monotonic() - started) * 1000)
        return Answer("transient", None, f"http:{type(exc).__name__}", duration_ms=elapsed)
    elapsed = int((time.monotonic() - started) * 1000)
    status = response.status_code
    if 200 <= status < 300:
        return Answer("sent", status, f"http:{status}", duration_ms=elapsed)
    if status == 429:
        try:
            retry = float(response.headers.get("retry-after", ""))
        except ValueError:
            retry = None
        return Answer("rate_limited", status, "http:429", retry, elapsed)
    return Answer("transient", status, f"http:{status}", duration_ms=elapsed)


class Subscribers(Leases):
    """The subscriptions' rounds, for the dispatcher (``Dispatcher.run_once`` serves them after the channels)."""

    client: httpx.Client
    senders: ThreadPoolExecutor
    alert: Callable[..., None]

    def serve_subscriptions(self) -> int:
        """A round for every active subscription with due work or orphans whose lease we can take."""
        total = 0
        for subscription in self._subscriptions_due():
            if not self._take_lease(LEASE_PREFIX + subscription):
                continue
            try:
                total += self._serve_subscription(subscription)
            except Exception as exc:  # one subscription must not stop the others; the tick retries it
                log.error("notify.subscription_failed", subscription=subscription, error=repr(exc))
        return total

    def _subscriptions_due(self) -> list[str]:
        now = self.clock()
        query = (
            select(subscription_deliveries.c.subscription)
            .join(subscriptions, subscriptions.c.subscription == subscription_deliveries.c.subscription)
            .where(
                subscriptions.c.active.is_(True),
                (subscription_deliveries.c.status == "sending")
                | (
                    (subscription_deliveries.c.status == "pending") & (subscription_deliveries.c.next_attempt_at <= now)
                ),
            )
            .distinct()
        )
        with self.runtime.database.reading() as session:
            return sorted(session.execute(query).scalars())

    def next_subscription_due(self) -> datetime | None:
        """When the next pending delivery of an active subscription falls due (for ``drain``)."""
        query = (
            select(func.min(subscription_deliveries.c.next_attempt_at))
            .join(subscriptions, subscriptions.c.subscription == subscription_deliveries.c.subscription)
            .where(subscriptions.c.active.is_(True), subscription_deliveries.c.status.in_(["pending", "sending"]))
        )
        with self.runtime.database.reading() as session:
            return aware(session.execute(query).scalar())

    def _serve_subscription(self, subscription: str) -> int:
        self._recover_subscription_orphans(subscription)
        claimed = self._claim_subscription(subscription)
        if not claimed:
            return 0
        with self.runtime.database.reading() as session:
            row = session.execute(
                select(subscriptions.c.config).where(subscriptions.c.subscription == subscription)
            ).first()
            config = self.runtime.vault.unseal(session, f"subscription-{subscription}", row.config if row else None)
        if config is None:  # its secret was shredded: nothing can be signed, nothing goes
            self._record_subscription(subscription, [(item, None) for lane in claimed.values() for item in lane])
            return 0
        url, secret = config["url"], config["secret"]

        def send_lane(lane: list[Sending]) -> list[tuple[Sending, Answer | None]]:
            results: list[tuple[Sending, Answer | None]] = []
            stopped = False
            for item in lane:
                if stopped:
                    results.append((item, None))  # held behind a failure: back in the queue, in order
                    continue
                answer = send(self.client, url, secret, item)
                failpoint("notify.subscription_after_send")  # between sending and recording, for the crash test
                results.append((item, answer))
                stopped = answer.outcome != "sent"
            return results

        lanes = list(self.senders.map(send_lane, list(claimed.values())))
        results = [result for lane in lanes for result in lane]
        self._record_subscription(subscription, results)
        return sum(1 for _, answer in results if answer is not None)

    def _recover_subscription_orphans(self, subscription: str) -> None:
        """Claims a dead process left in ``sending``: back to pending, sent again (the subscriber dedupes)."""
        with self.runtime.database.reading() as session:
            if not session.execute(
                select(subscription_deliveries.c.id)
                .where(
                    subscription_deliveries.c.subscription == subscription,
                    subscription_deliveries.c.status == "sending",
                )
                .limit(1)
            ).first():
                return  # the usual case, found by a read
        now = self.clock()
        with self.runtime.database.unit_of_work() as session:
            rows = session.execute(
                select(subscription_deliveries.c.id, subscription_deliveries.c.attempts).where(
                    subscription_deliveries.c.subscription == subscription,
                    subscription_deliveries.c.status == "sending",
                )
            ).all()
            session.execute(
                update(subscription_deliveries)
                .where(subscription_deliveries.c.id.in_([row.id for row in rows]))
                .values(status="pending", claimed_by=None, last_code="orphaned", next_attempt_at=now)
            )
            if rows:
                session.execute(
                    subscription_attempts.insert(),
                    [
                        {
                            "delivery_id": row.id,
                            "subscription": subscription,
                            "attempt": row.attempts,
                            "at": now,
                            "outcome": "orphaned",
                            "status_code": None,
                            "code": "orphaned",
                            "duration_ms": 0,
                        }
                        for row in rows
                    ],
                )
        if rows:
            self.alert(
                what="subscription deliveries orphaned by a dead process: sent again (the subscriber dedupes)",
                subscription=subscription,
                kind=KIND,
                code="orphaned",
                deliveries=len(rows),
                resent=True,
            )

    def _claim_subscription(self, subscription: str) -> dict[str, list[Sending]]:
        """Claim, per lane, its oldest pending delivery if due and those after it (up to ``per_tick`` a lane)."""
        now, name = self.clock(), LEASE_PREFIX + subscription
        with self.runtime.database.unit_of_work() as session:
            held, until = self._renew_lease(session, [name], now)
            claimed: dict[str, list[Sending]] = {}
            if held:
                pending = [
                    Queued(row.id, row.lane, aware(row.next_attempt_at) or now)
                    for row in session.execute(
                        select(
                            subscription_deliveries.c.id,
                            subscription_deliveries.c.lane,
                            subscription_deliveries.c.next_attempt_at,
                        )
                        .where(
                            subscription_deliveries.c.subscription == subscription,
                            subscription_deliveries.c.status == "pending",
                        )
                        .order_by(subscription_deliveries.c.id)
                        .limit(ROUND_MAX * 10)
                    )
                ]
                runs = due_runs(pending, now, self.policy.per_tick)
                ids = [i for run in runs.values() for i in run][:ROUND_MAX]
                if any(len(run) >= self.policy.per_tick for run in runs.values()) or len(ids) == ROUND_MAX:
                    self.more_due = True
                if ids:
                    session.execute(
                        update(subscription_deliveries)
                        .where(subscription_deliveries.c.id.in_(ids), subscription_deliveries.c.status == "pending")
                        .values(
                            status="sending", attempts=subscription_deliveries.c.attempts + 1, claimed_by=self.owner
                        )
                    )
                    for row in session.execute(
                        select(subscription_deliveries)
                        .where(
                            subscription_deliveries.c.id.in_(ids),
                            subscription_deliveries.c.claimed_by == self.owner,
                            subscription_deliveries.c.status == "sending",
                        )
                        .order_by(subscription_deliveries.c.id)
                    ).mappings():
                        claimed.setdefault(row["lane"], []).append(
                            Sending(
                                row["id"], row["lane"], row["event_id"], row["body"], row["attempts"], row["replay"]
                            )
                        )
        self._hold([name], held, until)
        return claimed

    def _record_subscription(self, subscription: str, results: Sequence[tuple[Sending, Answer | None]]) -> None:
        """Every outcome of a round in one transaction; metrics and alerts once it has committed."""
        now = self.clock()
        given_up: list[Sending] = []
        counted: list[str] = []
        with self.runtime.database.unit_of_work() as session:
            mine = (subscription_deliveries.c.claimed_by == self.owner) & (
                subscription_deliveries.c.status == "sending"
            )
            attempts: list[dict[str, Any]] = []
            for item, answer in results:
                where = (subscription_deliveries.c.id == item.id) & mine
                if answer is None:  # never attempted: back in the queue as it was
                    session.execute(
                        update(subscription_deliveries)
                        .where(where)
                        .values(status="pending", claimed_by=None, attempts=subscription_deliveries.c.attempts - 1)
                    )
                    continue
                values: dict[str, Any] = {"claimed_by": None, "last_code": answer.code[:60]}
                outcome = answer.outcome
                if outcome == "sent":
                    values.update(status="sent", sent_at=now)
                elif item.attempt >= self.policy.max_attempts:
                    values.update(status="dead")
                    outcome = "dead"
                else:
                    delay = backoff(item.attempt, self.policy.retry_base, self.policy.retry_cap, self.rng)
                    delay = max(delay, answer.retry_after or 0.0)
                    values.update(status="pending", next_attempt_at=now + timedelta(seconds=delay))
                if not session.execute(update(subscription_deliveries).where(where).values(**values)).rowcount:
                    log.warning("notify.claim_lost", subscription=subscription, delivery=item.id)
                    continue  # another dispatcher took the lease over (ours ran out mid-send) and settles it
                if outcome == "dead":
                    given_up.append(item)
                counted.append(answer.outcome)
                attempts.append(
                    {
                        "delivery_id": item.id,
                        "subscription": subscription,
                        "attempt": item.attempt,
                        "at": now,
                        "outcome": outcome,
                        "status_code": answer.status_code,
                        "code": answer.code[:60],
                        "duration_ms": answer.duration_ms,
                    }
                )
            if attempts:
                session.execute(subscription_attempts.insert(), attempts)
        for outcome in counted:
            OUTCOMES.labels(KIND, outcome).inc()
        for item in given_up:
            UNDELIVERED.labels(KIND, "dead").inc()
            self.alert(
                what="subscription delivery given up",
                subscription=subscription,
                kind=KIND,
                event_id=item.event_id,
                attempts=item.attempt,
                lane=item.lane,
            )
