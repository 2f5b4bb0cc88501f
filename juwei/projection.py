"""Read models with checkpoints, kept in the same transaction as the events they reflect.

A projection is fed twice: live, with the events a unit of work appends (own events) or receives from
Kafka (through the inbox), inside that same transaction; and on ``rebuild``, from position 0 of the
event table and sequence 0 of the inbox. Rebuild runs in one transaction that holds the append lock:
readers keep seeing the old read model (MVCC on PostgreSQL, WAL snapshots on SQLite) until it commits,
writers wait for it, nobody sees a half-built model.
"""

from __future__ import annotations

import gc
import heapq
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, ClassVar

import structlog
from sqlalchemy import Executable, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from juwei.database import Database
from juwei.events import DomainEvent, Envelope, types_of
from juwei.progress import Report
from juwei.session import Session
from juwei.store import (
    EventStore,
    events_table,
    inbox_table,
    lock_appends,
    read_checkpoint,
    write_checkpoints,
)

log = structlog.get_logger("juwei.projection")
_SESSION_KEY = "juwei.projected"
_REPLAYING = "juwei.replaying"
_CHUNK = 5000
_OWN, _INBOX = 0, 1  # own events first when a received event has the very same time
_INBOX_CHUNK = (
    select(inbox_table.c.seq, inbox_table.c.envelope, inbox_table.c.received_at)
    .where(inbox_table.c.seq > bindparam("after"))
    .order_by(inbox_table.c.seq)
    .limit(_CHUNK)
)


class Projection:
    """One read model: the tables it owns and how an event changes them."""

    name: ClassVar[str] = ""
    tables: ClassVar[Sequence[Table]] = ()
    # The events it reads, by class (its own service's and others'); ``types`` follows from them.
    reads: ClassVar[Sequence[type[DomainEvent]]] = ()
    # Event types it reads, every stored version; empty means every type.
    types: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "reads" in cls.__dict__:
            cls.types = types_of(*cls.reads)

    def handles(self, envelope: Envelope) -> bool:
        return not self.types or envelope.type in self.types

    def apply(self, session: Session, envelope: Envelope) -> None:
        raise NotImplementedError

    def apply_many(self, session: Session, envelopes: Sequence[Envelope]) -> None:
        """A run of consecutive events this projection handles, in order (one append, or a rebuild's chunk).

        Override to write set-based (executemany, counters kept in memory for the run): a statement per
        event caps a rebuild at a few thousand events a second. The default applies them one by one.
        """
        for envelope in envelopes:
            self.apply(session, envelope)


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], Any] = {}


def upsert(
    session: Session, table: Table, keys: dict[str, Any], values: dict[str, Any], add: Sequence[str] = ()
) -> None:
    """Insert a read-model row, or update ``values`` where the row with ``keys`` exists.

    Columns named in ``add`` are counters: an existing row gets the value added to what it holds, not replaced.
    When ``keys`` is the table's primary key this is one INSERT … ON CONFLICT DO UPDATE, built once per shape
    (a statement built per event and an UPDATE before every INSERT dominated a 5,000-resident import);
    otherwise an UPDATE, then an INSERT when it touched nothing.
    """
    dialect = session.get_bind().dialect.name
    if set(keys) == {column.name for column in table.primary_key.columns} and dialect in ("postgresql", "sqlite"):
        shape = (dialect, table.name, tuple(keys), tuple(values), tuple(add))
        statement = _UPSERTS.get(shape)
        if statement is None:
            proposed = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
            statement = _UPSERTS[shape] = (
                proposed.on_conflict_do_update(
                    index_elements=list(keys),
                    set_={
                        name: table.c[name] + proposed.excluded[name] if name in add else proposed.excluded[name]
                        for name in values
                    },
                )
                if values
                else proposed.on_conflict_do_nothing(index_elements=list(keys))
            )
        session.execute(statement, {**keys, **values})
        return
    where = [table.c[name] == value for name, value in keys.items()]
    changed = {name: table.c[name] + value if name in add else value for name, value in values.items()}
    if not session.execute(update(table).where(*where).values(**changed)).rowcount:
        session.execute(table.insert().values(**keys, **values))


