"""The event store: an append-only table that is also the outbox.

``append`` is atomic and checks the stream's expected version (optimistic concurrency). Positions are
handed out in commit order, so a reader that has passed position N can never later find a committed
event below N (gap safety): on PostgreSQL every append takes one transaction-scoped advisory lock before
it draws positions, on SQLite the unit of work already holds the database's single write lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from juwei import appending, tracing
from juwei.events import (
    DomainEvent,
    Envelope,
    EventRegistry,
    current_traceparent,
    dump_json,
    new_event_id,
    payload,
    private_payload,
    stored_envelope,
    utcnow,
)
from juwei.session import Session

if TYPE_CHECKING:
    from juwei.sealing import Sealing

metadata = MetaData()
# BIGINT on PostgreSQL, but INTEGER on SQLite so that it is the rowid alias and autoincrements.
Position = BigInteger().with_variant(Integer(), "sqlite")

events_table = Table(
    "juwei_events",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("stream_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("compound", String(64), nullable=False),
    Column("type", String(200), nullable=False),
    Column("building", String(64), nullable=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),
    Column("private", Text, nullable=True),
    Column("traceparent", String(64), nullable=True),
    Column("actor", String(64), nullable=True),
    UniqueConstraint("stream_id", "version", name="uq_juwei_events_stream_version"),
)
Index("ix_juwei_events_compound_position", events_table.c.compound, events_table.c.position)

snapshots_table = Table(
    "juwei_snapshots",
    metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("state", Text, nullable=False),
)

checkpoints_table = Table(
    "juwei_checkpoints",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("position", Position, nullable=False),
)

inbox_table = Table(
    "juwei_inbox",
    metadata,
    Column("seq", Position, primary_key=True, autoincrement=True),
    Column("consumer", String(100), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("type", String(200), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("consumer", "event_id", name="uq_juwei_inbox_consumer_event"),
)


class ConcurrencyError(Exception):
    """The stream moved on since the caller read it: reload and decide again (HTTP 409)."""

    def __init__(self, stream_id: str, expected: int | None, actual: int) -> None:
        super().__init__(f"stream {stream_id} is at version {actual}, expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class NewEvent:
    """What a caller appends: the payload and the optional building it concerns."""

    event: DomainEvent
    building: str | None = None


def lock_appends(session: Session) -> None:
    """Serialise position allocation with commit order (see the module docstring)."""
    appending.lock(session.connection(), events_table)


class EventStore:
    """Appends and reads one service's events. ``source`` is the CloudEvents source of this service."""

    def __init__(self, source: str, registry: EventRegistry) -> None:
        self.source = source
        self.registry = registry
        # Called inside the appending transaction with what was appended (inline projections).
        self.on_append: list[Callable[[Session, list[Envelope]], None]] = []
        # Seals the sealed fields of events on append and opens them on load (``juwei.sealing``); set by
        # the service's runtime when its catalogue has such fields.
        self.sealing: Sealing | None = None

    def open_sealed(self, session: Session, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """Envelopes of this log with their sealed fields' plain values in ``private`` (keys not shredded)."""
        if self.sealing is None or not envelopes:
            return list(envelopes)
        return self.sealing.open(session, self.registry, envelopes)

    def stream_version(self, session: Session, stream_id: str) -> int:
        return appending.current_version(session.connection(), events_table, stream_id)

    def append(
        self,
        session: Session,
        stream_id: str,
        events: Sequence[DomainEvent],
        *,
        expected_version: int | None,
        compound: str,
        traceparent: str | None = None,
        actor: str | None = None,
    ) -> list[Envelope]:
        """Append ``events`` to a stream if it is still at ``expected_version`` (``None``: any version)."""
        if not events:
            return []
        if not tracing.exporting():
            return self._append(session, stream_id, events, expected_version, compound, traceparent, actor)
        attributes = {"juwei.compound": compound, "juwei.stream": stream_id, "juwei.events": len(events)}
        # The events carry the append's own span: the relay's publish and every consumer's handling hang under it.
        with tracing.span(f"append {stream_type(stream_id, compound)}", parent=traceparent, attributes=attributes):
            traced = tracing.traceparent_now()
            return self._append(session, stream_id, events, expected_version, compound, traced, actor)

    def _append(
        self,
        session: Session,
        stream_id: str,
        events: Sequence[DomainEvent],
        expected_version: int | None,
        compound: str,
        traceparent: str | None,
        actor: str | None,
    ) -> list[Envelope]:
        # The statements run on the driver's connection of the transaction (``juwei.appending``): through
        # SQLAlchemy they cost as much as SQLite's own work.
        connection = session.connection()
        appending.lock(connection, events_table)
        current = appending.current_version(connection, events_table, stream_id)
        if expected_version is not None and current != expected_version:
            raise ConcurrencyError(stream_id, expected_version, current)
        pending = self._pending(
            session,
            [(stream_id, event, current + offset, compound) for offset, event in enumerate(events, start=1)],
            traceparent,
            actor,
        )
        try:
            positions = appending.insert(connection, events_table, [row for _event, row in pending])
        except (IntegrityError, connection.dialect.loaded_dbapi.IntegrityError) as exc:
            # A backstop only: the append lock makes the version read above exact.
            raise ConcurrencyError(stream_id, expected_version, current) from exc
        appended = self._appended(pending, positions)
        for hook in self.on_append:
            hook(session, appended)
        return appended

    def append_many(
        self,
        session: Session,
        batches: Iterable[tuple[str, Sequence[DomainEvent], int | None, str]],
        *,
        traceparent: str | None = None,
        actor: str | None = None,
    ) -> list[Envelope]:
        """Append to several streams in one transaction (bulk import): all or nothing.

        Each batch is (stream, events, expected version, compound). One version check, one insert and one
        round of hooks cover every stream: per-stream appends made a 5,000-resident import slow.
        """
        batches = [batch for batch in batches if batch[1]]
        if not batches:
            return []
        if not tracing.exporting():
            return self._append_many(session, batches, traceparent, actor)
        kinds = sorted({stream_type(stream_id, compound) for stream_id, _events, _version, compound in batches})
        attributes = {
            "juwei.compound": batches[0][3],
            "juwei.streams": len(batches),
            "juwei.events": sum(len(events) for _stream, events, _version, _compound in batches),
        }
        with tracing.span(f"append {','.join(kinds)}", parent=traceparent, attributes=attributes):
            return self._append_many(session, batches, tracing.traceparent_now(), actor)

    def _append_many(
        self,
        session: Session,
        batches: list[tuple[str, Sequence[DomainEvent], int | None, str]],
        traceparent: str | None,
        actor: str | None,
    ) -> list[Envelope]:
        connection = session.connection()
        appending.lock(connection, events_table)
        versions = _stream_versions(connection, sorted({batch[0] for batch in batches}))
        planned: list[tuple[str, DomainEvent, int, str]] = []
        for stream_id, events, expected, compound in batches:
            current = versions.get(stream_id, 0)
            if expected is not None and current != expected:
                raise ConcurrencyError(stream_id, expected, current)
            planned.extend(
                (stream_id, event, current + offset, compound) for offset, event in enumerate(events, start=1)
            )
            versions[stream_id] = current + len(events)
        pending = self._pending(session, planned, traceparent, actor)
        try:
            positions = appending.insert(connection, events_table, [row for _event, row in pending])
        except (IntegrityError, connection.dialect.loaded_dbapi.IntegrityError) as exc:
            # A backstop only, as in ``append``.
            first = batches[0]
            raise ConcurrencyError(first[0], first[2], versions.get(first[0], 0)) from exc
        appended = self._appended(pending, positions)
        for hook in self.on_append:
            hook(session, appended)
        return appended

    def _pending(
        self,
        session: Session,
        planned: Sequence[tuple[str, DomainEvent, int, str]],
        traceparent: str | None,
        actor: str | None,
    ) -> list[tuple[_Pending, tuple[Any, ...]]]:
        """The rows to insert, and what each envelope needs once the insert has handed out positions.

        Sealed fields are sealed here: the row keeps the token only, while the envelope handed to this
        service's projections keeps the plain values it was given (in ``private``), as a load would open them.
        """
        now = utcnow()
        traceparent = traceparent or current_traceparent.get()
        stored_events = [event for _s, event, _v, _c in planned]
        if self.sealing is not None and any(event.sealed_fields for event in stored_events):
            stored_events = self.sealing.seal(session, stored_events)
        pending: list[tuple[_Pending, tuple[Any, ...]]] = []
        for (stream_id, event, version, compound), stored in zip(planned, stored_events, strict=True):
            data = payload(stored)
            private = private_payload(event)
            kept = private
            if stored is not event:
                plain = {field for spec in event.sealed_fields.values() for field in spec.fields}
                kept = {name: value for name, value in (private_payload(stored) or {}).items() if name not in plain}
            event_id = new_event_id()
            type_name = event.type_name()
            building = event.building_id()
            pending.append(
                (
                    (event_id, type_name, stream_id, data, compound, version, building, private),
                    # appending.EVENT_COLUMNS
                    (
                        event_id,
                        stream_id,
                        version,
                        compound,
                        type_name,
                        building,
                        now,
                        dump_json(data).decode(),
                        dump_json(kept).decode() if kept else None,
                        traceparent,
                        actor,
                    ),
                )
            )
        return pending

    def _appended(
        self, pending: Sequence[tuple[_Pending, tuple[Any, ...]]], positions: Sequence[int]
    ) -> list[Envelope]:
        # Each envelope is built once, with its position (copying a frozen dataclass cost 9 µs an event).
        return [
            Envelope(
                id=event_id,
                source=self.source,
                type=type_name,
                subject=stream_id,
                time=row[6],
                data=data,
                compound=compound,
                streamversion=version,
                position=position,
                building=building,
                traceparent=row[9],
                private=private,
            )
            for ((event_id, type_name, stream_id, data, compound, version, building, private), row), position in zip(
                pending, positions, strict=True
            )
        ]

    def read_stream(self, session: Session, stream_id: str, after_version: int = 0) -> list[Envelope]:
        rows = session.execute(
            select(events_table)
            .where(events_table.c.stream_id == stream_id, events_table.c.version > after_version)
            .order_by(events_table.c.version)
        ).mappings()
        return [self._envelope(row) for row in rows]

    def read_after(
        self, session: Session, position: int, limit: int = 500, compound: str | None = None
    ) -> list[Envelope]:
        """Events after ``position`` in log order (a rebuild reads the whole log through this, in chunks)."""
        query = select(*_ENVELOPE_COLUMNS).where(events_table.c.position > position)
        if compound is not None:
            query = query.where(events_table.c.compound == compound)
        # Plain tuples on the transaction's connection: juwei maps no classes, so rows need no mapping.
        rows = session.connection().execute(query.order_by(events_table.c.position).limit(limit))
        source, loads, upcast, upcasters = self.source, json.loads, self.registry.upcast, self.registry.upcasters
        read: list[Envelope] = []
        for row in rows:
            at_position, event_id, stream_id, version, of_compound, type_name, building, at, data, private, trace = row
            payload_of = loads(data)
            if type_name in upcasters:  # only old versions pay for upcasting
                type_name, payload_of = upcast(type_name, payload_of)
            read.append(
                stored_envelope(
                    event_id,
                    source,
                    type_name,
                    stream_id,
                    at,
                    payload_of,
                    of_compound,
                    version,
                    at_position,
                    building,
                    trace,
                    loads(private) if private else None,
                )
            )
        return read

    def read_visible(
        self,
        session: Session,
        position: int,
        limit: int,
        *,
        compounds: Collection[str] | None = None,
        types: Collection[str] | None = None,
        buildings: Collection[str] | None = None,
        compound_wide: bool = True,
    ) -> list[Envelope]:
        """``read_after`` narrowed in SQL to some compounds, stored type names and buildings (the feed's scope).

        With ``buildings``, events that concern no one building pass when ``compound_wide``.
        """
        if types is not None and not types:
            return []
        query = select(*_ENVELOPE_COLUMNS).where(events_table.c.position > position)
        if compounds is not None:
            query = query.where(events_table.c.compound.in_(sorted(compounds)))
        if types is not None:
            query = query.where(events_table.c.type.in_(sorted(types)))
        if buildings is not None:
            inside = events_table.c.building.in_(sorted(buildings))
            query = query.where(or_(inside, events_table.c.building.is_(None)) if compound_wide else inside)
        rows = session.connection().execute(query.order_by(events_table.c.position).limit(limit))
        return [self._envelope_of(row) for row in rows]

    def _envelope_of(self, row: Any) -> Envelope:
        at_position, event_id, stream_id, version, of_compound, type_name, building, at, data, private, trace = row
        payload_of = json.loads(data)
        if type_name in self.registry.upcasters:
            type_name, payload_of = self.registry.upcast(type_name, payload_of)
        return stored_envelope(
            event_id,
            self.source,
            type_name,
            stream_id,
            at,
            payload_of,
            of_compound,
            version,
            at_position,
            building,
            trace,
            json.loads(private) if private else None,
        )

    def head(self, session: Session) -> int:
        return int(session.execute(select(func.max(events_table.c.position))).scalar() or 0)

    def decode(self, envelope: Envelope) -> DomainEvent:
        """The domain event, private fields included (they are present when read from this store)."""
        data = {**envelope.data, **envelope.private} if envelope.private else envelope.data
        return self.registry.decode(envelope.type, data)

    def _envelope(self, row: Any) -> Envelope:
        data = json.loads(row["data"])
        type_name, data = self.registry.upcast(row["type"], data)
        return envelope_from_row(row, self.source, data=data, type_name=type_name)


# What an Envelope needs of a row, in the order ``read_after`` unpacks it (not the actor).
_ENVELOPE_COLUMNS = (
    events_table.c.position,
    events_table.c.id,
    events_table.c.stream_id,
    events_table.c.version,
    events_table.c.compound,
    events_table.c.type,
    events_table.c.building,
    events_table.c.time,
    events_table.c.data,
    events_table.c.private,
    events_table.c.traceparent,
)

# (id, type, stream, data, compound, version, building, private) of an event about to be inserted.
_Pending = tuple[str, str, str, dict[str, Any], str, int, str | None, dict[str, Any] | None]

_STREAM_VERSIONS = (
    select(events_table.c.stream_id, func.max(events_table.c.version))
    .where(events_table.c.stream_id.in_(bindparam("stream_ids", expanding=True)))
    .group_by(events_table.c.stream_id)
)


def stream_type(stream_id: str, compound: str) -> str:
    """The kind of a stream (``household`` of ``household-c1:h3-0101``): streams are ``<prefix>-<district-wide id>``,
    and that id is the compound or begins with it."""
    prefix, found, _rest = stream_id.partition(f"-{compound}")
    return prefix if found and prefix else stream_id.split("-", 1)[0]


def _stream_versions(connection: Connection, stream_ids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    if connection.dialect.name == "postgresql":
        # One index probe per stream (the newest entry of uq_juwei_events_stream_version): GROUP BY would
        # read every event of every stream named, and long streams made multi-stream batches slow.
        rows = connection.execute(
            text(
                "SELECT s.id, (SELECT max(e.version) FROM juwei_events e WHERE e.stream_id = s.id) "
                "FROM unnest(CAST(:ids AS text[])) AS s(id)"
            ),
            {"ids": list(stream_ids)},
        )
        return {stream_id: int(version) for stream_id, version in rows if version is not None}
    for start in range(0, len(stream_ids), 500):  # IN lists far below every parameter limit
        rows = connection.execute(_STREAM_VERSIONS, {"stream_ids": list(stream_ids[start : start + 500])})
        found.update((stream_id, int(version)) for stream_id, version in rows)
    return found


def envelope_from_row(
    row: Any, source: str, data: dict[str, Any] | None = None, type_name: str | None = None
) -> Envelope:
    moment: datetime = row["time"]
    private = row.get("private")
    return stored_envelope(
        row["id"],
        source,
        type_name or row["type"],
        row["stream_id"],
        moment,
        data if data is not None else json.loads(row["data"]),
        row["compound"],
        row["version"],
        row["position"],
        row["building"],
        row["traceparent"],
        json.loads(private) if private else None,
    )


_READ_CHECKPOINT = select(checkpoints_table.c.position).where(checkpoints_table.c.name == bindparam("name"))


def read_checkpoint(session: Session, name: str) -> int:
    value = session.connection().execute(_READ_CHECKPOINT, {"name": name}).scalar()
    return int(value or 0)


def write_checkpoint(session: Session, name: str, position: int) -> None:
    write_checkpoints(session, {name: position})


_CHECKPOINT_UPSERTS: dict[str, Any] = {}


def write_checkpoints(session: Session, positions: Mapping[str, int]) -> None:
    """Move several checkpoints with one statement: a projector moves two per projection in every unit of work,
    and an UPDATE (then INSERT) per checkpoint was ~5 % of a request's CPU (measured under the ORM session)."""
    if not positions:
        return
    connection = session.connection()
    dialect = connection.dialect.name
    statement = _CHECKPOINT_UPSERTS.get(dialect)
    if statement is None:
        proposed = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(checkpoints_table)
        statement = _CHECKPOINT_UPSERTS[dialect] = proposed.on_conflict_do_update(
            index_elements=["name"], set_={"position": proposed.excluded.position}
        )
    connection.execute(statement, [{"name": name, "position": position} for name, position in positions.items()])
