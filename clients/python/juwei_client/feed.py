"""A service's event feed: catch-up pages (``GET /events``), the live tail (``GET /events/stream``, SSE), and a
follower that resumes where it stopped, also after its process was killed.

The cursor is the service's global position. A page answers ``next_after`` (past events the key may not see,
too), and every SSE event's ``id`` is its position: ``Last-Event-ID`` resumes after it, so nothing is missed.
The follower hands each event to the handler once it is there, in position order, and saves the position only
after the handler returned: an event is handled at least once (the one being handled when the process died is
handled again), never skipped.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from juwei_client.connection import Connection
from juwei_client.problems import Problem, ProblemError

# The service sends a comment every 15 s on an idle stream; no byte for this long means the connection is gone.
STREAM_READ_TIMEOUT = 45.0


@dataclass(frozen=True)
class Event:
    """A CloudEvents 1.0 event as the feed shows it to this key (``raw``: the whole JSON object)."""

    id: str
    type: str
    source: str
    position: int
    data: dict[str, Any]
    subject: str | None = None
    time: str | None = None
    compound: str | None = None
    building: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Event:
        return cls(
            id=str(body["id"]),
            type=str(body["type"]),
            source=str(body.get("source", "")),
            position=int(body["position"]),
            data=body.get("data") or {},
            subject=body.get("subject"),
            time=body.get("time"),
            compound=body.get("compound"),
            building=body.get("building"),
            raw=body,
        )


@dataclass(frozen=True)
class FeedPage:
    events: list[Event]
    next_after: int  # pass as ``after`` for the next page
    has_more: bool  # more may follow at once: ask again


class Feed:
    """``/events`` and ``/events/stream`` of one service, as the connection's key may read them."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def page(self, after: int = 0, limit: int = 100) -> FeedPage:
        body = self.connection.get("/events", {"after": after, "limit": limit})
        return FeedPage([Event.of(e) for e in body["events"]], int(body["next_after"]), bool(body["has_more"]))

    def events(self, after: int = 0, limit: int = 1000) -> Iterator[Event]:
        """Every event after ``after`` there is now, page by page, oldest first."""
        while True:
            page = self.page(after, limit)
            yield from page.events
            after = page.next_after
            if not page.has_more:
                return

    def stream(self, last_event_id: int | None = None) -> Iterator[Event]:
        """The live tail on one connection, after ``last_event_id`` (a position); ends when the connection does.

        A refused stream (401, 403) raises ``ProblemError``; a dropped one ``httpx.TransportError``.
        """
        with closing(self.tail(last_event_id)) as tail:
            for item in tail:
                if item is not None:
                    yield item

    def tail(self, last_event_id: int | None = None) -> Iterator[Event | None]:
        """``stream``, with ``None`` for each keep-alive the service sends on an idle stream (every 15 s)."""
        connection = self.connection
        headers = connection.headers({"Accept": "text/event-stream", "Cache-Control": "no-cache"})
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        timeout = httpx.Timeout(connection.timeout.connect or 5.0, read=STREAM_READ_TIMEOUT)
        request = connection.http.build_request(
            "GET", connection.url("/events/stream"), headers=headers, timeout=timeout
        )
        answer = connection.http.send(request, stream=True)
        try:
            if not answer.is_success:
                answer.read()
                raise ProblemError(Problem.of(answer), "GET", str(request.url))
            for message in _messages(answer.iter_lines()):
                yield Event.of(json.loads(message)) if message is not None else None
        finally:
            answer.close()


def _messages(lines: Iterator[str]) -> Iterator[str | None]:
    """The data of each SSE message (lines joined by ``\\n``), as the HTML standard's parser reads a stream;
    ``None`` for a comment."""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield "\n".join(data)
            data = []
            continue
        if line.startswith(":"):
            yield None  # a comment: the server's keep-alive
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        # ``id`` repeats the event's position (in the data too); ``event`` its type; ``retry`` is ours to choose.


class PositionStore(Protocol):
    """Where a follower keeps the position of the last event it handled."""

    def load(self) -> int: ...

    def save(self, position: int) -> None: ...


class FilePosition:
    """The position in a small file: written to a temporary file, flushed and renamed over the old one, so a
    crash leaves the old position or the new one, never half of one."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> int:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return 0
        return int(text) if text else 0

    def save(self, position: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "w") as file:
                file.write(f"{position}\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(name, self.path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise


class MemoryPosition:
    """The position in memory: for a follower whose handler keeps its own (or a test)."""

    def __init__(self, position: int = 0) -> None:
        self.position = position

    def load(self) -> int:
        return self.position

    def save(self, position: int) -> None:
        self.position = position


class Follower:
    """Follows a service's feed from the stored position: pages up to the head, then the live stream, for ever
    (until ``stop()``), reconnecting with ``Last-Event-ID`` after a dropped connection or a restarted service.

    ``handler(event)`` is called once per event, in position order; the position is saved after it returns.
    An exception from the handler ends ``run()`` with it, the event's position unsaved: the next run hands the
    same event again. ``page_size``: events per catch-up page; ``reconnect``: first wait after a dropped stream
    (doubling up to ``reconnect_max``).
    """

    def __init__(
        self,
        feed: Feed,
        handler: Callable[[Event], None],
        position: PositionStore,
        *,
        page_size: int = 500,
        reconnect: float = 0.5,
        reconnect_max: float = 30.0,
    ) -> None:
        self.feed = feed
        self.handler = handler
        self.store = position
        self.page_size = page_size
        self.reconnect = reconnect
        self.reconnect_max = reconnect_max
        self.position = position.load()
        self.reconnects = 0  # streams opened again after the first one ended
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Ends ``run()`` after the event being handled (from the handler itself, or another thread: then at the
        next event or keep-alive of the stream, at most 15 s)."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def run(self) -> None:
        """Catch up, then follow the stream until ``stop()``; a service out of reach is waited for."""
        wait = self.reconnect
        streams = 0
        while not self.stopped:
            try:
                if streams == 0:
                    self.catch_up()
                    if self.stopped:
                        return
                streams += 1
                self.reconnects = streams - 1
                with closing(self.feed.tail(last_event_id=self.position)) as tail:
                    for event in tail:
                        if event is not None:
                            self._hand(event)
                            wait = self.reconnect
                        if self.stopped:
                            return
            except (httpx.TransportError, httpx.StreamError):
                pass  # the connection dropped or the service is restarting: resume from our position
            except ProblemError as refused:
                if refused.status not in (429, 502, 503, 504):
                    raise  # a key refused (401, 403) is not made good by trying again
            if self._stopped.wait(wait):
                return
            wait = min(wait * 2, self.reconnect_max)

    def catch_up(self) -> None:
        """Every event there is now, page by page: then the stream starts from the head, not from far back."""
        while not self.stopped:
            page = self.feed.page(self.position, self.page_size)
            for event in page.events:
                self._hand(event)
                if self.stopped:
                    return
            if page.next_after > self.position:
                # Past events this key may not see: kept, so that a restart does not page through them again.
                self.position = page.next_after
                self.store.save(self.position)
            if not page.has_more:
                return

    def _hand(self, event: Event) -> None:
        if event.position <= self.position:
            return  # already handled (a stream that repeats what a page gave)
        self.handler(event)
        self.position = event.position
        self.store.save(event.position)


def follow(
    connection: Connection,
    handler: Callable[[Event], None],
    position_file: str | os.PathLike[str],
    **options: Any,
) -> Follower:
    """A follower of ``connection``'s feed with its position in ``position_file``; call ``run()`` on it."""
    return Follower(Feed(connection), handler, FilePosition(position_file), **options)
