"""Real end-to-end checks of the local Kafka broker and PostgreSQL helpers (no mocks, nothing skipped)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.serializer import DefaultSerializer, JsonSerializer

from juwei.broker import ENV_BOOTSTRAP, LocalBroker, bootstrap_from_env
from juwei.local_postgres import LocalPostgres

TOPIC = "juwei.infra.smoke"


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all sockets held open together so none repeats)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    port, controller_port = free_ports(2)
    local = LocalBroker(tmp_path / "kafka", port=port, controller_port=controller_port, partitions=3)
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[LocalPostgres]:
    (port,) = free_ports(1)
    local = LocalPostgres(tmp_path / "pg", port=port, fast=True)
    try:
        yield local
    finally:
        local.stop()


def produce(bootstrap: str, value: dict[str, Any]) -> int:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        key_serializer=DefaultSerializer(),
        value_serializer=JsonSerializer(),
    )
    try:
        # One record, so waiting on it is fine here (never do this per record in real code).
        metadata = producer.send(TOPIC, key="resident-1", value=value).get(timeout=30)
        return metadata.offset
    finally:
        producer.close(timeout=10)


def read_all(consumer: KafkaConsumer, expected: int, timeout: float = 30) -> list[Any]:
    values: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(values) < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            values.extend(record.value for record in records)
    return values


def read_from_start(bootstrap: str, expected: int) -> list[Any]:
    """Read every partition of TOPIC from offset 0 without a consumer group."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        value_deserializer=JsonSerializer(),
        enable_auto_commit=False,
    )
    try:
        partitions = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC) or ())]
        assert partitions, f"no partitions for {TOPIC}"
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return read_all(consumer, expected)
    finally:
        consumer.close()


def test_bootstrap_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_BOOTSTRAP, raising=False)
    assert bootstrap_from_env() is None
    monkeypatch.setenv(ENV_BOOTSTRAP, "")
    assert bootstrap_from_env() is None
    monkeypatch.setenv(ENV_BOOTSTRAP, "kafka.internal:9092")
    assert bootstrap_from_env() == "kafka.internal:9092"


@pytest.mark.kafka
def test_broker_roundtrip_survives_kill(broker: LocalBroker) -> None:
    broker.start()
    assert broker.is_running()
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    pid = broker.pid_path.read_text()
    broker.start()  # already running: the same broker, no second one
    assert broker.pid_path.read_text() == pid and broker.is_running()

    broker.create_topics([TOPIC])
    broker.create_topics([TOPIC, TOPIC])  # idempotent, duplicates tolerated
    produce(broker.bootstrap, {"event": "QuarantineStarted", "building": 3})

    # A consumer group exercises the group coordinator and __consumer_offsets on this broker.
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id="juwei-infra-test",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        value_deserializer=JsonSerializer(),
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    try:
        consumer.subscribe([TOPIC])
        assert read_all(consumer, 1) == [{"event": "QuarantineStarted", "building": 3}]
        consumer.commit()
    finally:
        consumer.close()

    broker.kill()
    assert not broker.is_running()
    assert broker.pid_path.exists()  # left behind like after a real crash; start() must cope

    broker.start()
    assert broker.is_running()
    assert read_from_start(broker.bootstrap, 1) == [{"event": "QuarantineStarted", "building": 3}]
    produce(broker.bootstrap, {"event": "QuarantineLifted", "building": 3})
    assert len(read_from_start(broker.bootstrap, 2)) == 2

    broker.stop()
    assert not broker.is_running()
    assert not broker.pid_path.exists()


@pytest.mark.postgres
def test_postgres_database_lifecycle(postgres: LocalPostgres) -> None:
    postgres.start()
    assert postgres.is_running()
    postgres.start()  # idempotent

    url = postgres.create_database("juwei_infra")
    assert url == f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/juwei_infra"
    with psycopg.connect(host="127.0.0.1", port=postgres.port, user="postgres", dbname="juwei_infra") as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        conn.execute("create table residents (id int primary key, name text)")
        conn.execute("insert into residents values (1, '张三')")
    # The URL is meant for SQLAlchemy: prove it works there too.
    engine = sa.create_engine(url)
    try:
        with engine.connect() as sa_conn:
            assert sa_conn.execute(sa.text("select name from residents")).scalar_one() == "张三"
    finally:
        engine.dispose()

    # Crash and recover: committed rows must survive a SIGKILLed postmaster.
    postgres.kill()
    assert not postgres.is_running()
    postgres.start()
    with postgres.connect("juwei_infra") as conn:
        assert conn.execute("select count(*) from residents").fetchone() == (1,)

    # create_database on an existing name starts over with an empty database.
    postgres.create_database("juwei_infra")
    with postgres.connect("juwei_infra") as conn:
        assert conn.execute("select to_regclass('residents')").fetchone() == (None,)
    postgres.drop_database("juwei_infra")
    with postgres.connect() as conn:
        assert conn.execute("select count(*) from pg_database where datname = 'juwei_infra'").fetchone() == (0,)

    postgres.stop()
    assert not postgres.is_running()
