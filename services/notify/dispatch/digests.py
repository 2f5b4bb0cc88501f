"""Digests: over a platform's rate limit, a channel's backlog is merged into one delivery (``domain.plan_batch``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog
from sqlalchemy import select, update

from contracts.notify import (
    DigestComposed,
)
from juwei.events import DomainEvent
from juwei.session import Session
from services.notify.dispatch.policy import ChannelInfo, Seat
from services.notify.dispatch.statements import note_unsent
from services.notify.domain import (
    PRIORITIES,
    DigestItem,
    Due,
    digest_text,
)
from services.notify.handlers import queue
from services.notify.views import deliveries, messages

log = structlog.get_logger("notify.dispatch")


class Digests(Seat):
    """Merging a channel's backlog into one digest, with the link to the building's board."""

    _append: Callable[[Session, ChannelInfo, str, DomainEvent], None]  # outcomes.Outcomes

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
            note_unsent(session, info, merged_ids, now, "digested", "", f"merged into digest {digest.delivery}")
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
