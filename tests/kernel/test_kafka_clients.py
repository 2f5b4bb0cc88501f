"""Kafka clients made against a Kafka that does not answer leave no thread behind (``juwei.kafka_clients``).

kafka-python 3.0 raises from an admin client's or a consumer's ``__init__`` with its IO thread still running,
retrying the dead address for good: a service retrying through a broker outage gathered one per attempt, and
the watch behind ``/readyz`` one per look. Checked on the real broker too: a client made there works.
"""

from __future__ import annotations

import threading
import time

import pytest
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from juwei.consumer_lag import KafkaWatch
from juwei.kafka_clients import abandon, made

NOWHERE = "127.0.0.1:1"  # nothing listens on port 1


def io_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("kafka-io")]


def settled(before: list[threading.Thread], seconds: float = 5.0) -> list[threading.Thread]:
    """The kafka-python IO threads that are new since ``before``, once stopping ones had time to end."""
    deadline = time.monotonic() + seconds
    while True:
        new = [thread for thread in io_threads() if thread not in before]
        if not new or time.monotonic() > deadline:
            return new
        time.sleep(0.1)


@pytest.mark.parametrize("kind", [KafkaAdminClient, KafkaConsumer])
def test_a_client_kafka_never_answered_leaves_no_thread(kind: type) -> None:
    before = io_threads()
    with pytest.raises(KafkaError):
        made(kind, bootstrap_servers=NOWHERE, bootstrap_timeout_ms=1000, request_timeout_ms=1000)
    assert settled(before) == []


def test_kafka_python_alone_leaves_its_thread_running_and_abandon_stops_it() -> None:
    # The reason for juwei.kafka_clients: if kafka-python stops leaking, this fails and the module can go.
    before = io_threads()
    half_made = KafkaAdminClient.__new__(KafkaAdminClient)
    with pytest.raises(KafkaError):
        half_made.__init__(bootstrap_servers=NOWHERE, bootstrap_timeout_ms=1000, request_timeout_ms=1000)
    time.sleep(1)
    assert len([thread for thread in io_threads() if thread not in before]) == 1
    abandon(half_made)
    assert settled(before) == []


def test_the_watch_behind_readiness_leaves_no_thread_when_kafka_is_away() -> None:
    before = io_threads()
    watch = KafkaWatch("desk", NOWHERE, {}, "juwei-desk", ["juwei.desk"], ttl=0, wait=5, timeout=1)
    for _ in range(3):
        assert watch.state().up is False
    assert settled(before) == []


def test_a_client_made_on_the_real_broker_works_and_closes(kafka: str) -> None:
    before = io_threads()
    admin = made(KafkaAdminClient, bootstrap_servers=kafka, request_timeout_ms=10_000)
    try:
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()
    assert settled(before) == []
