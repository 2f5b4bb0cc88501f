"""The public event feed of every service: a catch-up page and a live Server-Sent Events tail.

Both hand out the same CloudEvents JSON that goes on Kafka, as far as the caller may read it: the service's
``FeedScope`` for the caller decides which events (compounds, types, buildings, a household or a point) and
whether health data (``juwei.access``); a caller who reads nothing of a feed gets 403 saying why. The cursor
is the global position: a page says where the next one starts (past events the caller may not see, too),
and the SSE ``id`` of each event is its position, so a client that lost its connection resumes with
``Last-Event-ID`` and misses nothing (positions are handed out in commit order, see ``juwei.store``).
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from juwei.access import Disclosure, FeedRefused, FeedScope, default_scope, type_names
from juwei.audit import AUDITED_READ, Reading, reading_of, record_reads
from juwei.auth import authenticate_id, require
from juwei.callers import Caller
from juwei.openapi import answered_as
from juwei.paging import MAX_POSITION, PAGE_MAX
from juwei.problems import Problem

POLL_SECONDS = 0.25
# Batches read (each at most ``_BATCH`` events) before a page answers with what it found: a reader whose
# scope matches few events still gets an answer soon, and pages on from ``next_after``.
_BATCH = 500
_BATCHES_PER_PAGE = 20
# An open stream checks this often that its key still opens doors (a volunteer stood down, a key revoked).
_RECHECK_SECONDS = 5.0


class FeedPage(BaseModel):
    events: list[dict[str, Any]] = Field(description="CloudEvents 1.0 in structured JSON, oldest first")
    next_after: int = Field(description="Pass as `after` to get the next page")
    has_more: bool = Field(description="True when more may follow at once: ask again")


@dataclass(frozen=True)
class _Read:
    events: list[dict[str, Any]]
    cursor: int
    exhausted: bool  # every event up to the log's head was looked at


def scope_of(request: Request, caller: Caller) -> FeedScope:
    runtime = request.app.state.runtime
    access = runtime.definition.feed_access or default_scope
    with runtime.database.reading() as session:
        try:
            return access(runtime, session, caller)
        except FeedRefused as refused:
            raise Problem(403, str(refused), "forbidden") from None


def _read(request: Request, caller: Caller, scope: FeedScope, after: int, limit: int, reading: Reading) -> _Read:
    runtime = request.app.state.runtime
    store = runtime.store
    types = type_names(store.registry, scope)
    found = []
    cursor, exhausted = after, False
    with runtime.database.reading() as session:
        for _ in range(_BATCHES_PER_PAGE):
            batch = store.read_visible(
                session,
                cursor,
                _BATCH,
                compounds=scope.compounds,
                types=types,
                buildings=scope.buildings,
                compound_wide=scope.compound_wide,
            )
            for envelope in batch:
                cursor = envelope.position or cursor
                if scope.names(envelope.data):
                    found.append(envelope)
                    if len(found) == limit:
                        break
            if len(found) == limit:
                break
            if len(batch) < _BATCH:
                exhausted = True
                break
    disclosure = Disclosure(store.registry, runtime.sealing, scope.health)
    if not (scope.health and any(_sealed(store.registry, envelope.type) for envelope in found)):
        with runtime.database.reading() as session:
            return _Read(disclosure.shown(session, found), cursor, exhausted)
    # Health data is opened: every person shown is audited in the same transaction.
    with runtime.database.unit_of_work() as session:
        shown = disclosure.shown(session, found)
        by_compound: dict[str, list[Any]] = {}
        for read in disclosure.reads:
            by_compound.setdefault(read.subject.split(":", 1)[0], []).append(read)
        for compound, reads in by_compound.items():
            record_reads(session, reading, caller, compound, reads)
    return _Read(shown, cursor, exhausted)


def _sealed(registry: Any, type_name: str) -> bool:
    cls = registry.current_class(type_name)
    return bool(cls is not None and cls.sealed_fields)


def _resume_point(last_event_id: str | None, after: int | None) -> int:
    if last_event_id is None:
        return after or 0
    try:
        value = int(last_event_id)
    except ValueError:
        raise Problem(400, "Last-Event-ID must be the position of the last event received") from None
    if not 0 <= value <= MAX_POSITION:
        raise Problem(400, f"Last-Event-ID must be a position from 0 to {MAX_POSITION}")
    return value


def feed_router(page_max: int = 1000) -> APIRouter:
    router = APIRouter(tags=["feed"])

    @router.get(
        "/events",
        response_model=FeedPage,
        summary="A page of events after a position (those the key may read)",
        openapi_extra=AUDITED_READ,
        responses={403: {"description": "The key reads nothing of this feed (application/problem+json)"}},
    )
    def page(
        request: Request,
        caller: Annotated[Caller, Depends(require())],
        after: Annotated[int, Query(ge=0, le=MAX_POSITION, description="Position of the last event already seen")] = 0,
        limit: Annotated[int, Query(ge=1, le=min(page_max, PAGE_MAX))] = 100,
    ) -> FeedPage:
        scope = scope_of(request, caller)
        read = _read(request, caller, scope, after, limit, reading_of(request, "event feed: catch-up page"))
        return FeedPage(
            events=read.events,
            next_after=read.cursor,
            has_more=not read.exhausted,
        )

    @router.get(
        "/events/stream",
        summary="Live tail of events the key may read (Server-Sent Events); resumes from Last-Event-ID",
        openapi_extra=AUDITED_READ,
        response_class=EventSourceResponse,
        responses={
            **answered_as("CloudEvents, one `data:` line each, `id:` their position", "text/event-stream"),
            403: {"description": "The key reads nothing of this feed (application/problem+json)"},
        },
    )
    async def stream(
        request: Request,
        caller: Annotated[Caller, Depends(require())],
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
        after: Annotated[int | None, Query(ge=0, le=MAX_POSITION)] = None,
    ) -> EventSourceResponse:
        cursor = _resume_point(last_event_id, after)
        scope = await run_in_threadpool(scope_of, request, caller)
        reading = reading_of(request, "event feed: live stream")
        runtime = request.app.state.runtime

        def still_open() -> bool:
            with runtime.database.reading() as session:
                return authenticate_id(session, caller.key_id)

        async def events() -> AsyncIterator[dict[str, str]]:
            position = cursor
            checked = time.monotonic()
            while not await request.is_disconnected():
                if time.monotonic() - checked > _RECHECK_SECONDS:
                    if not await run_in_threadpool(still_open):
                        return  # the key was revoked or expired: the stream ends, a reconnect gets 401
                    checked = time.monotonic()
                read = await run_in_threadpool(_read, request, caller, scope, position, 200, reading)
                for event in read.events:
                    data = json.dumps(event, ensure_ascii=False)
                    yield {"id": str(event["position"]), "event": event["type"], "data": data}
                position = read.cursor
                if read.exhausted:
                    await asyncio.sleep(POLL_SECONDS)

        return EventSourceResponse(events(), ping=15)

    return router
