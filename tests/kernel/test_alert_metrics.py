"""The metrics deploy/prometheus/alerts.yml pages on, where the kernel sets them: the relay's backlog (also while
Kafka is away), the database probe, and dead-letter counters that exist before the first dead letter.

On the real broker and on SQLite and PostgreSQL; "away" is a real refused connection (port 1), not a stand-in.
"""

from __future__ import annotations

import dataclasses

import pytest
from kafka.errors import KafkaError
from prometheus_client import REGISTRY

from juwei.consumer import dead_letter_topic
from juwei.database import Database
from juwei.repository import Repository
from tests.conftest import both_databases
from tests.kernel.harness import runtime, wait_for
from tests.kernel.sample import Tally, definitions

NOWHERE_KAFKA = "127.0.0.1:1"


def _backlog(topic: str) -> float | None:
    return REGISTRY.get_sample_value("juwei_relay_backlog", {"topic": topic})


def _tally(made, building: str, amount: int) -> None:
    repo = Repository(made.store, Tally)
    with made.database.unit_of_work() as session:
        tally = repo.load(session, building)
        tally.add(amount, "")
        repo.save(session, tally, compound="c1")


@both_databases
def test_the_relay_backlog_grows_while_kafka_is_away_and_drains_batch_by_batch(
    new_database, suffix: str, kafka: str, broker
) -> None:
    desk, _board = definitions(suffix)
    made = runtime(desk, new_database("desk"), kafka)
    if broker is not None:
        broker.create_topics([desk.topic, dead_letter_topic(desk.topic)])
    for i in range(7):
        _tally(made, str(i % 3), 1)
    # Kafka away: the send fails, and the gauge already says what waits (the alert's "growing" needs this).
    away = dataclasses.replace(made.make_relay(), bootstrap=NOWHERE_KAFKA, producer_overrides={"max_block_ms": 2000})
    try:
        with pytest.raises(KafkaError):
            away.publish_once()
        assert _backlog(desk.topic) == 7
        for i in range(3):
            _tally(made, str(i), 1)
        with pytest.raises(KafkaError):
            away.publish_once()
        assert _backlog(desk.topic) == 10
    finally:
        away.close()
    # Kafka back: four a batch, and the gauge follows each one down to zero.
    relay = dataclasses.replace(made.make_relay(), batch_size=4)
    try:
        seen = []
        while sent := relay.publish_once():
            seen.append((sent, _backlog(desk.topic)))
        assert seen == [(4, 6), (4, 2), (2, 0)]
        assert relay.backlog() == 0 and _backlog(desk.topic) == 0
    finally:
        relay.close()
    made.database.dispose()


@pytest.mark.parametrize("new_database", ["postgresql"], indirect=True)
def test_the_database_probe_says_up_and_down_in_every_process_that_runs_background_work(
    new_database, suffix: str
) -> None:
    desk, _board = definitions(suffix)
    up = runtime(desk, new_database("desk"))
    up.start_background(relay=False, consumers=False)
    try:
        wait_for(lambda: REGISTRY.get_sample_value("juwei_database_up", {"service": desk.name}) == 1, 30, "up = 1")
    finally:
        up.stop()
    # The same probe against a PostgreSQL that refuses connections.
    gone = Database("postgresql+psycopg://juwei:nothing@127.0.0.1:1/none")
    try:
        assert gone.probe("away-" + suffix) is False
        assert REGISTRY.get_sample_value("juwei_database_up", {"service": "away-" + suffix}) == 0
    finally:
        gone.dispose()
    assert up.database.probe(desk.name) is True  # its pool is disposed: a probe reconnects


@both_databases
def test_dead_letter_counters_start_at_zero_so_the_first_one_is_an_increase(
    new_database, suffix: str, kafka: str
) -> None:
    _desk, board = definitions(suffix)
    made = runtime(board, new_database("board"), kafka)
    consumer = made.make_consumer()
    try:
        for topic in board.consumes:
            assert (
                REGISTRY.get_sample_value("juwei_consumer_dead_lettered_total", {"group": made.group, "topic": topic})
                == 0
            )
    finally:
        consumer.close()
        made.database.dispose()
