"""``juwei dlq``: real dead letters made by a real consumer on the real broker, then listed, filtered, shown,
requeued and dropped through the CLI.

A consumer of a topic of its own is fed a good event, an event its handler fails on (the cause "fixed" later)
and a record that is not JSON. The tool must list the two dead letters with their origin and error, filter
them, show one whole, send the failing one back (it returns as a new dead letter while the cause stands, is
handled once the cause is fixed, and is skipped by the inbox when requeued yet again), drop them, and record
every action with who did it. Bad input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import func, select
from typer.testing import CliRunner

from juwei.cli import app
from juwei.consumer import Delivery, EventConsumer, dead_letter_topic
from juwei.dead_letters import DeadLetterOffice, Selection
from juwei.events import binary_headers, utcnow
from juwei.service import Runtime
from juwei.session import Session
from juwei.store import inbox_table
from juwei.topics import ensure_topics
from tests.kernel.harness import runtime, wait_for
from tests.kernel.sample import definitions

pytestmark = pytest.mark.kafka

FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


@dataclass
class Scene:
    """A topic, its consumer and the ids of what was fed to it."""

    kafka: str
    topic: str
    group: str
    actions_topic: str
    consumer: EventConsumer
    made: Runtime
    broken: set[str]
    good: str
    failing: str
    runner: CliRunner = field(default_factory=CliRunner)

    def juwei(self, *args: str, user: str | None = None) -> tuple[int, str, str]:
        more = ["--bootstrap", self.kafka, "--actions-topic", self.actions_topic]
        result = self.runner.invoke(app, [*args, *more], env={"USER": user, "COLUMNS": "240"})
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, result.stdout, result.stderr

    def json(self, *args: str) -> Any:
        """A command's answer as JSON (``show`` prints JSON always, the others with ``--json``)."""
        code, out, err = self.juwei(*args) if args[1] == "show" else self.juwei(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    def inbox_count(self, event_id: str) -> int:
        with self.made.database.reading() as session:
            return session.execute(
                select(func.count()).select_from(inbox_table).where(inbox_table.c.event_id == event_id)
            ).scalar_one()

    def dead_letters(self) -> int:
        with DeadLetterOffice(self.kafka) as office:
            return len(office.letters(Selection(topics=(self.topic,))))

    def consume_until(self, check, what: str) -> None:
        wait_for(lambda: (self.consumer.poll_once(200), check())[1], timeout=90, what=what)

    def consume_past(self, where: str) -> None:
        """Poll until the consumer has handled (and committed) the record at ``topic:partition:offset``."""
        topic, partition, offset = where.rsplit(":", 2)
        tp = TopicPartition(topic, int(partition))

        def passed() -> bool:
            reader = self.consumer.consumer
            return tp in reader.assignment() and reader.position(tp) > int(offset)

        self.consume_until(passed, f"the consumer to pass {where}")


def _headers(event_id: str, event_type: str) -> list[tuple[str, bytes]]:
    return binary_headers(
        event_id,
        "/juwei/sample",
        event_type,
        "tally-b1",
        utcnow(),
        {"compound": "c1", "streamversion": 1, "position": 1},
    )


@pytest.fixture
def scene(kafka: str, broker, tmp_path: Path, suffix: str) -> Iterator[Scene]:
    topic = f"juwei.dlqtool.{suffix}"
    _create_topics(kafka, broker, topic)
    _desk, board = definitions(suffix)
    made = runtime(board, f"sqlite:///{tmp_path / 'board.db'}", kafka)
    broken: set[str] = set()

    def handle(session: Session, delivery: Delivery) -> None:
        # The inbox row written with this call is the effect the test counts.
        if delivery.envelope.id in broken:
            raise ValueError(f"no floor plan for {delivery.envelope.subject} yet")

    group = f"juwei-dlqtool-{suffix}"
    consumer = EventConsumer(made.database, group, [topic], handle, kafka, retry_pause=0.01,
                             consumer_overrides=FAST_GROUP)  # fmt: skip
    good, failing = str(uuid.uuid4()), str(uuid.uuid4())
    broken.add(failing)
    sender = KafkaProducer(bootstrap_servers=kafka, acks="all")
    sender.send(topic, key=b"c1:b1", value=b'{"building": "c1:b1", "amount": 1}',
                headers=_headers(good, "juwei.sample.Tallied.v2"))  # fmt: skip
    sender.send(topic, key=b"c1:b1", value=b'{"building": "c1:b1", "floors": 6}',
                headers=_headers(failing, "juwei.sample.FloorPlanDrawn.v1"))  # fmt: skip
    sender.send(topic, key=b"c1:b2", value=b"{this is not json", headers=_headers(str(uuid.uuid4()), "x.y.Z.v1"))
    sender.flush()
    sender.close()
    made_scene = Scene(kafka, topic, group, f"juwei.dlq.actions.{suffix}", consumer, made, broken, good, failing)
    try:
        made_scene.consume_until(
            lambda: made_scene.inbox_count(good) == 1 and made_scene.dead_letters() == 2,
            "the good event handled and two dead letters",
        )
        yield made_scene
    finally:
        consumer.close()
        made.database.dispose()


def test_dead_letters_are_listed_filtered_shown_requeued_and_dropped_with_every_action_recorded(
    scene: Scene,
) -> None:
    topic = scene.topic
    listed = scene.json("dlq", "list", "--topic", topic)
    assert [row["original_topic"] for row in listed] == [topic, topic]
    by_type = {row["event_type"]: row for row in listed}
    failing, malformed = by_type["juwei.sample.FloorPlanDrawn.v1"], by_type["x.y.Z.v1"]
    assert failing["event_id"] == scene.failing
    assert failing["error_type"] == "ValueError" and "no floor plan" in failing["error"]
    assert malformed["error_type"] == "MalformedEvent"
    assert failing["consumer_group"] == scene.group and failing["state"] == "new"
    assert failing["id"].startswith(f"{dead_letter_topic(topic)}:")

    # Filters: type and error are substrings, times are ISO or durations ago.
    assert [r["id"] for r in scene.json("dlq", "list", "-t", topic, "--type", "FloorPlan")] == [failing["id"]]
    assert [r["id"] for r in scene.json("dlq", "list", "-t", topic, "--error", "malformed")] == [malformed["id"]]
    assert [r["id"] for r in scene.json("dlq", "list", "-t", topic, "--error", "NOT JSON")] == [malformed["id"]]
    assert len(scene.json("dlq", "list", "-t", topic, "--since", "1h")) == 2
    assert scene.json("dlq", "list", "-t", topic, "--until", "1h") == []
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert len(scene.json("dlq", "list", "-t", topic, "--since", "2026-01-01", "--until", later)) == 2
    assert scene.json("dlq", "list", "-t", topic, "--since", later) == []
    assert scene.json("dlq", "list", "-t", f"{topic}.other") == []

    code, table, _ = scene.juwei("dlq", "list", "--topic", topic)
    assert code == 0 and "FloorPlanDrawn" in table and "MalformedEvent" in table

    whole = scene.json("dlq", "show", failing["id"])
    headers = {h["name"]: h["value"] for h in whole["headers"]}
    assert headers["ce_id"] == scene.failing and headers["juwei_original_topic"] == topic
    assert whole["payload"] == {"building": "c1:b1", "floors": 6} and whole["key"] == "c1:b1"

    # Requeued while the cause stands: it fails again and comes back as a new dead letter naming the first.
    first = scene.json("dlq", "requeue", failing["id"], "--by", "ops-li", "--note", "try again")
    assert [a["requeued_as"].rsplit(":", 2)[:2] for a in first] == [[topic, failing["id"].split(":")[1]]]
    requeued = _record_at(scene.kafka, first[0]["requeued_as"])
    names = [name for name, _ in requeued.headers]
    assert "juwei_error" not in names and "juwei_original_topic" not in names
    assert dict(requeued.headers)["juwei_requeued_from"] == f"{failing['id']} by ops-li".encode()
    assert (requeued.key, requeued.value) == (b"c1:b1", b'{"building": "c1:b1", "floors": 6}')
    scene.consume_until(lambda: scene.dead_letters() == 3, "the requeued letter to fail again")
    assert scene.inbox_count(scene.failing) == 0
    again = [r for r in scene.json("dlq", "list", "-t", topic) if r["requeued_from"]]
    assert [r["requeued_from"] for r in again] == [f"{failing['id']} by ops-li"]

    # The cause is fixed: --all requeues what was not requeued yet (the new letter), and it is handled.
    scene.broken.clear()
    dry = scene.juwei("dlq", "requeue", "--all", "-t", topic, "--type", "FloorPlan", "--dry-run", "--by", "ops-li")
    assert dry[0] == 0 and dry[1].strip() == f"would requeue {again[0]['id']} to {topic}"
    second = scene.json("dlq", "requeue", "--all", "-t", topic, "--type", "FloorPlan", "--by", "ops-li")
    assert [a["dead_letter"] for a in second] == [again[0]["id"]]
    scene.consume_past(second[0]["requeued_as"])
    assert scene.inbox_count(scene.failing) == 1

    # Requeued once more: the inbox knows the event, it is skipped, nothing is dead-lettered.
    third = scene.json("dlq", "requeue", failing["id"], "--by", "ops-wang")
    scene.consume_past(third[0]["requeued_as"])
    assert scene.inbox_count(scene.failing) == 1
    assert scene.dead_letters() == 3
    assert scene.inbox_count(scene.good) == 1

    # Dropped ones leave the list, by id or by filter.
    code, out, err = scene.juwei("dlq", "drop", malformed["id"], user="ops-zhao")
    assert code == 0 and out.startswith(f"drop {malformed['id']}"), err
    dropped = scene.json("dlq", "drop", "--all", "-t", topic, "--error", "valueerror", "--by", "ops-li")
    assert sorted(a["dead_letter"] for a in dropped) == sorted([failing["id"], again[0]["id"]])
    assert scene.json("dlq", "list", "-t", topic) == []
    everything = scene.json("dlq", "list", "-t", topic, "--include-dropped", "--with-actions")
    assert [row["state"] for row in everything] == ["dropped"] * 3
    assert [a["action"] for a in next(r for r in everything if r["id"] == failing["id"])["actions"]] == [
        "requeue",
        "requeue",
        "drop",
    ]

    # Every action: who, when, what.
    actions = scene.json("dlq", "actions", "-t", topic)
    assert [(a["action"], a["dead_letter"], a["by"]) for a in actions] == [
        ("requeue", failing["id"], "ops-li"),
        ("requeue", again[0]["id"], "ops-li"),
        ("requeue", failing["id"], "ops-wang"),
        ("drop", malformed["id"], "ops-zhao"),
        ("drop", failing["id"], "ops-li"),
        ("drop", again[0]["id"], "ops-li"),
    ]
    assert actions[0]["note"] == "try again" and actions[0]["event_id"] == scene.failing
    assert all(a["original_topic"] == topic and a["at"] and a["host"] for a in actions)
    assert {a["event_type"] for a in actions[:3]} == {"juwei.sample.FloorPlanDrawn.v1"}
    assert [a["by"] for a in scene.json("dlq", "actions", "--by", "ops-wang")] == ["ops-wang"]
    code, table, _ = scene.juwei("dlq", "actions", "-t", topic)
    assert code == 0 and "ops-zhao" in table


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["show", "nonsense"], "is not a dead letter's id"),
        (["show", "juwei.nowhere.dlq:0:0"], "no dead-letter topic juwei.nowhere.dlq"),
        (["show", "{dlq}:0:99999"], "no dead letter {dlq}:0:99999"),
        (["show", "{dlq}:7:0"], "has no partition 7"),
        (["list", "--since", "yesterday at noon"], "--since 'yesterday at noon' is neither a time"),
        (["list", "--until", "2026-13-45"], "--until '2026-13-45' is neither a time"),
        (["requeue", "--by", "ops-li"], "name the dead letters by id, or say --all"),
        (["requeue", "{dlq}:0:0", "--all", "--by", "ops-li"], "not both"),
        (["drop", "{dlq}:0:0"], "say who acts: --by"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args: list[str], says: str, kafka: str, broker, suffix: str) -> None:
    topic = f"juwei.dlqtool.{suffix}"
    _create_topics(kafka, broker, topic)
    runner = CliRunner()
    given = [part.replace("{dlq}", dead_letter_topic(topic)) for part in args]
    result = runner.invoke(
        app, ["dlq", *given, "--bootstrap", kafka, "--actions-topic", f"a.{suffix}"], env={"USER": None}
    )
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    lines = _not_logs(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert says.replace("{dlq}", dead_letter_topic(topic)) in lines[0]
    assert "Traceback" not in result.output and result.stdout == ""


def test_kafka_not_answering_is_one_line_and_exit_code_1() -> None:
    result = CliRunner().invoke(app, ["dlq", "list", "--json", "--bootstrap", "127.0.0.1:1", "--timeout", "2"])
    assert result.exit_code == 1, result.output
    errors = _not_logs(result.stderr)
    assert len(errors) == 1 and errors[0].startswith("error: Kafka at 127.0.0.1:1 did not answer"), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def _not_logs(stderr: str) -> list[str]:
    """Lines of stderr besides the log lines (JSON objects, such as kafka-python's warnings under load)."""
    kept = []
    for line in stderr.strip().splitlines():
        try:
            if isinstance(json.loads(line), dict):
                continue
        except ValueError:
            pass
        kept.append(line)
    return kept


def _create_topics(kafka: str, broker, topic: str) -> None:
    """The topic and its dead-letter topic, two partitions each (on an outside cluster too)."""
    if broker is not None:
        broker.create_topics([topic, dead_letter_topic(topic)], partitions=2)
    else:
        ensure_topics(kafka, {topic: -1, dead_letter_topic(topic): -1}, 2)


def _record_at(kafka: str, where: str):
    topic, partition, offset = where.rsplit(":", 2)
    tp = TopicPartition(topic, int(partition))
    reader = KafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    try:
        reader.assign([tp])
        reader.seek(tp, int(offset))
        for _ in range(60):
            for record in reader.poll(timeout_ms=500).get(tp, []):
                if record.offset == int(offset):
                    return record
        raise AssertionError(f"no record at {where}")
    finally:
        reader.close()
