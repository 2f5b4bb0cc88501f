"""The demo day's options, its outcome, and what every phase of it works with (the suite, the keys, progress)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rich.console import Console
from rich.progress import Progress

from demo.api import Suite
from demo.compound import Compound, Size
from demo.ledger import GroupAccount
from demo.sinks import GroupSinks

ROLE_KEYS = {
    "staff": ("committee-staff", "demo: the committee"),
    "officer": ("information-officer", "demo: the information officers"),
    "logistics": ("logistics-volunteer", "demo: the logistics groups"),
    "subdistrict": ("subdistrict-staff", "demo: the subdistrict office"),
}


# Keys are issued to people of the register: the staff key before anything is registered (to the secretary,
# registered first), the volunteers' keys once they are enlisted. One key stands for all officers (or all
# logistics groups) of the demo, so it names every building; a real officer's key names their own.
KEYS_FIRST = ("staff", "subdistrict")


@dataclass
class Options:
    urls: dict[str, str]
    key: str
    compound: str = "c1"
    size: Size = field(default_factory=Size)
    seed: int = 2022
    kafka: str | None = None  # for "has everyone caught up?"; None: the services' /status only
    role_keys: str = "auto"  # auto | cli | operator
    cli_env: dict[str, str] | None = None  # the suite's settings, for `juwei keys create` (default: ours)
    sink_host: str = "127.0.0.1"
    sink_advertised: str | None = None
    workers: int = 4
    delivery_timeout: float = 420.0


@dataclass
class Outcome:
    """What the day did: figures for the summary and for the end-to-end test's assertions."""

    compound: Compound
    round: str = ""
    case: str = ""
    case_building: str = ""
    absent: list[str] = field(default_factory=list)
    households_unaccounted: list[str] = field(default_factory=list)
    batch: str = ""
    donation_batch: str = ""
    shift_calls: list[dict[str, Any]] = field(default_factory=list)
    cards: list[str] = field(default_factory=list)
    groups: list[GroupAccount] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # which key acted for whom ("cli" or "operator")
    texts: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)  # building → channel → texts

    @property
    def ok(self) -> bool:
        return bool(self.groups) and all(g.ok for g in self.groups) and not self.households_unaccounted


class Day:
    """The day's plumbing: the suite's clients, the role keys, the compound's paths and the progress display."""

    def __init__(self, options: Options, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console(stderr=True)
        self.suite = Suite(options.urls, options.key)
        self.rng = random.Random(options.seed)
        self.c = options.compound
        self.keys: dict[str, str] = {}
        self.sinks: GroupSinks | None = None
        self.progress: Progress | None = None
        self.outcome: Outcome | None = None
        self.today = date.today()

    def path(self, tail: str) -> str:
        return f"/compounds/{self.c}{tail}"

    def key(self, who: str) -> str:
        return self.keys.get(who, self.options.key)

    def say(self, text: str) -> None:
        self.console.print(text)

    @contextmanager
    def phase(self, name: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        assert self.progress is not None and self.outcome is not None
        task = self.progress.add_task(name, total=total)
        started = time.perf_counter()

        def advance(n: int = 1) -> None:
            assert self.progress is not None
            self.progress.advance(task, n)

        yield advance
        elapsed = time.perf_counter() - started
        self.outcome.timings[name] = self.outcome.timings.get(name, 0.0) + elapsed
        self.progress.update(
            task, total=total or 1, completed=total or 1, description=f"[green]✓[/] {name} [dim]({elapsed:.1f} s)[/]"
        )
