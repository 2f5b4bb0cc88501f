"""Announcements, the messages sent to building groups, and each message's delivery log."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select, update

from contracts.ids import global_id, local_id
from contracts.notify import DeliveryRequeued
from juwei.aggregate import Conflict, Invalid, NotFound
from juwei.callers import Caller
from juwei.events import utcnow
from juwei.service import Runtime
from juwei.session import Session
from juwei.unit_of_work import UnitOfWork
from services.notify import handlers
from services.notify.application.groups import require_group
from services.notify.domain import Texts, has_id_number
from services.notify.models import AnnouncementIn, Composed, Requeued
from services.notify.views import attempts, board_items, channels, deliveries, groups, messages


def announce(unit: UnitOfWork, caller: Caller, body: AnnouncementIn) -> Composed:
    """Broadcast a policy or notice to chosen buildings or the whole compound (never an ID-card number)."""
    compound = unit.compound
    for text in (body.title, body.body, body.title_en, body.body_en):
        if has_id_number(text):
            raise Invalid(
                "the text contains what looks like an ID-card number: never broadcast one", code="identity-in-text"
            )
    local = f"a-{uuid.uuid4().hex[:12]}"
    with unit:
        session = unit.session
        if body.buildings is None:
            targets = list(session.execute(select(groups.c.building).where(groups.c.compound == compound)).scalars())
            if not targets:
                raise Conflict("the compound has no building groups yet", code="no-building")
        else:
            for building in body.buildings:
                caller.require_scope(compound, building)
            targets = [require_group(session, compound, b) for b in body.buildings]
        handlers.compose(
            unit.runtime,
            session,
            compound,
            message_id=global_id(compound, local),
            kind="announcement",
            priority=body.priority,
            buildings=targets,
            texts=Texts(body.title.strip(), body.body.strip(), body.title_en.strip(), body.body_en.strip()),
            template="announcement",
            actor=caller.key_id,
        )
        queued = session.execute(
            select(func.count()).select_from(deliveries).where(deliveries.c.message == global_id(compound, local))
        ).scalar()
    return Composed(message=local, buildings=sorted(local_id(t) for t in set(targets)), deliveries=int(queued or 0))


def _message_out(row: Any, counts: dict[str, int] | None = None) -> dict[str, Any]:
    out = {
        "message": local_id(row["message"]),
        "kind": row["kind"],
        "priority": row["priority"],
        "template": row["template"],
        "buildings": [local_id(b) for b in json.loads(row["buildings"])],
        "title": row["title_zh"],
        "body": row["body_zh"],
        "title_en": row["title_en"],
        "body_en": row["body_en"],
        "composed_at": row["composed_at"],
    }
    if counts is not None:
        out["deliveries"] = counts
    return out


def list_messages(runtime: Runtime, caller: Caller, compound: str, building: str | None, limit: int) -> dict[str, Any]:
    """Messages sent to the compound's groups (or to one building's), newest first."""
    caller.require_scope(compound, building)
    query = select(messages).where(messages.c.compound == compound)
    if building is not None:
        query = query.where(
            messages.c.message.in_(
                select(board_items.c.message).where(board_items.c.building == global_id(compound, building))
            )
        )
    with runtime.database.reading() as session:
        rows = session.execute(query.order_by(messages.c.position.desc()).limit(limit)).mappings().all()
        counts: dict[str, dict[str, int]] = {}
        for message, status, count in session.execute(
            select(deliveries.c.message, deliveries.c.status, func.count())
            .where(deliveries.c.message.in_([row["message"] for row in rows]))
            .group_by(deliveries.c.message, deliveries.c.status)
        ):
            counts.setdefault(message, {})[status] = count
    return {"messages": [_message_out(row, counts.get(row["message"], {})) for row in rows]}


def _attempts_of(session: Session, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for row in session.execute(
        select(attempts).where(attempts.c.delivery_id.in_(ids)).order_by(attempts.c.seq)
    ).mappings():
        found.setdefault(row["delivery_id"], []).append(
            {
                "attempt": row["attempt"],
                "at": row["at"],
                "outcome": row["outcome"],
                "code": row["code"],
                "detail": row["detail"],
                "duration_ms": row["duration_ms"],
            }
        )
    return found


def _delivery_out(row: Any, log: list[dict[str, Any]], digest: str | None = None) -> dict[str, Any]:
    return {
        "delivery": row["delivery"],
        "building": local_id(row["building"]),
        "channel": local_id(row["channel"]),
        "kind": row.get("kind"),
        "message": local_id(row["message"]) if row["message"] else None,
        "priority": row["priority"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": row["next_attempt_at"] if row["status"] == "pending" else None,
        "sent_at": row["sent_at"],
        "digest": digest,
        "log": log,
    }


def get_message(runtime: Runtime, compound: str, message: str) -> dict[str, Any]:
    """One message and its delivery log (every attempt)."""
    target = global_id(compound, message)
    with runtime.database.reading() as session:
        row = session.execute(select(messages).where(messages.c.message == target)).mappings().first()
        if row is None:
            raise NotFound(f"no message {message}")
        rows = (
            session.execute(
                select(deliveries, channels.c.kind)
                .select_from(deliveries.join(channels, channels.c.channel == deliveries.c.channel))
                .where(deliveries.c.message == target)
                .order_by(deliveries.c.building, deliveries.c.channel)
            )
            .mappings()
            .all()
        )
        digests = {d for d in (r["digest"] for r in rows) if d is not None}
        digest_rows = {
            d.id: d
            for d in session.execute(
                select(deliveries.c.id, deliveries.c.delivery, deliveries.c.status, deliveries.c.sent_at).where(
                    deliveries.c.id.in_(digests)
                )
            )
        }
        logs = _attempts_of(session, [r["id"] for r in rows] + list(digests))
    out = []
    for r in rows:
        log = list(logs.get(r["id"], []))
        digest = digest_rows.get(r["digest"]) if r["digest"] is not None else None
        if digest is not None:
            log += [{**entry, "via_digest": digest.delivery} for entry in logs.get(digest.id, [])]
        out.append(_delivery_out(r, log, digest.delivery if digest else None))
    return {**_message_out(row), "delivery_log": out}


def list_deliveries(runtime: Runtime, compound: str, status: str, limit: int) -> dict[str, Any]:
    """Deliveries by status: dead letters and uncertain ones are what an operator must look at."""
    wanted = [s for s in status.split(",") if s]
    with runtime.database.reading() as session:
        rows = (
            session.execute(
                select(deliveries, channels.c.kind)
                .select_from(deliveries.join(channels, channels.c.channel == deliveries.c.channel))
                .where(deliveries.c.compound == compound, deliveries.c.status.in_(wanted))
                .order_by(deliveries.c.id.desc())
                .limit(limit)
            )
            .mappings()
            .all()
        )
        logs = _attempts_of(session, [r["id"] for r in rows])
    return {"deliveries": [_delivery_out(r, logs.get(r["id"], [])) for r in rows]}


def requeue(runtime: Runtime, caller: Caller, compound: str, delivery: str) -> Requeued:
    """Send a dead-lettered or uncertain delivery again (after fixing the channel)."""
    now = utcnow()
    with runtime.database.unit_of_work() as session:
        row = (
            session.execute(
                select(deliveries).where(deliveries.c.delivery == delivery, deliveries.c.compound == compound)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no delivery {delivery}")
        if row["status"] not in ("dead", "uncertain"):
            raise Conflict(
                f"delivery {delivery} is {row['status']}: only dead or uncertain ones are requeued",
                code="not-requeueable",
            )
        session.execute(
            update(deliveries).where(deliveries.c.id == row["id"]).values(status="pending", next_attempt_at=now)
        )
        session.execute(
            attempts.insert().values(
                delivery_id=row["id"],
                channel=row["channel"],
                attempt=row["attempts"],
                at=now,
                outcome="requeued",
                requested=False,
                code="",
                detail=f"requeued by key {caller.key_id}",
                duration_ms=0,
            )
        )
        runtime.store.append(
            session,
            f"delivery-{delivery}",
            [DeliveryRequeued(delivery=delivery, channel=row["channel"], building=row["building"])],
            expected_version=None,
            compound=compound,
            actor=caller.key_id,
        )
    return Requeued(delivery=delivery, status="pending", next_attempt_at=now)
