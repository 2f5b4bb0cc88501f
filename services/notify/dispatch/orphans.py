"""Orphans: deliveries a dead process left in ``sending``, found by the next holder of the channel's lease.

The chat bots and e-mail cannot be asked "did you get this?" and have no idempotency key, so such a delivery is
marked ``uncertain``, not sent again (at most once), and an operator is alerted; a signed webhook carries our
delivery id for its receiver to dedupe on, so it is simply sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import select, update

from contracts.notify import (
    DeliveryUncertain,
)
from juwei.events import DomainEvent
from juwei.session import Session
from services.notify.dispatch.outcomes import UNDELIVERED
from services.notify.dispatch.policy import ChannelInfo, Seat
from services.notify.dispatch.statements import ORPHANED
from services.notify.domain import (
    IDEMPOTENT_CHANNELS,
)
from services.notify.views import attempts, deliveries


class Orphans(Seat):
    """Recovering what a dead process left in flight, and cancelling what a detached channel still had queued."""

    _append: Callable[[Session, ChannelInfo, str, DomainEvent], None]  # outcomes.Outcomes

    def _orphaned(self, channels_held: Sequence[str]) -> set[str]:
        """Which of our channels have deliveries in ``sending``: none of ours is in flight between rounds."""
        with self.runtime.database.reading() as session:
            return set(session.connection().execute(ORPHANED, {"channels": list(channels_held)}).scalars())

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
            if info.kind not in IDEMPOTENT_CHANNELS:
                UNDELIVERED.labels(info.kind, "uncertain").inc()
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
