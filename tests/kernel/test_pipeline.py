"""append → relay → Kafka → consumer → read model, against the real broker, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from sqlalchemy import select

from juwei.consumer import SKIPPED, dead_letter_topic
from juwei.events import Envelope
from juwei.kafka_clients import made
from juwei.repository import Repository
from juwei.store import inbox_table
from tests.conftest import both_databases
from tests.kernel.harness import on_topic, runtime, wait_for
from tests.kernel.sample import Tallied, Tally, board_totals, definitions, desk_totals

FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


def _tally(made, building: str, amount: int, note: str = "") -> None:
    repo = Repository(made.store, Tally)
    with made.database.unit_of_work() as session:
        tally = repo.load(session, building)
        tally.add(amount, note)
        repo.save(session, tally, compound="c1")


def _totals(made, table) -> dict[str, tuple[int, int]]:
    with made.database.reading() as session:
        rows = session.execute(select(table)).all()
    return {row.building: (row.total, row.events) for row in rows}


@both_databases
def test_events_flow_from_the_desk_to_the_board_read_model(new_database, suffix: str, kafka: str, broker) -> None:
    desk, board = definitions(suffix)
    producer_side = runtime(desk, new_database("desk"), kafka)
    consumer_side = runtime(board, new_database("board"), kafka)
    if broker is not None:
        broker.create_topics([desk.topic, dead_letter_topic(desk.topic)])
    for i in range(60):
        _tally(producer_side, str(i % 5), i + 1)
    relay = producer_side.make_relay()
    consumer = consumer_side.make_consumer()
    consumer.consumer_overrides = FAST_GROUP
    try:
        assert relay.publish_once() == 60
        assert relay.backlog() == 0
        wait_for(
            lambda: (
                (consumer.poll_once(200), _totals(consumer_side, board_totals))[1]
                == _totals(producer_side, desk_totals)
            ),
            what="the board to match the desk",
        )
    finally:
        relay.close()
        consumer.close()
    assert sum(total for total, _ in _totals(consumer_side, board_totals).values()) == sum(range(1, 61))

    # The records on Kafka are CloudEvents in binary mode, keyed by building, in stream order per key.
    by_key: dict[bytes, list[int]] = {}
    for record in on_topic(kafka, desk.topic):
        envelope = Envelope.from_kafka(record.value, record.headers)
        assert record.key.decode() == envelope.building
        by_key.setdefault(record.key, []).append(envelope.streamversion)
    assert sum(len(v) for v in by_key.values()) == 60
    assert all(versions == sorted(versions) for versions in by_key.values())
    producer_side.database.dispose()
    consumer_side.database.dispose()


def test_a_commit_refused_because_the_group_moved_on_is_redelivered_and_skipped(
    new_database, suffix: str, kafka: str, broker
) -> None:
    desk, board = definitions(suffix)
    producer_side = runtime(desk, new_database("desk"), kafka)
    consumer_side = runtime(board, new_database("board"), kafka)
    if broker is not None:
        broker.create_topics([desk.topic, dead_letter_topic(desk.topic)])
    for i in range(10):
        _tally(producer_side, str(i % 5), i + 1)
    relay = producer_side.make_relay()
    consumer = consumer_side.make_consumer()
    # A poll handled for longer than the group waits for the next one: the member is dropped before it commits.
    # Five seconds, not less: once it has rejoined, the member must stay through a loaded machine's stalls.
    consumer.consumer_overrides = {**FAST_GROUP, "max_poll_interval_ms": 5000}
    handle = consumer._handle
    polls: list[int] = []
    admin = made(KafkaAdminClient, bootstrap_servers=kafka, request_timeout_ms=30_000)

    def dropped() -> bool:
        return not admin.describe_groups([consumer.group])[consumer.group]["members"]

    def slow_first_poll(records: list[Any]) -> list[Any]:
        polls.append(len(records))
        if len(polls) == 1:  # held until the broker has dropped the member, not for a time a loaded machine may outlast
            wait_for(dropped, timeout=120, what="the group to drop the member that stopped polling")
        return handle(records)

    consumer._handle = slow_first_poll  # type: ignore[method-assign]
    skipped_before = SKIPPED.labels(consumer.group)._value.get()
    try:
        assert relay.publish_once() == 10
        wait_for(lambda: consumer.poll_once(200) > 0, timeout=120, what="the first poll")  # its commit is refused
        first = polls[0]  # a loaded broker may hand over fewer than the ten in one fetch

        def counted_and_redelivery_skipped() -> bool:
            consumer.poll_once(500)
            skipped = SKIPPED.labels(consumer.group)._value.get() - skipped_before
            return skipped >= first and _totals(consumer_side, board_totals) == _totals(producer_side, desk_totals)

        wait_for(counted_and_redelivery_skipped, timeout=120, what="the redelivered events to be skipped by the inbox")
    finally:
        admin.close()
        relay.close()
        consumer.close()
    assert sum(polls) >= 10 + first  # the first poll's events came twice, and were counted once (the totals)
    assert sum(total for total, _ in _totals(consumer_side, board_totals).values()) == sum(range(1, 11))
    producer_side.database.dispose()
    consumer_side.database.dispose()


@pytest.mark.parametrize("whole_polls", [False, True], ids=["per-event-handler", "whole-poll-projection"])
def test_poison_messages_go_to_the_dead_letter_topic_and_later_ones_are_handled(
    new_database, suffix: str, kafka: str, broker, whole_polls: bool
) -> None:
    desk, board = definitions(suffix)
    if whole_polls:  # without an on_received hook the consumer hands whole polls to the projections
        board = dataclasses.replace(board, on_received=None)
    consumer_side = runtime(board, new_database("board"), kafka)
    dlq = dead_letter_topic(desk.topic)
    if broker is not None:
        broker.create_topics([desk.topic, dlq])
    good = Envelope(
        id="good-1",
        source="/t",
        type=Tallied.type_name(),
        subject="tally-1",
        time=_now(),
        data={"building": "1", "amount": 4, "note": ""},
        compound="c1",
        streamversion=1,
    )
    refused = Envelope(
        id="bad-2",
        source="/t",
        type=Tallied.type_name(),
        subject="tally-1",
        time=_now(),
        data={"building": "1", "amount": 9, "note": "poison"},
        compound="c1",
        streamversion=2,
    )
    unknown = Envelope(
        id="bad-3",
        source="/t",
        type="juwei.sample.Nothing.v1",
        subject="tally-1",
        time=_now(),
        data={},
        compound="c1",
        streamversion=3,
    )
    later = Envelope(
        id="good-4",
        source="/t",
        type=Tallied.type_name(),
        subject="tally-1",
        time=_now(),
        data={"building": "1", "amount": 5, "note": ""},
        compound="c1",
        streamversion=4,
    )
    producer = KafkaProducer(bootstrap_servers=kafka)
    for envelope in (good, refused):
        key, value, headers = envelope.to_kafka()
        producer.send(desk.topic, key=key, value=value, headers=headers)
    producer.send(desk.topic, key=b"1", value=b"{not json", headers=[("ce_id", b"x")])
    producer.send(desk.topic, key=b"1", value=json.dumps({"a": 1}).encode(), headers=[])
    for envelope in (unknown, later):
        key, value, headers = envelope.to_kafka()
        producer.send(desk.topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()

    consumer = consumer_side.make_consumer()
    consumer.consumer_overrides = FAST_GROUP
    try:
        wait_for(
            lambda: (consumer.poll_once(200), _totals(consumer_side, board_totals))[1] == {"1": (9, 2)},
            what="the good events to be handled",
        )
    finally:
        consumer.close()
    # Read until the four are there (a loaded machine took longer than a fixed 5 s to hand over the first record).
    reader = KafkaConsumer(dlq, bootstrap_servers=kafka, auto_offset_reset="earliest", enable_auto_commit=False)
    dead: list[dict[str, bytes]] = []

    def read() -> int:
        dead.extend(dict(record.headers) for batch in reader.poll(500).values() for record in batch)
        return len(dead)

    wait_for(lambda: read() >= 4, timeout=120, what="the dead letters")
    read()  # nothing more after them
    reader.close()
    assert len(dead) == 4
    kinds = sorted(h[b"juwei_error_type".decode()].decode() for h in dead)
    assert kinds == ["MalformedEvent", "MalformedEvent", "UnknownEventType", "ValueError"]
    assert all(h["juwei_original_topic"] == desk.topic.encode() for h in dead)
    # The poll was first tried as a whole and rolled back when the refused one failed: nothing kept twice.
    with consumer_side.database.reading() as session:
        received = session.execute(select(inbox_table.c.event_id).order_by(inbox_table.c.seq)).scalars().all()
    assert received == ["good-1", "good-4"]

    # A poll with no failure is handled as a whole: an event twice in it, and one seen before, count once.
    again = Envelope(
        id="good-5",
        source="/t",
        type=Tallied.type_name(),
        subject="tally-1",
        time=_now(),
        data={"building": "1", "amount": 6, "note": ""},
        compound="c1",
        streamversion=5,
    )
    producer = KafkaProducer(bootstrap_servers=kafka)
    for envelope in (again, later, again):
        key, value, headers = envelope.to_kafka()
        producer.send(desk.topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()
    consumer = consumer_side.make_consumer()
    consumer.consumer_overrides = FAST_GROUP
    try:
        wait_for(
            lambda: (consumer.poll_once(200), _totals(consumer_side, board_totals))[1] == {"1": (15, 3)},
            what="the new event to be handled",
        )
        for _ in range(3):
            consumer.poll_once(200)
    finally:
        consumer.close()
    with consumer_side.database.reading() as session:
        received = session.execute(select(inbox_table.c.event_id).order_by(inbox_table.c.seq)).scalars().all()
    assert received == ["good-1", "good-4", "good-5"]
    assert _totals(consumer_side, board_totals) == {"1": (15, 3)}
    consumer_side.database.dispose()


def _now():
    from juwei.events import utcnow

    return utcnow()
