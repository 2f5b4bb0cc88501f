"""The public event feed of every service: a catch-up page and a live Server-Sent Events tail.

Both hand out the same CloudEvents JSON that goes on Kafka. The cursor is the global position: a page
says where the next one starts, and the SSE ``id`` of each event is its position, so a client that lost
its connection resumes with ``Last-Event-ID`` and misses nothing (positions are handed out in commit
order, see ``juwei.store``).
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from juwei.auth import Caller, require
from juwei.events import Envelope
from juwei.paging import PAGE_MAX
from juwei.problems import Problem

POLL_SECONDS = 0.25


class FeedPage(BaseModel):
    events: list[dict[str, Any]] = Field(description="CloudEvents 1.0 in structured JSON, oldest first")
    next_after: int = Field(description="Pass as `after` to get the next page")
    has_more: bool = Field(description="True when this page was full: ask again at once")


def _read(request: Request, caller: Caller, after: int, limit: int) -> list[Envelope]:
    runtime = request.app.state.runtime
    with runtime.database.reading() as session:
        return runtime.store.read_after(session, after, limit, compound=caller.compound)


def _resume_point(last_event_id: str | None, after: int | None) -> int:
    if last_event_id is None:
        return after or 0
    try:
        value = int(last_event_id)
    except ValueError:
        raise Problem(400, "Last-Event-ID must be the position of the last event received") from None
    if value < 0:
        raise Problem(400, "Last-Event-ID must not be negative")
    return value


def feed_router(page_max: int = 1000) -> APIRouter:
    router = APIRouter(tags=["feed"])

    @router.get("/events", response_model=FeedPage, summary="A page of events after a position")
    def page(
        request: Request,
        caller: Annotated[Caller, Depends(require())],
        after: Annotated[int, Query(ge=0, description="Position of the last event already seen")] = 0,
        limit: Annotated[int, Query(ge=1, le=min(page_max, PAGE_MAX))] = 100,
    ) -> FeedPage:
        events = _read(request, caller, after, limit)
        return FeedPage(
            events=[event.to_cloudevent() for event in events],
            next_after=events[-1].position if events else after,
            has_more=len(events) == limit,
        )

    @router.get(
        "/events/stream",
        summary="Live tail of events (Server-Sent Events); resumes from Last-Event-ID",
        response_class=EventSourceResponse,
    )
    async def stream(
        request: Request,
        caller: Annotated[Caller, Depends(require())],
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
        after: Annotated[int | None, Query(ge=0)] = None,
    ) -> EventSourceResponse:
        cursor = _resume_point(last_event_id, after)

        async def events() -> AsyncIterator[dict[str, str]]:
            position = cursor
            while not await request.is_disconnected():
                batch = await run_in_threadpool(_read, request, caller, position, 200)
                for event in batch:
                    position = event.position or position
                    yield {
                        "id": str(position),
                        "event": event.type,
                        "data": json.dumps(event.to_cloudevent(), ensure_ascii=False),
                    }
                if len(batch) < 200:
                    await asyncio.sleep(POLL_SECONDS)

        return EventSourceResponse(events(), ping=15)

    return router
