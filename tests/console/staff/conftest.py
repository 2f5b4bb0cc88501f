"""The staff pages against the real services: the four of them and the console, each a process as ``juwei run``
starts them, on the test broker; a compound with something in every export, made through the services' APIs.
The console's own database is on the test PostgreSQL.

Compound ``cx…``: buildings 1 and 2 (18 floors of 4 rooms), households on floors 1-3 of each; round R1 today
with two residents of building 1 sampled; batch B0 dispatched with household h1-0102 not reached (nobody
answered); a medicine request (a card); a donation accepted and one refused. Staff s1 of every building signs
in as ``wang`` (``juwei console add-staff``); a logistics volunteer of building 1 has a session of their own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from console import sessions
from console.database import migrate
from console.sealing import KeySeal
from demo.sinks import free_port
from juwei.database import Database
from juwei.local_postgres import LocalPostgres
from services.residents.domain import IMPORT_COLUMNS
from services.residents.importing import BUILDING_COLUMNS
from tests.access.world import as_csv, building_rows, resident_rows
from tests.conftest import _external_pg_database
from tests.e2e.conftest import RunningSuite, serve_suite, start_groups_at_the_end
from tests.kernel.harness import ROOT, wait_for

PASSWORD = "correct horse 7"
TODAY = "2022-04-12"
FOLLOW_UP = "h1-0102"
SAMPLED = ("r1", "r2")  # household h1-0101: tested in R1


@dataclass
class StaffWorld:
    suite: RunningSuite
    compound: str
    console_url: str
    console_env: dict[str, str]
    logistics_cookie: str  # the session token of a logistics volunteer of building 1

    def service(self, service: str, path: str, **params: Any) -> Any:
        """What a service answers the operator (the data the exports are checked against)."""
        answer = httpx.get(
            f"{self.suite.urls[service]}/compounds/{self.compound}{path}",
            params=params,
            headers={"X-API-Key": self.suite.key},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    @contextmanager
    def signed_in(self, language: str = "zh-CN") -> Iterator[httpx.Client]:
        """An HTTP client with staff wang's session (the sign-in form, as a browser sends it)."""
        with httpx.Client(base_url=self.console_url, headers={"Accept-Language": language}, timeout=120) as client:
            yield self._sign_in(client)

    def _sign_in(self, client: httpx.Client) -> httpx.Client:
        client.get("/signin")
        answer = client.post(
            "/signin",
            data={"username": "wang", "password": PASSWORD, "csrf": client.cookies.get("console_pre", "")},
        )
        assert answer.status_code in (200, 303), answer.text
        assert client.cookies.get(sessions.COOKIE), "no session after signing in"
        return client


class Operator:
    def __init__(self, suite: RunningSuite, compound: str) -> None:
        self.suite, self.compound = suite, compound

    def call(self, method: str, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.suite.urls[service]}/compounds/{self.compound}{path}",
            headers={"X-API-Key": self.suite.key, **kwargs.pop("headers", {})},
            timeout=60,
            **kwargs,
        )

    def ok(self, method: str, service: str, path: str, **kwargs: Any) -> Any:
        answer = self.call(method, service, path, **kwargs)
        assert answer.status_code < 300, (method, service, path, answer.status_code, answer.text)
        return answer.json() if answer.content else None

    def eventually(self, method: str, service: str, path: str, what: str, **kwargs: Any) -> Any:
        """A call that succeeds once the service has heard the register over Kafka."""
        found: list[Any] = []

        def accepted() -> bool:
            answer = self.call(method, service, path, **kwargs)
            if answer.status_code < 300:
                found.append(answer.json() if answer.content else None)
                return True
            return False

        wait_for(accepted, timeout=120, what=what)
        return found[0]

    def residents_taken_in(self, *services: str) -> None:
        """Waits until ``services`` have consumed every residents' event published so far: a whole-compound batch
        or an allocation made earlier would cover only the buildings and households already heard of."""
        residents = f"{self.suite.urls['residents']}/status"

        def published() -> bool:
            status = httpx.get(residents, headers={"X-API-Key": self.suite.key}, timeout=60).json()
            return status["relay"]["backlog"] == 0

        wait_for(published, timeout=120, what="residents' relay to publish the imports")
        bootstrap, prefix = self.suite.env["JUWEI_KAFKA_BOOTSTRAP"], self.suite.env["JUWEI_CONSUMER_GROUP_PREFIX"]
        reader = KafkaConsumer(bootstrap_servers=bootstrap)
        try:
            topic = "juwei.residents"
            ends = reader.end_offsets([TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()])
        finally:
            reader.close()
        assert ends and sum(ends.values()) > 0, ends  # the imports are on the topic
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000)

        def consumed() -> bool:
            for service in services:
                group = f"{prefix}-{service}"
                committed = admin.list_group_offsets(group).get(group, {})
                if not all(tp in committed and committed[tp].offset >= end for tp, end in ends.items()):
                    return False
            return True

        try:
            wait_for(consumed, timeout=180, what=f"{' and '.join(services)} to take in residents' events")
        finally:
            admin.close()