@dataclass(frozen=True)
class _WritePlan:
    """A statement compiled for the driver: its SQL, how to lay out a row, which values need converting."""

    sql: str
    take: Callable[[dict[str, Any]], Any]  # a row's values in parameter order (a tuple), or the row itself
    converted: tuple[tuple[int | str, Callable[[Any], Any]], ...]  # (position or name, bind processor)
    positional: bool


# Per (dialect, statement, the rows' keys): the statement itself (held, so its id is never reused) and
# its plan, None when it needs SQLAlchemy per row.
_WRITE_PLANS: dict[tuple[str, int, tuple[str, ...]], tuple[Executable, _WritePlan | None]] = {}


def write_many(session: Session, statement: Executable, rows: Sequence[dict[str, Any]]) -> None:
    """Execute one statement for many rows (each with the same keys) with the driver's executemany.

    What ``session.execute(statement, rows)`` does, without SQLAlchemy's parameter handling per row, which
    cost more than SQLite's own work on a rebuild (~6 µs a row of 11 columns): the statement is compiled
    once, and only values whose type has a bind processor (SQLite's datetimes and booleans) go through it.
    Statements are remembered by identity: pass module constants or cached statements, not one built per
    call. A statement that needs SQLAlchemy per row (a column default to fill in, an escaped parameter
    name) takes the ordinary path.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    shape = (dialect.name, id(statement), tuple(rows[0]))
    if shape not in _WRITE_PLANS:
        _WRITE_PLANS[shape] = (statement, _write_plan(statement, dialect, shape[2]))
    plan = _WRITE_PLANS[shape][1]
    if plan is None:
        session.execute(statement, list(rows))
        return
    take, converted = plan.take, plan.converted
    if not converted:
        parameters: list[Any] = [take(row) for row in rows]
    elif plan.positional:
        parameters = []
        for row in rows:
            values = list(take(row))
            for position, process in converted:
                values[position] = process(values[position])  # type: ignore[index]
            parameters.append(tuple(values))
    else:
        parameters = []
        for row in rows:
            values = dict(row)
            for name, process in converted:
                values[name] = process(values[name])
            parameters.append(values)
    connection.exec_driver_sql(plan.sql, parameters)


def _write_plan(statement: Executable, dialect: Any, keys: tuple[str, ...]) -> _WritePlan | None:
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    positional = compiled.positiontup is not None
    names = tuple(compiled.positiontup) if positional else tuple(compiled.binds)
    if set(names) != set(keys) or len(names) != len(keys) or compiled.escaped_bind_names:
        return None  # a value SQLAlchemy fills in, or a name the driver sees spelt otherwise
    if not positional and not dialect.paramstyle.endswith(("named", "pyformat")):
        return None
    processors = [compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
    converted = tuple(
        (position if positional else name, process)
        for position, (name, process) in enumerate(zip(names, processors, strict=True))
        if process is not None
    )
    if not positional:
        return _WritePlan(compiled.string, lambda row: row, converted, positional=False)
    take = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    return _WritePlan(compiled.string, take, converted, positional=True)


def own_checkpoint(name: str) -> str:
    return f"projection:{name}:own"


def inbox_checkpoint(name: str) -> str:
    return f"projection:{name}:inbox"


class Projector:
    """Feeds a service's projections and rebuilds them."""

    def __init__(self, database: Database, store: EventStore, projections: Iterable[Projection]) -> None:
        self.database = database
        self.store = store
        self.projections = list(projections)
        names = [p.name for p in self.projections]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"projections need distinct names: {names}")
        database.before_commit.append(self._write_checkpoints)
        # Run inside the rebuilding transaction once the models are rebuilt (e.g. retention re-applied).
        self.after_rebuild: list[Callable[[Session], None]] = []
        # Open the sealed fields of received events (a service granted them holds their keys): set by the
        # runtime. Own events are opened by the store (``EventStore.open_sealed``) on a rebuild.
        self.open_received: Callable[[Session, Sequence[Envelope]], list[Envelope]] | None = None

    def apply_own(self, session: Session, envelopes: Sequence[Envelope]) -> None:
        """Called with what a unit of work appended (positions known)."""
        self._apply_run(session, envelopes, self.projections)
        if envelopes:
            self._progress(session, own=max(e.position or 0 for e in envelopes))

    def apply_received(self, session: Session, envelope: Envelope, inbox_seq: int) -> None:
        """Called with an event another service published, after its inbox row was written."""
        if self.open_received is not None:
            envelope = self.open_received(session, [envelope])[0]
        self._apply(session, envelope, self.projections)
        self._progress(session, inbox=inbox_seq)

    def apply_received_many(self, session: Session, received: Sequence[tuple[Envelope, int]]) -> None:
        """A consumer's poll: (envelope, inbox sequence) in the order they were received."""
        envelopes = [envelope for envelope, _seq in received]
        if self.open_received is not None:
            envelopes = self.open_received(session, envelopes)
        self._apply_run(session, envelopes, self.projections)
        if received:
            self._progress(session, inbox=max(seq for _envelope, seq in received))

    def _apply(self, session: Session, envelope: Envelope, projections: Iterable[Projection]) -> None:
        for projection in projections:
            if projection.handles(envelope):
                projection.apply(session, envelope)

    def _apply_run(self, session: Session, envelopes: Sequence[Envelope], projections: Iterable[Projection]) -> None:
        """Each projection in turn takes the whole run: a projection reading another's tables comes after it."""
        if len(envelopes) == 1:
            self._apply(session, envelopes[0], projections)
            return
        for projection in projections:
            if type(projection).handles is not Projection.handles:
                handled = [envelope for envelope in envelopes if projection.handles(envelope)]
            elif projection.types:  # what Projection.handles says, without a call per event
                types = projection.types
                handled = [envelope for envelope in envelopes if envelope.type in types]
            else:
                handled = list(envelopes)
            if handled:
                projection.apply_many(session, handled)

    def _progress(self, session: Session, own: int | None = None, inbox: int | None = None) -> None:
        done: dict[str, int] = session.info.setdefault(_SESSION_KEY, {})
        if own is not None:
            done["own"] = max(done.get("own", 0), own)
        if inbox is not None:
            done["inbox"] = max(done.get("inbox", 0), inbox)

    def _write_checkpoints(self, session: Session) -> None:
        done: dict[str, int] | None = session.info.pop(_SESSION_KEY, None)
        if not done:
            return
        moved: dict[str, int] = {}
        for projection in self.projections:
            if "own" in done:
                moved[own_checkpoint(projection.name)] = done["own"]
            if "inbox" in done:
                moved[inbox_checkpoint(projection.name)] = done["inbox"]
        write_checkpoints(session, moved)

    def checkpoints(self) -> dict[str, tuple[int, int]]:
        with self.database.reading() as session:
            return {
                p.name: (
                    read_checkpoint(session, own_checkpoint(p.name)),
                    read_checkpoint(session, inbox_checkpoint(p.name)),
                )
                for p in self.projections
            }

    def rebuild(self, names: Sequence[str] | None = None, report: Report | None = None) -> int:
        """Rebuild the named projections (all when None) from zero; returns how many events were replayed.

        ``report`` is told (replayed, total) after each run of events; the total is counted first (the
        append lock is held, so it cannot grow).
        """
        chosen = [p for p in self.projections if names is None or p.name in names]
        unknown = set(names or ()) - {p.name for p in chosen}
        if unknown:
            raise KeyError(f"no projection named {sorted(unknown)}")
        replayed = 0
        last_own = last_inbox = 0
        with _older_objects_frozen(), self.database.unit_of_work() as session:
            lock_appends(session)
            session.info[_REPLAYING] = True
            try:
                for projection in chosen:
                    for table in reversed(projection.tables):
                        session.execute(delete(table))
                total = self._count(session) if report is not None else 0
                if report is not None:
                    report(0, total)
                for kind, last, run in self._runs(session):
                    if kind == _OWN:
                        run = self.store.open_sealed(session, run)
                    elif self.open_received is not None:
                        run = self.open_received(session, run)
                    self._apply_run(session, run, chosen)
                    replayed += len(run)
                    if report is not None:
                        report(replayed, total)
                    if kind == _OWN:
                        last_own = last
                    else:
                        last_inbox = last
                moved = {own_checkpoint(projection.name): last_own for projection in chosen}
                moved.update({inbox_checkpoint(projection.name): last_inbox for projection in chosen})
                write_checkpoints(session, moved)
                for hook in self.after_rebuild:
                    hook(session)
            finally:
                session.info.pop(_REPLAYING, None)
        log.info("projection.rebuilt", projections=[p.name for p in chosen], events=replayed)
        return replayed

    def _count(self, session: Session) -> int:
        """How many events a rebuild replays: the service's own and those in its inbox."""
        own = session.execute(select(func.count()).select_from(events_table)).scalar() or 0
        received = session.execute(select(func.count()).select_from(inbox_table)).scalar() or 0
        return int(own) + int(received)

    def _runs(self, session: Session) -> Iterator[tuple[int, int, list[Envelope]]]:
        """(origin, its last position or sequence, envelopes): consecutive events of one origin, at most a chunk.

        Own events and received events are merged in the order this service saw them, so the order between
        runs is the live order.
        """
        # Plain tuples compare without a key function: (time, origin, position or sequence) never ties, and
        # both times come from the same database (naive on SQLite, tz-aware on PostgreSQL), so they compare.
        own = ((envelope.time, _OWN, envelope.position or 0, envelope) for envelope in self._own(session))
        kind = _OWN
        last = 0
        run: list[Envelope] = []
        for _at, origin, seq, envelope in heapq.merge(own, self._received(session)):
            if origin != kind or len(run) >= _CHUNK:
                if run:
                    yield kind, last, run
                    run = []
                kind = origin
            run.append(envelope)
            last = seq
        if run:
            yield kind, last, run

    def _own(self, session: Session) -> Iterator[Envelope]:
        after = 0
        while True:
            batch = self.store.read_after(session, after, limit=_CHUNK)
            if not batch:
                return
            yield from batch
            after = batch[-1].position or after

    def _received(self, session: Session) -> Iterator[tuple[datetime, int, int, Envelope]]:
        """(received at, origin, sequence, envelope) of the inbox, oldest first."""
        after = 0
        connection = session.connection()
        loads, envelope_of = json.loads, Envelope.from_stored
        while True:
            rows = connection.execute(_INBOX_CHUNK, {"after": after}).all()
            if not rows:
                return
            for seq, body, at in rows:
                # Ordered by when we received it: that is the order the live projection saw.
                yield at, _INBOX, seq, envelope_of(loads(body))
            after = rows[-1][0]


@contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """Keep the collector's full passes off the objects that existed before the rebuild.

    A rebuild allocates millions of objects that survive a chunk; each of the few full (generation 2)
    collections this sets off walked every object of the process (its modules, SQLAlchemy's and pydantic's
    caches): 8-15 µs an event, a third of testing's rebuild. Frozen objects are only skipped, never freed,
    and go back to the oldest generation afterwards; this is process-wide, so nested or concurrent rebuilds
    only make the next collection see them sooner.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def replaying(session: Session) -> bool:
    """Whether this transaction is a rebuild: every event it replays was checked when first applied.

    Own events were validated when appended; a received event's inbox row commits only with what the
    projections made of it. A projection may read ``envelope.data`` without validating it again then
    (``EventRegistry.trusted``), which is a fifth of a rebuild's time.
    """
    return bool(session.info.get(_REPLAYING))
