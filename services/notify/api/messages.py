"""Announcements, the messages sent to building groups, and each message's delivery log."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update

from contracts.notify import DeliveryRequeued
from juwei.auth import CompoundId, LocalId
from juwei.events import utcnow
from juwei.paging import Limit
from juwei.problems import Problem
from services.notify import handlers
from services.notify.api.common import Anyone, Command, StaffOnly, global_id, local_id, require_group, runtime_of
from services.notify.domain import Texts, has_id_number
from services.notify.views import attempts, board_items, channels, deliveries, groups, messages

router = APIRouter(tags=["messages"])


class AnnouncementIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "明日全员核酸",
                    "body": "明天 7:00 起按楼层分批下楼采样，请听楼栋群通知，不要提前下楼。",
                    "buildings": None,
                    "priority": "important",
                }
            ]
        },
    )
    title: str = Field(min_length=1, max_length=120)
    body: str = Field("", max_length=4000)
    title_en: str = Field("", max_length=200)
    body_en: str = Field("", max_length=6000)
    buildings: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]] | None = Field(
        None, description="the buildings whose groups get it; none: every group of the compound", max_length=500
    )
    priority: Literal["normal", "important", "critical"] = "normal"


class Composed(BaseModel):
    message: str
    buildings: list[str]
    deliveries: int


@router.post(
    "/compounds/{compound}/announcements",
    status_code=201,
    response_model=Composed,
    summary="Broadcast a policy or notice to chosen buildings or the whole compound",
)
def announce(compound: CompoundId, body: AnnouncementIn, request: Request, caller: StaffOnly) -> Composed:
    caller.require_scope(compound)
    for text in (body.title, body.body, body.title_en, body.body_en):
        if has_id_number(text):
            raise Problem(
                422, "the text contains what looks like an ID-card number: never broadcast one", "identity-in-text"
            )
    local = f"a-{uuid.uuid4().hex[:12]}"
    command = Command(request, caller, compound)
    with command.unit():
        session = command.session
        if body.buildings is None:
            targets = list(session.execute(select(groups.c.building).where(groups.c.compound == compound)).scalars())
            if not targets:
                raise Problem(409, "the compound has no building groups yet", "no-building")
        else:
            for building in body.buildings:
                caller.require_scope(compound, building)
            targets = [require_group(session, compound, b) for b in body.buildings]
        handlers.compose(
            command.runtime,
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


@router.get("/compounds/{compound}/messages", summary="Messages sent to the compound's groups, newest first")
def list_messages(
    compound: CompoundId,
    request: Request,
    caller: Anyone,
    building: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")] = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    caller.require_scope(compound, building)
    query = select(messages).where(messages.c.compound == compound)
    if building is not None:
        query = query.where(
            messages.c.message.in_(
                select(board_items.c.message).where(board_items.c.building == global_id(compound, building))
            )
        )
    with runtime_of(request).database.reading() as session:
        rows = session.execute(query.order_by(messages.c.position.desc()).limit(limit)).mappings().all()
        counts: dict[str, dict[str, int]] = {}
        for message, status, count in session.execute(
            select(deliveries.c.message, deliveries.c.status, func.count())
            .where(deliveries.c.message.in_([row["message"] for row in rows]))
            .group_by(deliveries.c.message, deliveries.c.status)
        ):
            counts.setdefault(message, {})[status] = count
    return {"messages": [_message_out(row, counts.get(row["message"], {})) for row in rows]}


def _attempts_of(session: Any, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
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


@router.get("/compounds/{compound}/messages/{message}", summary="One message and its delivery log (every attempt)")
def get_message(compound: CompoundId, message: LocalId, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    target = global_id(compound, message)
    with runtime_of(request).database.reading() as session:
        row = session.execute(select(messages).where(messages.c.message == target)).mappings().first()
        if row is None:
            raise Problem(404, f"no message {message}", "not-found")
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


@router.get(
    "/compounds/{compound}/deliveries",
    summary="Deliveries by status: dead letters and uncertain ones are what an operator must look at",
)
def list_deliveries(
    compound: CompoundId,
    request: Request,
    caller: StaffOnly,
    status: Annotated[str, Query(pattern=r"^[a-z,]+$")] = "dead,uncertain",
    limit: Limit = 100,
) -> dict[str, Any]:
    caller.require_scope(compound)
    wanted = [s for s in status.split(",") if s]
    with runtime_of(request).database.reading() as session:
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


class Requeued(BaseModel):
    delivery: str
    status: str
    next_attempt_at: datetime


@router.post(
    "/compounds/{compound}/deliveries/{delivery}/requeue",
    response_model=Requeued,
    summary="Send a dead-lettered or uncertain delivery again (after fixing the channel)",
)
def requeue(
    compound: CompoundId,
    delivery: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")],
    request: Request,
    caller: StaffOnly,
) -> Requeued:
    caller.require_scope(compound)
    now = utcnow()
    runtime = runtime_of(request)
    with runtime.database.unit_of_work() as session:
        row = (
            session.execute(
                select(deliveries).where(deliveries.c.delivery == delivery, deliveries.c.compound == compound)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise Problem(404, f"no delivery {delivery}", "not-found")
        if row["status"] not in ("dead", "uncertain"):
            raise Problem(
                409,
                f"delivery {delivery} is {row['status']}: only dead or uncertain ones are requeued",
                "not-requeueable",
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
