"""The four services as real processes (`juwei serve`) on a Kafka broker and a PostgreSQL of their own.

The broker and the database cluster are private to the fault tests (ports next to the session's, data wiped
at start) because these tests SIGKILL and stop them; every service's stdout and stderr go to a log file that
is appended across restarts, so the privacy scan sees every line any incarnation wrote, and every one of them
is read as a JSON log line (``tests/logs.py``). Building groups get
a signed webhook channel each, pointing at the notify test sinks in this process, which count every POST
(before the receiver's own dedupe) as well as what each group accepted.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text

from juwei.broker import LocalBroker
from juwei.consumer import dead_letter_topic
from juwei.local_postgres import LocalPostgres
from juwei.registration import topic_of
from tests.conftest import KAFKA_PORT, POSTGRES_PORT, ROOT, TEST_HOME
from tests.logs import log_lines
from tests.notify.platforms import Platforms, free_port

SERVICES = ("residents", "supplies", "testing", "notify")
OPERATOR = "jw_faultops_" + "k" * 43
TODAY = "2022-04-12"
# Ports of the private broker and database: the session's plus 20, so parallel sessions still differ.
FAULT_KAFKA_PORT = KAFKA_PORT + 20
FAULT_POSTGRES_PORT = POSTGRES_PORT + 20


def private_broker() -> LocalBroker:
    home = TEST_HOME / "faults" / "kafka"
    shared = LocalBroker(TEST_HOME / "kafka")
    shared.fetch()  # the session's jars: linked, not copied again
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "libs").exists():
        (home / "libs").symlink_to(shared.libs_dir)
    broker = LocalBroker(home, port=FAULT_KAFKA_PORT, controller_port=FAULT_KAFKA_PORT + 1, partitions=3)
    broker.stop()
    shutil.rmtree(broker.data_dir, ignore_errors=True)  # a fresh log: every record on it is this run's
    return broker


def private_postgres() -> LocalPostgres:
    return LocalPostgres(TEST_HOME / "faults" / "postgres", port=FAULT_POSTGRES_PORT, fast=True)


class Sinks:
    """One signed webhook receiver per building; counts each POST and what the group accepted."""

    def __init__(self) -> None:
        self.platforms = Platforms().start()
        self.posts: collections.Counter[tuple[str, str]] = collections.Counter()  # (building, message) → POSTs
        self.lock = threading.Lock()
        original = self.platforms.handle

        def counting(path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
            try:
                body = json.loads(raw)
                with self.lock:
                    self.posts[(path.rsplit("/", 1)[-1], str(body.get("message")))] += 1
            except (ValueError, AttributeError):
                pass
            return original(path, headers, raw)

        self.platforms.handle = counting  # type: ignore[method-assign]

    def config(self, building: str) -> dict[str, Any]:
        bot = self.platforms.bot("webhook", building, secret="s" * 32)
        return self.platforms.config(bot)

    def accepted(self) -> dict[tuple[str, str], int]:
        """(building, message), local ids → how many times the group accepted it."""
        with self.platforms.lock:
            counts: collections.Counter[tuple[str, str]] = collections.Counter(
                (token, str(entry["body"].get("message")).split(":", 1)[-1])
                for (kind, token), bot in self.platforms.bots.items()
                if kind == "webhook"
                for entry in bot.received
            )
        return dict(counts)

    def everything(self) -> str:
        return self.platforms.everything_received()

    def stop(self) -> None:
        self.platforms.stop()


class Service:
    """One `juwei serve <name>` process, restartable, logging to one file across restarts."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = int(env[f"JUWEI_{name.upper()}_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "juwei.cli", "serve", self.name],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.starts += 1

    def log_lines(self) -> list[dict[str, Any]]:
        """Every line every incarnation of the service wrote, each asserted to be one JSON log line."""
        return log_lines(self.log.read_text(errors="replace"))

    def healthy(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 0.5) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Stack:
    """The broker, the database cluster, the four services and the sinks."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.broker = private_broker()
        self.postgres = private_postgres()
        self.sinks = Sinks()
        self.services: dict[str, Service] = {}
        self.urls: dict[str, str] = {}
        self.channels_from = 0  # notify's message position when the groups got their channels

    def start(self) -> None:
        self.broker.start()
        topics = [topic_of(s) for s in SERVICES]
        self.broker.create_topics([*topics, *(dead_letter_topic(t) for t in topics)])
        self.postgres.start()
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            JUWEI_KAFKA_BOOTSTRAP=self.broker.bootstrap,
            JUWEI_DATA_DIR=str(self.home / "data"),
            JUWEI_BOOTSTRAP_KEY=OPERATOR,
            JUWEI_TODAY=TODAY,
            JUWEI_LOG_LEVEL="INFO",
            JUWEI_KAFKA_SESSION_TIMEOUT_MS="6000",
            JUWEI_RATE_LIMIT_PER_SECOND="0",  # the test is one key driving thousands of requests
            JUWEI_NOTIFY_DISPATCH_SECONDS="0.1",
            JUWEI_NOTIFY_RETRY_BASE="0.2",
            JUWEI_NOTIFY_RETRY_CAP="2",
            JUWEI_NOTIFY_LEASE_SECONDS="5",
        )
        for name in SERVICES:
            self.urls[name] = self.postgres.create_database(f"fault_{name}")
            env[f"JUWEI_{name.upper()}_DATABASE_URL"] = self.urls[name]
            env[f"JUWEI_{name.upper()}_PORT"] = str(free_port())
        for name in SERVICES:
            self.services[name] = Service(name, env, self.home / f"{name}.log")
            self.services[name].start()
        for service in self.services.values():
            wait_for(service.healthy, 120, f"{service.name} to answer")

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()
        self.sinks.stop()
        self.broker.stop()
        self.postgres.stop()

    # ------------------------------------------------------------------ requests

    def call(self, service: str, method: str, path: str, timeout: float = 120, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": OPERATOR, **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.services[service].url}{path}", headers=headers, timeout=timeout,
                             **kwargs)  # fmt: skip

    def ok(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.call(service, method, path, **kwargs)
        assert answer.status_code < 300, f"{method} {service}{path}: {answer.status_code} {answer.text[:500]}"
        return answer.json() if answer.content else None

    # ------------------------------------------------------------------ what the databases hold

    def scalar(self, service: str, sql: str, **params: Any) -> Any:
        engine = create_engine(self.urls[service])
        try:
            with engine.connect() as connection:
                return connection.execute(text(sql), params).scalar()
        finally:
            engine.dispose()

    def rows(self, service: str, query: Any) -> list[Any]:
        engine = create_engine(self.urls[service])
        try:
            with engine.connect() as connection:
                return list(connection.execute(query).all())
        finally:
            engine.dispose()

    def head(self, service: str) -> int:
        return int(self.scalar(service, "SELECT coalesce(max(position), 0) FROM juwei_events"))

    def count(self, service: str, table: Any) -> int:
        return int(self.rows(service, select(func.count()).select_from(table))[0][0])
