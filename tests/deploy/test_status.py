"""`juwei status` against real services: the sample desk and board served by `juwei serve`, the real broker.

The desk appends and relays to its topic; the board consumes it in group ``juwei-board_<suffix>``. Beside
them: a service that is not running at all, and a desk whose Kafka is unreachable (alive and ready: its outbox
keeps the writes; but `juwei status` names Kafka unreachable and is not all right).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka.admin import KafkaAdminClient

from juwei.consumer import dead_letter_topic
from juwei.status import Target, collect
from tests.conftest import ROOT
from tests.kernel.harness import key, runtime, wait_for
from tests.kernel.sample import definitions

pytestmark = pytest.mark.kafka


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """`juwei serve tests.kernel.sample:<which>` as a child process, named desk_/board_<suffix>."""

    def __init__(self, which: str, suffix: str, tmp: Path, kafka: str) -> None:
        self.name = f"{which}_{suffix}"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prefix = f"JUWEI_{self.name.upper()}"
        self.env = {
            "JUWEI_SAMPLE_SUFFIX": suffix,
            f"{prefix}_DATABASE_URL": f"sqlite:///{tmp / f'{self.name}.db'}",
            f"{prefix}_PORT": str(self.port),
            "JUWEI_KAFKA_BOOTSTRAP": kafka,
            "JUWEI_HOST": "127.0.0.1",
            "JUWEI_DATA_DIR": str(tmp / "data"),
            "JUWEI_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "JUWEI_LOG_LEVEL": "WARNING",
        }
        self.which = which
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tmp / f"{self.name}.log"

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "juwei.cli", "serve", f"tests.kernel.sample:{self.which}"],
                cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), **self.env), stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _juwei_status(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "juwei.cli", "status", *args],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), **env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def stack(kafka: str, tmp_path: Path, suffix: str) -> Iterator[dict[str, Any]]:
    desk = Served("desk", suffix, tmp_path, kafka)
    board = Served("board", suffix, tmp_path, kafka)
    offline = Served("desk", f"{suffix}x", tmp_path, "127.0.0.1:1")  # alive and ready, but its Kafka is unreachable
    topic = definitions(suffix)[0].topic
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    admin.create_topics(
        {name: {"num_partitions": 3, "replication_factor": 1} for name in (topic, dead_letter_topic(topic))}
    )
    admin.close()
    # A staff key in the desk's database before it starts (the service migrates it again, harmlessly).
    made = runtime(definitions(suffix)[0], desk.env[f"JUWEI_{desk.name.upper()}_DATABASE_URL"], kafka)
    staff = key(made)
    made.database.dispose()
    served = [desk, board, offline]
    try:
        for each in served:
            each.start()
        for each in served:
            wait_for(each.answers, timeout=90, what=f"{each.name} to answer")
        yield {"desk": desk, "board": board, "offline": offline, "topic": topic, "staff": staff, "kafka": kafka}
    finally:
        for each in served:
            each.stop()


def _tally(stack: dict[str, Any], amount: int = 1) -> None:
    answer = httpx.post(
        f"{stack['desk'].url}/compounds/c1/tallies/1", json={"amount": amount}, headers={"X-API-Key": stack["staff"]}
    )
    assert answer.status_code == 201, answer.text


def _settled(stack: dict[str, Any]) -> bool:
    """The desk has published everything and the board has consumed all of it (asked in-process)."""
    report = collect(
        [Target(stack["desk"].name, stack["desk"].url), Target(stack["board"].name, stack["board"].url)],
        stack["kafka"],
        sample_seconds=0,
    )
    desk, board = report.services
    return desk.relay_backlog == 0 and board.lag.get(stack["topic"]) == 0


def test_juwei_status_shows_health_readiness_backlog_lag_and_rate(stack: dict[str, Any]) -> None:
    desk, board, offline = stack["desk"], stack["board"], stack["offline"]
    for _ in range(5):
        _tally(stack)
    wait_for(lambda: _settled(stack), timeout=90, what="the board to catch up with the desk")
    both = ["-s", f"{desk.name}={desk.url}", "-s", f"{board.name}={board.url}"]
    healthy = _juwei_status("--sample", "0.5", *both, env={"JUWEI_KAFKA_BOOTSTRAP": stack["kafka"], "COLUMNS": "200"})
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "all up and ready" in healthy.stdout

    lost = f"lost_{desk.name.split('_', 1)[1]}"
    args = ["-s", desk.name, "-s", f"{board.name}={board.url}", "-s", f"{lost}=http://127.0.0.1:{_free_port()}",
            "-s", f"{offline.name}={offline.url}"]  # fmt: skip
    # The desk is found as `juwei run` would place it: JUWEI_HOST and JUWEI_<NAME>_PORT.
    env = {"JUWEI_KAFKA_BOOTSTRAP": stack["kafka"], "JUWEI_HOST": "127.0.0.1", **desk.env}

    stop = threading.Event()

    def keep_tallying() -> None:
        while not stop.wait(0.1):
            _tally(stack)

    writer = threading.Thread(target=keep_tallying, daemon=True)
    writer.start()
    try:
        done = _juwei_status("--json", *args, env=env)
    finally:
        stop.set()
        writer.join()
    assert done.returncode == 1, done.stderr  # one service is down, one cannot reach Kafka
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["kafka"]["error"] is None
    services = {s["name"]: s for s in report["services"]}

    d = services[desk.name]
    assert d["url"] == desk.url and d["healthy"] is True and d["ready"] is True
    assert d["head_position"] >= 5 and isinstance(d["relay_backlog"], int) and d["relay_backlog"] >= 0
    assert d["events_per_second"] > 0  # the writer appended between the two samples
    assert d["consumer_group"] == f"juwei-{desk.name}" and d["lag"] == {}  # the desk consumes nothing

    b = services[board.name]
    assert b["healthy"] is True and b["ready"] is True and b["relay_backlog"] == 0
    assert b["consumer_group"] == f"juwei-{board.name}"
    assert set(b["lag"]) == {stack["topic"]} and isinstance(b["lag"][stack["topic"]], int)

    assert services[lost]["healthy"] is False and services[lost]["error"] == "connection refused"
    o = services[offline.name]
    assert o["healthy"] is True and o["ready"] is True and o["kafka"].startswith("unreachable (")
    assert services[desk.name]["kafka"] == "ok" and b["kafka"] == "ok"

    table = _juwei_status("--sample", "0", *args, env={**env, "COLUMNS": "200"})
    assert table.returncode == 1
    for text in (desk.name, board.name, lost, "down", "unreachable", f"{stack['topic']}:", "NOT all up"):
        assert text in table.stdout, text


def test_a_stopped_consumers_lag_is_read_from_kafka(stack: dict[str, Any]) -> None:
    desk, board = stack["desk"], stack["board"]
    _tally(stack)
    wait_for(lambda: _settled(stack), timeout=90, what="the board to catch up with the desk")
    board.stop()
    for _ in range(3):
        _tally(stack)
    wait_for(
        lambda: collect([Target(desk.name, desk.url)], stack["kafka"], sample_seconds=0).services[0].relay_backlog == 0,
        timeout=60,
        what="the desk to publish",
    )
    done = _juwei_status(
        "--json", "--sample", "0", "-s", f"{board.name}={board.url}", env={"JUWEI_KAFKA_BOOTSTRAP": stack["kafka"]}
    )
    assert done.returncode == 1
    board_status = json.loads(done.stdout)["services"][0]
    assert board_status["healthy"] is False and board_status["error"] == "connection refused"
    # Down, so nobody told us what it consumes: its group's committed offsets name the topic.
    assert board_status["lag"] == {stack["topic"]: 3}
