"""What is due on a channel now: quiet hours hold non-critical deliveries to people's phones, a platform's
rate limit counts the requests of its longest window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from services.notify.dispatch.policy import ChannelInfo, Seat, aware
from services.notify.dispatch.statements import note_unsent
from services.notify.domain import (
    PEOPLE_CHANNELS,
    Due,
    QuietWindow,
    RateLimit,
)
from services.notify.views import attempts, deliveries, quiet_hours


class Pacing(Seat):
    """Due deliveries, deferred for quiet hours, and the requests that count against a rate limit."""

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
            note_unsent(session, info, ids, now, "deferred", "quiet-hours", f"held until {until.isoformat()}")

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
            return [t for t in (aware(moment) for moment in times) if t is not None]
