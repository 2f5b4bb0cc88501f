"""The outbox relay: the event table → Kafka, in position order, resumable.

The relay reads a batch after its checkpoint, sends every record (idempotent producer, ``acks=all``),
waits for all acknowledgements and only then moves the checkpoint. A crash between the send and the
checkpoint re-publishes at most that batch; consumers absorb it through their inbox. Rows are turned
into Kafka records straight from the table (the stored JSON *is* the record value) because this is the
hot path of every service.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2
from prometheus_client import Counter, Gauge
from sqlalchemy import Text, bindparam, select, type_coerce

from juwei import tracing
from juwei.database import Database
from juwei.events import CONTENT_TYPE, SPEC_VERSION, binary_headers, iso_time, parse_time
from juwei.failpoints import failpoint
from juwei.session import Session
from juwei.store import events_table, read_checkpoint, write_checkpoint

log = structlog.get_logger("juwei.relay")

RELAYED = Counter("juwei_relay_published_total", "Events the relay published to Kafka", ["topic"])
BACKLOG = Gauge(
    "juwei_relay_backlog",
    "Events in the table the relay has not published yet, as of its last read",
    ["topic"],
    multiprocess_mode="livemax",
)


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """Producer settings that keep order per key and never silently downgrade durability."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_in_flight_requests_per_connection": 5,
        "request_timeout_ms": 15000,
        "client_id": "juwei-relay",
    }
    config.update(overrides)
    return config


Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def record_from_row(row: Any, source: str) -> Record:
    """(key, value, headers) in CloudEvents binary mode, built straight from a table row.

    The reference: ``RecordBuilder`` gives the same bytes faster and is what the relay uses.
    """
    extensions = {
        "compound": row.compound,
        "streamversion": row.version,
        "position": row.position,
        "building": row.building,
        "traceparent": row.traceparent,
    }
    moment = parse_time(row.time) if isinstance(row.time, str) else row.time  # the relay reads SQLite's as text
    headers = binary_headers(row.id, source, row.type, row.stream_id, moment, extensions)
    return (row.building or row.stream_id).encode(), row.data.encode(), headers


_ROW_FIELDS = attrgetter(
    "position", "id", "stream_id", "version", "compound", "type", "building", "time", "data", "traceparent"
)


def _batch_query(dialect: str) -> Any:
    """The ten columns a record is built from, after a position. On SQLite the time comes as its stored text:
    SQLAlchemy would parse every row's (1.1–1.5 µs), while every event of one append shares its time."""
    moment = type_coerce(events_table.c.time, Text).label("time") if dialect == "sqlite" else events_table.c.time
    return (
        select(
            events_table.c.position,
            events_table.c.id,
            events_table.c.stream_id,
            events_table.c.version,
            events_table.c.compound,
            events_table.c.type,
            events_table.c.building,
            moment,
            events_table.c.data,
            events_table.c.traceparent,
        )
        .where(events_table.c.position > bindparam("after"))
        .order_by(events_table.c.position)
        .limit(bindparam("limit"))
    )


_BATCH_QUERIES = {dialect: _batch_query(dialect) for dialect in ("sqlite", "postgresql")}


class RecordBuilder:
    """``record_from_row`` for a stream of rows of one source, byte for byte, in about half the time.

    Building records is the relay's own share of its hot path (kafka-python's ``send`` is the rest), so the
    constant headers are encoded once, a row's ten fields come out in one ``attrgetter`` call, the
    extension headers are written inline (no dict, no generator, no ``str()`` of strings) and ``ce_time``
    is encoded again only when the time changes (every event of one append shares its time). The columns
    it reads are NOT NULL except ``building`` and ``traceparent``, which are left out when NULL, exactly as
    ``binary_headers`` leaves out extensions that are None.
    """

    __slots__ = ("_content_type", "_last_time", "_source", "_spec")

    def __init__(self, source: str) -> None:
        self._spec = ("ce_specversion", SPEC_VERSION.encode())
        self._source = ("ce_source", source.encode())
        self._content_type = ("content-type", CONTENT_TYPE.encode())
        # (time, its encoded ce_time header) of the previous row, replaced as one value: safe to share.
        self._last_time: tuple[Any, tuple[str, bytes] | None] = (None, None)

    def __call__(self, row: Any) -> Record:
        position, id_, stream_id, version, compound, type_, building, moment, data, traceparent = _ROW_FIELDS(row)
        last, ce_time = self._last_time
        # Naive and aware times never compare equal, so a naive time is never given an aware one's text.
        if ce_time is None or moment != last:
            # SQLite's stored text is UTC without an offset, read as SQLAlchemy would read it (naive UTC).
            ce_time = ("ce_time", iso_time(parse_time(moment) if isinstance(moment, str) else moment).encode())
            self._last_time = (moment, ce_time)
        headers = [
            self._spec,
            ("ce_id", id_.encode()),
            self._source,
            ("ce_type", type_.encode()),
            ("ce_subject", stream_id.encode()),
            ce_time,
            self._content_type,
            ("ce_compound", compound.encode()),
            ("ce_streamversion", str(version).encode()),
            ("ce_position", str(position).encode()),
        ]
        if building is not None:
            headers.append(("ce_building", building.encode()))
        if traceparent is not None:
            headers.append(("ce_traceparent", traceparent.encode()))
        return (building or stream_id).encode(), data.encode(), headers


