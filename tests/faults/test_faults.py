"""Faults while the four services work: nothing lost, nothing doubled, read models equal a rebuild.

The services run as real processes on PostgreSQL and Kafka (``tests/faults/stack.py``). The test imports a
compound of ``JUWEI_FAULT_RESIDENTS`` residents (default 5,000, which with what follows puts well over
10,000 events into the logs), attaches a webhook per building group and then, while a driver thread keeps
sampling residents, entering results and announcing things over HTTP:

1. SIGKILLs the Kafka broker and starts it again after a few seconds;
2. SIGKILLs each service in turn (its relay, consumers and dispatcher with it) and starts it again;
3. stops PostgreSQL for a while: the APIs answer 503 problem+json with Retry-After, fast, and serve again
   by themselves once it is back;
4. puts poison records (not JSON, an unknown type, no headers) on every topic in the middle of the stream.

After each: every event of every service is in the inbox of every service that consumes its topic, every
read model equals its rebuild from zero, and every building group accepted each message meant for it
exactly once. The figures are printed, and kept in tests/faults/README.md.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer
from sqlalchemy import select

from juwei.events import binary_headers, utcnow
from juwei.registration import topic_of
from juwei.service import Runtime, load_definition
from juwei.settings import Settings
from juwei.store import events_table, inbox_table
from services.notify.views import deliveries, groups, messages
from services.residents.domain import IMPORT_COLUMNS
from services.testing.views import residents as testing_register
from tests.access.world import as_csv, building_rows, resident_rows
from tests.faults.stack import SERVICES, TODAY, Stack, wait_for

pytestmark = pytest.mark.kafka

RESIDENTS = int(os.environ.get("JUWEI_FAULT_RESIDENTS", "5000"))
BUILDINGS, FLOORS, ROOMS, PER_HOUSEHOLD = 25, 20, 5, 2
C = "/compounds/c1"


@dataclass
class Driver:
    """Keeps commands flowing over HTTP: samples of ten residents per tube, each tube's result, announcements.

    A request that meets a fault (connection refused, 503) is sent again until it is answered; a retry that
    finds its work already done (409) counts as done.
    """

    stack: Stack
    people: list[str]
    tubes: int = 0
    requests: int = 0
    retries: int = 0
    unavailable: int = 0  # 503 answers
    slowest_503: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    round: str = "R0"
    cursor: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    error: BaseException | None = None

    def send(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                answer = self.stack.call(service, method, path, timeout=30, **kwargs)
            except httpx.HTTPError:
                self.retries += 1
                time.sleep(0.5)
                continue
            self.requests += 1
            self.statuses[answer.status_code] += 1
            if answer.status_code == 503:
                self.unavailable += 1
                self.slowest_503 = max(self.slowest_503, time.monotonic() - started)
                assert answer.headers["content-type"] == "application/problem+json", answer.text
                assert answer.headers.get("Retry-After"), answer.headers
                self.retries += 1
                time.sleep(0.5)
                continue
            if answer.status_code == 409 and attempt > 1:
                return None  # the first attempt went through before the fault hid its answer
            assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text[:300]}"
            return answer.json() if answer.content else None

    def new_round(self, name: str) -> None:
        self.round, self.cursor = name, 0
        self.send("testing", "POST", f"{C}/rounds", json={"round": name, "starts_at": "2022-04-12T07:00",
                                                          "points": ["p1", "p2", "p3"]})  # fmt: skip

    def step(self) -> None:
        batch = [self.people[(self.cursor + n) % len(self.people)] for n in range(10)]
        self.cursor += 10
        self.tubes += 1
        tube = f"{self.round}-T{self.tubes}"
        self.send("testing", "POST", f"{C}/rounds/{self.round}/samples",
                  json={"tube": tube, "residents": batch, "point": "p1"})  # fmt: skip
        self.send("testing", "POST", f"{C}/tubes/{tube}/result", json={"result": "negative"})
        if self.tubes % 25 == 0:
            notice = {"title": f"通知 {self.tubes}", "body": "请按楼层下楼", "buildings": ["b1", "b2"]}
            self.send("notify", "POST", f"{C}/announcements", json=notice)
        if self.tubes % 40 == 0:  # a supply batch for two buildings, planned and sent out
            batch = f"{self.round}-B{self.tubes}"
            rice = [{"item": "rice", "quantity": 100, "unit": "bag"}]
            arrived = {"batch": batch, "source": "government", "buildings": ["b3", "b4"], "items": rice}
            self.send("supplies", "POST", f"{C}/batches", json=arrived)
            self.send("supplies", "POST", f"{C}/batches/{batch}/allocation", json={"method": "equal"})
            self.send("supplies", "POST", f"{C}/batches/{batch}/dispatch", json={})

    def past(self, tubes: int) -> bool:
        """Whether the driver has filled ``tubes`` tubes; raises what stopped it, if it stopped."""
        if self.error is not None:
            raise self.error
        return self.tubes >= tubes

    def run(self, steps: int) -> None:
        steps = min(steps, len(self.people) // 10)  # each resident once per round

        def loop() -> None:
            try:
                for _ in range(steps):
                    if self.stop.is_set():
                        return
                    self.step()
            except BaseException as exc:
                self.error = exc

        self.stop.clear()
        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def wait(self, timeout: float = 1800) -> None:
        # A guard that the driver ends, not a speed check: beside the other workers it ran 10× slower than alone.
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the driver did not finish"
        if self.error is not None:
            raise self.error


# ---------------------------------------------------------------------- the checks after each fault


def _ids(stack: Stack, service: str) -> set[str]:
    return {row[0] for row in stack.rows(service, select(events_table.c.id))}


def _received(stack: Stack, service: str) -> Counter[str]:
    rows = stack.rows(service, select(inbox_table.c.event_id).where(inbox_table.c.consumer == f"juwei-{service}"))
    return Counter(row[0] for row in rows)


def every_event_everywhere(stack: Stack) -> tuple[bool, dict[str, int]]:
    """Whether every consumer has every event of every topic it reads, once; and the events checked."""
    produced = {service: _ids(stack, service) for service in SERVICES}
    checked: dict[str, int] = {}
    complete = True
    for consumer in SERVICES:
        received = _received(stack, consumer)
        assert all(n == 1 for n in received.values()), f"{consumer} holds an event twice in its inbox"
        for topic in load_definition(consumer).consumes:
            producer = topic.split(".", 1)[1]
            missing = produced[producer] - received.keys()
            complete &= not missing
            checked[f"{producer}→{consumer}"] = len(produced[producer])
    return complete, checked


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _dump(runtime: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with runtime.database.reading() as session:
        for projection in runtime.projector.projections:
            for table in projection.tables:
                rows = session.execute(select(table)).all()
                out[table.name] = sorted((tuple(_value(v) for v in row) for row in rows), key=repr)
    return out


def read_models_equal_a_rebuild(stack: Stack, home: Path) -> dict[str, int]:
    replayed = {}
    for service in SERVICES:
        runtime = Runtime(load_definition(service), Settings(kafka_bootstrap=stack.broker.bootstrap,
                          data_dir=home / "data", today=date.fromisoformat(TODAY)),
                          database_url=stack.urls[service])  # fmt: skip
        try:
            live = _dump(runtime)
            # Rebuilt as the services run (their pinned JUWEI_TODAY: notify's daily account counts every event
            # on that day), as `juwei replay` would be with the deployment's configuration.
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("JUWEI_TODAY", TODAY)
                replayed[service] = runtime.projector.rebuild()
            rebuilt = _dump(runtime)
        finally:
            runtime.database.dispose()
        differ = [name for name in live if live[name] != rebuilt[name]]
        assert not differ, f"{service}: {differ} differ from their rebuild: " + "; ".join(
            f"{name}: live {len(live[name])} rows, rebuilt {len(rebuilt[name])}; first difference "
            f"{next((a, b) for a, b in zip(live[name], rebuilt[name], strict=False) if a != b) if live[name] else ''}"
            for name in differ[:3]
        )
    return replayed


def _local(value: str) -> str:
    return value.split(":", 1)[-1]


def messages_expected(stack: Stack) -> set[tuple[str, str]]:
    """(building, message) for every message composed since the groups got their channels."""
    rows = stack.rows("notify", select(messages.c.message, messages.c.buildings, messages.c.position))
    expected = set()
    for message, buildings, position in rows:
        if position > stack.channels_from:
            for building in json.loads(buildings) if isinstance(buildings, str) else buildings:
                expected.add((_local(building), _local(message)))
    return expected


def delivered_once(stack: Stack) -> tuple[bool, dict[str, int]]:
    expected = messages_expected(stack)
    accepted = stack.sinks.accepted()
    pending = stack.rows("notify", select(deliveries.c.status, deliveries.c.id))
    open_ = [status for status, _ in pending if status not in ("sent", "cancelled")]
    figures = {"messages to groups": len(expected), "accepted": sum(accepted.values()), "open deliveries": len(open_)}
    return (not open_ and set(accepted) >= expected), figures


def settle_and_check(stack: Stack, home: Path, label: str, log: list[str]) -> None:
    took = wait_for(lambda: every_event_everywhere(stack)[0], 600, f"every event to reach every consumer ({label})")
    wait_for(lambda: delivered_once(stack)[0], 600, f"every group message to be delivered ({label})")
    _, checked = every_event_everywhere(stack)
    replayed = read_models_equal_a_rebuild(stack, home)
    expected, accepted = messages_expected(stack), stack.sinks.accepted()
    doubled = {pair: n for pair, n in accepted.items() if n != 1}
    assert not doubled, f"groups accepted a message more than once: {list(doubled.items())[:10]}"
    assert set(accepted) == expected, (
        f"missing {sorted(expected - set(accepted))[:10]}, unexpected {sorted(set(accepted) - expected)[:10]}"
    )
    posts = stack.sinks.posts
    resent = sum(n - 1 for n in posts.values() if n > 1)
    heads = {service: stack.head(service) for service in SERVICES}
    # Whatever the fault, each line every service process wrote is one JSON log line.
    logged = {service: len(stack.services[service].log_lines()) for service in SERVICES}
    line = (f"{label}: settled in {took:.0f}s; events {heads} (total {sum(heads.values())}); "
            f"deliveries to consumers checked {checked}; replayed {replayed}; "
            f"{len(expected)} group messages each accepted once ({resent} resends absorbed by receivers); "
            f"JSON log lines {sum(logged.values())}")  # fmt: skip
    print("\n" + line)
    log.append(line)


# ---------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path, list[dict[str, object]]]]:
    home = tmp_path_factory.mktemp("faults")
    made = Stack(home)
    made.start()
    try:
        rows = _compound(made)
        yield made, home, rows
    finally:
        made.stop()


def _compound(stack: Stack) -> list[dict[str, object]]:
    columns = ("building", "number", "floors", "rooms_per_floor", "lifts", "lift_capacity")
    stack.ok("residents", "POST", f"{C}/import", params={"kind": "buildings"},
             content=as_csv(building_rows(BUILDINGS, FLOORS, ROOMS), columns),
             headers={"content-type": "text/csv"})  # fmt: skip
    rows = resident_rows(BUILDINGS, FLOORS, ROOMS, PER_HOUSEHOLD)[:RESIDENTS]
    stack.ok("residents", "POST", f"{C}/import", params={"kind": "residents"}, content=as_csv(rows, IMPORT_COLUMNS),
             headers={"content-type": "text/csv"}, timeout=600)  # fmt: skip
    stack.channels_from = int(stack.scalar("notify", "SELECT coalesce(max(position), 0) FROM notify_messages"))
    wait_for(lambda: stack.count("notify", groups) >= BUILDINGS, 300, "notify to know every building group")
    for n in range(1, BUILDINGS + 1):
        building = f"b{n}"
        stack.ok("notify", "POST", f"{C}/groups/{building}/channels",
                 json={"kind": "webhook", "config": stack.sinks.config(building), "label": f"{n}号楼"})  # fmt: skip
    for n in (1, 2, 3):
        stack.ok("testing", "POST", f"{C}/points", json={"point": f"p{n}", "name": f"采样点{n}",
                                                         "location": f"gate {n}", "throughput": 4})  # fmt: skip
    wait_for(lambda: stack.count("testing", testing_register) >= len(rows), 600, "testing to know every resident")
    stack.ok("testing", "POST", f"{C}/assignment/proposal")
    return rows


def _dead_letters(stack: Stack) -> dict[str, int]:
    from kafka import KafkaConsumer

    from juwei.consumer import dead_letter_topic

    counts = {}
    for service in SERVICES:
        topic = dead_letter_topic(topic_of(service))
        reader = KafkaConsumer(topic, bootstrap_servers=stack.broker.bootstrap, auto_offset_reset="earliest",
                               consumer_timeout_ms=3000, group_id=None)  # fmt: skip
        counts[topic] = sum(1 for _ in reader)
        reader.close()
    return counts


def _poison(stack: Stack) -> int:
    producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, acks="all")
    sent = 0
    for service in SERVICES:
        topic = topic_of(service)
        known = binary_headers("00000000-0000-0000-0000-00000000dead", f"/juwei/{service}",
                               f"juwei.{service}.NoSuchThing.v1", "s", utcnow(), {"compound": "c1"})  # fmt: skip
        for value, headers in ((b"{not json", known), (b'{"a": 1}', known), (b'{"a": 1}', [])):
            producer.send(topic, key=b"b1", value=value, headers=headers)
            sent += 1
    producer.flush()
    producer.close()
    return sent


@pytest.mark.timeout(3600)
def test_nothing_is_lost_or_doubled_through_broker_service_and_database_faults(
    stack: tuple[Stack, Path, list[dict[str, object]]],
) -> None:
    made, home, rows = stack
    log: list[str] = []
    people = [str(row["resident"]) for row in rows]
    driver = Driver(made, people)
    faults: list[str] = []
    settle_and_check(made, home, "after the import", log)

    # 1. The broker dies under load and comes back.
    driver.new_round("R1")
    start = driver.tubes
    driver.run(120)
    wait_for(lambda: driver.past(start + 20), 300, "the driver to get going")
    made.broker.kill()
    time.sleep(5)
    made.broker.start()
    faults.append("Kafka broker SIGKILLed, restarted after 5 s")
    driver.wait()
    settle_and_check(made, home, "after the broker was killed", log)

    # 2. Each service dies under load and comes back.
    driver.new_round("R2")
    start = driver.tubes
    driver.run(200)
    for name in SERVICES:
        before = driver.tubes
        wait_for(lambda b=before: driver.past(b + 5), 300, "more load")
        made.services[name].kill()
        time.sleep(2)
        made.services[name].start()
        wait_for(made.services[name].healthy, 120, f"{name} to come back")
        faults.append(f"{name} SIGKILLed (relay, consumer, dispatcher with it), restarted")
    driver.wait()
    settle_and_check(made, home, "after every service was killed", log)

    # 3. PostgreSQL stops for a while: 503 problem+json, then recovery without a restart.
    driver.new_round("R3")
    start = driver.tubes
    driver.run(120)
    wait_for(lambda: driver.past(start + 15), 300, "the driver to get going")
    made.postgres.stop()
    down_at = time.monotonic()
    probe = made.call("residents", "GET", f"{C}/buildings", timeout=30)
    assert probe.status_code == 503 and probe.headers["content-type"] == "application/problem+json", probe.text
    assert probe.json()["type"] == "urn:juwei:problem:database-unavailable" and probe.headers["Retry-After"]
    time.sleep(max(0.0, 8 - (time.monotonic() - down_at)))
    made.postgres.start()
    faults.append(f"PostgreSQL stopped for {time.monotonic() - down_at:.0f} s")
    driver.wait()
    assert all(service.process and service.process.poll() is None for service in made.services.values())
    settle_and_check(made, home, "after PostgreSQL was stopped", log)

    # 4. Poison records in the middle of the stream.
    driver.new_round("R4")
    start = driver.tubes
    driver.run(80)
    wait_for(lambda: driver.past(start + 20), 300, "the driver to get going")
    poisoned = _poison(made)
    faults.append(f"{poisoned} poison records put on the four topics mid-stream")
    driver.wait()
    settle_and_check(made, home, "after the poison records", log)
    # Each consumer of a topic dead-letters each of its three poison records; notify's topic has no consumer.
    wanted = {f"juwei.{producer}.dlq": 3 * sum(topic_of(producer) in load_definition(c).consumes for c in SERVICES)
              for producer in SERVICES}  # fmt: skip
    wait_for(lambda: _dead_letters(made) == wanted, 120, f"the dead-letter topics to hold {wanted}")
    log.append(f"dead letters: {wanted}")

    summary = (f"faults survived: {len(faults)} ({'; '.join(faults)}); driver: {driver.requests} requests, "
               f"{driver.tubes} tubes, {driver.retries} retries, {driver.unavailable} answers 503 (slowest "
               f"{driver.slowest_503:.1f}s), statuses {dict(driver.statuses)}")  # fmt: skip
    print("\n" + summary)
    (home / "figures.txt").write_text("\n".join([*log, summary]) + "\n")
    total = sum(made.head(service) for service in SERVICES)
    assert total >= 10_000 or RESIDENTS < 5000, f"only {total} events: the issue asks for 10,000 or more"


# Health data that must never travel in clear (issue 15): the needs flags, test results, home visits.
HEALTH_IN_CLEAR = (
    "regular_medication",
    "mobility_impaired",
    "bedridden",
    "pregnant",
    "result",
    "door_to_door",
    "visits",
)


def _kafka_text(stack: Stack) -> tuple[str, int, list[str], int]:
    """Every value and header of every record on the services' topics and their dead-letter topics; the records
    with a health field in clear; how many sealed health tokens travelled."""
    from kafka import KafkaConsumer

    from juwei.consumer import dead_letter_topic

    topics = [name for s in SERVICES for name in (topic_of(s), dead_letter_topic(topic_of(s)))]
    reader = KafkaConsumer(*topics, bootstrap_servers=stack.broker.bootstrap, auto_offset_reset="earliest",
                           consumer_timeout_ms=10_000, group_id=None)  # fmt: skip
    parts, count, in_clear, sealed = [], 0, [], 0
    for record in reader:
        count += 1
        text = (record.value or b"").decode(errors="replace")
        parts.append(text)
        parts.extend(value.decode(errors="replace") for _, value in record.headers or [])
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            shown = [name for name in HEALTH_IN_CLEAR if value.get(name) not in (None, [])]
            if shown:
                in_clear.append(f"{record.topic}@{record.offset} {dict(record.headers).get('ce_type')}: {shown}")
            token = value.get("health")
            if token is not None:
                if str(token).startswith("sealed:v1:"):
                    sealed += 1
                else:
                    in_clear.append(f"{record.topic}@{record.offset}: health {token!r}")
    reader.close()
    return "\n".join(parts), count, in_clear, sealed


def test_no_name_phone_or_id_number_reaches_kafka_the_logs_or_the_groups(
    stack: tuple[Stack, Path, list[dict[str, object]]],
) -> None:
    made, home, rows = stack
    person = rows[0]
    home_of = str(person["household"])
    # A day's work that touches identities: reveals (audited), a correction, medicine, a question, an erasure.
    made.ok("residents", "GET", f"{C}/buildings/b1/households", params={"reveal": "true"})
    made.ok("residents", "PUT", f"{C}/households/{home_of}/residents/{person['resident']}/identity",
            json={"name": "欧阳娜娜", "phone": "13912345678"})  # fmt: skip
    made.ok("supplies", "POST", f"{C}/medicine-requests", json={"request": "m-scan", "resident": rows[2]["resident"],
            "medicine": "苯磺酸氨氯地平片 5mg", "quantity": "3 boxes", "hospital": "仁济医院"})  # fmt: skip
    made.ok("notify", "POST", f"{C}/buildings/b1/questions", json={"text": "快递什么时候能进小区？"})
    made.ok("residents", "DELETE", f"{C}/residents/{rows[4]['resident']}")
    made.ok("notify", "POST", f"{C}/announcements", json={"title": "核酸结果已出", "buildings": ["b1"]})
    wait_for(lambda: every_event_everywhere(made)[0], 600, "the last events to reach every consumer")
    wait_for(lambda: delivered_once(made)[0], 600, "the last group messages")
    secrets_ = {"欧阳娜娜", "13912345678", "苯磺酸氨氯地平片", "仁济医院"}
    for row in rows:
        secrets_.update((str(row["name"]), str(row["phone"]), str(row["id_number"])))
    kafka, records, in_clear, sealed = _kafka_text(made)
    logs = {name: service.log.read_text(errors="replace") for name, service in made.services.items()}
    for service in made.services.values():
        assert {line["service"] for line in service.log_lines()} <= {service.name, "cli"}  # each line parses
    groups = made.sinks.everything()
    assert records > 1000 and all(logs.values()) and groups  # the scan has something to look at
    found = [(where, secret) for where, text in (("kafka", kafka), *logs.items(), ("groups", groups))
             for secret in secrets_ if secret in text]  # fmt: skip
    lines = sum(text.count("\n") for text in logs.values())
    print(f"\nprivacy scan: {len(secrets_)} names, phones, ID numbers and prescriptions looked for in {records} Kafka "
          f"records, {lines} log lines of {sum(s.starts for s in made.services.values())} service processes and "
          f"{len(groups.splitlines())} group messages: {len(found)} found")  # fmt: skip
    (home / "privacy.txt").write_text(f"{len(secrets_)} secrets, {records} records, {lines} log lines\n")
    assert not found, found[:20]
    # Issue 15: no health field in clear in any record; every resident's flags travelled sealed.
    print(f"health scan: {records} Kafka records, {sealed} sealed health tokens, {len(in_clear)} in clear")
    assert sealed >= len(rows) and not in_clear, in_clear[:20]
