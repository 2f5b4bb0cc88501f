"""The dead-letter office: what consumers could not handle, read back from ``<topic>.dlq``, requeued or dropped.

A dead letter is named by where it lies, ``<topic>.dlq:<partition>:<offset>``. Its headers say where it came
from and why it failed (``juwei.consumer`` adds them). A requeue sends the record back to its original topic
and partition with its own key, value and headers (the dead-letter ones taken off, ``juwei_requeued_from``
added): every consumer group of that topic sees it again, and those that handled it already skip it by their
inbox, so a requeue is safe to repeat.

Kafka cannot delete one record, so a drop is a mark. Every action — requeue or drop, who, when, on what — is
one JSON record on the actions topic (``juwei.dlq.actions``): an ordinary topic of one partition kept
forever, read whole to know which letters are dropped. It is the audit and the marks at once, and it lives
beside the dead letters it speaks of: the tool needs no service's database, and a compacted topic would
forget earlier actions on the same letter.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from juwei.events import iso_time, parse_time, utcnow
from juwei.kafka_clients import made
from juwei.topics import dead_letter_topic, ensure_topics
from juwei.vault import SEALED_KEY_HEADER

ACTIONS_TOPIC = "juwei.dlq.actions"
DLQ_SUFFIX = dead_letter_topic("")
REQUEUED_HEADER = "juwei_requeued_from"
# What the consumer adds when it dead-letters a record: a requeue takes them off, the record goes back as it was.
DEAD_LETTER_HEADERS = frozenset(
    {
        "juwei_error",
        "juwei_error_type",
        "juwei_original_topic",
        "juwei_original_partition",
        "juwei_original_offset",
        "juwei_consumer_group",
        REQUEUED_HEADER,
    }
)
ActionKind = Literal["requeue", "drop"]


class DeadLetterError(Exception):
    """Something the operator asked cannot be done (an unknown or malformed id); the message says what."""


class KafkaUnreachable(Exception):
    """The brokers did not answer in time."""


@dataclass(frozen=True, order=True)
class DeadLetterId:
    """Where a dead letter lies: ``<topic>.dlq:<partition>:<offset>``."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def parse(cls, text: str) -> DeadLetterId:
        topic, _, rest = text.strip().partition(":")
        partition, _, offset = rest.partition(":")
        if not (topic.endswith(DLQ_SUFFIX) and partition.isdigit() and offset.isdigit()):
            raise DeadLetterError(f"{text!r} is not a dead letter's id: write <topic>.dlq:<partition>:<offset>")
        return cls(topic, int(partition), int(offset))

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, with what its headers say."""

    id: DeadLetterId
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    at: datetime  # when it was dead-lettered (the record's timestamp)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name and value is not None:
                return value.decode(errors="replace")
        return None

    @property
    def original_topic(self) -> str:
        return self.header("juwei_original_topic") or self.id.topic.removesuffix(DLQ_SUFFIX)

    @property
    def original_partition(self) -> int | None:
        text = self.header("juwei_original_partition")
        return int(text) if text and text.isdigit() else None

    @property
    def original_offset(self) -> int | None:
        text = self.header("juwei_original_offset")
        return int(text) if text and text.isdigit() else None

    @property
    def event_id(self) -> str | None:
        return self.header("ce_id")

    @property
    def event_type(self) -> str | None:
        return self.header("ce_type")

    @property
    def error(self) -> str:
        return self.header("juwei_error") or ""

    @property
    def error_type(self) -> str:
        return self.header("juwei_error_type") or ""

    @property
    def group(self) -> str | None:
        return self.header("juwei_consumer_group")

    def requeue_headers(self, by: str) -> list[tuple[str, bytes]]:
        """The record's own headers, without the dead-letter ones, and where (and by whom) it was requeued from."""
        own = [(name, value) for name, value in self.headers if name not in DEAD_LETTER_HEADERS]
        return [*own, (REQUEUED_HEADER, f"{self.id} by {by}".encode())]

    def summary(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "at": iso_time(self.at),
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "consumer_group": self.group,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "error_type": self.error_type,
            "error": self.error,
            "requeued_from": self.header(REQUEUED_HEADER),
        }

    def whole(self) -> dict[str, Any]:
        """Everything of the record: headers (sealed keys only by their size) and the payload as JSON."""
        headers: list[dict[str, Any]] = []
        for name, value in self.headers:
            if name == SEALED_KEY_HEADER:  # a data key: never shown
                shown: str | None = f"<sealed key, {len(value or b'')} bytes>"
            else:
                shown = None if value is None else value.decode(errors="replace")
            headers.append({"name": name, "value": shown})
        payload: Any
        try:
            payload = json.loads(self.value) if self.value is not None else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = {"unreadable": (self.value or b"").decode(errors="replace")}
        return {
            **self.summary(),
            "key": None if self.key is None else self.key.decode(errors="replace"),
            "headers": headers,
            "payload": payload,
        }


