"""SIGKILL notify mid-fan-out and restart it: every message reaches every channel exactly once.

Real child processes (``juwei consume``: the Kafka consumer and the dispatcher), the real Kafka broker,
the fake bots. The first process is killed after it queued the fan-out but before it committed its Kafka
offsets; the second after its first requests reached the bots but before it recorded them; the third
finishes. Redelivered events stop at the inbox; the delivery keys keep the queue single; what was sent
but not recorded is marked uncertain and not sent again (a webhook, whose receiver dedupes, is resent).
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
from sqlalchemy import func, select

from contracts.residents import ZoneStatusChanged
from contracts.testing import CaseConfirmed
from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.consumer import dead_letter_topic
from juwei.service import create_app
from juwei.store import inbox_table
from services.notify.views import deliveries
from tests.conftest import both_databases
from tests.kernel.harness import ROOT, on_topic, wait_for
from tests.notify.conftest import compound_events, envelope, make_notify, receive
from tests.notify.variant import definition, topics

BUILDINGS = 5


def _spawn(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "juwei.cli", "consume", "tests.notify.variant:service"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_at(process: subprocess.Popen[bytes], marker: Path) -> None:
    try:
        wait_for(lambda: marker.exists() or process.poll() is not None, timeout=90, what=f"{marker.name} to be reached")
    except AssertionError:
        process.kill()
        raise AssertionError(process.stderr.read().decode()[-4000:] if process.stderr else "") from None
    assert process.poll() is None, process.stderr.read().decode()[-3000:] if process.stderr else ""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    marker.unlink()


def _statuses(runtime) -> Counter[str]:
    with runtime.database.reading() as session:
        return Counter(session.execute(select(deliveries.c.status)).scalars().all())


@both_databases
def test_killed_mid_fan_out_and_restarted_every_message_reaches_every_channel_exactly_once(
    new_database, tmp_path: Path, kafka: str, broker, suffix: str, platforms
) -> None:
    compound = f"x{suffix}"
    residents_topic, testing_topic = topics(suffix)
    variant = definition(suffix)
    if broker is not None:
        broker.create_topics([residents_topic, testing_topic, variant.topic, *map(dead_letter_topic, topics(suffix))])
    url = new_database("notify")
    runtime = make_notify(url, tmp_path, kafka=kafka, definition=variant)
    receive(runtime, *compound_events(compound, buildings=BUILDINGS, households=2))
    bots = {}
    with TestClient(create_app(runtime, background=False)) as client:
        with runtime.database.unit_of_work() as session:
            staff = {
                "X-API-Key": issue_key(session, "committee-staff", compound, holder=Holder("system", "test staff")).key
            }
        for b in range(1, BUILDINGS + 1):
            for kind, secret in (("wecom", None), ("dingtalk", f"SEC{b}"), ("webhook", "w" * 32)):
                bot = bots[(b, kind)] = platforms.bot(kind, f"{kind}-{b}", secret)
                answer = client.post(
                    f"/compounds/{compound}/groups/{b}/channels",
                    json={"kind": kind, "config": platforms.config(bot)},
                    headers=staff,
                )
                assert answer.status_code == 201, answer.text

    # Three compound-wide zone changes (every group) and a case in each building: 4 messages per group.
    events = [
        envelope(
            ZoneStatusChanged(scope="compound", zone=zone, previous=before, reason="x", days_since_last_case=days),
            compound,
            subject=f"zone-{compound}",
        )
        for zone, before, days in (
            ("sealed", "precaution", 0),
            ("controlled", "sealed", 7),
            ("precaution", "controlled", 14),
        )
    ]
    cases = [
        envelope(
            CaseConfirmed(
                case=f"{compound}:case{b}",
                resident=f"{compound}:r{b}-1",
                household=f"{compound}:h{b}-1",
                building=f"{compound}:{b}",
                confirmed_on="2022-04-10",
            ),
            compound,
            "testing",
            subject=f"case-{b}",
        )
        for b in range(1, BUILDINGS + 1)
    ]
    producer = KafkaProducer(bootstrap_servers=kafka)
    for topic, batch in ((residents_topic, events), (testing_topic, cases)):
        for env in batch:
            key, value, headers = env.to_kafka()
            producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()

    failpoints = tmp_path / "failpoints"
    env = {
        f"JUWEI_{variant.name.upper()}_DATABASE_URL": url,
        "JUWEI_DATA_DIR": str(tmp_path),  # the same vault key as the channels were sealed with
        "JUWEI_KAFKA_BOOTSTRAP": kafka,
        "JUWEI_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "JUWEI_NOTIFY_TEST_SUFFIX": suffix,
        "JUWEI_NOTIFY_LEASE_SECONDS": "3",
        "JUWEI_NOTIFY_HTTP_TIMEOUT": "2",
        "JUWEI_NOTIFY_DISPATCH_SECONDS": "0.1",
        # One send in flight when the process is frozen and killed: with N workers the kill can also find up
        # to N-1 other bot deliveries claimed but not yet sent; they become uncertain too (never sent twice,
        # the operator alerted), and "every message arrives" below would then not hold for them.
        "JUWEI_NOTIFY_WORKERS": "1",
        "JUWEI_FAILPOINT_DIR": str(failpoints),
        "JUWEI_LOG_LEVEL": "WARNING",
    }
    running: list[subprocess.Popen[bytes]] = []
    try:
        # 1: consumes and fans out, then dies before committing its offsets (its dispatcher is idle).
        first = _spawn({**env, "JUWEI_FAILPOINTS": "consumer.after_effects", "JUWEI_NOTIFY_DISPATCH_SECONDS": "3600"})
        running.append(first)
        _kill_at(first, failpoints / "consumer.after_effects")
        queued = sum(_statuses(runtime).values())
        assert queued == BUILDINGS * 4 * 3
        # 2: re-reads the uncommitted records (the inbox skips them), sends, dies right after the first answers.
        second = _spawn({**env, "JUWEI_FAILPOINTS": "notify.after_send"})
        running.append(second)
        _kill_at(second, failpoints / "notify.after_send")
        orphaned = _statuses(runtime)["sending"]
        assert orphaned >= 1
        # 3: finishes.
        third = _spawn(env)
        running.append(third)
        wait_for(
            lambda: not ({"pending", "sending"} & set(_statuses(runtime))),
            timeout=120,
            what="every delivery to be settled",
        )
    finally:
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()

    for (b, kind), bot in bots.items():
        texts = bot.texts
        assert len(texts) == 4 and len(set(texts)) == 4, (b, kind, texts)  # every message, none twice
        assert sum(f"{b}号楼新增 1 例阳性病例" in t for t in texts) == 1
    final = _statuses(runtime)
    assert final["sent"] + final["uncertain"] == BUILDINGS * 4 * 3 and final["uncertain"] <= orphaned
    with runtime.database.reading() as session:
        assert session.execute(select(func.count()).select_from(inbox_table)).scalar() == len(
            compound_events(compound, buildings=BUILDINGS, households=2)
        ) + len(events) + len(cases)

    # What notify publishes about all this on its own topic: ids and codes, never a message's words.
    relay = runtime.make_relay()
    published = relay.publish_once()
    relay.close()
    records = on_topic(kafka, variant.topic)
    assert len(records) == published > BUILDINGS * 4 * 3
    kinds = Counter(dict(record.headers)["ce_type"].decode().split(".")[2] for record in records)
    assert kinds["MessageComposed"] == 3 + BUILDINGS and kinds["DeliverySent"] == final["sent"]
    for record in records:
        value = record.value.decode()
        assert "阳性" not in value and "封控区" not in value and "sealed:v1:" not in value, value
    runtime.database.dispose()
