"""Channels served together: signed webhooks (their receiver dedupes on ``X-Juwei-Delivery``) without a rate limit.

One transaction claims the due deliveries of all such channels of the round, they are sent (channels side by
side, each channel's in order), and one transaction records every outcome and, for the channels whose sends all
went through, claims their next round (up to ``rounds_together`` rounds back to back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import update

from juwei.session import Session
from services.notify.channels import Outcome, Sender
from services.notify.dispatch.leases import Leases
from services.notify.dispatch.orphans import Orphans
from services.notify.dispatch.outcomes import Outcomes
from services.notify.dispatch.policy import ChannelInfo, Claimed
from services.notify.dispatch.statements import CLAIM_MANY, DUE_TOGETHER, claimed_delivery
from services.notify.views import deliveries

log = structlog.get_logger("notify.dispatch")


class Together(Leases, Orphans, Outcomes):
    """Rounds of many idempotent, unpaced channels: one claim, the sends side by side, one record."""

    senders: ThreadPoolExecutor

    # The dispatcher's own (dispatcher.Dispatcher).
    _goes_together: Callable[[str | None], bool]
    _channels: Callable[[Sequence[str]], dict[str, ChannelInfo]]
    _sender: Callable[[ChannelInfo], Sender]
    _send: Callable[[ChannelInfo, Claimed, Sender], tuple[Outcome, int]]

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
        rows = connection.execute(DUE_TOGETHER, {"held": held, "now": now, "take": cap + 1}).all()
        taken: dict[str, list[Any]] = {}
        for row in rows:
            batch = taken.setdefault(row.channel, [])
            if len(batch) < cap:
                batch.append(row)
            else:
                self.more_due = True
        ids = [row.id for batch in taken.values() for row in batch]
        won = (
            set(connection.execute(CLAIM_MANY, {"ids": ids, "owner": self.owner, "now": now}).scalars())
            if ids
            else set()
        )
        claimed = {
            channel: [claimed_delivery(infos[channel], row, now) for row in batch if row.id in won]
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
