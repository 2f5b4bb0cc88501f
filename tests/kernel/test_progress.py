"""Progress on long work: the reporter itself, and `juwei replay` and `juwei retention` in --json mode.

Images and bundles need a Docker engine, which these tests do not start: their step lists (what the bar
counts) go through the reporter here; the commands themselves run in tests/deploy.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from juwei import bundle
from juwei.images import PARTS, BuildSettings, build_steps
from juwei.progress import Progress
from juwei.repository import Repository
from juwei.retention import retention_table
from tests.conftest import both_databases
from tests.kernel.harness import ROOT, runtime
from tests.kernel.sample import Tally, definitions


def _juwei(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "juwei.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), JUWEI_KAFKA_BOOTSTRAP="127.0.0.1:1", **env),
                          timeout=300)  # fmt: skip


def _lines(text: str) -> list[dict[str, Any]]:
    """Every line of stdout, each a JSON object (json.loads fails the test on any other line)."""
    assert text.endswith("\n"), text
    return [json.loads(line) for line in text.splitlines()]


def _summary(lines: list[dict[str, Any]], stages: dict[str, int]) -> dict[str, Any]:
    """Each stage's lines count up from 0 to its total; the last line is the summary, which is returned."""
    *progress, last = lines
    assert [line["stage"] for line in progress if line["done"] == 0] == list(stages), progress
    for stage, total in stages.items():
        done = [line["done"] for line in progress if line["stage"] == stage]
        assert done == sorted(done) and done[0] == 0 and done[-1] == total, (stage, done)
        assert {line["total"] for line in progress if line["stage"] == stage} == {total}
        assert [line["seconds_left"] for line in progress if line["stage"] == stage][-1] == 0
    assert set(last) == {"summary", "seconds"} and last["seconds"] >= 0, last
    return last["summary"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_reporter_writes_a_few_lines_a_second_and_always_the_last() -> None:
    out, clock = io.StringIO(), Clock()
    with Progress(as_json=True, out=out, clock=clock, interval=0.25) as progress:
        stage = progress.stage("replay", 1000)
        for done in range(1, 1001):
            clock.now += 0.001  # a second for the thousand: four lines at most, then the last
            stage.update(done, 1000)
        progress.finish({"events": 1000}, "replayed 1000 events")
    lines = _lines(out.getvalue())
    assert 3 <= len(lines) <= 8, lines
    assert lines[0] == {"stage": "replay", "done": 0, "total": 1000, "seconds_left": None}
    assert lines[-2] == {"stage": "replay", "done": 1000, "total": 1000, "seconds_left": 0.0}
    middle = lines[1]
    assert 0 < middle["done"] < 1000 and 0 < middle["seconds_left"] < 1.0  # the rate so far: 1 ms an event
    assert lines[-1] == {"summary": {"events": 1000}, "seconds": 1.0}


def test_without_json_and_without_a_terminal_only_the_plain_last_line_is_written() -> None:
    out = io.StringIO()
    with Progress(out=out) as progress:  # the console is stderr, which pytest captures: no terminal
        assert not progress.live
        for _step in progress.steps("images", ["juwei/base", "juwei/service"]):
            pass
        progress.finish({"images": 2}, "built 2 images")
    assert out.getvalue() == "built 2 images\n"


def test_the_image_and_bundle_steps_are_counted_to_the_end(tmp_path: Path) -> None:
    settings = BuildSettings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    images = build_steps(settings, PARTS)
    assert images[-len(PARTS) :] == list(settings.names().values()) and settings.base_tag in images
    with_wheels, without = bundle.create_steps(with_wheels=True), bundle.create_steps(with_wheels=False)
    assert len(with_wheels) == len(without) + 1
    out = io.StringIO()
    with Progress(as_json=True, out=out) as progress:
        seen = [*progress.steps("images", images), *progress.steps("bundle", with_wheels)]
        seen += list(progress.steps("bundle load", bundle.load_steps()))
        progress.finish({"images": len(images)}, "")
    assert seen == [*images, *with_wheels, *bundle.load_steps()]
    stages = {"images": len(images), "bundle": len(with_wheels), "bundle load": len(bundle.load_steps())}
    assert _summary(_lines(out.getvalue()), stages) == {"images": len(images)}


@both_databases
def test_replay_and_retention_report_progress_as_json_lines(new_database, suffix: str) -> None:
    desk, board = definitions(suffix)
    urls = {"desk": new_database("desk"), "board": new_database("board")}
    made = runtime(desk, urls["desk"])
    runtime(board, urls["board"]).database.dispose()
    repo = Repository(made.store, Tally)
    for i in range(40):
        with made.database.unit_of_work() as session:
            tally = repo.load(session, str(i % 4))
            tally.add(1)
            repo.save(session, tally, compound="c1")
    env = {f"JUWEI_{name.upper()}_{suffix.upper()}_DATABASE_URL": url for name, url in urls.items()}
    env["JUWEI_SAMPLE_SUFFIX"] = suffix

    replayed = _juwei("replay", "tests.kernel.sample:desk", "--json", env=env)
    assert replayed.returncode == 0, replayed.stderr
    summary = _summary(_lines(replayed.stdout), {"replay": 40})
    assert summary == {"service": desk.name, "projections": ["desk_totals"], "events": 40}

    plain = _juwei("replay", "tests.kernel.sample:desk", env=env)  # a pipe, not a terminal: one plain line
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("replayed 40 events into all projections in ") and plain.stdout.count("\n") == 1
    assert "\x1b" not in plain.stdout

    services = ["--service", "tests.kernel.sample:desk", "--service", "tests.kernel.sample:board"]
    retired = _juwei("retention", "c1", "--force", "--actor", "test", *services, "--json", env=env)
    assert retired.returncode == 0, retired.stderr
    summary = _summary(_lines(retired.stdout), {"retention": 2})
    assert summary == {"compound": "c1", "services": {"tests.kernel.sample:desk": {}, "tests.kernel.sample:board": {}}}
    with made.database.reading() as session:
        assert list(session.execute(select(retention_table.c.compound, retention_table.c.actor))) == [("c1", "test")]
    made.database.dispose()
