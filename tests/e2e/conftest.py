"""The four services as real processes on the test broker, for the end-to-end tests.

Each service is ``python -m juwei.cli serve <service>`` on a free port, with its SQLite file in a folder of
the test's own, the test broker as its Kafka and an operator key made at start. The topics are shared with
the rest of the suite, so before the services start, their consumer groups (``juwei-<service>``) are moved
to the topics' end: what other tests published is not this compound's.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from demo.sinks import free_port
from juwei.consumer import dead_letter_topic
from juwei.registration import suite, topic_of
from juwei.service import load_definition
from tests.kernel.harness import ROOT, start_at_the_end, wait_for

KNOWN_SERVICES = tuple(suite().names)
# The suites' consumer groups (``<prefix>-<service>``) on the shared broker: one set per pytest-xdist worker, so that
# two suites running at once on different workers never split a group's partitions between them.
GROUPS = f"juwei-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def topics() -> list[str]:
    return [name for s in KNOWN_SERVICES for name in (topic_of(s), dead_letter_topic(topic_of(s)))]


def start_groups_at_the_end(kafka: str, broker: object | None, prefix: str = GROUPS) -> None:
    """Create the services' topics and commit each service's consumer group (``<prefix>-<service>``) at their
    current end."""
    if broker is not None:
        broker.create_topics(topics())  # type: ignore[attr-defined]
    for service in KNOWN_SERVICES:
        consumed = list(load_definition(service).consumes)
        if not consumed:
            continue
        start_at_the_end(kafka, f"{prefix}-{service}", *consumed)


def suite_env(data_dir: Path, kafka: str, ports: dict[str, int], key: str) -> dict[str, str]:
    return {
        "JUWEI_DATA_DIR": str(data_dir),
        "JUWEI_KAFKA_BOOTSTRAP": kafka,
        "JUWEI_BOOTSTRAP_KEY": key,
        "JUWEI_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "JUWEI_CONSUMER_GROUP_PREFIX": GROUPS,
        "JUWEI_NOTIFY_DISPATCH_SECONDS": "0.1",
        "JUWEI_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        **{f"JUWEI_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }


@dataclass
class RunningSuite:
    urls: dict[str, str]
    key: str
    env: dict[str, str]
    data_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def logs(self, tail: int = 3000) -> str:
        """The end of each service's log: what a failing assertion should show."""
        parts = []
        for name in self.processes:
            path = self.data_dir / "logs" / f"{name}.log"
            text = path.read_text(errors="replace")[-tail:] if path.exists() else "(no log)"
            parts.append(f"--- {name} ---\n{text}")
        return "\n".join(parts)


@contextmanager
def serve_suite(data_dir: Path, kafka: str, **extra: str) -> Iterator[RunningSuite]:
    """``juwei serve`` for each of the four services; stopped (SIGTERM, then SIGKILL) on the way out."""
    ports = {name: free_port() for name in KNOWN_SERVICES}
    key = f"jw_operator_{secrets.token_urlsafe(24)}"
    env = {**suite_env(data_dir, kafka, ports, key), **extra}
    running = RunningSuite({n: f"http://127.0.0.1:{p}" for n, p in ports.items()}, key, env, data_dir)
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    try:
        for name in KNOWN_SERVICES:
            log = (data_dir / "logs" / f"{name}.log").open("ab")
            running.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "juwei.cli", "serve", name],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for name, url in running.urls.items():
            process = running.processes[name]
            try:
                wait_for(
                    lambda u=url, p=process: p.poll() is None and _answers(f"{u}/healthz"),
                    timeout=90,
                    what=f"{name} to answer",
                )
            except AssertionError:
                raise AssertionError(f"{name} did not start\n{running.logs()}") from None
        yield running
    finally:
        for process in running.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in running.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
