"""The live building board: a page per building group, readable on a phone, updated over Server-Sent Events.

Residents open it from a link posted in their group; the link carries an unguessable token (no API key
on a phone), which staff can rotate. The SSE ``id`` of each notice is the position of its
``MessageComposed`` event in notify's log — stable across a rebuild of the read models — so a browser
that lost its connection resumes with ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from contracts import roles as r
from contracts.ids import global_id
from juwei.auth import CompoundId, LocalId, require
from juwei.callers import Caller
from juwei.events import utcnow
from juwei.problems import Problem
from juwei.service import Runtime
from services.notify.domain import building_label
from services.notify.views import board_items, board_tokens, groups, messages

router = APIRouter(tags=["board"])
POLL_SECONDS = 0.5
FIRST_SCREEN = 50
_pages = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"), autoescape=select_autoescape(["html"])
)

UI = {
    "zh": {
        "title": "{place}公告栏",
        "connecting": "正在连接…",
        "live": "实时更新中",
        "reconnecting": "连接中断，正在重连…",
        "empty": "暂无通知",
        "badges": {"critical": "紧急", "important": "重要"},
    },
    "en": {
        "title": "Building {place} board",
        "connecting": "Connecting…",
        "live": "Live",
        "reconnecting": "Connection lost, reconnecting…",
        "empty": "No notices yet",
        "badges": {"critical": "Urgent", "important": "Important"},
    },
}


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


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _board(request: Request, token: str) -> tuple[str, str, str]:
    with _runtime(request).database.reading() as session:
        row = session.execute(
            select(board_tokens.c.building, board_tokens.c.compound, groups.c.number)
            .select_from(board_tokens.outerjoin(groups, groups.c.building == board_tokens.c.building))
            .where(board_tokens.c.token == token, board_tokens.c.revoked_at.is_(None))
        ).first()
    if row is None:
        raise Problem(404, "no such board (the link may have been replaced)", "board-unknown")
    return row.building, row.compound, building_label(row.number, row.building)


def _notices(request: Request, building: str, after: int | None, language: str, limit: int) -> list[dict[str, Any]]:
    """Notices of a building after a position, oldest first; ``after`` None: the newest ``limit``."""
    zone = ZoneInfo(_runtime(request).settings.timezone)
    query = (
        select(board_items.c.position, messages)
        .select_from(board_items.join(messages, messages.c.message == board_items.c.message))
        .where(board_items.c.building == building)
    )
    with _runtime(request).database.reading() as session:
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


def _local(moment: Any, zone: ZoneInfo) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


Lang = Annotated[str, Query(pattern="^(zh|en)$", description="zh (default) or en")]


@router.get("/boards/{token}", response_class=HTMLResponse, summary="A building's live board (for phones)")
def board_page(token: str, request: Request, lang: Lang = "zh") -> HTMLResponse:
    building, _compound, label = _board(request, token)
    items = _notices(request, building, None, lang, FIRST_SCREEN)
    ui = {**UI[lang], "title": UI[lang]["title"].format(place=label if lang == "en" else _place_zh(label))}
    newest = items[-1]["position"] if items else 0
    html = _pages.get_template("board.html").render(
        lang=lang,
        ui=ui,
        ui_json=json.dumps(ui, ensure_ascii=False).replace("</", "<\\/"),
        items=list(reversed(items)),
        stream_url=f"{token}/stream?lang={lang}&after={newest}",
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _place_zh(label: str) -> str:
    return f"{label}号楼" if label[-1:].isascii() else label


@router.get("/boards/{token}/stream", summary="The board's notices as Server-Sent Events; resumes from Last-Event-ID")
async def board_stream(
    token: str,
    request: Request,
    lang: Lang = "zh",
    after: Annotated[int | None, Query(ge=0, description="Position already shown")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    building, _compound, _label = _board(request, token)
    cursor: int | None = after
    if last_event_id is not None:
        try:
            cursor = int(last_event_id)
        except ValueError:
            raise Problem(400, "Last-Event-ID must be the position of the last notice received") from None

    async def events() -> AsyncIterator[dict[str, Any]]:
        position = cursor
        yield {"comment": "board", "retry": 3000}
        while not await request.is_disconnected():
            size = 20 if position is None else 200
            batch = await run_in_threadpool(_notices, request, building, position, lang, size)
            for notice in batch:
                position = notice["position"]
                yield {"id": str(position), "event": "notice", "data": json.dumps(notice, ensure_ascii=False)}
            if position is None:
                position = 0
            if len(batch) < size:
                await asyncio.sleep(POLL_SECONDS)

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})


class BoardLink(BaseModel):
    building: str
    url: str


BoardKeepers = Annotated[Caller, Depends(require(*r.STAFF, r.INFORMATION_OFFICER))]


@router.get(
    "/compounds/{compound}/buildings/{building}/board",
    response_model=BoardLink,
    summary="The link to a building's board, to post in its group",
)
def board_link(compound: CompoundId, building: LocalId, request: Request, caller: BoardKeepers) -> BoardLink:
    caller.require_scope(compound, building)
    target = global_id(compound, building)
    with _runtime(request).database.unit_of_work() as session:
        _require_group(session, target, building)
        token = token_for(session, compound, target)
    return BoardLink(building=building, url=f"/boards/{token}")


@router.post(
    "/compounds/{compound}/buildings/{building}/board/rotate",
    response_model=BoardLink,
    summary="Replace the board's link (the old one stops working)",
)
def rotate_board_link(
    compound: CompoundId, building: LocalId, request: Request, caller: Annotated[Caller, Depends(require(*r.STAFF))]
) -> BoardLink:
    caller.require_scope(compound, building)
    target = global_id(compound, building)
    with _runtime(request).database.unit_of_work() as session:
        _require_group(session, target, building)
        session.execute(
            update(board_tokens)
            .where(board_tokens.c.building == target, board_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        token = token_for(session, compound, target)
    return BoardLink(building=building, url=f"/boards/{token}")


def _require_group(session: Session, target: str, building: str) -> None:
    if session.execute(select(groups.c.building).where(groups.c.building == target)).first() is None:
        raise Problem(404, f"building {building} has no group (not registered with residents yet)", "building-unknown")
