"""A periodic job can be woken: it runs at once, and only after the transaction that woke it has committed."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from juwei.service import Runtime
from tests.kernel.harness import runtime as make_runtime
from tests.kernel.harness import wait_for
from tests.kernel.sample import definitions

HOUR = 3600.0


class Counting:
    """A job that counts its runs and, when asked, what the database held when it ran."""

    def __init__(self) -> None:
        self.runs = 0
        self.seen: list[int] = []
        self.ran = threading.Event()

    def count_rows(self, runtime: Runtime) -> None:
        self.runs += 1
        with runtime.database.reading() as session:
            self.seen.append(session.execute(text("SELECT count(*) FROM woken_rows")).scalar_one())
        self.ran.set()


@pytest.fixture
def woken(tmp_path: Path):
    job = Counting()
    desk, _ = definitions("wake")
    made = make_runtime(replace(desk, periodic=[(HOUR, job.count_rows)]), f"sqlite:///{tmp_path / 'wake.db'}")
    with made.database.unit_of_work() as session:
        session.execute(text("CREATE TABLE woken_rows (id INTEGER PRIMARY KEY)"))
    made.start_background(relay=False, consumers=False)
    yield made, job
    made.stop()


def test_a_woken_job_runs_without_waiting_for_its_tick(woken) -> None:
    runtime, job = woken
    assert job.runs == 0  # an hour's tick: nothing yet
    runtime.wake("count_rows")
    wait_for(lambda: job.runs >= 1, timeout=10, what="the woken job to run")
    runtime.wake("no such job")  # harmless


def test_a_job_woken_after_commit_sees_the_rows_and_a_rolled_back_one_is_not_woken(woken) -> None:
    runtime, job = woken
    with pytest.raises(RuntimeError), runtime.database.unit_of_work() as session:
        session.execute(text("INSERT INTO woken_rows (id) VALUES (1)"))
        runtime.wake_after_commit(session, "count_rows")
        raise RuntimeError("the unit of work fails")
    assert not job.ran.wait(0.5)

    with runtime.database.unit_of_work() as session:
        session.execute(text("INSERT INTO woken_rows (id) VALUES (2)"))
        runtime.wake_after_commit(session, "count_rows")
        runtime.wake_after_commit(session, "count_rows")  # asked twice in one unit of work
        assert not job.ran.wait(0.3)  # not before the commit
    # Waits for what the job saw, not its run count: the count goes up before the job reads the table.
    wait_for(lambda: len(job.seen) >= 1, timeout=10, what="the job woken by the commit")
    assert job.seen[0] == 1  # it saw the committed row


def test_stop_ends_a_job_waiting_for_its_tick_and_runs_the_stop_hooks(tmp_path: Path) -> None:
    job = Counting()
    desk, _ = definitions("wakestop")
    made = make_runtime(replace(desk, periodic=[(HOUR, job.count_rows)]), f"sqlite:///{tmp_path / 'stop.db'}")
    stopped: list[bool] = []
    made.on_stop.append(lambda: stopped.append(True))
    made.start_background(relay=False, consumers=False)
    made.stop()
    assert stopped == [True] and job.runs == 0
