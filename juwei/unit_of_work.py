"""One command's unit of work: load aggregates, let them decide, save what they recorded in one transaction.

Every service's use cases run in one of these (``with UnitOfWork(runtime, compound, actor) as unit:``). The id
contract is the same everywhere: an aggregate is named by its district-wide id (the id on the bus and in its
stream, ``<compound>:<id in the compound>``, or the compound itself), and it must belong to the unit's
compound. A wrong id is an error, never an empty aggregate:

- ``load`` returns an aggregate whose stream exists, else raises the aggregate's ``NotFound``;
- ``load_or_new`` is for commands that may begin a stream (registering, setting a policy): the aggregate as
  its stream tells it, or a new one;
- an id of another compound, or one not district-wide (a compound-local id), raises ``WrongId``.

What the loaded aggregates recorded is appended when the block ends, each with the version it was loaded at
(optimistic concurrency); ``load_many`` and ``create`` serve batches (testing's tube uploads and plates),
which are appended with one ``append_many``. Two writers who record the same thing at the same moment: the
loser gets ``Conflict`` (409) and reloads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from juwei.aggregate import Aggregate, Conflict
from juwei.repository import Repository
from juwei.session import Session
from juwei.store import events_table

if TYPE_CHECKING:
    from juwei.service import Runtime

A = TypeVar("A", bound=Aggregate)

# Every event of the named streams, stream by stream in version order: many aggregates in one read.
_STREAMS = (
    select(events_table.c.stream_id, events_table.c.type, events_table.c.data, events_table.c.private)
    .where(events_table.c.stream_id.in_(bindparam("streams", expanding=True)))
    .order_by(events_table.c.stream_id, events_table.c.version)
)


class WrongId(ValueError):
    """An aggregate was asked for by an id that is not a district-wide id of the unit's compound: a bug in the
    caller (a compound-local id where the district-wide one belongs), never a missing aggregate."""


class UnitOfWork:
    """One command of one caller in one compound; use as a context manager, once."""

    def __init__(self, runtime: Runtime, compound: str, actor: str | None) -> None:
        self.runtime = runtime
        self.compound = compound
        self.actor = actor
        self._session: Session | None = None
        self._open: AbstractContextManager[Self] | None = None
        self._loaded: list[tuple[Repository, Aggregate]] = []
        self._batched: list[Aggregate] = []

    @property
    def session(self) -> Session:
        assert self._session is not None, "use inside `with unit:`"
        return self._session

    @property
    def today(self) -> date:
        """Today where the compounds are (``JUWEI_TIMEZONE``; ``JUWEI_TODAY`` pins it)."""
        return self.runtime.settings.local_today()

    def __enter__(self) -> Self:
        self._open = self._transaction()
        return self._open.__enter__()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool | None:
        assert self._open is not None, "a unit of work is entered once"
        opened, self._open = self._open, None
        return opened.__exit__(kind, error, trace)

    @contextmanager
    def _transaction(self) -> Iterator[Self]:
        try:
            with self.runtime.database.unit_of_work() as session:
                self._session = session
                yield self
                for repository, aggregate in self._loaded:
                    repository.save(session, aggregate, compound=self.compound, actor=self.actor)
                self._save_batched(session)
        except IntegrityError as clash:
            # Two people recorded the same thing at the same moment; the loser is told to reload.
            raise Conflict("someone recorded this at the same moment; reload and try again", code="conflict") from clash
        finally:
            self._session = None
            self._loaded.clear()
            self._batched.clear()

    # ------------------------------------------------------------------ the id contract

    def check(self, id: str) -> str:
        """``id`` when it is a district-wide id of this compound (or the compound itself), else ``WrongId``."""
        if id != self.compound and not id.startswith(f"{self.compound}:"):
            raise WrongId(f"{id!r} is not a district-wide id of compound {self.compound!r} (<compound>:<id>)")
        return id

    def load(self, kind: type[A], id: str) -> A:
        """The aggregate ``id`` (district-wide), which must exist: else ``kind.unknown(id)`` (a ``NotFound``)."""
        aggregate = self.load_or_new(kind, id)
        if not aggregate.exists:
            self._loaded.pop()
            raise kind.unknown(id)
        return aggregate

    def load_or_new(self, kind: type[A], id: str) -> A:
        """The aggregate ``id`` as its stream tells it, or a new one when the command begins its stream."""
        repository = Repository(self.runtime.store, kind)
        aggregate = repository.load(self.session, self.check(id))
        self._loaded.append((repository, aggregate))
        return aggregate

    def load_many(self, kind: type[A], ids: Sequence[str]) -> dict[str, A]:
        """Many aggregates of one kind read at once (new ones where a stream is empty), saved at the end with one
        ``append_many``: all or nothing."""
        assert not kind.snapshot_every, "load_many replays whole streams"
        found = {self.check(id): kind(id) for id in dict.fromkeys(ids)}
        by_stream = {kind.stream_id(id): aggregate for id, aggregate in found.items()}
        registry = self.runtime.store.registry
        streams = list(by_stream)
        # One IN query per 500 streams on the transaction's connection, not one query per stream.
        connection = self.session.connection()
        for start in range(0, len(streams), 500):  # IN lists far below every parameter limit
            for stream_id, type_name, data, private in connection.execute(
                _STREAMS, {"streams": streams[start : start + 500]}
            ):
                fields = {**json.loads(data), **json.loads(private)} if private else json.loads(data)
                by_stream[stream_id].replay([registry.decode(type_name, fields)])
        self._batched.extend(found.values())
        return found

    def create(self, kind: type[A], id: str) -> A:
        """An aggregate whose id was just drawn (no stream can hold it yet): nothing to read, saved in the batch.

        Its stream must be empty when saved (expected version 0): a clash is a 409 like any other conflict.
        """
        assert not kind.snapshot_every, "created aggregates are saved with the batch"
        self.session  # noqa: B018 - only inside the unit
        aggregate = kind(self.check(id))
        self._batched.append(aggregate)
        return aggregate

    def _save_batched(self, session: Session) -> None:
        pending = [aggregate for aggregate in self._batched if aggregate.pending()]
        if not pending:
            return
        self.runtime.store.append_many(
            session,
            [(type(a).stream_id(a.id), a.pending(), a.version, self.compound) for a in pending],
            actor=self.actor,
        )
        for aggregate in pending:
            aggregate.mark_saved()
