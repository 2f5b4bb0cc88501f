"""Aggregates: rebuild from events, decide on a command, emit new events.

Subclasses are plain Python (the domain modules): a command method checks the rules against the current
state and calls ``self.record(event)``; ``when(event)`` changes the state and is the only place that
does. The repository loads an aggregate from its stream (from a snapshot when the stream is long) and
appends what it recorded with the version it was loaded at.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar, Generic, Self, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from juwei.events import DomainEvent, Envelope
from juwei.store import EventStore, snapshots_table


class DomainRuleViolation(Exception):
    """A command breaks one of the domain's rules; ``status`` is the HTTP status the API answers with."""

    status: int = 409

    def __init__(self, message: str, *, code: str = "rule-violated", status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        if status is not None:
            self.status = status


class NotFound(DomainRuleViolation):
    status = 404

    def __init__(self, message: str) -> None:
        super().__init__(message, code="not-found", status=404)


class Aggregate:
    """Base of the domain's aggregates. ``stream_prefix`` names the stream: ``<prefix>-<id>``."""

    stream_prefix: ClassVar[str] = ""
    # Keep a snapshot every this many events (0: never); long streams load from the latest one.
    snapshot_every: ClassVar[int] = 0

    def __init__(self, id: str) -> None:
        self.id = id
        self.version = 0
        self._pending: list[DomainEvent] = []

    @classmethod
    def stream_id(cls, id: str) -> str:
        return f"{cls.stream_prefix}-{id}"

    @property
    def exists(self) -> bool:
        return self.version > 0 or bool(self._pending)

    def record(self, event: DomainEvent) -> None:
        self.when(event)
        self._pending.append(event)

    def when(self, event: DomainEvent) -> None:
        """Change state from one event; dispatches to ``on_<EventClass>`` when defined."""
        handler = getattr(self, f"on_{type(event).__name__}", None)
        if handler is not None:
            handler(event)

    def replay(self, events: Iterable[DomainEvent]) -> Self:
        for event in events:
            self.when(event)
            self.version += 1
        return self

    def pending(self) -> list[DomainEvent]:
        return list(self._pending)

    def mark_saved(self) -> None:
        self.version += len(self._pending)
        self._pending.clear()

    def snapshot_state(self) -> dict[str, Any]:
        """JSON-able state for a snapshot; the default takes the public attributes."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in ("id", "version")}

    def restore_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


A = TypeVar("A", bound=Aggregate)


class Repository(Generic[A]):
    """Loads and saves one kind of aggregate through the event store."""

    def __init__(self, store: EventStore, kind: type[A]) -> None:
        self.store = store
        self.kind = kind

    def load(self, session: Session, id: str) -> A:
        """The aggregate as its stream tells it; a new, empty one (version 0) when the stream is empty."""
        aggregate = self.kind(id)
        stream_id = self.kind.stream_id(id)
        after = 0
        if self.kind.snapshot_every:
            row = (
                session.execute(select(snapshots_table).where(snapshots_table.c.stream_id == stream_id))
                .mappings()
                .first()
            )
            if row is not None:
                aggregate.restore_state(json.loads(row["state"]))
                aggregate.version = after = row["version"]
        envelopes = self.store.open_sealed(session, self.store.read_stream(session, stream_id, after_version=after))
        aggregate.replay(self.store.decode(env) for env in envelopes)
        return aggregate

    def save(
        self,
        session: Session,
        aggregate: A,
        *,
        compound: str,
        actor: str | None = None,
        traceparent: str | None = None,
    ) -> list[Envelope]:
        pending = aggregate.pending()
        if not pending:
            return []
        envelopes = self.store.append(
            session,
            self.kind.stream_id(aggregate.id),
            pending,
            expected_version=aggregate.version,
            compound=compound,
            actor=actor,
            traceparent=traceparent,
        )
        before = aggregate.version
        aggregate.mark_saved()
        every = self.kind.snapshot_every
        if every and aggregate.version // every > before // every:
            self._snapshot(session, aggregate)
        return envelopes

    def _snapshot(self, session: Session, aggregate: A) -> None:
        stream_id = self.kind.stream_id(aggregate.id)
        state = json.dumps(aggregate.snapshot_state(), default=str)
        updated = session.execute(
            snapshots_table.update()
            .where(snapshots_table.c.stream_id == stream_id)
            .values(version=aggregate.version, state=state)
        ).rowcount
        if not updated:
            session.execute(insert(snapshots_table).values(stream_id=stream_id, version=aggregate.version, state=state))
