"""The checks tests/faults makes, on a compose stack: through its published PostgreSQL and Kafka listener."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from juwei.registration import topic_of
from juwei.service import Runtime, load_definition
from juwei.settings import Settings
from tests.faults.test_faults import _dump, every_event_everywhere
from tests.stack.conftest import SERVICES, StackUnderTest

__all__ = ["every_event_everywhere", "kafka_event_ids", "read_models", "read_models_equal_a_rebuild"]


@contextmanager
def _runtime(stack: StackUnderTest, service: str, scratch: Path) -> Iterator[Runtime]:
    """A runtime of the service on the stack's database, with the stack's vault key (for what it unseals)."""
    name = f"JUWEI_{service.upper()}_VAULT_KEY"
    saved = os.environ.get(name)
    os.environ[name] = stack.values[name]
    runtime = Runtime(
        load_definition(service),
        Settings(kafka_bootstrap=stack.kafka, data_dir=scratch),
        database_url=stack.database_url(service),
    )
    try:
        yield runtime
    finally:
        runtime.database.dispose()
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def read_models(stack: StackUnderTest, scratch: Path) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    """Every row of every read model of every service."""
    models = {}
    for service in SERVICES:
        with _runtime(stack, service, scratch) as runtime:
            models[service] = _dump(runtime)
    return models


def read_models_equal_a_rebuild(stack: StackUnderTest, scratch: Path) -> dict[str, int]:
    """Rebuild each service's read models from its log and inbox; they must equal what the service built live."""
    replayed = {}
    for service in SERVICES:
        with _runtime(stack, service, scratch) as runtime:
            live = _dump(runtime)
            replayed[service] = runtime.projector.rebuild()
            rebuilt = _dump(runtime)
        differ = [name for name in live if live[name] != rebuilt[name]]
        assert not differ, f"{service}: {differ} differ from their rebuild"
    return replayed


def kafka_event_ids(stack: StackUnderTest, service: str) -> list[str]:
    """The ce_id of every record on the service's topic, read from the stack's external listener."""
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka.split(","), enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=5000, request_timeout_ms=30000)  # fmt: skip
    try:
        topic = topic_of(service)
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        ids: list[str] = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=2000).values():
                for record in records:
                    headers = dict(record.headers or [])
                    ids.append(headers["ce_id"].decode())
        return ids
    finally:
        consumer.close()
