"""Readiness matches the design: /readyz fails when the service cannot work (its database away, its consumers
too far behind), never because Kafka is away (the outbox keeps writes going); Kafka's state is in /status and
the metrics instead."""

from __future__ import annotations

import socket
import threading

from fastapi.testclient import TestClient
from kafka import KafkaProducer

from juwei.service import Runtime, create_app
from juwei.settings import Settings
from juwei.topics import ensure_topics
from tests.kernel.harness import key, runtime, wait_for
from tests.kernel.sample import definitions

PROBLEM = "application/problem+json"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_kafka_away_leaves_the_service_ready_and_status_says_so(new_database, suffix: str) -> None:
    desk, board = definitions(suffix)
    made = runtime(board, new_database(), kafka=f"127.0.0.1:{_closed_port()}")
    writer = runtime(desk, new_database("desk"), kafka=f"127.0.0.1:{_closed_port()}")
    with (
        TestClient(create_app(made, background=False)) as client,
        TestClient(create_app(writer, background=False)) as desk_client,
    ):
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        # Lag is unknown with Kafka away: readiness does not hold that against the consumers.
        assert ready.json()["checks"] == {"database": "ok", "consumers": "ok"}
        wait_for(lambda: client.get("/status").json()["kafka"]["up"] is False, what="/status to say Kafka is down")
        status = client.get("/status").json()
        assert status["kafka"]["error"] and status["consumer"]["lag"] is None
        assert f'juwei_kafka_up{{service="{board.name}"}} 0.0' in client.get("/metrics").text
        # The outbox takes the writes meanwhile, and the service stays ready.
        written = desk_client.post("/compounds/c1/tallies/1", json={"amount": 2}, headers={"X-API-Key": key(writer)})
        assert written.status_code == 201, written.text
        assert desk_client.get("/readyz").status_code == 200
        assert desk_client.get("/status").json()["relay"]["backlog"] == 1


def test_stop_does_not_wait_for_a_look_at_kafka(new_database, suffix: str) -> None:
    _desk, board = definitions(suffix)
    # A port that takes the connection and never answers: a look at Kafka hangs until its own timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        made = runtime(board, new_database(), kafka=f"127.0.0.1:{silent.getsockname()[1]}")
        made.kafka_watch.timeout = 120
        with TestClient(create_app(made, background=False)) as client:
            assert client.get("/readyz").status_code == 200
            looking = [t for t in threading.enumerate() if t.name == f"{board.name}-kafka-look"]
            assert len(looking) == 1 and looking[0].is_alive()
        # The app has stopped (Runtime.stop ran at the end of its lifespan) while the look still waits.
        assert looking[0].is_alive() and looking[0].daemon
    finally:
        silent.close()


def test_database_away_is_503_with_a_problem_body(suffix: str) -> None:
    _desk, board = definitions(suffix)
    url = f"postgresql+psycopg://juwei:juwei@127.0.0.1:{_closed_port()}/nowhere"
    made = Runtime(board, Settings(kafka_bootstrap=f"127.0.0.1:{_closed_port()}"), database_url=url)
    with TestClient(create_app(made, background=False, migrate_on_start=False)) as client:
        ready = client.get("/readyz")
        assert client.get("/healthz").status_code == 200
    assert ready.status_code == 503
    assert ready.headers["content-type"] == PROBLEM
    body = ready.json()
    assert body["type"] == "urn:juwei:problem:not-ready" and body["status"] == 503
    assert body["checks"]["database"] == "unreachable" and body["checks"]["consumers"] == "ok"
    assert "database unreachable" in body["detail"]


def test_consumers_behind_past_the_bound_are_503_naming_the_topic(new_database, suffix: str, kafka: str) -> None:
    desk, board = definitions(suffix)
    ensure_topics(kafka, {desk.topic: -1}, 3)
    producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
    for number in range(5):
        producer.send(desk.topic, key=b"1", value=b"{}", partition=number % 3)
    producer.flush()
    producer.close()
    database = new_database()
    # The board's consumers are not running: its group has committed nothing, so all 5 records are its lag.
    behind = Runtime(board, Settings(kafka_bootstrap=kafka, ready_max_lag=4), database_url=database)
    behind.migrate()
    with TestClient(create_app(behind, background=False)) as client:
        wait_for(lambda: client.get("/readyz").status_code == 503, what="the lag to be seen")
        ready = client.get("/readyz")
        status = client.get("/status").json()
        metrics = client.get("/metrics").text
    assert ready.headers["content-type"] == PROBLEM
    body = ready.json()
    assert body["behind"] == {desk.topic: 5}
    assert body["checks"] == {"database": "ok", "consumers": f"behind on {desk.topic} (5 > 4)"}
    assert desk.topic in body["detail"]
    assert status["kafka"]["up"] is True and status["consumer"]["lag"] == {desk.topic: 5}
    assert f'juwei_consumer_lag{{group="{behind.group}",topic="{desk.topic}"}} 5.0' in metrics
    assert f'juwei_kafka_up{{service="{board.name}"}} 1.0' in metrics

    # At the bound, not past it: ready.
    within = Runtime(board, Settings(kafka_bootstrap=kafka, ready_max_lag=5), database_url=database)
    with TestClient(create_app(within, background=False)) as client:
        wait_for(lambda: client.get("/status").json()["kafka"]["up"] is True, what="a look at Kafka")
        ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "consumers": "ok"}
