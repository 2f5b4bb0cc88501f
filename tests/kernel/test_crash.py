"""Nothing lost, nothing doubled: real relay and consumer processes SIGKILLed at the worst moments."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from sqlalchemy import func, select

from juwei.consumer import dead_letter_topic
from juwei.repository import Repository
from juwei.store import inbox_table, read_checkpoint
from tests.conftest import both_databases
from tests.kernel.harness import on_topic, runtime, spawn, wait_for
from tests.kernel.sample import Tally, board_totals, definitions, desk_totals

EVENTS = 50


def _fill(made) -> None:
    repo = Repository(made.store, Tally)
    for i in range(EVENTS):
        with made.database.unit_of_work() as session:
            tally = repo.load(session, str(i % 7))
            tally.add(i + 1)
            repo.save(session, tally, compound="c1")


def _totals(made, table) -> dict[str, tuple[int, int]]:
    with made.database.reading() as session:
        return {row.building: (row.total, row.events) for row in session.execute(select(table)).all()}


class Processes:
    """The desk's relay and the board's consumer as real child processes of this test."""

    def __init__(self, suffix: str, desk_url: str, board_url: str, kafka: str, failpoints: Path) -> None:
        self.suffix = suffix
        self.failpoints = failpoints
        self.env = {
            f"JUWEI_DESK_{suffix.upper()}_DATABASE_URL": desk_url,
            f"JUWEI_BOARD_{suffix.upper()}_DATABASE_URL": board_url,
            "JUWEI_KAFKA_BOOTSTRAP": kafka,
            "JUWEI_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "JUWEI_FAILPOINT_DIR": str(failpoints),
        }
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, command: str, service: str, failpoint: str = "") -> subprocess.Popen[bytes]:
        process = spawn(command, service, self.suffix, dict(self.env, JUWEI_FAILPOINTS=failpoint))
        self.running.append(process)
        return process

    def kill_at(self, process: subprocess.Popen[bytes], failpoint: str) -> None:
        marker = self.failpoints / failpoint
        wait_for(lambda: marker.exists() or process.poll() is not None, what=f"{failpoint} to be reached")
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        marker.unlink()

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


def _setup(new_database, suffix: str, kafka: str, broker):
    desk, board = definitions(suffix)
    if broker is not None:
        broker.create_topics([desk.topic, dead_letter_topic(desk.topic)])
    desk_side = runtime(desk, new_database("desk"), kafka)
    board_side = runtime(board, new_database("board"), kafka)
    _fill(desk_side)
    return desk, desk_side, board_side


@both_databases
def test_relay_killed_between_commit_and_publish_loses_nothing(
    new_database, suffix: str, kafka: str, broker, tmp_path: Path
) -> None:
    desk, desk_side, board_side = _setup(new_database, suffix, kafka, broker)
    procs = Processes(suffix, desk_side.database.url, board_side.database.url, kafka, tmp_path)
    try:
        procs.kill_at(procs.start("relay", "desk", "relay.before_publish"), "relay.before_publish")
        assert len(on_topic(kafka, desk.topic)) == 0
        procs.start("relay", "desk")
        procs.start("consume", "board")
        wait_for(
            lambda: _totals(board_side, board_totals) == _totals(desk_side, desk_totals),
            what="the board to catch up after the relay's restart",
        )
    finally:
        procs.stop_all()
    assert len(on_topic(kafka, desk.topic)) == EVENTS
    assert sum(events for _, events in _totals(board_side, board_totals).values()) == EVENTS


@both_databases
def test_relay_killed_after_publish_before_checkpoint_republishes_and_effects_happen_once(
    new_database, suffix: str, kafka: str, broker, tmp_path: Path
) -> None:
    desk, desk_side, board_side = _setup(new_database, suffix, kafka, broker)
    procs = Processes(suffix, desk_side.database.url, board_side.database.url, kafka, tmp_path)
    try:
        procs.kill_at(procs.start("relay", "desk", "relay.after_publish"), "relay.after_publish")
        with desk_side.database.reading() as session:
            assert read_checkpoint(session, f"relay:{desk.topic}") == 0
        assert len(on_topic(kafka, desk.topic)) == EVENTS
        procs.start("relay", "desk")
        wait_for(lambda: len(on_topic(kafka, desk.topic)) == 2 * EVENTS, what="the re-publish")
        procs.start("consume", "board")
        wait_for(
            lambda: (
                _inbox(board_side) == EVENTS and _totals(board_side, board_totals) == _totals(desk_side, desk_totals)
            ),
            what="the board to absorb the duplicates",
        )
    finally:
        procs.stop_all()
    assert sum(events for _, events in _totals(board_side, board_totals).values()) == EVENTS


@both_databases
def test_consumer_killed_between_effects_and_offset_commit_applies_nothing_twice(
    new_database, suffix: str, kafka: str, broker, tmp_path: Path
) -> None:
    desk, desk_side, board_side = _setup(new_database, suffix, kafka, broker)
    relay = desk_side.make_relay()
    assert relay.publish_once() == EVENTS
    relay.close()
    procs = Processes(suffix, desk_side.database.url, board_side.database.url, kafka, tmp_path)
    try:
        victim = procs.start("consume", "board", "consumer.after_effects")
        procs.kill_at(victim, "consumer.after_effects")
        assert _totals(board_side, board_totals) == _totals(desk_side, desk_totals)  # effects committed
        survivor = procs.start("consume", "board")
        # The restarted member re-reads the uncommitted records; wait until it has committed past them.
        group = f"juwei-{definitions(suffix)[1].name}"
        wait_for(lambda: _committed(kafka, group, desk.topic) == EVENTS, timeout=90, what="the offsets commit")
        assert survivor.poll() is None
    finally:
        procs.stop_all()
    assert _totals(board_side, board_totals) == _totals(desk_side, desk_totals)
    assert _inbox(board_side) == EVENTS


def _inbox(made) -> int:
    with made.database.reading() as session:
        return int(session.execute(select(func.count()).select_from(inbox_table)).scalar() or 0)


def _committed(kafka: str, group: str, topic: str) -> int:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)
