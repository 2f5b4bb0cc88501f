"""The live building board's links and notices: a page per building group, readable on a phone.

Residents open it from a link posted in their group; the link carries an unguessable token (no API key on a
phone), which staff can rotate. A notice's position is that of its ``MessageComposed`` event in notify's log,
stable across a rebuild of the read models, so a page that lost its stream resumes and misses nothing.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from juwei.aggregate import NotFound
from juwei.callers import Caller
from juwei.events import Envelope, utcnow
from juwei.service import Runtime
from juwei.session import Session
from juwei.store import inbox_table
from services.notify.application.groups import require_group
from services.notify.domain import building_label
from services.notify.rules import photo_links
from services.notify.views import board_items, board_tokens, groups, messages


def token_for(session: Session, compound: str, building: str) -> str:
    """The building's current board token, made on first use."""
    token = session.execute(
        select(board_tokens.c.token).where(board_tokens.c.building == building, board_tokens.c.revoked_at.is_(None))
    ).scalar()
    if token is None:
        token = secrets.token_urlsafe(24)
        session.execute(
            board_tokens.insert().values(token=token, building=building, compound=compound, created_at=utcnow())
        )
    return token


def board_of(runtime: Runtime, token: str) -> tuple[str, str, str]:
    """(building, compound, label) of a board's token, if the link is still good."""
    with runtime.database.reading() as session:
        row = session.execute(
            select(board_tokens.c.building, board_tokens.c.compound, groups.c.number)
            .select_from(board_tokens.outerjoin(groups, groups.c.building == board_tokens.c.building))
            .where(board_tokens.c.token == token, board_tokens.c.revoked_at.is_(None))
        ).first()
    if row is None:
        raise NotFound("no such board (the link may have been replaced)", code="board-unknown")
    return row.building, row.compound, building_label(row.number, row.building)


def notices(runtime: Runtime, building: str, after: int | None, language: str, limit: int) -> list[dict[str, Any]]:
    """Notices of a building after a position, oldest first; ``after`` None: the newest ``limit``."""
    zone = ZoneInfo(runtime.settings.timezone)
    query = (
        select(board_items.c.position, messages)
        .select_from(board_items.join(messages, messages.c.message == board_items.c.message))
        .where(board_items.c.building == building)
    )
    with runtime.database.reading() as session:
        if after is None:
            rows = session.execute(query.order_by(board_items.c.position.desc()).limit(limit)).mappings().all()[::-1]
        else:
            rows = (
                session.execute(
                    query.where(board_items.c.position > after).order_by(board_items.c.position).limit(limit)
                )
                .mappings()
                .all()
            )
    english = language == "en"
    return [
        {
            "position": row["position"],
            "message": row["message"].split(":", 1)[-1],
            "priority": row["priority"],
            "kind": row["kind"],
            "title": (row["title_en"] or row["title_zh"]) if english else row["title_zh"],
            "body": (row["body_en"] or row["body_zh"]) if english else row["body_zh"],
            "time": _local(row["composed_at"], zone),
        }
        for row in rows
    ]


# The board is reloaded, not kept: its photo links need only outlive one visit.
BOARD_PHOTO_SECONDS = 24 * 3600


def latest_photos(runtime: Runtime, building: str) -> dict[str, Any] | None:
    """The building's latest disinfection with photos, as freshly signed links; None when there is none.

    The photos' ids are in the event the board's notice was composed from (``cause``), which notify's inbox
    keeps as received (its read models are rebuilt from it): no copy of them is kept here.
    """
    with runtime.database.reading() as session:
        cause = session.execute(
            select(messages.c.cause)
            .select_from(board_items.join(messages, messages.c.message == board_items.c.message))
            .where(board_items.c.building == building, messages.c.template == "disinfection_recorded")
            .order_by(board_items.c.position.desc())
            .limit(1)
        ).scalar()
        received = (
            session.execute(
                select(inbox_table.c.envelope).where(
                    inbox_table.c.consumer == runtime.group, inbox_table.c.event_id == cause
                )
            ).scalar()
            if cause
            else None
        )
    if received is None:
        return None
    envelope = Envelope.from_cloudevent(json.loads(received))
    disinfection = str(envelope.data["disinfection"]).split(":", 1)[-1]
    photos = [str(p["photo"]) for p in envelope.data.get("photos", [])]
    now = datetime.now(UTC)
    links = photo_links(envelope.compound, disinfection, photos, now, BOARD_PHOTO_SECONDS)
    if not links:
        return None
    return {
        "links": links,
        "time": _local(datetime.fromisoformat(str(envelope.data["done_at"])), ZoneInfo(runtime.settings.timezone)),
    }


def _local(moment: Any, zone: ZoneInfo) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def board_link(runtime: Runtime, caller: Caller, compound: str, building: str) -> str:
    """The link to a building's board (its token made on first use)."""
    caller.require_scope(compound, building)
    with runtime.database.unit_of_work() as session:
        target = require_group(session, compound, building)
        token = token_for(session, compound, target)
    return f"/boards/{token}"


def rotate_board_link(runtime: Runtime, caller: Caller, compound: str, building: str) -> str:
    """Replace the board's link: the old one stops working."""
    caller.require_scope(compound, building)
    with runtime.database.unit_of_work() as session:
        target = require_group(session, compound, building)
        session.execute(
            update(board_tokens)
            .where(board_tokens.c.building == target, board_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        token = token_for(session, compound, target)
    return f"/boards/{token}"
