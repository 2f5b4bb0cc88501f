"""The dispatcher: one process's loop over the channels with something due, each under its lease.

The chat bots and e-mail (no idempotency): for each delivery, claim it (``pending → sending`` in its own small
transaction, renewing the lease), send it, and record the outcome at once in a second transaction. Idempotent,
unpaced channels are served together (``together``).
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
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx
import structlog
from opentelemetry.trace import SpanKind
from sqlalchemy import select, update

from juwei import tracing
from juwei.events import utcnow
from juwei.failpoints import failpoint
from juwei.service import Runtime
from services.notify.channels import Outcome, Outgoing, Sender, sender_for
from services.notify.dispatch.digests import Digests
from services.notify.dispatch.pacing import Pacing
from services.notify.dispatch.policy import ChannelInfo, Claimed, DispatchPolicy, aware
from services.notify.dispatch.statements import CHANNELS, CLAIM_COLUMNS, DUE_KINDS, claimed_delivery
from services.notify.dispatch.subscribers import Subscribers
from services.notify.dispatch.together import Together
from services.notify.domain import (
    IDEMPOTENT_CHANNELS,
    Due,
    RateLimit,
    building_label,
    plan_batch,
)
from services.notify.handlers import DISPATCH_JOB
from services.notify.views import channel_state, deliveries, messages

log = structlog.get_logger("notify.dispatch")


class Dispatcher(Together, Digests, Pacing, Subscribers):
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
            sent += sum(future.result() for future in futures)
        else:
            sent += sum(self.serve(channel) for channel in alone)
        return sent + self.serve_subscriptions()

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
        moments = [max(m for m in (aware(r[0]), aware(r[1])) if m is not None) for r in rows]
        subscribed = self.next_subscription_due()
        return min([*moments, *([subscribed] if subscribed else [])], default=None)

    def due_channels(self) -> list[str]:
        return sorted(self._due_kinds())

    def _due_kinds(self) -> dict[str, str | None]:
        """Channels with due work (or orphans) whose lease is free or ours, with their kind."""
        with self.runtime.database.reading() as session:
            rows = session.connection().execute(DUE_KINDS, {"now": self.clock(), "owner": self.owner}).all()
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
        if state.get("broken") or (aware(state.get("blocked_until")) or now) > now:
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
        # The send joins the trace the delivery was queued in (the event's handling, or the announcement).
        with tracing.span(
            "deliver",
            parent=claimed.traceparent,
            kind=SpanKind.CLIENT,
            attributes={
                "juwei.compound": info.compound,
                "juwei.building": info.building,
                "juwei.channel": info.channel,
                "juwei.channel.kind": info.kind,
                "juwei.delivery": claimed.delivery,
                "juwei.message": claimed.message or "",
                "juwei.attempt": claimed.attempt,
            },
        ) as span:
            try:
                outcome = sender.send(outgoing)
            except Exception as exc:  # a sender bug: we cannot know whether anything left
                outcome = Outcome("uncertain", f"error:{type(exc).__name__}", str(exc)[:300])
            tracing.note(span, **{"juwei.outcome": outcome.kind, "juwei.outcome.code": outcome.code})
            if outcome.kind != "sent":
                tracing.failed(span, outcome.kind)
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
                    select(deliveries.c.id, *CLAIM_COLUMNS)
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
        return None if row is None else claimed_delivery(info, row, now)

    def _channel(self, channel: str) -> ChannelInfo | None:
        return self._channels([channel]).get(channel)

    def _channels(self, names: Sequence[str]) -> dict[str, ChannelInfo]:
        """The channels named, read in one query (those that no longer exist are left out)."""
        if not names:
            return {}
        with self.runtime.database.reading() as session:
            rows = session.connection().execute(CHANNELS, {"names": list(names)}).mappings().all()
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