class KeyPartitions:
    """Kafka's default partition of a key (murmur2, as the Java client and kafka-python place it), remembered.

    kafka-python computes murmur2 in pure Python for every record (~4 µs with its partitioner's bookkeeping);
    a relay sends the same few hundred keys (buildings, streams) over and over, so it hashes each once.
    """

    __slots__ = ("_hashes", "_limit")

    def __init__(self, limit: int = 100_000) -> None:
        self._hashes: dict[bytes, int] = {}
        self._limit = limit

    def __call__(self, key: bytes, partitions: list[int]) -> int:
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._limit:  # a bound, not an eviction policy: keys repeat in bursts
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return partitions[hashed % len(partitions)]


@dataclass
class Relay:
    """Publishes one service's event table to its topic."""

    database: Database
    topic: str
    source: str
    bootstrap: str
    batch_size: int = 2000
    idle_sleep: float = 0.05
    name: str = "relay"
    producer_overrides: dict[str, Any] | None = None
    # Extra headers per position for a batch's rows, read in the batch's session (the sealed-field keys a
    # granted consumer needs, see ``juwei.vault.KeyCourier``); None: rows go out as stored.
    attach: Callable[[Session, Sequence[Any]], dict[int, list[tuple[str, bytes]]]] | None = None

    def __post_init__(self) -> None:
        self._producer: KafkaProducer | None = None
        self.checkpoint_name = f"{self.name}:{self.topic}"
        # Row → (key, value, headers); replaceable (bench/relay_throughput.py measures record_from_row through it).
        self.build_record: Callable[[Any], Record] = RecordBuilder(self.source)
        self.partition_of = KeyPartitions()

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(**producer_config(self.bootstrap, **(self.producer_overrides or {})))
        return self._producer

    def backlog(self) -> int:
        with self.database.reading() as session:
            done = read_checkpoint(session, self.checkpoint_name)
            return max(0, self._head(session) - done)

    @staticmethod
    def _head(session: Session) -> int:
        """The last position in the table (positions may have gaps: a backlog from it is an upper bound)."""
        head = session.execute(select(events_table.c.position).order_by(events_table.c.position.desc()).limit(1))
        return int(head.scalar() or 0)

    def publish_once(self) -> int:
        """Publish the next batch; returns how many events went out (0 when caught up)."""
        with self.database.reading() as session:
            done = read_checkpoint(session, self.checkpoint_name)
            connection = session.connection()
            query = _BATCH_QUERIES.get(connection.dialect.name)
            if query is None:
                query = _batch_query(connection.dialect.name)
            rows = connection.execute(query, {"after": done, "limit": self.batch_size}).all()
            extra = self.attach(session, rows) if self.attach is not None and rows else {}
            # Set before the send, so a relay that cannot publish (Kafka away) shows the backlog growing.
            waiting = len(rows) if len(rows) < self.batch_size else self._head(session) - done
        BACKLOG.labels(self.topic).set(waiting)
        if not rows:
            return 0
        failpoint("relay.before_publish")
        producer = self.producer
        futures = []
        build, send, topic, partition_of = self.build_record, producer.send, self.topic, self.partition_of
        # Sorted, as the default partitioner sorts them; read per batch so added partitions are used.
        partitions = sorted(producer.partitions_for(topic))
        # Each event's publish span (none when traces are not exported) lasts from its send to Kafka's ack.
        spans = tracing.publishing(topic, rows)
        try:
            for row in rows:
                key, value, headers = build(row)
                if extra:
                    headers.extend(extra.get(row.position, ()))
                futures.append(
                    send(topic, key=key, value=value, headers=headers, partition=partition_of(key, partitions))
                )
            producer.flush()
            for future in futures:
                # Raises the send's error: the checkpoint must not pass an event Kafka did not take.
                future.get(timeout=0)
        except Exception as exc:
            tracing.published(spans, exc)
            raise
        tracing.published(spans)
        last = rows[-1].position
        failpoint("relay.after_publish")
        with self.database.unit_of_work() as session:
            write_checkpoint(session, self.checkpoint_name, last)
        RELAYED.labels(self.topic).inc(len(rows))
        BACKLOG.labels(self.topic).set(max(0, waiting - len(rows)))
        return len(rows)

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; errors are logged and retried with a growing pause."""
        pause = self.idle_sleep
        while not stop.is_set():
            try:
                sent = self.publish_once()
                pause = self.idle_sleep
                if sent < self.batch_size:
                    stop.wait(self.idle_sleep)
            except KafkaError as exc:
                log.warning("relay.kafka_error", topic=self.topic, error=str(exc))
                self._reset_producer()
                pause = min(pause * 2, 5.0)
                stop.wait(pause)
            except Exception as exc:  # the database may be away; keep trying, never die silently
                log.warning("relay.error", topic=self.topic, error=repr(exc))
                pause = min(pause * 2, 5.0)
                stop.wait(pause)
        self.close()

    def _reset_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception as exc:
                log.debug("relay.close_failed", error=repr(exc))
            self._producer = None

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(timeout=5)
        self._reset_producer()


def wait_until_published(relay: Relay, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while relay.backlog() > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"relay backlog still {relay.backlog()}")
        time.sleep(0.05)
