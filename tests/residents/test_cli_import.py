"""`juwei residents import` from the command line: the HTTP upload's use case, with progress on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from juwei.store import events_table
from services.residents import importing, views
from tests.conftest import both_databases
from tests.kernel.harness import ROOT
from tests.residents.conftest import TODAY, make_residents
from tests.residents.test_import import as_csv, buildings_rows, compound_rows


def _juwei(*args: str, url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), JUWEI_RESIDENTS_DATABASE_URL=url, JUWEI_DATA_DIR=str(data_dir),
               JUWEI_TODAY=TODAY.isoformat(), JUWEI_KAFKA_BOOTSTRAP="127.0.0.1:1")  # fmt: skip
    return subprocess.run([sys.executable, "-m", "juwei.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def _lines(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Every line of stdout, each a JSON object (json.loads fails the test on any other line)."""
    assert done.stdout.endswith("\n"), done.stdout
    return [json.loads(line) for line in done.stdout.splitlines()]


def _progress_rises_to(lines: list[dict[str, Any]], stage: str, total: int) -> dict[str, Any]:
    """The progress lines count up to ``total`` and the last line is the summary, which is returned."""
    *progress, last = lines
    assert progress and all(line["stage"] == stage and line["total"] == total for line in progress), progress
    done = [line["done"] for line in progress]
    assert done == sorted(done) and done[0] == 0 and done[-1] == total, done
    assert progress[-1]["seconds_left"] == 0
    assert set(last) == {"summary", "seconds"} and last["seconds"] >= 0, last
    return last["summary"]


@both_databases
def test_an_import_from_the_command_line_reports_progress_and_its_summary(new_database, tmp_path: Path) -> None:
    url = new_database("residents")
    runtime = make_residents(url, tmp_path)
    buildings, people = tmp_path / "buildings.csv", tmp_path / "residents.csv"
    buildings.write_bytes(as_csv(buildings_rows(3), importing.BUILDING_COLUMNS))
    rows = compound_rows(3)
    people.write_bytes(as_csv(rows))

    done = _juwei("residents", "import", "buildings", str(buildings), "--compound", "c1", "--json", url=url,
                  data_dir=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = _progress_rises_to(_lines(done), "import buildings", 3)
    assert summary["compound"] == "c1" and summary["buildings"]["created"] == 3
    with runtime.database.reading() as session:
        head = runtime.store.head(session)

    done = _juwei("residents", "import", "residents", str(people), "--compound", "c1", "--json", "--actor", "ops",
                  url=url, data_dir=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = _progress_rises_to(_lines(done), "import residents", len(rows))
    assert summary["rows"] == len(rows) and summary["residents"]["created"] == len(rows)
    with runtime.database.reading() as session:
        assert session.execute(select(func.count()).select_from(views.residents)).scalar() == len(rows)
        actors = session.execute(select(events_table.c.actor).distinct().where(events_table.c.position > head))
        assert set(actors.scalars()) == {"cli:ops"}
    assert "\u674e" not in done.stderr  # no resident's name in the logs

    # Not a terminal and no --json: one plain line, no escape codes; the same file again changes nothing.
    again = _juwei("residents", "import", "residents", str(people), "--compound", "c1", url=url, data_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("\n") == 1 and "\x1b" not in again.stdout, again.stdout
    assert again.stdout.startswith(f"imported {len(rows)} rows of residents.csv into c1: 0 events")

    # A bad row: nothing is imported, and --json says why on stdout (exit code 1).
    bad = tmp_path / "bad.csv"
    bad.write_bytes(as_csv([dict(rows[0], building="b99", household="99-0101", resident="r-new")]))
    refused = _juwei("residents", "import", "residents", str(bad), "--compound", "c1", "--json", url=url,
                     data_dir=tmp_path)  # fmt: skip
    assert refused.returncode == 1, refused.stderr
    *started, problem = _lines(refused)
    assert all(line["stage"] == "import residents" and line["done"] == 0 for line in started), started
    assert problem["problem"]["code"] == "import-rejected"
    assert [(e["line"], e["code"]) for e in problem["problem"]["errors"]] == [(2, "building-unknown")]
    runtime.database.dispose()