@dataclass(frozen=True)
class Action:
    """One thing an operator did to a dead letter: who, when, what (and where a requeue put it)."""

    action: ActionKind
    dead_letter: str
    by: str
    at: datetime
    host: str
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    event_id: str | None
    event_type: str | None
    note: str | None = None
    requeued_as: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "dead_letter": self.dead_letter,
            "by": self.by,
            "at": iso_time(self.at),
            "host": self.host,
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "note": self.note,
            "requeued_as": self.requeued_as,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Action:
        return cls(**{**data, "at": parse_time(data["at"])})


@dataclass(frozen=True)
class Selection:
    """Which dead letters an operator means: by original topic, event type, error text and time."""

    topics: tuple[str, ...] = ()
    event_type: str | None = None
    error: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def dead_letter_topics(self, existing: Iterable[str]) -> list[str]:
        dlqs = sorted(name for name in existing if name.endswith(DLQ_SUFFIX) and name != DLQ_SUFFIX)
        if not self.topics:
            return dlqs
        wanted = {name if name.endswith(DLQ_SUFFIX) else dead_letter_topic(name) for name in self.topics}
        return [name for name in dlqs if name in wanted]

    def admits(self, letter: DeadLetter) -> bool:
        if self.event_type is not None and self.event_type not in (letter.event_type or ""):
            return False
        if self.error is not None:
            needle = self.error.lower()
            if needle not in letter.error.lower() and needle not in letter.error_type.lower():
                return False
        if self.since is not None and letter.at < self.since:
            return False
        return self.until is None or letter.at <= self.until


@dataclass
class Ledger:
    """The actions taken so far, by dead letter."""

    actions: list[Action] = field(default_factory=list)

    def of(self, letter: DeadLetterId | str) -> list[Action]:
        name = str(letter)
        return [action for action in self.actions if action.dead_letter == name]

    def dropped(self, letter: DeadLetterId | str) -> bool:
        return any(action.action == "drop" for action in self.of(letter))

    def requeued(self, letter: DeadLetterId | str) -> int:
        return sum(action.action == "requeue" for action in self.of(letter))

    def state(self, letter: DeadLetterId | str) -> str:
        if self.dropped(letter):
            return "dropped"
        times = self.requeued(letter)
        return f"requeued ×{times}" if times > 1 else "requeued" if times else "new"


