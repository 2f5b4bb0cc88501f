"""The dispatcher: pending deliveries out to the platforms, each outcome recorded the moment it is known.

A periodic job of the service, woken as soon as a unit of work has committed new deliveries (the fan-out
calls ``Runtime.wake_after_commit``); its tick (``JUWEI_NOTIFY_DISPATCH_SECONDS``) only serves retries,
deliveries held for quiet hours and channels waiting for their platform. Per channel, one dispatcher at a
time holds a lease (``notify_channel_state``), so the rate limit holds however many notify processes run.
A dispatcher keeps its leases from round to round and renews one when half of it has gone; it hands them
back when the service stops (a killed process's channels wait until its leases run out).

The chat bots and e-mail (no idempotency): for each delivery,

1. claim it: ``pending → sending`` in its own small transaction (and renew the lease);
2. send it (one HTTP request or one SMTP transaction);
3. record the outcome at once in a second transaction (the attempt, the new status, the event).

Signed webhooks (their receiver dedupes on ``X-Juwei-Delivery``) and without a rate limit: one
transaction claims the due deliveries of all such channels of the round, they are sent (channels side by
side, each channel's in order), and one transaction records every outcome and, for the channels whose sends
all went through, claims their next round (up to ``rounds_together`` rounds back to back).

For the bots the window that remains is between 2 and 3: the request has left and its outcome is not yet
committed — the platform's answer time plus one small commit. A process killed inside it leaves the
delivery in ``sending`` (for webhooks: every delivery of the round). The next holder of the channel's
lease finds it there: the chat bots and e-mail cannot be asked "did you get this?" and have no
idempotency key, so it is marked ``uncertain``, *not* sent again (at most once), and an operator is
alerted and may requeue it; a signed webhook carries our delivery id (``X-Juwei-Delivery``) for its
receiver to dedupe on, so it is simply sent again.

Over a platform's rate limit, the backlog is merged into one digest (``domain.plan_batch``). A rate-limit
answer makes the delivery wait (exponential backoff with jitter, at least the platform's own pause) and
blocks the channel until then; a permanent error dead-letters it and alerts an operator; an error about
the channel itself (bad key, bad signature) also pauses the channel until an operator reconfigures it.
Quiet hours hold non-critical deliveries to people's phones until they end.

Retries are hand-made rather than tenacity's: a retry is not slept in the process but written as the
delivery's ``next_attempt_at``, so it survives a restart, frees the worker for other channels, and any
notify process may make it.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contracts.notify import (
    DeliveryDeadLettered,
    DeliveryFailed,
    DeliverySent,
    DeliveryUncertain,
    DigestComposed,
)
from juwei.events import DomainEvent, utcnow
from juwei.failpoints import failpoint
from juwei.service import Runtime
from services.notify.channels import Outcome, Outgoing, Sender, sender_for
from services.notify.domain import (
    IDEMPOTENT_CHANNELS,
    PEOPLE_CHANNELS,
    PLATFORM_LIMITS,
    PRIORITIES,
    DigestItem,
    Due,
    QuietWindow,
    RateLimit,
    backoff,
    building_label,
    digest_text,
    plan_batch,
)
from services.notify.handlers import DISPATCH_JOB, queue
from services.notify.views import attempts, channel_state, channels, deliveries, groups, messages, quiet_hours

log = structlog.get_logger("notify.dispatch")

OUTCOMES = Counter(
    "notify_delivery_attempts_total", "Delivery attempts by channel kind and outcome", ["kind", "outcome"]
)
LATENCY = Histogram(
    "notify_delivery_latency_seconds",
    "From queued to acknowledged by the platform",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class DispatchPolicy:
    """How the dispatcher paces itself; every figure can be set from the environment (see the README)."""

    tick: float = 0.25
    lease_seconds: float = 30.0  # longer than one send (http_timeout) plus its two commits
    http_timeout: float = 10.0
    retry_base: float = 2.0
    retry_cap: float = 900.0
    max_attempts: int = 8
    per_tick: int = 25  # sends per channel per tick: keeps a tick short when a Feishu bot paces at 5/s
    workers: int = 4  # channels served side by side
    rounds_together: int = 8  # rounds of idempotent channels run back to back before due channels are looked up again
    # How long a platform wants us to stop after it said "too fast" (DingTalk blocks a bot for 10 minutes).
    rate_limit_pause: dict[str, float] = field(
        default_factory=lambda: {"wecom": 60.0, "dingtalk": 600.0, "feishu": 60.0, "email": 60.0, "webhook": 30.0}
    )
    limits: dict[str, RateLimit] = field(default_factory=lambda: dict(PLATFORM_LIMITS))
    public_url: str | None = None  # where residents reach this service, for board links in digests

    @classmethod
    def from_env(cls) -> DispatchPolicy:
        base = cls()
        pause = os.environ.get("JUWEI_NOTIFY_RATE_LIMIT_PAUSE")
        return replace(
            base,
            tick=_env_float("JUWEI_NOTIFY_DISPATCH_SECONDS", base.tick),
            lease_seconds=_env_float("JUWEI_NOTIFY_LEASE_SECONDS", base.lease_seconds),
            http_timeout=_env_float("JUWEI_NOTIFY_HTTP_TIMEOUT", base.http_timeout),
            retry_base=_env_float("JUWEI_NOTIFY_RETRY_BASE", base.retry_base),
            retry_cap=_env_float("JUWEI_NOTIFY_RETRY_CAP", base.retry_cap),
            max_attempts=int(_env_float("JUWEI_NOTIFY_MAX_ATTEMPTS", base.max_attempts)),
            workers=max(1, int(_env_float("JUWEI_NOTIFY_WORKERS", base.workers))),
            rate_limit_pause={k: float(pause) for k in base.rate_limit_pause} if pause else base.rate_limit_pause,
            public_url=os.environ.get("JUWEI_NOTIFY_PUBLIC_URL") or None,
        )


@dataclass(frozen=True)
class ChannelInfo:
    channel: str
    compound: str
    building: str
    kind: str
    language: str
    config: str
    active: bool
    label: str  # the building's number, for texts


@dataclass(frozen=True)
class Claimed:
    id: int
    delivery: str
    message: str | None
    priority: str
    attempt: int
    created_at: datetime
    title: str
    body: str


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


# What a claim reads of a delivery (and of its message) to send it.
_CLAIM_COLUMNS = (
    deliveries.c.delivery,
    deliveries.c.message,
    deliveries.c.priority,
    deliveries.c.attempts,
    deliveries.c.created_at,
    deliveries.c.digest_title,
    deliveries.c.digest_body,
    messages.c.title_zh,
    messages.c.body_zh,
    messages.c.title_en,
    messages.c.body_en,
)


# A round's statements, built once and run on the connection: building a statement and Session.execute's ORM
# path cost more than SQLite's own work, and the dispatcher runs a round for every unit of work that queues.
_NOW, _OWNER = bindparam("now"), bindparam("owner")
_LEASE_FREE = or_(
    channel_state.c.lease_owner.is_(None), channel_state.c.lease_until < _NOW, channel_state.c.lease_owner == _OWNER
)
# Channels with due work (or orphans) whose lease is free or ours, with their kind.
_DUE_KINDS = (
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
                deliveries.c.next_attempt_at <= _NOW,
                channel_state.c.broken.is_(None),
                or_(channel_state.c.blocked_until.is_(None), channel_state.c.blocked_until <= _NOW),
            ),
            deliveries.c.status == "sending",  # orphans of a dead process (checked under the lease)
        ),
        or_(channel_state.c.channel.is_(None), _LEASE_FREE),
    )
    .distinct()
)
_CHANNELS = (
    select(channels, groups.c.number)
    .select_from(channels.outerjoin(groups, groups.c.building == channels.c.building))
    .where(channels.c.channel.in_(bindparam("names", expanding=True)))
)
_ORPHANED = (
    select(deliveries.c.channel)
    .where(deliveries.c.channel.in_(bindparam("channels", expanding=True)), deliveries.c.status == "sending")
    .distinct()
)
_RENEW = (
    update(channel_state)
    .where(channel_state.c.channel.in_(bindparam("wanted", expanding=True)), channel_state.c.lease_owner == _OWNER)
    .values(lease_until=bindparam("until"))
    .returning(channel_state.c.channel)
)
_RANKED = (
    select(
        deliveries.c.id,
        func.row_number().over(partition_by=deliveries.c.channel, order_by=deliveries.c.id).label("rank"),
    )
    .select_from(deliveries.outerjoin(channel_state, channel_state.c.channel == deliveries.c.channel))
    .where(
        deliveries.c.channel.in_(bindparam("held", expanding=True)),
        deliveries.c.status == "pending",
        deliveries.c.next_attempt_at <= _NOW,
        channel_state.c.broken.is_(None),
        or_(channel_state.c.blocked_until.is_(None), channel_state.c.blocked_until <= _NOW),
    )
    .subquery()
)
# Up to ``take`` due deliveries of each channel, with what sending them needs.
_DUE_TOGETHER = (
    select(deliveries.c.id, deliveries.c.channel, *_CLAIM_COLUMNS)
    .select_from(
        deliveries.join(_RANKED, _RANKED.c.id == deliveries.c.id).outerjoin(
            messages, messages.c.message == deliveries.c.message
        )
    )
    .where(_RANKED.c.rank <= bindparam("take"))
    .order_by(deliveries.c.id)
)
_CLAIM_MANY = (
    update(deliveries)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)), deliveries.c.status == "pending")
    .values(status="sending", attempts=deliveries.c.attempts + 1, claimed_by=_OWNER, claimed_at=_NOW)
    .returning(deliveries.c.id)
)
_SENT_MANY = (
    update(deliveries)
    .where(
        deliveries.c.id.in_(bindparam("ids", expanding=True)),
        deliveries.c.claimed_by == _OWNER,
        deliveries.c.status == "sending",
    )
    .values(status="sent", sent_at=_NOW, last_code=bindparam("code"), claimed_by=None)
    .returning(deliveries.c.id)
)
_INSERT_ATTEMPTS = attempts.insert()


def _note_unsent(
    session: Session, info: ChannelInfo, ids: Sequence[int], now: datetime, outcome: str, code: str, detail: str
) -> None:
    """One attempt row per delivery the dispatcher handled without a request (digested, deferred)."""
    if not ids:
        return
    session.execute(
        _INSERT_ATTEMPTS,
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


def _claimed(info: ChannelInfo, row: Any, now: datetime) -> Claimed:
    """A claimed delivery in the channel's language, from a row of ``_CLAIM_COLUMNS`` read before the claim."""
    if row.message is None:
        title, body = row.digest_title or "", row.digest_body or ""
    elif info.language == "en" and (row.title_en or row.body_en):
        title, body = row.title_en, row.body_en
    else:
        title, body = row.title_zh or "", row.body_zh or ""
    return Claimed(
        row.id, row.delivery, row.message, row.priority, row.attempts + 1, _aware(row.created_at) or now, title, body
    )


