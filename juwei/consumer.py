"""Kafka → handler, with inbox dedupe and commit-after-effects.

One poll's records are handled in one database transaction: first all together (one dedupe query, one
inbox insert, the handlers), and only when a handler fails again one by one, each inside its own savepoint
together with its inbox row, so a failing record rolls back alone. The Kafka offsets are committed only after that
transaction: a crash in between redelivers records whose ids are already in the inbox, and they are
skipped. A record that cannot be decoded, or whose handler keeps failing, goes to ``<topic>.dlq`` with the
error in its headers, and the partition moves on. When the database itself is away, nothing is dead-
lettered: the consumer seeks back and tries the same records again later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from opentelemetry.trace import SpanKind
from prometheus_client import Counter
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from juwei import tracing
from juwei.database import Database
from juwei.events import (
    Envelope,
    MalformedEvent,
    UnknownEventType,
    current_traceparent,
    dump_json,
    utcnow,
    valid_traceparent,
)
from juwei.failpoints import failpoint
from juwei.kafka_clients import made
from juwei.session import Session
from juwei.store import inbox_table, lock_appends
from juwei.topics import dead_letter_topic
from juwei.vault import SEALED_KEY_HEADER

log = structlog.get_logger("juwei.consumer")


@dataclass(frozen=True)
class Delivery:
    """An event as it reached this service: the envelope and its row in the inbox.

    ``sealed_keys`` are the record's ``juwei_sealed_key`` headers: data keys of its sealed fields, handed over
    to services granted to read them (``juwei.vault.KeyCourier``); they are never stored in the inbox.
    """

    envelope: Envelope
    inbox_seq: int
    topic: str
    sealed_keys: tuple[bytes, ...] = ()


def sealed_keys_of(record: Any) -> tuple[bytes, ...]:
    return tuple(value for name, value in record.headers or () if name == SEALED_KEY_HEADER and value)


Handler = Callable[[Session, Delivery], None]
# Takes a whole poll's new deliveries at once, in order (read models written set-based); optional.
BatchHandler = Callable[[Session, list[Delivery]], None]

HANDLED = Counter("juwei_consumer_handled_total", "Events handled", ["group", "topic"])
SKIPPED = Counter("juwei_consumer_duplicates_total", "Redelivered events skipped by the inbox", ["group"])
DEAD = Counter("juwei_consumer_dead_lettered_total", "Records sent to the dead-letter topic", ["group", "topic"])

# Errors that say "the record is bad", not "the world is unwell": no retry helps them.
POISON = (MalformedEvent, UnknownEventType)


class _OneByOne(Exception):
    """A record of the batch failed: roll the batch back and handle its records one by one."""


_SEEN = select(inbox_table.c.event_id).where(
    inbox_table.c.consumer == bindparam("consumer"), inbox_table.c.event_id.in_(bindparam("ids", expanding=True))
)
_INSERT_INBOX = insert(inbox_table).returning(inbox_table.c.seq, sort_by_parameter_order=True)


class DatabaseAway(Exception):
    """The database failed under the batch: retry the same records later instead of dead-lettering."""


def consumer_config(bootstrap: str, group: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 500,
        "session_timeout_ms": 10000,
        "heartbeat_interval_ms": 1000,
        # A member that joined before a topic's partitions were known only rebalances on the next
        # metadata refresh (default 5 minutes): refresh often so such a group is whole in seconds.
        "metadata_max_age_ms": 5000,
        "client_id": f"juwei-{group}",
    }
    config.update(overrides)
    return config


@dataclass
class EventConsumer:
    """One consumer-group member of a service: reads ``topics`` and hands each event to ``handler``."""

    database: Database
    group: str
    topics: list[str]
    handler: Handler
    bootstrap: str
    attempts: int = 3
    retry_pause: float = 0.05
    consumer_overrides: dict[str, Any] = field(default_factory=dict)
    handle_many: BatchHandler | None = None

    def __post_init__(self) -> None:
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        for topic in self.topics:  # at zero from the start: the first dead letter is an increase for the alert
            DEAD.labels(self.group, topic)

    @property
    def consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            consumer = made(KafkaConsumer, **consumer_config(self.bootstrap, self.group, **self.consumer_overrides))
            try:
                # kafka-python's group leader assigns only topics whose metadata it holds: without this fetch a
                # member could lead a group before the metadata arrived and hand every partition to nobody.
                for topic in self.topics:
                    consumer.partitions_for_topic(topic)
                consumer.subscribe(self.topics)
            except BaseException:
                consumer.close()  # the next try makes another: this one's IO thread must not live on
                raise
            self._consumer = consumer
        return self._consumer

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all", client_id=f"{self.group}-dlq"
            )
        return self._producer

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Handle one poll's records and commit their offsets; returns how many records were seen."""
        batches = self.consumer.poll(timeout_ms=timeout_ms)
        records = [record for batch in batches.values() for record in batch]
        if not records:
            return 0
        try:
            dead = self._handle(records)
        except DatabaseAway as exc:
            log.warning("consumer.database_away", group=self.group, error=str(exc))
            for tp, batch in batches.items():
                self.consumer.seek(tp, batch[0].offset)
            time.sleep(0.5)
            return 0
        for record, error in dead:
            self._dead_letter(record, error)
        if dead:
            self.producer.flush()
        failpoint("consumer.after_effects")
        offsets = {
            TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(batch[-1].offset + 1, "", -1)
            for tp, batch in batches.items()
        }
        try:
            self.consumer.commit(offsets)
        except KafkaError as exc:
            # Refused (the group moved on: a rebalance, or a poll slower than the group waits) or not answered (the
            # coordinator moved): the effects are committed with their inbox rows, so a redelivery is skipped, and
            # the next commit covers these offsets too.
            log.info("consumer.commit_lost", group=self.group, records=len(records), error=type(exc).__name__)
        return len(records)

    def _handle(self, records: list[Any]) -> list[tuple[Any, BaseException]]:
        dead: list[tuple[Any, BaseException]] = []
        decoded: list[tuple[Any, Envelope]] = []
        for record in records:
            try:
                decoded.append((record, Envelope.from_kafka(record.value, record.headers or [])))
            except MalformedEvent as exc:
                dead.append((record, exc))
        try:
            try:
                self._handle_together(decoded)
            except _OneByOne as exc:
                log.info("consumer.one_by_one", group=self.group, records=len(decoded), cause=repr(exc.__cause__))
                with self.database.unit_of_work() as session:
                    lock_appends(session)  # a rebuild must not interleave with received events
                    for record, envelope in decoded:
                        error = self._handle_one(session, record, envelope)
                        if error is not None:
                            dead.append((record, error))
        except (OperationalError, DBAPIError) as exc:
            raise DatabaseAway(str(exc)) from exc
        return dead

    def _handle_together(self, decoded: list[tuple[Any, Envelope]]) -> None:
        """The whole poll in one go: a savepoint, a dedupe query and an inbox insert per record were most of a
        consumer's time. Any failure of a record raises ``_OneByOne`` and rolls everything back."""
        if not decoded:
            return
        handled: dict[str, int] = {}
        with self.database.unit_of_work() as session:
            lock_appends(session)  # a rebuild must not interleave with received events
            connection = session.connection()
            seen = set(
                connection.execute(_SEEN, {"consumer": self.group, "ids": [env.id for _r, env in decoded]}).scalars()
            )
            fresh: list[tuple[Any, Envelope]] = []
            for record, envelope in decoded:
                if envelope.id in seen:
                    SKIPPED.labels(self.group).inc()
                    continue
                seen.add(envelope.id)  # the same event twice in one poll: the second is a duplicate
                fresh.append((record, envelope))
            if not fresh:
                return
            now = utcnow()
            try:
                seqs = (
                    connection.execute(
                        _INSERT_INBOX,
                        [
                            {
                                "consumer": self.group,
                                "event_id": envelope.id,
                                "type": envelope.type,
                                "envelope": dump_json(envelope.to_cloudevent()).decode(),
                                "received_at": now,
                            }
                            for _record, envelope in fresh
                        ],
                    )
                    .scalars()
                    .all()
                )
            except IntegrityError as exc:  # another member took some of them during a rebalance
                raise _OneByOne from exc
            deliveries = [
                Delivery(envelope, seq, record.topic, sealed_keys_of(record))
                for (record, envelope), seq in zip(fresh, seqs, strict=True)
            ]
            for delivery in deliveries:
                handled[delivery.topic] = handled.get(delivery.topic, 0) + 1
            try:
                if self.handle_many is not None:
                    with self._span_of_many(deliveries):
                        self.handle_many(session, deliveries)
                else:
                    for delivery in deliveries:
                        # Events the handler appends continue the trace of the event that caused them.
                        token = current_traceparent.set(valid_traceparent(delivery.envelope.traceparent))
                        try:
                            with self._span_of(delivery.envelope, delivery.topic):
                                self.handler(session, delivery)
                        finally:
                            current_traceparent.reset(token)
            except OperationalError:
                raise
            except Exception as exc:
                raise _OneByOne from exc
        for topic, count in handled.items():
            HANDLED.labels(self.group, topic).inc(count)

    def _span_of(self, envelope: Envelope, topic: str) -> AbstractContextManager[Any]:
        """``handle <event type>``, a child of the span the event was appended in (its record's traceparent)."""
        if not tracing.exporting():
            return nullcontext()
        return tracing.span(
            f"handle {envelope.type}",
            parent=envelope.traceparent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.consumer.group.name": self.group,
                "messaging.message.id": envelope.id,
                "juwei.compound": envelope.compound,
            },
        )

    def _span_of_many(self, deliveries: list[Delivery]) -> AbstractContextManager[Any]:
        """A poll's deliveries handled together: one span, linked to the span each event was appended in."""
        if not tracing.exporting():
            return nullcontext()
        return tracing.span(
            "handle batch",
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.consumer.group.name": self.group,
                "messaging.batch.message_count": len(deliveries),
            },
            links=[delivery.envelope.traceparent for delivery in deliveries],
        )

    def _handle_one(self, session: Session, record: Any, envelope: Envelope) -> BaseException | None:
        seen = session.execute(
            select(inbox_table.c.seq).where(inbox_table.c.consumer == self.group, inbox_table.c.event_id == envelope.id)
        ).first()
        if seen is not None:
            SKIPPED.labels(self.group).inc()
            return None
        # Events the handler appends continue the trace of the event that caused them.
        token = current_traceparent.set(valid_traceparent(envelope.traceparent))
        try:
            return self._handle_attempts(session, record, envelope)
        finally:
            current_traceparent.reset(token)

    def _handle_attempts(self, session: Session, record: Any, envelope: Envelope) -> BaseException | None:
        last_error: BaseException | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                with session.begin_nested():
                    seq = session.execute(
                        insert(inbox_table)
                        .returning(inbox_table.c.seq)
                        .values(
                            consumer=self.group,
                            event_id=envelope.id,
                            type=envelope.type,
                            envelope=dump_json(envelope.to_cloudevent()).decode(),
                            received_at=utcnow(),
                        )
                    ).scalar_one()
                    with self._span_of(envelope, record.topic):
                        self.handler(session, Delivery(envelope, seq, record.topic, sealed_keys_of(record)))
                HANDLED.labels(self.group, record.topic).inc()
                return None
            except IntegrityError as exc:
                if _is_inbox_conflict(exc):
                    SKIPPED.labels(self.group).inc()  # another member handled it during a rebalance
                    return None
                last_error = exc
            except POISON as exc:
                return exc
            except OperationalError:
                raise
            except Exception as exc:  # a handler bug or a rule it cannot satisfy: retry, then dead-letter
                last_error = exc
            log.warning("consumer.retry", group=self.group, type=envelope.type, attempt=attempt, error=repr(last_error))
            time.sleep(self.retry_pause * 2 ** (attempt - 1))
        return last_error

    def _dead_letter(self, record: Any, error: BaseException) -> None:
        headers = [
            *(record.headers or []),
            ("juwei_error", str(error)[:2000].encode()),
            ("juwei_error_type", type(error).__name__.encode()),
            ("juwei_original_topic", record.topic.encode()),
            ("juwei_original_partition", str(record.partition).encode()),
            ("juwei_original_offset", str(record.offset).encode()),
            ("juwei_consumer_group", self.group.encode()),
        ]
        self.producer.send(dead_letter_topic(record.topic), key=record.key, value=record.value, headers=headers)
        DEAD.labels(self.group, record.topic).inc()
        log.error(
            "consumer.dead_lettered",
            group=self.group,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error_type=type(error).__name__,
        )

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_once()
            except KafkaError as exc:
                log.warning("consumer.kafka_error", group=self.group, error=str(exc))
                stop.wait(1.0)
            except Exception as exc:
                log.error("consumer.error", group=self.group, error=repr(exc))
                self._reset()
                stop.wait(1.0)
        self.close()

    def _reset(self) -> None:
        # Re-joining resumes from the committed offsets: nothing past them was acknowledged.
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            except Exception as exc:
                log.debug("consumer.close_failed", error=repr(exc))
            self._consumer = None

    def close(self) -> None:
        self._reset()
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


def _is_inbox_conflict(exc: IntegrityError) -> bool:
    text = str(exc.orig).lower()
    return "uq_juwei_inbox_consumer_event" in text or "juwei_inbox.consumer" in text
