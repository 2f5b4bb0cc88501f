"""One log format: every line every process writes is one JSON object with the same leading fields.

Real processes (`juwei migrate | serve | consume | relay | status --json`) on the session's Kafka broker,
answering requests that succeed, are not found, are refused and are invalid, consuming a poison record and
publishing to a Kafka that is down; every line of every one of their logs is read back as JSON.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from kafka import KafkaProducer
from uvicorn.config import LOGGING_CONFIG as UVICORN_LOGGING

from juwei.consumer import dead_letter_topic
from juwei.events import current_traceparent
from juwei.logs import LogLevelsError, configure_logging, parse_levels
from juwei.repository import Repository
from tests.kernel.harness import ROOT, key, runtime, wait_for
from tests.kernel.sample import Tally, definitions
from tests.logs import log_line, log_lines
from tests.notify.platforms import free_port

OPERATOR = "jw_logfmt_" + "k" * 43
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PRIVATE = "张三丰"  # a name in a query string: never in a log


def test_stdlib_loggers_write_the_same_json_lines_as_structlog(capsys: pytest.CaptureFixture[str]) -> None:
    # What a uvicorn run in-process with its default configuration leaves: plain-text handlers of its own, not
    # propagating (seen in CI: an earlier test's server turned this test's uvicorn lines into text).
    logging.config.dictConfig(UVICORN_LOGGING)
    configure_logging("INFO", "kafka=WARNING, uvicorn.error=DEBUG", service="desk")
    logging.getLogger("kafka.conn").info("kafka at INFO is below its level")
    logging.getLogger("kafka.conn").warning("connect to %s failed", "127.0.0.1:1")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade %s -> %s", "juwei_0001", "juwei_0002")
    logging.getLogger("uvicorn.error").debug("uvicorn.error at DEBUG is shown")
    try:
        raise ValueError("a fault\non two lines")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    structlog.contextvars.bind_contextvars(request_id="r-42")
    token = current_traceparent.set(f"00-{TRACE}-00f067aa0ba902b7-01")
    try:
        structlog.get_logger("juwei.sample").info("tally.added", message="m-1", amount=3)
        structlog.get_logger("juwei.sample").debug("below the root level")
    finally:
        current_traceparent.reset(token)
        structlog.contextvars.clear_contextvars()
    lines = log_lines(capsys.readouterr().err)
    by_message = {line["message"]: line for line in lines}
    assert "kafka at INFO is below its level" not in by_message and "below the root level" not in by_message
    kafka = by_message["connect to 127.0.0.1:1 failed"]
    assert (kafka["level"], kafka["logger"], kafka["service"]) == ("warning", "kafka.conn", "desk")
    assert by_message["Running upgrade juwei_0001 -> juwei_0002"]["logger"] == "alembic.runtime.migration"
    assert by_message["uvicorn.error at DEBUG is shown"]["level"] == "debug"
    crash = by_message["Exception in ASGI application"]
    assert crash["level"] == "error" and "ValueError: a fault\non two lines" in crash["exception"]
    own = by_message["tally.added"]
    leading = ["time", "level", "service", "logger", "message", "request_id", "trace_id"]
    assert list(own) == [*leading, "message_", "amount"]
    assert (own["request_id"], own["trace_id"], own["message_"], own["amount"]) == ("r-42", TRACE, "m-1", 3)
    assert "trace_id" not in kafka and "request_id" not in kafka  # none was current


def test_log_levels_are_logger_equals_level() -> None:
    assert parse_levels(" kafka=warning,uvicorn.access=INFO, ") == {"kafka": "WARNING", "uvicorn.access": "INFO"}
    for wrong in ("kafka", "kafka=LOUD", "=INFO"):
        with pytest.raises(LogLevelsError):
            parse_levels(wrong)


class Processes:
    """`juwei …` child processes, each with its stdout and stderr in files of their own."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), **env)
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.out").open("wb") as out, (self.folder / f"{name}.err").open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "juwei.cli", *args], cwd=ROOT, env=dict(self.env, **env), stdout=out, stderr=err
            )
        self.running[name] = process
        return process

    def run(self, name: str, *args: str) -> int:
        return self.start(name, *args).wait(timeout=120)

    def err(self, name: str) -> str:
        return (self.folder / f"{name}.err").read_text()

    def out(self, name: str) -> str:
        return (self.folder / f"{name}.out").read_text()

    def logged(self, name: str, wanted: dict[str, Any]) -> bool:
        """Whether the process has logged a line with these fields (lines are checked whole at the end)."""
        for text in self.err(name).splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and all(line.get(k) == v for k, v in wanted.items()):
                return True
        return False

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.kafka
def test_every_line_of_every_process_is_one_json_log_line(
    kafka: str, broker, suffix: str, tmp_path: Path, new_database
) -> None:
    desk, board = definitions(suffix)
    if broker is not None:
        broker.create_topics([desk.topic, dead_letter_topic(desk.topic)])
    desk_url, board_url = new_database("desk"), new_database("board")
    port = free_port()
    procs = Processes(
        tmp_path,
        {
            "JUWEI_SAMPLE_SUFFIX": suffix,
            f"JUWEI_DESK_{suffix.upper()}_DATABASE_URL": desk_url,
            f"JUWEI_BOARD_{suffix.upper()}_DATABASE_URL": board_url,
            "JUWEI_KAFKA_BOOTSTRAP": kafka,
            "JUWEI_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "JUWEI_BOOTSTRAP_KEY": OPERATOR,
            "JUWEI_DATA_DIR": str(tmp_path / "data"),
            "JUWEI_LOG_LEVEL": "INFO",
        },
    )
    target = "tests.kernel.sample:desk"
    try:
        assert procs.run("migrate", "migrate", target) == 0
        serve = procs.start("serve", "serve", target, "--port", str(port))
        url = f"http://127.0.0.1:{port}"

        def answering() -> bool:
            assert serve.poll() is None, procs.err("serve")[-3000:]
            try:
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answering, what="the desk to answer")
        staff = key(runtime(desk, desk_url, kafka))
        operator = {"X-API-Key": OPERATOR}
        tallies = f"{url}/compounds/c1/tallies"
        answers = [
            httpx.post(f"{tallies}/b1", json={"amount": 2}, headers={"X-API-Key": staff}),
            httpx.post(
                f"{tallies}/b2",
                json={"amount": 3},
                headers={
                    "X-API-Key": staff,
                    "X-Request-ID": "req-log-1",
                    "traceparent": f"00-{TRACE}-b7ad6b7169203331-01",
                },
            ),
            httpx.post(f"{tallies}/b1", json={"amount": 5000}, headers={"X-API-Key": staff}),
            httpx.post(f"{tallies}/b1", json={"amount": 1}, headers=operator),
            httpx.get(tallies, params={"name": PRIVATE}, headers=operator),
            httpx.get(f"{url}/no/such/page", headers=operator),
            httpx.get(tallies),
        ]
        assert [a.status_code for a in answers] == [201, 201, 422, 403, 200, 404, 401]

        procs.start("consume", "consume", "tests.kernel.sample:board")
        producer = KafkaProducer(bootstrap_servers=kafka, acks="all")
        producer.send(desk.topic, key=b"b1", value=b"{not json")
        producer.flush()
        producer.close()
        wait_for(lambda: procs.logged("consume", {"message": "consumer.dead_lettered"}), what="the poison record")
        # A relay whose Kafka is down, on a database of its own with an event to publish: kafka-python's own
        # complaints are lines like the rest.
        unpublished = new_database("unpublished")
        alone = runtime(desk, unpublished, kafka)
        with alone.database.unit_of_work() as session:
            repo = Repository(alone.store, Tally)
            tally = repo.load(session, "b9")
            tally.add(1)
            repo.save(session, tally, compound="c1")
        procs.start(
            "relay",
            "relay",
            target,
            JUWEI_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
            **{f"JUWEI_DESK_{suffix.upper()}_DATABASE_URL": unpublished},
        )
        wait_for(lambda: procs.logged("relay", {"message": "relay.kafka_error"}), what="the relay to meet no Kafka")
        status = procs.start("status", "status", "--json", "--sample", "0", "--service", f"desk={url}")
        status.wait(timeout=120)
        report = json.loads(procs.out("status"))  # stdout is the JSON report alone
        assert report["services"][0]["name"] == "desk"
    finally:
        procs.stop_all()

    lines: dict[str, list[dict[str, Any]]] = {}
    for name in ("migrate", "serve", "consume", "relay", "status"):
        lines[name] = log_lines(procs.err(name))  # every line, each one JSON with the fields
        if name != "status":
            assert procs.out(name) == "", name  # nothing but logs, and those on stderr
        assert PRIVATE not in procs.err(name)
    loggers = {line["logger"] for found in lines.values() for line in found}
    assert {"alembic.runtime.migration", "uvicorn.error", "juwei.http", "juwei.consumer", "juwei.relay"} <= loggers
    assert any(name.startswith("kafka") for name in loggers), loggers
    assert {line["service"] for line in lines["serve"]} == {desk.name}
    assert {line["service"] for line in lines["consume"]} == {board.name}
    requests = [line for line in lines["serve"] if line["message"] == "http.request"]
    ours = [line for line in requests if line["route"].startswith("/compounds/") or line["route"] == "unmatched"]
    answered = sorted(line["status"] for line in ours)
    assert answered == [200, 201, 201, 401, 403, 404, 422]
    assert all(line["request_id"] and len(line["trace_id"]) == 32 for line in requests)
    traced = [line for line in requests if line["request_id"] == "req-log-1"]
    assert [line["trace_id"] for line in traced] == [TRACE]
    assert {line["route"] for line in requests} >= {"/compounds/{compound}/tallies", "unmatched"}
    poison = next(line for line in lines["consume"] if line["message"] == "consumer.dead_lettered")
    assert poison["level"] == "error" and poison["topic"] == desk.topic
    assert any(line["message"] == "service.migrated" for line in lines["migrate"])


def test_a_line_that_is_not_a_json_log_line_is_refused() -> None:
    fields = {"time": "2026-04-12T08:00:00.1Z", "level": "info", "service": "desk", "logger": "l", "message": "m"}
    assert log_line(json.dumps(fields)) == fields
    for wrong in ("INFO:     Started server process [7]", "[1, 2]", json.dumps({**fields, "time": "08:00"}),
                  json.dumps({k: v for k, v in fields.items() if k != "service"})):  # fmt: skip
        with pytest.raises((AssertionError, ValueError)):
            log_line(wrong)
