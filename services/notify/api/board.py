"""Routes of the live building board: a page per building group, readable on a phone, updated over Server-Sent
Events (its links and notices: ``application.board``). The SSE ``id`` of each notice is its position, so a
browser that lost its connection resumes with ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from contracts.access import Officers, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf
from juwei.openapi import answered_as
from juwei.paging import MAX_POSITION
from juwei.problems import Problem
from services.notify.application import board
from services.notify.models import BoardLink

router = APIRouter(tags=["board"])
POLL_SECONDS = 0.5
FIRST_SCREEN = 50
_pages = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"), autoescape=select_autoescape(["html"])
)

UI = {
    "zh": {
        "title": "{place}公告栏",
        "connecting": "正在连接…",
        "live": "实时更新中",
        "reconnecting": "连接中断，正在重连…",
        "empty": "暂无通知",
        "badges": {"critical": "紧急", "important": "重要"},
        "photos": "最近一次消杀照片",
        "photo": "消杀照片",
    },
    "en": {
        "title": "Building {place} board",
        "connecting": "Connecting…",
        "live": "Live",
        "reconnecting": "Connection lost, reconnecting…",
        "empty": "No notices yet",
        "badges": {"critical": "Urgent", "important": "Important"},
        "photos": "Latest disinfection photos",
        "photo": "Disinfection photo",
    },
}


Lang = Annotated[str, Query(pattern="^(zh|en)$", description="zh (default) or en")]


@router.get("/boards/{token}", response_class=HTMLResponse, summary="A building's live board (for phones)")
def board_page(token: str, runtime: RuntimeOf, lang: Lang = "zh") -> HTMLResponse:
    building, _compound, label = board.board_of(runtime, token)
    items = board.notices(runtime, building, None, lang, FIRST_SCREEN)
    ui = {**UI[lang], "title": UI[lang]["title"].format(place=label if lang == "en" else _place_zh(label))}
    newest = items[-1]["position"] if items else 0
    photos = board.latest_photos(runtime, building)
    html = _pages.get_template("board.html").render(
        lang=lang,
        ui=ui,
        ui_json=json.dumps(ui, ensure_ascii=False).replace("</", "<\\/"),
        items=list(reversed(items)),
        photos=photos,
        stream_url=f"{token}/stream?lang={lang}&after={newest}",
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _place_zh(label: str) -> str:
    return f"{label}号楼" if label[-1:].isascii() else label


@router.get(
    "/boards/{token}/stream",
    summary="The board's notices as Server-Sent Events; resumes from Last-Event-ID",
    response_class=EventSourceResponse,
    responses=answered_as("The board's notices, one `data:` line each, `id:` their position", "text/event-stream"),
)
async def board_stream(
    token: str,
    request: Request,
    runtime: RuntimeOf,
    lang: Lang = "zh",
    after: Annotated[int | None, Query(ge=0, le=MAX_POSITION, description="Position already shown")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    building, _compound, _label = board.board_of(runtime, token)
    cursor: int | None = after
    if last_event_id is not None:
        try:
            cursor = int(last_event_id)
        except ValueError:
            raise Problem(400, "Last-Event-ID must be the position of the last notice received") from None
        if not 0 <= cursor <= MAX_POSITION:
            raise Problem(400, f"Last-Event-ID must be a position from 0 to {MAX_POSITION}")

    async def events() -> AsyncIterator[dict[str, Any]]:
        position = cursor
        yield {"comment": "board", "retry": 3000}
        while not await request.is_disconnected():
            size = 20 if position is None else 200
            batch = await run_in_threadpool(board.notices, runtime, building, position, lang, size)
            for notice in batch:
                position = notice["position"]
                yield {"id": str(position), "event": "notice", "data": json.dumps(notice, ensure_ascii=False)}
            if position is None:
                position = 0
            if len(batch) < size:
                await asyncio.sleep(POLL_SECONDS)

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})


@router.get(
    "/compounds/{compound}/buildings/{building}/board",
    response_model=BoardLink,
    summary="The link to a building's board, to post in its group",
)
def board_link(compound: CompoundId, building: LocalId, caller: Officers, runtime: RuntimeOf) -> BoardLink:
    return BoardLink(building=building, url=board.board_link(runtime, caller, compound, building))


@router.post(
    "/compounds/{compound}/buildings/{building}/board/rotate",
    response_model=BoardLink,
    summary="Replace the board's link (the old one stops working)",
)
def rotate_board_link(compound: CompoundId, building: LocalId, caller: Staff, runtime: RuntimeOf) -> BoardLink:
    return BoardLink(building=building, url=board.rotate_board_link(runtime, caller, compound, building))
