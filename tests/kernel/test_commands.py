"""Exactly-once commands: a write sent again with its ``Idempotency-Key`` is answered, never carried out twice.

On both databases: a replay gets the first answer and appends nothing; the same id with another request is a
422; a refused command is not recorded and may be sent again; duplicates sent at once append one event; and a
real service process SIGKILLed after the commit, before its answer was stored or sent, answers the replay
after its restart with 200 ``replayed`` and no second event.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from juwei.commands import commands_table
from juwei.service import create_app
from juwei.store import events_table
from tests.conftest import ROOT, both_databases
from tests.kernel.harness import key, runtime, wait_for
from tests.kernel.sample import definitions

PROBLEM = "application/problem+json"


@pytest.fixture
def desk(new_database, suffix: str) -> Iterator[tuple[TestClient, object]]:
    made = runtime(definitions(suffix)[0], new_database())
    with TestClient(create_app(made, background=False)) as client:
        yield client, made


def _events(made) -> int:
    with made.database.reading() as session:
        return int(session.execute(select(func.count()).select_from(events_table)).scalar_one())


def _add(client, secret: str, command: str | None, amount: int = 1, building: str = "1") -> httpx.Response:
    headers = {"X-API-Key": secret, **({"Idempotency-Key": command} if command else {})}
    return client.post(f"/compounds/c1/tallies/{building}", json={"amount": amount}, headers=headers)


@both_databases
def test_a_replay_gets_the_first_answer_and_appends_nothing(desk) -> None:
    client, made = desk
    secret = key(made)
    first = _add(client, secret, "phone-7f3a-0001")
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    for _ in range(3):
        again = _add(client, secret, "phone-7f3a-0001")
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == first.headers["content-type"]
    assert _events(made) == 1
    # Without the header, or with another id, a command is a new command.
    assert _add(client, secret, None).status_code == 201
    assert _add(client, secret, "phone-7f3a-0002").json()["version"] == 3
    assert _events(made) == 3


@both_databases
def test_the_same_id_for_another_request_or_from_another_key_is_422(desk) -> None:
    client, made = desk
    secret = key(made)
    assert _add(client, secret, "cmd-00000001").status_code == 201
    for other in (_add(client, secret, "cmd-00000001", amount=2), _add(client, secret, "cmd-00000001", building="2"),
                  _add(client, key(made), "cmd-00000001")):  # fmt: skip
        assert other.status_code == 422 and other.headers["content-type"] == PROBLEM
        assert other.json()["code"] == "idempotency-key-reused"
    for bad in ("short", "x" * 101, "has space!", "ünïcode-1"):
        refused = client.post(
            "/compounds/c1/tallies/1",
            json={"amount": 1},
            headers={"X-API-Key": secret, "Idempotency-Key": bad.encode()},
        )
        assert refused.status_code == 422 and refused.json()["code"] == "idempotency-key-invalid"
    # An unknown key learns nothing of the ledger: 401 like any other call.
    assert _add(client, "jw_nope_nope", "cmd-00000001").status_code == 401
    assert _events(made) == 1


@both_databases
def test_a_refused_command_is_not_recorded_and_can_be_sent_again(desk) -> None:
    client, made = desk
    secret = key(made)
    for _ in range(2):
        refused = _add(client, secret, "cmd-retry-01", amount=-5)
        assert refused.status_code == 422 and "idempotent-replayed" not in refused.headers
    assert _add(client, key(made, buildings=["9"]), "cmd-retry-01").status_code == 403
    done = _add(client, secret, "cmd-retry-01", amount=5)
    assert done.status_code == 201
    with made.database.reading() as session:
        rows = session.execute(select(commands_table)).mappings().all()
    assert [(row["id"], row["status"]) for row in rows] == [("cmd-retry-01", 201)]
    assert _events(made) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@both_databases
def test_duplicates_sent_at_once_are_carried_out_once(new_database, suffix: str) -> None:
    made = runtime(definitions(suffix)[0], new_database())
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(made, background=False), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        secret = key(made)
        for round_ in range(3):
            command = f"at-once-{round_:04d}"
            barrier = threading.Barrier(8)
            answers: list[httpx.Response] = []

            def send(
                command: str = command,
                barrier: threading.Barrier = barrier,
                answers: list[httpx.Response] = answers,
                building: int = round_,
            ) -> None:
                barrier.wait()
                answers.append(
                    httpx.post(
                        f"http://127.0.0.1:{port}/compounds/c1/tallies/{building}",
                        json={"amount": 1},
                        headers={"X-API-Key": secret, "Idempotency-Key": command},
                        timeout=60,
                    )
                )

            senders = [threading.Thread(target=send) for _ in range(8)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
            carried = [a for a in answers if a.status_code == 201 and "idempotent-replayed" not in a.headers]
            assert len(carried) == 1, [(a.status_code, a.text) for a in answers]
            for answer in answers:
                replayed = answer.headers.get("idempotent-replayed") == "true"
                in_progress = answer.status_code == 409 and answer.json()["code"] == "command-in-progress"
                assert answer in carried or replayed or in_progress, answer.text
        assert _events(made) == 3
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        made.database.dispose()


def test_the_header_is_documented_on_every_write(desk) -> None:
    client, _made = desk
    paths = client.get("/openapi.json").json()["paths"]
    post = paths["/compounds/{compound}/tallies/{building}"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in post["parameters"])
    read = paths["/compounds/{compound}/tallies"]["get"]
    assert all(p["name"] != "Idempotency-Key" for p in read.get("parameters", []))


@both_databases
def test_a_service_killed_after_the_commit_answers_the_replay_without_a_second_event(
    new_database, suffix: str, tmp_path: Path
) -> None:
    url = new_database()
    made = runtime(definitions(suffix)[0], url)
    secret = key(made)
    port = _free_port()
    failpoints = tmp_path / "failpoints"
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        JUWEI_SAMPLE_SUFFIX=suffix,
        JUWEI_KAFKA_BOOTSTRAP="127.0.0.1:1",
        JUWEI_FAILPOINT_DIR=str(failpoints),
        **{f"JUWEI_DESK_{suffix.upper()}_DATABASE_URL": url},
    )

    def serve(failpoint: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "juwei.cli",
                "serve",
                "tests.kernel.sample:desk",
                "--port",
                str(port),
                "--no-background",
            ],
            cwd=ROOT,
            env=dict(env, JUWEI_FAILPOINTS=failpoint),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def up(process: subprocess.Popen[bytes]) -> bool:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    body, headers = {"amount": 4}, {"X-API-Key": secret, "Idempotency-Key": "offline-0042"}
    first = serve("commands.after_commit")
    try:
        wait_for(lambda: up(first), what="the desk to serve")

        def send() -> None:
            # The process dies with the request open: the phone never hears back.
            with contextlib.suppress(httpx.TransportError):
                httpx.post(f"http://127.0.0.1:{port}/compounds/c1/tallies/1", json=body, headers=headers, timeout=120)

        sender = threading.Thread(target=send)
        sender.start()
        marker = failpoints / "commands.after_commit"
        wait_for(lambda: marker.exists() or first.poll() is not None, what="the failpoint after the commit")
        assert first.poll() is None
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        sender.join(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert _events(made) == 1
    with made.database.reading() as session:
        row = session.execute(select(commands_table)).mappings().one()
    assert row["id"] == "offline-0042" and row["status"] is None
    second = serve("")
    try:
        wait_for(lambda: up(second), what="the desk to serve again")
        for _ in range(2):
            replay = httpx.post(f"http://127.0.0.1:{port}/compounds/c1/tallies/1", json=body, headers=headers)
            assert replay.status_code == 200, replay.text
            assert replay.json() == {"replayed": True, "detail": "this command was already carried out"}
            assert replay.headers["idempotent-replayed"] == "true"
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert _events(made) == 1
    made.database.dispose()
