"""SIGKILL notify mid-delivery to a webhook subscription and restart it: every event reaches the receiver, and
only the delivery in flight at the kill arrives twice, with the same ``webhook-id`` for the receiver to dedupe on.

Real child processes (``juwei consume``: the Kafka consumer and the dispatcher), the real Kafka broker, a real
HTTP receiver checking every signature. The first process is killed right after a request reached the receiver
and before its outcome was recorded; the second finds the claims it left in ``sending`` (under the lease the
first one held), sends them again, as notify does for every idempotent channel, and finishes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from fastapi.testclient import TestClient
from kafka import KafkaProducer
from sqlalchemy import select

from contracts.residents import ZoneStatusChanged
from contracts.testing import CaseConfirmed
from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.consumer import dead_letter_topic
from juwei.service import create_app
from services.notify.views import subscription_attempts, subscription_deliveries
from tests.conftest import both_databases
from tests.kernel.harness import ROOT, wait_for
from tests.notify.conftest import envelope, make_notify
from tests.notify.variant import definition, topics
from tests.notify.webhook_sink import Sink

BUILDINGS, CASES = 4, 5
FAILPOINT = "notify.subscription_after_send"


def _spawn(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "juwei.cli", "consume", "tests.notify.variant:service"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _statuses(runtime) -> Counter[str]:
    with runtime.database.reading() as session:
        return Counter(session.execute(select(subscription_deliveries.c.status)).scalars().all())


@both_databases
def test_killed_mid_delivery_every_event_reaches_the_subscriber_and_only_the_one_in_flight_twice(
    new_database, tmp_path: Path, kafka: str, broker, suffix: str
) -> None:
    compound = f"x{suffix}"
    residents_topic, testing_topic = topics(suffix)
    variant = definition(suffix)
    if broker is not None:
        broker.create_topics([residents_topic, testing_topic, variant.topic, *map(dead_letter_topic, topics(suffix))])
    url = new_database("notify")
    runtime = make_notify(url, tmp_path, kafka=kafka, definition=variant)
    sink = Sink().start()
    with TestClient(create_app(runtime, background=False)) as client:
        with runtime.database.unit_of_work() as session:
            operator = {"X-API-Key": issue_key(session, "district-operator", None, holder=Holder("system", "ops")).key}
        answer = client.post(
            "/subscriptions",
            json={
                "url": sink.url,
                "types": ["juwei.testing.CaseConfirmed", "juwei.residents.ZoneStatusChanged"],
                "compounds": [compound],
            },
            headers=operator,
        )
        assert answer.status_code == 201, answer.text
        sink.secret = answer.json()["secret"]

    zones = [
        envelope(
            ZoneStatusChanged(scope="compound", zone=zone, previous=before, reason="x"),
            compound,
            subject=f"z-{compound}",
        )
        for zone, before in (("sealed", "precaution"), ("controlled", "sealed"), ("precaution", "controlled"))
    ]
    cases = [
        envelope(
            CaseConfirmed(
                case=f"{compound}:case{b}-{n}",
                resident=f"{compound}:r{b}-1",
                household=f"{compound}:h{b}-1",
                building=f"{compound}:{b}",
                confirmed_on="2022-04-10",
            ),
            compound,
            "testing",
            subject=f"case-{b}-{n}",
        )
        for n in range(1, CASES + 1)
        for b in range(1, BUILDINGS + 1)
    ]
    producer = KafkaProducer(bootstrap_servers=kafka)
    for topic, batch in ((residents_topic, zones), (testing_topic, cases)):
        for env in batch:
            key, value, headers = env.to_kafka()
            producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()

    failpoints = tmp_path / "failpoints"
    env = {
        f"JUWEI_{variant.name.upper()}_DATABASE_URL": url,
        "JUWEI_DATA_DIR": str(tmp_path),  # the same vault key as the subscription's secret was sealed with
        "JUWEI_KAFKA_BOOTSTRAP": kafka,
        "JUWEI_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "JUWEI_NOTIFY_TEST_SUFFIX": suffix,
        "JUWEI_NOTIFY_LEASE_SECONDS": "3",
        "JUWEI_NOTIFY_HTTP_TIMEOUT": "2",
        "JUWEI_NOTIFY_DISPATCH_SECONDS": "0.1",
        "JUWEI_NOTIFY_WORKERS": "1",  # one lane at a time: exactly one request in flight at the kill
        "JUWEI_FAILPOINT_DIR": str(failpoints),
        "JUWEI_LOG_LEVEL": "WARNING",
    }
    running: list[subprocess.Popen[bytes]] = []
    try:
        first = _spawn({**env, "JUWEI_FAILPOINTS": FAILPOINT})
        running.append(first)
        marker = failpoints / FAILPOINT
        try:
            wait_for(lambda: marker.exists() or first.poll() is not None, timeout=90, what="the first send")
        except AssertionError:
            first.kill()
            raise AssertionError(first.stderr.read().decode()[-4000:] if first.stderr else "") from None
        assert first.poll() is None, first.stderr.read().decode()[-3000:] if first.stderr else ""
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        marker.unlink()
        # What reached the receiver but was never recorded: the delivery in flight at the kill.
        with runtime.database.reading() as session:
            recorded = set(
                session.execute(
                    select(subscription_deliveries.c.event_id).where(subscription_deliveries.c.status == "sent")
                ).scalars()
            )
        in_flight = {r.webhook_id for r in sink.received} - recorded
        assert len(in_flight) == 1, in_flight
        assert _statuses(runtime)["sending"] >= 1

        second = _spawn(env)
        running.append(second)
        expected = len(zones) + len(cases)
        wait_for(
            lambda: _statuses(runtime) == Counter({"sent": expected}),
            timeout=120,
            what="every subscription delivery to be sent",
        )
    finally:
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        sink.stop()

    arrivals = Counter(r.webhook_id for r in sink.received)
    assert set(arrivals) == {e.id for e in [*zones, *cases]}  # every event, nothing else
    assert {i for i, n in arrivals.items() if n > 1} == in_flight and arrivals[next(iter(in_flight))] == 2
    assert all(r.valid and r.status == 200 for r in sink.received)
    # Deduplicated by webhook-id, each lane arrived in the order the events happened.
    first_seen: list[str] = list(dict.fromkeys(r.webhook_id for r in sink.received))
    for lane in [zones, *([e for e in cases if e.building == f"{compound}:{b}"] for b in range(1, BUILDINGS + 1))]:
        ids = [e.id for e in lane]
        assert [i for i in first_seen if i in ids] == ids
    with runtime.database.reading() as session:
        orphaned = session.execute(
            select(subscription_deliveries.c.event_id)
            .join(subscription_attempts, subscription_attempts.c.delivery_id == subscription_deliveries.c.id)
            .where(subscription_attempts.c.outcome == "orphaned")
        ).scalars()
        assert in_flight <= set(orphaned)
    runtime.database.dispose()
