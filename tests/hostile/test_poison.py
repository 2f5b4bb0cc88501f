"""Malformed Kafka records on each consumed topic go to the dead-letter topic; the consumer never stops.

For each topic a service consumes (juwei.residents, juwei.testing, juwei.supplies), a real consumer of a
real service, on the real broker, is fed: a value that is not JSON, JSON that is not an object, a type the
catalogue does not know, a record without any CloudEvents header, one without an id, a known type whose
payload breaks its schema — and then a good event. The good event must be handled (its inbox row and its
effect), the six bad ones must sit on ``<topic>.dlq`` with the reason in their headers, and the consumer
thread must still be running. Each topic is a fresh copy (``<topic>.<suffix>``) so that nothing else on the
shared broker is read.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import date
from pathlib import Path

import pytest
from kafka import KafkaProducer
from sqlalchemy import select

from contracts.residents import BuildingRegistered
from contracts.supplies import SupplyPolicySet
from contracts.testing import SamplingPointOpened
from juwei.consumer import EventConsumer, dead_letter_topic
from juwei.events import DomainEvent, binary_headers, payload, utcnow
from juwei.service import Runtime, load_definition
from juwei.settings import Settings
from juwei.store import inbox_table
from tests.kernel.harness import on_topic, wait_for

pytestmark = pytest.mark.kafka

GOOD: dict[str, DomainEvent] = {
    "residents": BuildingRegistered(
        building="c9:b1", number="1", floors=6, rooms_per_floor=4, lifts=1, lift_capacity=8
    ),
    "testing": SamplingPointOpened(point="c9:p1", name="north gate", location="gate", throughput=2.0),
    "supplies": SupplyPolicySet(
        rota_pattern="AB",
        rota_starts_on=date(2022, 4, 1),
        both_shifts_households=60,
        both_shifts_items=300,
        card_return_hours=48,
        donation_categories=["masks"],
    ),
}
# topic → the service that consumes it here (each of these consumes more, one is enough per topic).
CONSUMER = {"residents": "supplies", "testing": "residents", "supplies": "notify"}


def _headers(producer: str, event_type: str, event_id: str | None = None) -> list[tuple[str, bytes]]:
    return binary_headers(event_id or str(uuid.uuid4()), f"/juwei/{producer}", event_type, "s-1", utcnow(),
                          {"compound": "c9", "streamversion": 1, "position": 1})  # fmt: skip


def _records(producer: str) -> list[tuple[str, bytes, list[tuple[str, bytes]]]]:
    good = GOOD[producer]
    known = good.type_name()
    no_id = [(name, value) for name, value in _headers(producer, known) if name != "ce_id"]
    broken = dict(payload(good))
    broken[next(iter(broken))] = {"not": ["what", "the", "schema", "says"]}
    return [
        ("not json", b"{this is not json", _headers(producer, known)),
        ("not an object", b"[1, 2, 3]", _headers(producer, known)),
        ("unknown type", json.dumps(payload(good)).encode(), _headers(producer, f"juwei.{producer}.NoSuchThing.v1")),
        ("no headers", json.dumps(payload(good)).encode(), []),
        ("no id", json.dumps(payload(good)).encode(), no_id),
        ("payload breaks its schema", json.dumps(broken).encode(), _headers(producer, known)),
    ]


@pytest.mark.parametrize("producer", list(CONSUMER))
def test_bad_records_are_dead_lettered_and_the_consumer_goes_on(
    producer: str, kafka: str, broker, tmp_path: Path, suffix: str
) -> None:
    topic = f"juwei.{producer}.{suffix}"
    if broker is not None:
        broker.create_topics([topic, dead_letter_topic(topic)], partitions=1)
    consumer_name = CONSUMER[producer]
    runtime = Runtime(load_definition(consumer_name), Settings(kafka_bootstrap=kafka, data_dir=tmp_path),
                      database_url=f"sqlite:///{tmp_path / consumer_name}.db")  # fmt: skip
    runtime.migrate()
    group = f"juwei-{consumer_name}-{suffix}"
    consumer = EventConsumer(runtime.database, group, [topic], runtime.handle_received, kafka,
                             retry_pause=0.01, consumer_overrides={"session_timeout_ms": 6000})  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    bad = _records(producer)
    good_id = str(uuid.uuid4())
    sender = KafkaProducer(bootstrap_servers=kafka, acks="all")
    try:
        for _label, value, headers in bad:
            sender.send(topic, key=b"k", value=value, headers=headers)
        sender.send(topic, key=b"k", value=json.dumps(payload(GOOD[producer])).encode(),
                    headers=_headers(producer, GOOD[producer].type_name(), good_id))  # fmt: skip
        sender.flush()

        def handled() -> bool:
            with runtime.database.reading() as session:
                found = session.execute(select(inbox_table.c.event_id).where(inbox_table.c.event_id == good_id))
                return found.first() is not None

        wait_for(handled, timeout=90, what=f"the good event on {topic} to be handled after the bad ones")
        assert thread.is_alive(), "the consumer thread died"
    finally:
        stop.set()
        thread.join(timeout=30)
        sender.close()
        runtime.database.dispose()
    # The consumer's thread has ended: every dead letter it sent was flushed before it stopped.
    dead = on_topic(kafka, dead_letter_topic(topic))
    assert [record.value for record in dead] == [value for _, value, _ in bad]
    for record, (label, _, _) in zip(dead, bad, strict=True):
        headers = dict(record.headers)
        assert headers["juwei_original_topic"] == topic.encode(), label
        assert headers["juwei_consumer_group"] == group.encode(), label
        assert headers["juwei_error_type"], label
    with runtime.database.reading() as session:
        inbox = session.execute(select(inbox_table.c.event_id)).scalars().all()
    assert inbox == [good_id]  # nothing of the bad records got in
    kinds = sorted({dict(record.headers)["juwei_error_type"].decode() for record in dead})
    print(f"\n{topic} → {consumer_name}: {len(bad)} bad records dead-lettered ({', '.join(kinds)}), good one handled")