def seed(operator: Operator) -> None:
    csv_type = {"content-type": "text/csv"}
    buildings = [{**row, "building": str(row["number"])} for row in building_rows(2, 18, 4)]
    operator.ok("POST", "residents", "/import", params={"kind": "buildings"},
                content=as_csv(buildings, BUILDING_COLUMNS), headers=csv_type)  # fmt: skip
    people = [{**row, "building": str(row["building"]).lstrip("b")} for row in resident_rows(2, 3, 4)]
    operator.ok("POST", "residents", "/import", params={"kind": "residents"},
                content=as_csv(people, IMPORT_COLUMNS), headers=csv_type)  # fmt: skip
    operator.ok("PUT", "residents", "/staff/s1/buildings", json={"buildings": []})
    operator.ok("POST", "residents", "/volunteers", json={"volunteer": "l1", "building": "1", "skills": []})
    operator.residents_taken_in("testing", "supplies")
    for point, building in (("p1", "1"), ("p2", "2")):
        operator.ok("POST", "testing", "/points", json={"point": point, "name": point, "location": "gate",
                                                        "throughput": 4})  # fmt: skip
        operator.eventually("PUT", "testing", f"/points/{point}/buildings", "testing to learn the buildings",
                            json={"buildings": [building]})  # fmt: skip
    operator.ok("POST", "testing", "/rounds", json={"round": "R1", "starts_at": f"{TODAY}T07:00",
                                                    "points": ["p1", "p2"]})  # fmt: skip
    operator.eventually("POST", "testing", "/rounds/R1/samples", "testing to learn the register",
                        json={"tube": "T1", "residents": list(SAMPLED), "point": "p1"})  # fmt: skip
    rice = [{"item": "rice", "quantity": 200, "unit": "bag"}]
    operator.ok("POST", "supplies", "/batches", json={"batch": "B0", "source": "government", "whole_compound": True,
                                                      "items": rice})  # fmt: skip
    operator.eventually("POST", "supplies", "/batches/B0/allocation", "supplies to learn the households",
                        json={"method": "equal"})  # fmt: skip
    operator.ok("POST", "supplies", "/batches/B0/dispatch", json={})
    operator.ok("POST", "supplies", "/batches/B0/buildings/1/outcomes",
                json={"outcomes": [{"household": FOLLOW_UP, "outcome": "no_one_home"}]})  # fmt: skip
    operator.ok("POST", "supplies", "/medicine-requests",
                json={"request": "m1", "resident": "r5", "medicine": "硝苯地平控释片 30mg", "quantity": "2 boxes",
                      "hospital": "瑞金医院"})  # fmt: skip
    operator.ok("POST", "supplies", "/donations", json={"donation": "d1", "donor": "donor-017", "received_on": TODAY,
                "items": [{"item": "kn95", "category": "masks", "quantity": 2000}]})  # fmt: skip
    operator.ok("POST", "supplies", "/donations", json={"donation": "d2", "donor": "donor-018", "received_on": TODAY,
                "items": [{"item": "cola", "category": "drinks", "quantity": 50, "unit": "box"}],
                "refuse_reason": "不是必需物资"})  # fmt: skip


def logistics_session(env: dict[str, str], compound: str) -> str:
    """A session of a logistics volunteer of building 1, as an invitation makes one (the key is never used:
    the console refuses staff pages to the role before calling any service)."""
    database = Database(env["JUWEI_CONSOLE_DATABASE_URL"])
    migrate(database)
    try:
        with database.unit_of_work() as session:
            return sessions.start(
                session, compound=compound, role="logistics-volunteer", holder_kind="volunteer",
                holder=f"{compound}:l1", buildings=["1"], key_id="0" * 16,
                sealed_key=KeySeal(env["JUWEI_CONSOLE_SECRET"]).seal("jw_unused", "0" * 16), username=None,
                idle=timedelta(hours=1), lasts=timedelta(hours=8),
            )  # fmt: skip
    finally:
        database.dispose()


# Package-scoped: its services stop with the console's tests, before other suites run on the same broker.
@pytest.fixture(scope="package")
def staff_world(
    tmp_path_factory: pytest.TempPathFactory, kafka: str, broker: Any, postgres: LocalPostgres | None
) -> Iterator[StaffWorld]:
    # Consumer groups of its own: this suite lives the whole session, beside the other suites of the tests.
    groups = f"console-staff-{uuid.uuid4().hex[:8]}"
    start_groups_at_the_end(kafka, broker, groups)
    with serve_suite(
        tmp_path_factory.mktemp("suite"), kafka, JUWEI_TODAY=TODAY, JUWEI_CONSUMER_GROUP_PREFIX=groups
    ) as running:
        compound = f"cx{uuid.uuid4().hex[:8]}"
        seed(Operator(running, compound))
        port = free_port()
        folder = tmp_path_factory.mktemp("console")
        env = {**os.environ, **running.env, "JUWEI_CONSOLE_PORT": str(port),
               "JUWEI_CONSOLE_DATABASE_URL": console_database(postgres, compound),
               "JUWEI_CONSOLE_SECRET": "console-test-secret-" + uuid.uuid4().hex}  # fmt: skip
        made = subprocess.run(
            [sys.executable, "-m", "juwei.cli", "console", "add-staff", "--compound", compound, "--staff", "s1",
             "--username", "wang"],
            cwd=ROOT, env={**env, "JUWEI_CONSOLE_PASSWORD": PASSWORD}, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        log = (folder / "console.log").open("ab")
        process = subprocess.Popen([sys.executable, "-m", "juwei.cli", "console", "serve", "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: process.poll() is None and _answers(f"{url}/healthz"), timeout=60, what="the console")
            yield StaffWorld(running, compound, url, env, logistics_session(env, compound))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def console_database(postgres: LocalPostgres | None, compound: str) -> str:
    """The console's own database on the test PostgreSQL (the services' are SQLite files; the console's other
    tests use SQLite): both dialects under the console's sessions and accounts."""
    name = f"t_console_{compound}"
    return postgres.create_database(name) if postgres is not None else _external_pg_database(name)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