class DeadLetterOffice:
    """Reads dead letters and the actions topic; requeues and drops, recording each action."""

    def __init__(
        self,
        bootstrap: str,
        security: dict[str, Any] | None = None,
        actions_topic: str = ACTIONS_TOPIC,
        timeout: float = 30.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.security = security or {}
        self.actions_topic = actions_topic
        self.timeout = timeout
        self._reader: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None

    def __enter__(self) -> DeadLetterOffice:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def reader(self) -> KafkaConsumer:
        if self._reader is None:
            try:
                # No group: reading the letters commits nothing and takes no partition from anyone.
                self._reader = made(
                    KafkaConsumer,
                    bootstrap_servers=self.bootstrap.split(","),
                    group_id=None,
                    enable_auto_commit=False,
                    allow_auto_create_topics=False,
                    request_timeout_ms=int(self.timeout * 1000),
                    client_id="juwei-dlq",
                    **self._bootstrap_timeout(KafkaConsumer),
                    **self.security,
                )
            except KafkaError as exc:
                raise KafkaUnreachable(f"Kafka at {self.bootstrap} did not answer: {exc}") from None
        return self._reader

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap.split(","),
                    acks="all",
                    enable_idempotence=True,
                    client_id="juwei-dlq",
                    **self._bootstrap_timeout(KafkaProducer),
                    **self.security,
                )
            except KafkaError as exc:
                raise KafkaUnreachable(f"Kafka at {self.bootstrap} did not answer: {exc}") from None
        return self._producer

    def _bootstrap_timeout(self, client: type) -> dict[str, int]:
        # How long an absent cluster takes to be reported (kafka-python's own default is 30 s).
        known = "bootstrap_timeout_ms" in client.DEFAULT_CONFIG  # kafka-python 3.0.12 has it
        return {"bootstrap_timeout_ms": int(self.timeout * 1000)} if known else {}

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None

    # ----------------------------------------------------------------------------------------- reading

    def topics(self) -> set[str]:
        try:
            return set(self.reader.topics())
        except KafkaError as exc:
            raise KafkaUnreachable(f"Kafka at {self.bootstrap} did not answer: {exc}") from None

    def letters(self, selection: Selection) -> list[DeadLetter]:
        """Every dead letter the selection admits, oldest first."""
        found = [
            letter
            for record in self._records(selection.dead_letter_topics(self.topics()))
            if selection.admits(letter := _letter(record))
        ]
        return sorted(found, key=lambda letter: (letter.at, letter.id))

    def letter(self, letter_id: DeadLetterId) -> DeadLetter:
        """One dead letter by its id, or ``DeadLetterError`` naming what is not there."""
        if letter_id.topic not in self.topics():
            raise DeadLetterError(f"no dead-letter topic {letter_id.topic}")
        partition = TopicPartition(letter_id.topic, letter_id.partition)
        known = self.reader.partitions_for_topic(letter_id.topic) or set()
        if letter_id.partition not in known:
            raise DeadLetterError(f"{letter_id.topic} has no partition {letter_id.partition}")
        reader = self.reader
        reader.assign([partition])
        first = reader.beginning_offsets([partition])[partition]
        end = reader.end_offsets([partition])[partition]
        if not first <= letter_id.offset < end:
            raise DeadLetterError(f"no dead letter {letter_id} (that partition holds offsets {first} to {end - 1})")
        reader.seek(partition, letter_id.offset)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and reader.position(partition) <= letter_id.offset:
            for record in reader.poll(timeout_ms=500).get(partition, []):
                if record.offset == letter_id.offset:
                    return _letter(record)
        raise DeadLetterError(f"no dead letter {letter_id}")

    def ledger(self) -> Ledger:
        """Every action recorded so far, oldest first."""
        if self.actions_topic not in self.topics():
            return Ledger()
        actions = [Action.from_json(json.loads(record.value)) for record in self._records([self.actions_topic])]
        return Ledger(sorted(actions, key=lambda action: action.at))

    def _records(self, topics: list[str]) -> Iterator[Any]:
        """Every record now on ``topics``, read from their beginning to the end offsets of this moment."""
        reader = self.reader
        partitions = [
            TopicPartition(topic, number) for topic in topics for number in reader.partitions_for_topic(topic) or ()
        ]
        if not partitions:
            return
        reader.assign(partitions)
        reader.seek_to_beginning(*partitions)
        end = reader.end_offsets(partitions)
        remaining = {tp for tp in partitions if reader.position(tp) < end[tp]}
        deadline = time.monotonic() + self.timeout
        while remaining:
            batches = reader.poll(timeout_ms=500, max_records=2000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < end[tp]:
                        yield record
                deadline = time.monotonic() + self.timeout  # progress: wait afresh
            # Transaction markers and compacted gaps move the position without yielding a record.
            remaining = {tp for tp in remaining if reader.position(tp) < end[tp]}
            if remaining and time.monotonic() > deadline:
                raise KafkaUnreachable(f"Kafka at {self.bootstrap} stopped answering while reading {sorted(topics)}")

    # ----------------------------------------------------------------------------------------- acting

    def requeue(self, letter: DeadLetter, by: str, note: str | None = None) -> Action:
        """Send the letter back to its original topic and partition, then record that it was."""
        topic = letter.original_topic
        try:
            partitions = self.producer.partitions_for(topic)
            partition = letter.original_partition if letter.original_partition in partitions else None
            sent = self.producer.send(
                topic, key=letter.key, value=letter.value, headers=letter.requeue_headers(by), partition=partition
            ).get(timeout=self.timeout)
        except KafkaError as exc:
            raise KafkaUnreachable(f"requeueing {letter.id} to {topic} failed: {exc}") from None
        return self._record(letter, "requeue", by, note, requeued_as=f"{sent.topic}:{sent.partition}:{sent.offset}")

    def drop(self, letter: DeadLetter, by: str, note: str | None = None) -> Action:
        """Mark the letter dropped: lists leave it out from now on (the record itself stays until retention)."""
        return self._record(letter, "drop", by, note)

    def _record(
        self, letter: DeadLetter, kind: ActionKind, by: str, note: str | None, requeued_as: str | None = None
    ) -> Action:
        self._ensure_actions_topic()
        action = Action(
            action=kind,
            dead_letter=str(letter.id),
            by=by,
            at=utcnow(),
            host=socket.gethostname(),
            original_topic=letter.original_topic,
            original_partition=letter.original_partition,
            original_offset=letter.original_offset,
            event_id=letter.event_id,
            event_type=letter.event_type,
            note=note,
            requeued_as=requeued_as,
        )
        body = json.dumps(action.as_json(), ensure_ascii=False).encode()
        try:
            self.producer.send(self.actions_topic, key=str(letter.id).encode(), value=body).get(timeout=self.timeout)
        except KafkaError as exc:
            raise KafkaUnreachable(f"recording the {kind} of {letter.id} failed: {exc}") from None
        return action

    def _ensure_actions_topic(self) -> None:
        if self.actions_topic in self.topics():
            return
        # One partition keeps the actions in the order they were taken; -1: an audit is kept for good.
        with contextlib.suppress(KafkaError):
            ensure_topics(self.bootstrap, {self.actions_topic: -1}, 1, self.security, timeout=self.timeout)


def _letter(record: Any) -> DeadLetter:
    at = datetime.fromtimestamp(record.timestamp / 1000, tz=UTC) if record.timestamp and record.timestamp > 0 else None
    return DeadLetter(
        id=DeadLetterId(record.topic, record.partition, record.offset),
        key=record.key,
        value=record.value,
        headers=tuple(record.headers or ()),
        at=at or datetime.fromtimestamp(0, tz=UTC),
    )
