"""The repository: an aggregate from its stream (from a snapshot when the stream is long), and what it
recorded appended with the version it was loaded at (optimistic concurrency).

Kept apart from ``juwei.aggregate`` so that the domain modules import no storage.
"""

from __future__ import annotations

import json
from typing import Generic, TypeVar

from sqlalchemy import insert, select

from juwei.aggregate import Aggregate
from juwei.events import Envelope
from juwei.session import Session
from juwei.store import EventStore, snapshots_table

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
