"""Progress of a long command (replay, retention, an import, images, a bundle), told three ways.

- On a terminal: a rich bar per stage on stderr, with counts and the time left.
- With ``--json``: one JSON object a line on stdout, ``{"stage", "done", "total", "seconds_left"}``, then a
  final ``{"summary": {...}, "seconds": s}``; scripts read stdout, logs stay on stderr.
- Otherwise (a pipe, a cron job): nothing while it runs, then one plain final line on stdout.

The long loops only call a ``Stage`` (``advance`` or ``update``); it writes at most every ``interval``
seconds, plus each stage's start and end, so a loop of millions of events pays one clock read a call.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bars

# How a long loop reports: (done so far, total). Kernel code takes one of these, never a ``Progress``.
Report = Callable[[int, int], None]
INTERVAL = 0.25  # seconds between two reports of a stage: four a second at most


class Stage:
    """One counted piece of work: events replayed, services retired, rows imported, images built."""

    def __init__(self, progress: Progress, name: str, total: int, task: TaskID | None) -> None:
        self.progress = progress
        self.name = name
        self.total = max(total, 0)
        self.done = 0
        self.task = task
        self.started = progress.clock()
        self._shown_at: float | None = None

    def advance(self, step: int = 1) -> None:
        self.update(self.done + step)

    def update(self, done: int, total: int | None = None) -> None:
        """Set how much is done (and the total, when it became known or grew)."""
        grown = total is not None and total != self.total
        if total is not None:
            self.total = max(total, 0)
        self.done = max(done, 0)
        self.total = max(self.total, self.done)  # a count taken before the work never reads "120 of 100"
        now = self.progress.clock()
        shown_lately = self._shown_at is not None and now - self._shown_at < self.progress.interval
        if shown_lately and not grown and self.done < self.total:
            return
        self._shown_at = now
        self.progress._show(self, now)

    def __call__(self, done: int, total: int) -> None:
        """A ``Report``: what the kernel's loops call."""
        self.update(done, total)

    def seconds_left(self, now: float) -> float | None:
        if self.done >= self.total:
            return 0.0
        if self.done == 0:
            return None
        elapsed = now - self.started
        return round(elapsed / self.done * (self.total - self.done), 1)


class Progress:
    """The reporter of one command run: ``with Progress(as_json=...) as progress: stage = progress.stage(...)``."""

    def __init__(
        self,
        *,
        as_json: bool = False,
        out: TextIO | None = None,
        console: Console | None = None,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.as_json = as_json
        self.out = out or sys.stdout
        self.console = console or Console(stderr=True)
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.stages: list[Stage] = []
        # A bar only for a person watching; a pipe or a log file gets no escape codes.
        self._bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.live = not as_json and self.console.is_terminal

    def __enter__(self) -> Progress:
        if self.live:
            self._bars.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.live:
            self._bars.stop()

    def stage(self, name: str, total: int | None = None) -> Stage:
        """Start a stage: shown at once (0 of ``total``), or at its first report when the total is not known yet."""
        task = self._bars.add_task(name, total=total) if self.live else None
        stage = Stage(self, name, total or 0, task)
        self.stages.append(stage)
        if total is not None:
            stage.update(0)
        return stage

    def steps(self, name: str, names: Sequence[str]) -> Iterator[str]:
        """Each of ``names`` in turn, counted as a stage of ``len(names)`` steps (images, bundle parts)."""
        stage = self.stage(name, len(names))
        for index, step in enumerate(names):
            self._describe(stage, f"{name}: {step}")
            yield step
            stage.update(index + 1)

    def finish(self, summary: dict[str, Any], line: str) -> None:
        """The end: the summary object with ``--json``, else ``line`` (plain text, no escape codes)."""
        if self.live:
            self._bars.stop()
            self.live = False
        if self.as_json:
            self._write({"summary": summary, "seconds": round(self.clock() - self.started, 3)})
        else:
            self.out.write(line.rstrip("\n") + "\n")
            self.out.flush()

    def _describe(self, stage: Stage, text: str) -> None:
        if self.live and stage.task is not None:
            self._bars.update(stage.task, description=text)

    def _show(self, stage: Stage, now: float) -> None:
        if self.as_json:
            self._write(
                {"stage": stage.name, "done": stage.done, "total": stage.total, "seconds_left": stage.seconds_left(now)}
            )
        elif self.live and stage.task is not None:
            self._bars.update(stage.task, completed=stage.done, total=stage.total)

    def _write(self, line: dict[str, Any]) -> None:
        self.out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        self.out.flush()  # a script reads each line as it comes
