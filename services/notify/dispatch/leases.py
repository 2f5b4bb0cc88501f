"""Leases: per channel, one dispatcher at a time, so the rate limit holds however many notify processes run.

A dispatcher keeps its leases from round to round, renews one when half of it has gone, and hands them back
when the service stops (a killed process's channels wait until its leases run out).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from juwei.session import Session
from services.notify.dispatch.policy import Seat
from services.notify.dispatch.statements import RENEW
from services.notify.views import channel_state

log = structlog.get_logger("notify.dispatch")


class Leases(Seat):
    """Taking, renewing and handing back the leases on channels."""

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
        held = session.connection().execute(RENEW, {"wanted": list(wanted), "owner": self.owner, "until": until})
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