class Dispatcher:
    """One process's dispatcher; ``run_once`` serves every channel with something due."""

    def __init__(
        self,
        runtime: Runtime,
        policy: DispatchPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.runtime = runtime
        self.policy = policy or DispatchPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.client = httpx.Client(timeout=self.policy.http_timeout)
        self.pool = ThreadPoolExecutor(max_workers=self.policy.workers, thread_name_prefix="notify-dispatch")
        # Sends of the channels served together; apart from ``pool``, where a paced bot may sleep.
        self.senders = ThreadPoolExecutor(max_workers=self.policy.workers, thread_name_prefix="notify-send")
        self._configs: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        # Leases this dispatcher holds and until when (as committed): kept across rounds, renewed at half-time.
        self._held: dict[str, datetime] = {}
        # Set by ``run_once`` when a channel had more due than one round sends: run again without a tick.
        self.more_due = False
        # Called with every operator alert besides the log line (a pager, a test).
        self.on_alert: list[Callable[[dict[str, Any]], None]] = []

    def alert(self, **details: Any) -> None:
        log.error("notify.operator_alert", **details)
        for hook in self.on_alert:
            hook(details)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.senders.shutdown(wait=True)
        self._release_leases()
        self.client.close()

    # --- the loop ---------------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Serve every channel with due work once; returns how many requests went out."""
        self.more_due = False
        due = self._due_kinds()
        together = sorted(channel for channel, kind in due.items() if self._goes_together(kind))
        alone = sorted(channel for channel in due if channel not in together)
        pooled = len(alone) > 1 and self.policy.workers > 1
        futures = [self.pool.submit(self.serve, channel) for channel in alone] if pooled else []
        sent = self.serve_together(together) if together else 0
        if pooled:
            return sent + sum(future.result() for future in futures)
        return sent + sum(self.serve(channel) for channel in alone)

    def _goes_together(self, kind: str | None) -> bool:
        """Resending is harmless and nothing paces it: claimed and recorded with other channels, in bulk."""
        limit = self.policy.limits.get(kind or "", RateLimit())
        return kind in IDEMPOTENT_CHANNELS and not limit.windows

    def drain(self, timeout: float = 30.0) -> int:
        """Run until nothing is due now (tests and the CLI); returns requests sent."""
        total, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = self.run_once()
            total += sent
            if sent or self.due_channels():
                continue
            upcoming = self._next_due()
            if upcoming is None:
                break
            wait = (upcoming - self.clock()).total_seconds()
            if wait > deadline - time.monotonic():
                break  # later than we were asked to wait (held for quiet hours, say)
            time.sleep(min(max(wait, 0.01), self.policy.tick))
        return total

    def _next_due(self) -> datetime | None:
        """When the next pending delivery falls due, counting channels blocked by a platform (not broken ones)."""
        with self.runtime.database.reading() as session:
            rows = session.execute(
                select(deliveries.c.next_attempt_at, channel_state.c.blocked_until)
                .select_from(deliveries.outerjoin(channel_state, channel_state.c.channel == deliveries.c.channel))
                .where(deliveries.c.status == "pending", channel_state.c.broken.is_(None))
            ).all()
        moments = [max(m for m in (_aware(r[0]), _aware(r[1])) if m is not None) for r in rows]
        return min(moments, default=None)

    def due_channels(self) -> list[str]:
        return sorted(self._due_kinds())

    def _due_kinds(self) -> dict[str, str | None]:
        """Channels with due work (or orphans) whose lease is free or ours, with their kind."""
        with self.runtime.database.reading() as session:
            rows = session.connection().execute(_DUE_KINDS, {"now": self.clock(), "owner": self.owner}).all()
            return {row.channel: row.kind for row in rows}

    def serve(self, channel: str) -> int:
        """One planning round for one channel, under its lease."""
        if not self._take_lease(channel):
            return 0
        try:
            info = self._channel(channel)
            if info is None:
                return 0
            self._recover_orphans(info)
            if not info.active:
                self._cancel_pending(info)
                return 0
            return self._serve(info)
        except Exception as exc:  # one broken channel must not stop the others; the tick retries it
            log.error("notify.dispatch_failed", channel=channel, error=repr(exc))
            return 0

    def _serve(self, info: ChannelInfo) -> int:
        now = self.clock()
        state = self._state(info.channel)
        if state.get("broken") or (_aware(state.get("blocked_until")) or now) > now:
            return 0
        due = self._due(info, now)
        if not due:
            return 0
        limit = self.policy.limits.get(info.kind, RateLimit())
        requested = self._recent_requests(info.channel, limit, now)
        sender = self._sender(info)
        digests = [d for d, is_digest in due if is_digest]  # already merged: they always go alone
        room = limit.long_budget(requested, now)
        alone, merged = plan_batch(
            [d for d, is_digest in due if not is_digest], None if room is None else max(0, room - len(digests))
        )
        batch = [*digests, *alone]
        if merged:
            batch.append(self._digest(info, merged, sender.max_bytes))
        sent = 0
        for item in batch[: self.policy.per_tick]:
            wait = (limit.next_slot(requested, self.clock()) - self.clock()).total_seconds()
            if wait > 1.5:
                break  # the long window is full: a later tick goes on
            if wait > 0:
                time.sleep(wait)  # pacing within a short window (Feishu: 5 per second)
            outcome = self._deliver(info, item, sender)
            if outcome is None:
                continue
            sent += 1
            if outcome.requested:
                requested.append(self.clock())
            if outcome.kind == "rate_limited" or outcome.channel_broken:
                break  # the rest waits for the channel
        return sent

    # --- channels served together (idempotent, unpaced: the signed webhook) ---------------------------

    def serve_together(self, names: Sequence[str]) -> int:
        """Rounds for many channels: one transaction claims their due deliveries, one records the outcomes.

        The transaction that records a round also claims the next one (up to ``rounds_together`` rounds), on
        every such channel whose lease we hold except those where a send did not go through: one commit a
        round instead of two, and no re-reading of which channels are due in between. Only for channels
        whose receiver dedupes on our delivery id: a crash between claiming and recording leaves every
        claimed delivery in ``sending``, and the next holder of the lease sends them all again.
        """
        try:
            asked = set(names)
            with self._lock:
                # Channels whose lease we keep join in: what is queued for them during the rounds goes too.
                candidates = sorted(asked | set(self._held))
            infos: dict[str, ChannelInfo] = {}
            for info in self._channels([channel for channel in candidates if self._take_lease(channel)]).values():
                if info.channel not in asked and not self._goes_together(info.kind):
                    continue  # a paced or non-idempotent channel we hold: served alone
                if info.active:
                    infos[info.channel] = info
                else:
                    self._recover_orphans(info)
                    self._cancel_pending(info)
            for channel in self._orphaned(list(infos)):
                self._recover_orphans(infos[channel])
            claimed = self._claim_together(infos)
            total = 0
            for number in range(1, self.policy.rounds_together + 1):
                if not claimed:
                    break
                rounds = list(self.senders.map(self._send_all, [infos[c] for c in claimed], list(claimed.values())))
                total += sum(1 for _, sent in rounds for _, outcome, _ in sent if outcome is not None)
                if number == self.policy.rounds_together:
                    self._record_together(infos, rounds, {})
                    self.more_due = True  # maybe more: the next run looks again, with every due channel
                    break
                # Go on without the channels where a send did not go through (they wait for their retry).
                troubled = {
                    channel
                    for channel, sent in rounds
                    if any(outcome is None or outcome.kind != "sent" for _, outcome, _ in sent)
                }
                smooth = {channel: info for channel, info in infos.items() if channel not in troubled}
                claimed = self._record_together(infos, rounds, smooth)
            return total
        except Exception as exc:  # claimed but unrecorded ones stay in ``sending``: the next round resends them
            log.error("notify.dispatch_failed", channels=len(names), error=repr(exc))
            return 0

    def _claim_together(self, infos: dict[str, ChannelInfo]) -> dict[str, list[Claimed]]:
        """Claim up to ``per_tick`` due deliveries of each channel that is neither broken nor blocked."""
        if not infos:
            return {}
        with self.runtime.database.unit_of_work() as session:
            claimed, held, until = self._claim_in(session, infos)
        self._hold(list(infos), held, until)
        return claimed

    def _claim_in(
        self, session: Session, infos: dict[str, ChannelInfo]
    ) -> tuple[dict[str, list[Claimed]], list[str], datetime]:
        """The claim, inside ``session``; ``_hold`` (held, until) once it has committed."""
        now, cap = self.clock(), self.policy.per_tick
        held, until = self._renew_lease(session, list(infos), now)
        connection = session.connection()
        # One more than we take: tells whether more is due.
        rows = connection.execute(_DUE_TOGETHER, {"held": held, "now": now, "take": cap + 1}).all()
        taken: dict[str, list[Any]] = {}
        for row in rows:
            batch = taken.setdefault(row.channel, [])
            if len(batch) < cap:
                batch.append(row)
            else:
                self.more_due = True
        ids = [row.id for batch in taken.values() for row in batch]
        won = (
            set(connection.execute(_CLAIM_MANY, {"ids": ids, "owner": self.owner, "now": now}).scalars())
            if ids
            else set()
        )
        claimed = {
            channel: [_claimed(infos[channel], row, now) for row in batch if row.id in won]
            for channel, batch in taken.items()
        }
        return {channel: batch for channel, batch in claimed.items() if batch}, held, until

    def _send_all(
        self, info: ChannelInfo, claimed: Sequence[Claimed]
    ) -> tuple[str, list[tuple[Claimed, Outcome | None, int]]]:
        """Send one channel's claimed deliveries in order; ``None``: not sent (the channel stopped taking them)."""
        try:
            sender = self._sender(info)
        except Exception as exc:  # its configuration cannot be read: nothing left, all go back to pending
            log.error("notify.sender_unavailable", channel=info.channel, error=repr(exc))
            return info.channel, [(item, None, 0) for item in claimed]
        results: list[tuple[Claimed, Outcome | None, int]] = []
        stopped = False
        for item in claimed:
            if stopped:
                results.append((item, None, 0))
                continue
            outcome, elapsed = self._send(info, item, sender)
            results.append((item, outcome, elapsed))
            stopped = outcome.kind == "rate_limited" or outcome.channel_broken  # the rest waits for the channel
        return info.channel, results

    def _record_together(
        self,
        infos: dict[str, ChannelInfo],
        rounds: Sequence[tuple[str, list[tuple[Claimed, Outcome | None, int]]]],
        next_round: dict[str, ChannelInfo],
    ) -> dict[str, list[Claimed]]:
        """Record a round's outcomes and, in the same transaction, claim the next round of ``next_round``."""
        settled: list[Callable[[], None]] = []
        claimed: dict[str, list[Claimed]] = {}
        renewed: tuple[list[str], datetime] | None = None
        with self.runtime.database.unit_of_work() as session:
            sent: list[tuple[ChannelInfo, Claimed, Outcome, int]] = []
            for channel, results in rounds:
                unsent = [item.id for item, outcome, _ in results if outcome is None]
                if unsent:  # never attempted: back in the queue as they were
                    session.execute(
                        update(deliveries)
                        .where(
                            deliveries.c.id.in_(unsent),
                            deliveries.c.claimed_by == self.owner,
                            deliveries.c.status == "sending",
                        )
                        .values(status="pending", claimed_by=None, attempts=deliveries.c.attempts - 1)
                    )
                for item, outcome, elapsed in results:
                    if outcome is None:
                        continue
                    if outcome.kind == "sent":
                        sent.append((infos[channel], item, outcome, elapsed))
                    else:
                        settled.append(self._settle(session, infos[channel], item, outcome, elapsed))
            if sent:
                settled.append(self._settle_sent(session, sent))
            if next_round:
                claimed, *lease = self._claim_in(session, next_round)
                renewed = (lease[0], lease[1])
        if renewed is not None:
            self._hold(list(next_round), *renewed)
        for committed in settled:
            committed()
        return claimed

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
                connection.execute(_SENT_MANY, {"ids": ids, "owner": self.owner, "now": now, "code": code}).scalars()
            )
        connection.execute(
            _INSERT_ATTEMPTS,
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

    # --- one delivery -----------------------------------------------------------------------------------

    def _deliver(self, info: ChannelInfo, item: Due, sender: Sender) -> Outcome | None:
        claimed = self._claim(info, item.id)
        if claimed is None:
            return None
        outcome, elapsed = self._send(info, claimed, sender)
        self._record(info, claimed, outcome, elapsed)
        return outcome

    def _send(self, info: ChannelInfo, claimed: Claimed, sender: Sender) -> tuple[Outcome, int]:
        """One request to the platform; returns its outcome and how long it took (ms)."""
        outgoing = Outgoing(
            delivery=claimed.delivery,
            title=claimed.title,
            body=claimed.body,
            priority=claimed.priority,
            language=info.language,
            compound=info.compound,
            building=info.building.split(":", 1)[-1],
            message=claimed.message,
        )
        started = time.monotonic()
        try:
            outcome = sender.send(outgoing)
        except Exception as exc:  # a sender bug: we cannot know whether anything left
            outcome = Outcome("uncertain", f"error:{type(exc).__name__}", str(exc)[:300])
        failpoint("notify.after_send")  # the window between sending and recording, for the crash tests
        elapsed = int((time.monotonic() - started) * 1000)
        if outcome.kind == "uncertain" and info.kind in IDEMPOTENT_CHANNELS:
            outcome = replace(outcome, kind="transient")  # the receiver dedupes on X-Juwei-Delivery
        return outcome, elapsed

    def _claim(self, info: ChannelInfo, delivery_id: int) -> Claimed | None:
        now = self.clock()
        row: Any = None
        with self.runtime.database.unit_of_work() as session:
            held, until = self._renew_lease(session, [info.channel], now)
            if held:  # still ours: nobody took the channel over while we were away
                row = session.execute(
                    select(deliveries.c.id, *_CLAIM_COLUMNS)
                    .select_from(deliveries.outerjoin(messages, messages.c.message == deliveries.c.message))
                    .where(deliveries.c.id == delivery_id, deliveries.c.status == "pending")
                ).first()
            if (
                row is not None
                and not session.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id, deliveries.c.status == "pending")
                    .values(status="sending", attempts=deliveries.c.attempts + 1, claimed_by=self.owner, claimed_at=now)
                ).rowcount
            ):
                row = None
        self._hold([info.channel], held, until)
        return None if row is None else _claimed(info, row, now)

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
                self.alert(
                    what="delivery " + ("uncertain: not resent" if kind == "uncertain" else "dead-lettered"),
                    delivery=claimed.delivery,
                    channel=info.channel,
                    kind=info.kind,
                    code=outcome.code,
                    channel_broken=outcome.channel_broken,
                )

        return committed

    def _append(self, session: Session, info: ChannelInfo, delivery: str, event: DomainEvent) -> None:
        self.runtime.store.append(
            session, f"delivery-{delivery}", [event], expected_version=None, compound=info.compound
        )

    # --- digests ----------------------------------------------------------------------------------------

    def _digest(self, info: ChannelInfo, merged: Sequence[Due], max_bytes: int) -> Due:
        """Merge ``merged`` into one new delivery (same transaction): each keeps a log line naming the digest."""
        now = self.clock()
        ids = [d.id for d in merged]
        with self.runtime.database.unit_of_work() as session:
            rows = session.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.delivery,
                    deliveries.c.priority,
                    messages.c.title_zh,
                    messages.c.body_zh,
                    messages.c.title_en,
                    messages.c.body_en,
                )
                .select_from(deliveries.join(messages, messages.c.message == deliveries.c.message))
                .where(deliveries.c.id.in_(ids), deliveries.c.status == "pending")
                .order_by(deliveries.c.id)
            ).all()
            english = info.language == "en"
            items = [
                DigestItem(
                    (row.title_en or row.title_zh) if english else row.title_zh,
                    (row.body_en or row.body_zh) if english else row.body_zh,
                    row.priority,
                )
                for row in rows
            ]
            texts = digest_text(items, info.language, max_bytes - 200, self._board_link(session, info))
            priority = max((row.priority for row in rows), key=PRIORITIES.index, default="normal")
            key = f"digest|{info.channel}|{rows[0].id if rows else ids[0]}"
            queue(
                session,
                info.compound,
                key,
                None,
                info.building,
                info.channel,
                priority,
                now,
                digest_title=texts.title(info.language),
                digest_body=texts.body(info.language),
            )
            digest = session.execute(
                select(deliveries.c.id, deliveries.c.delivery).where(deliveries.c.delivery_key == key)
            ).one()
            merged_ids = [row.id for row in rows]
            session.execute(
                update(deliveries).where(deliveries.c.id.in_(merged_ids)).values(status="digested", digest=digest.id)
            )
            _note_unsent(session, info, merged_ids, now, "digested", "", f"merged into digest {digest.delivery}")
            self._append(
                session,
                info,
                digest.delivery,
                DigestComposed(
                    delivery=digest.delivery,
                    channel=info.channel,
                    building=info.building,
                    merged=[row.delivery for row in rows],
                ),
            )
        log.info("notify.digested", channel=info.channel, merged=len(rows))
        return Due(digest.id, priority, digest.id)

    def _board_link(self, session: Session, info: ChannelInfo) -> str | None:
        if not self.policy.public_url:
            return None
        from services.notify.application.board import token_for

        return f"{self.policy.public_url.rstrip('/')}/boards/{token_for(session, info.compound, info.building)}"

    # --- what is due ------------------------------------------------------------------------------------

    def _due(self, info: ChannelInfo, now: datetime) -> list[tuple[Due, bool]]:
        """Due deliveries as (planner item, is a digest); quiet hours defer the non-critical ones first."""
        window = self._quiet_window(info.compound) if info.kind in PEOPLE_CHANNELS else None
        local = now.astimezone(ZoneInfo(self.runtime.settings.timezone))
        with self.runtime.database.reading() as session:
            rows = session.execute(
                select(deliveries.c.id, deliveries.c.priority, deliveries.c.message)
                .where(
                    deliveries.c.channel == info.channel,
                    deliveries.c.status == "pending",
                    deliveries.c.next_attempt_at <= now,
                )
                .order_by(deliveries.c.id)
                .limit(1000)
            ).all()
        if window is not None and window.covers(local.time()):
            held = [row.id for row in rows if row.priority != "critical"]
            if held:
                self._defer(info, held, window.ends_after(local).astimezone(UTC), now)  # stored in UTC
            rows = [row for row in rows if row.priority == "critical"]
        return [(Due(row.id, row.priority, row.id), row.message is None) for row in rows]

    def _defer(self, info: ChannelInfo, ids: list[int], until: datetime, now: datetime) -> None:
        with self.runtime.database.unit_of_work() as session:
            session.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(ids), deliveries.c.status == "pending")
                .values(next_attempt_at=until)
            )
            _note_unsent(session, info, ids, now, "deferred", "quiet-hours", f"held until {until.isoformat()}")

    def _quiet_window(self, compound: str) -> QuietWindow | None:
        with self.runtime.database.reading() as session:
            row = session.execute(select(quiet_hours).where(quiet_hours.c.compound == compound)).first()
        return QuietWindow.parse(row.start, row.end) if row is not None else None

    def _recent_requests(self, channel: str, limit: RateLimit, now: datetime) -> list[datetime]:
        longest = limit.long_window
        if longest is None:
            return []
        with self.runtime.database.reading() as session:
            times = session.execute(
                select(attempts.c.at).where(
                    attempts.c.channel == channel,
                    attempts.c.requested.is_(True),
                    attempts.c.at > now - timedelta(seconds=longest[0]),
                )
            ).scalars()
            return [t for t in (_aware(moment) for moment in times) if t is not None]

    # --- channels, their secrets and their leases -------------------------------------------------------

    def _channel(self, channel: str) -> ChannelInfo | None:
        return self._channels([channel]).get(channel)

    def _channels(self, names: Sequence[str]) -> dict[str, ChannelInfo]:
        """The channels named, read in one query (those that no longer exist are left out)."""
        if not names:
            return {}
        with self.runtime.database.reading() as session:
            rows = session.connection().execute(_CHANNELS, {"names": list(names)}).mappings().all()
        return {
            row["channel"]: ChannelInfo(
                channel=row["channel"],
                compound=row["compound"],
                building=row["building"],
                kind=row["kind"],
                language=row["language"],
                config=row["config"],
                active=bool(row["active"]),
                label=building_label(row["number"], row["building"]),
            )
            for row in rows
        }

    def _sender(self, info: ChannelInfo) -> Sender:
        with self._lock:
            cached = self._configs.get(info.channel)
        if cached is None or cached[0] != info.config:
            with self.runtime.database.reading() as session:
                config = self.runtime.vault.unseal(session, info.channel, info.config) or {}
            cached = (info.config, config)
            with self._lock:
                self._configs[info.channel] = cached
        return sender_for(info.kind, cached[1], self.client, self.policy.http_timeout)

    def _state(self, channel: str) -> dict[str, Any]:
        with self.runtime.database.reading() as session:
            row = session.execute(select(channel_state).where(channel_state.c.channel == channel)).mappings().first()
        return dict(row) if row else {}

    def _set_state(self, session: Session, channel: str, **values: Any) -> None:
        changed = session.execute(update(channel_state).where(channel_state.c.channel == channel).values(**values))
        if not changed.rowcount:
            session.execute(channel_state.insert().values(channel=channel, **values))

    def _take_lease(self, channel: str) -> bool:
        now = self.clock()
        with self._lock:
            held = self._held.get(channel)
        if held is not None and (held - now).total_seconds() > self.policy.lease_seconds / 2:
            return True  # ours, committed, and far from running out: no transaction this round
        until = now + timedelta(seconds=self.policy.lease_seconds)
        taken = self._try_lease(channel, now, until)
        with self._lock:
            if taken:
                self._held[channel] = until
            else:
                self._held.pop(channel, None)
        return taken

    def _try_lease(self, channel: str, now: datetime, until: datetime) -> bool:
        try:
            with self.runtime.database.unit_of_work() as session:
                taken = session.execute(
                    update(channel_state)
                    .where(
                        channel_state.c.channel == channel,
                        or_(
                            channel_state.c.lease_owner.is_(None),
                            channel_state.c.lease_until < now,
                            channel_state.c.lease_owner == self.owner,
                        ),
                    )
                    .values(lease_owner=self.owner, lease_until=until)
                ).rowcount
                if taken:
                    return True
                exists = session.execute(
                    select(func.count()).select_from(channel_state).where(channel_state.c.channel == channel)
                ).scalar()
                if exists:
                    return False
                session.execute(
                    channel_state.insert().values(channel=channel, lease_owner=self.owner, lease_until=until)
                )
                return True
        except IntegrityError:
            return False  # another dispatcher created the row first: it holds the lease

    def _renew_lease(self, session: Session, wanted: Sequence[str], now: datetime) -> tuple[list[str], datetime]:
        """Push on our leases among ``wanted``; returns the channels still ours and the new end of their lease.

        Claims are made only for the channels returned; ``_hold`` them once the session has committed.
        """
        until = now + timedelta(seconds=self.policy.lease_seconds)
        held = session.connection().execute(_RENEW, {"wanted": list(wanted), "owner": self.owner, "until": until})
        return list(held.scalars()), until

    def _hold(self, wanted: Sequence[str], held: Sequence[str], until: datetime) -> None:
        """Note what a committed renewal gave: ``held`` are ours until ``until``, the rest of ``wanted`` are not."""
        with self._lock:
            for channel in wanted:
                self._held.pop(channel, None)
            for channel in held:
                self._held[channel] = until

    def _release_leases(self) -> None:
        """On the way out: let another notify process take our channels at once instead of after the lease."""
        with self._lock:
            held, self._held = list(self._held), {}
        if not held:
            return
        try:
            with self.runtime.database.unit_of_work() as session:
                session.execute(
                    update(channel_state)
                    .where(channel_state.c.channel.in_(held), channel_state.c.lease_owner == self.owner)
                    .values(lease_owner=None, lease_until=None)
                )
        except Exception as exc:  # they expire by themselves
            log.warning("notify.lease_release_failed", channels=len(held), error=repr(exc))

    def _orphaned(self, channels_held: Sequence[str]) -> set[str]:
        """Which of our channels have deliveries in ``sending``: none of ours is in flight between rounds."""
        with self.runtime.database.reading() as session:
            return set(session.connection().execute(_ORPHANED, {"channels": list(channels_held)}).scalars())

    def _recover_orphans(self, info: ChannelInfo) -> None:
        """Deliveries left in ``sending`` by a process that died between claiming and recording."""
        if not self._orphaned([info.channel]):
            return  # the usual case, found by a read: no write transaction for it
        now = self.clock()
        with self.runtime.database.unit_of_work() as session:
            rows = session.execute(
                select(deliveries.c.id, deliveries.c.delivery, deliveries.c.message, deliveries.c.attempts).where(
                    deliveries.c.channel == info.channel, deliveries.c.status == "sending"
                )
            ).all()
            for row in rows:
                again = info.kind in IDEMPOTENT_CHANNELS
                session.execute(
                    update(deliveries)
                    .where(deliveries.c.id == row.id, deliveries.c.status == "sending")
                    .values(
                        status="pending" if again else "uncertain",
                        claimed_by=None,
                        last_code="orphaned",
                        next_attempt_at=now,
                    )
                )
                session.execute(
                    attempts.insert().values(
                        delivery_id=row.id,
                        channel=info.channel,
                        attempt=row.attempts,
                        at=now,
                        # It most likely reached the platform: it counts against the rate limit.
                        outcome="transient" if again else "uncertain",
                        requested=True,
                        code="orphaned",
                        detail="the process sending it died before recording the outcome"
                        + ("; sent again (the receiver dedupes)" if again else "; not sent again"),
                        duration_ms=0,
                    )
                )
                if not again:
                    self._append(
                        session,
                        info,
                        row.delivery,
                        DeliveryUncertain(
                            delivery=row.delivery,
                            message=row.message,
                            channel=info.channel,
                            building=info.building,
                            attempt=row.attempts,
                            code="orphaned",
                        ),
                    )
        for row in rows:
            self.alert(
                what="delivery orphaned by a dead process",
                delivery=row.delivery,
                channel=info.channel,
                kind=info.kind,
                code="orphaned",
                resent=info.kind in IDEMPOTENT_CHANNELS,
            )

    def _cancel_pending(self, info: ChannelInfo) -> None:
        with self.runtime.database.unit_of_work() as session:
            session.execute(
                update(deliveries)
                .where(deliveries.c.channel == info.channel, deliveries.c.status == "pending")
                .values(status="cancelled", last_code="channel-detached")
            )


# One dispatcher per runtime (a process may hold several runtimes in tests).
_DISPATCHERS: weakref.WeakKeyDictionary[Runtime, Dispatcher] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def dispatcher_of(runtime: Runtime, policy: DispatchPolicy | None = None) -> Dispatcher:
    with _GUARD:
        found = _DISPATCHERS.get(runtime)
        if found is None:
            found = _DISPATCHERS[runtime] = Dispatcher(runtime, policy)
            runtime.on_stop.append(found.close)  # hands its leases back when the service stops
        return found


def job(policy: DispatchPolicy) -> Callable[[Runtime], None]:
    """The periodic job the service runs: serve what is due."""

    def dispatch_deliveries(runtime: Runtime) -> None:
        dispatcher = dispatcher_of(runtime, policy)
        dispatcher.run_once()
        if dispatcher.more_due:
            runtime.wake(DISPATCH_JOB)  # a channel had more than one round's worth: go on without a tick

    assert dispatch_deliveries.__name__ == DISPATCH_JOB  # the name handlers wake it by
    return dispatch_deliveries
