"""One day of the seed compound, through the four services' public HTTP APIs.

The committee registers the compound (the residents sheet, staff coverage, each building's information
officer, logistics group and sampling volunteer); the building groups get their channels; a PCR round
runs at the sampling points, floor by floor, pooled ten to a tube, with one positive pool re-tested one by
one down to a confirmed case, whose building residents seals on hearing of it over Kafka; the case is
transferred and the building disinfected, with a photo; a government batch large enough to call both
logistics shifts is delivered floor by floor, the few failures followed up; thirty elderly residents'
medicine is bought with their medical-insurance cards, every card accounted for on its way out and back;
a donation of masks is accepted and one of meals refused; residents' questions from several buildings are
grouped and answered. At the end, what each building's group received is counted at the sinks and checked
against what the events imply (``demo.ledger``).

One module per part of the day: ``day`` (options, outcome, plumbing), ``registration``, ``sampling``,
``provisions``, ``questions`` and ``reckoning``.
"""

from __future__ import annotations

import time
from datetime import date

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from demo.api import DemoError
from demo.compound import Size, make_compound
from demo.day import KEYS_FIRST, ROLE_KEYS, Options, Outcome
from demo.provisions import Provisions
from demo.questions import Questions
from demo.reckoning import Reckoning, summary
from demo.registration import Registration
from demo.sampling import Sampling


class SeedDay(Registration, Sampling, Provisions, Questions, Reckoning):
    """One day of the seed compound, phase after phase."""

    def run(self) -> Outcome:
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        started = time.perf_counter()
        try:
            with Progress(*columns, console=self.console) as self.progress:
                self.preflight()
                self.register()
                self.catch_up()
                self.attach_channels()
                self.test_everyone()
                self.the_case()
                self.donations()
                self.supplies()
                self.medicine_run()
                self.questions()
                self.count_at_the_sinks()
        finally:
            if self.sinks is not None:
                self.sinks.stop()
            self.suite.close()
        assert self.outcome is not None
        self.outcome.timings["the whole day"] = time.perf_counter() - started
        self.outcome.figures["requests"] = self.suite.requests
        return self.outcome

    def preflight(self) -> None:
        down = {name: why for name, why in self.suite.healthy().items() if why}
        if down:
            raise DemoError(
                "not answering: "
                + ", ".join(f"{n} ({w})" for n, w in down.items())
                + " — start the suite with `juwei run --detach` (or the compose stack) first"
            )
        self.today = date.fromisoformat(self.suite.get("residents", self.path("/zones"))["today"])
        known = self.suite.get("residents", self.path("/buildings"))["buildings"]
        if known:
            raise DemoError(
                f"compound {self.c} already has {len(known)} buildings: run the demo on a new compound "
                f"(--compound {self.c}x) or on a fresh data folder"
            )
        compound = make_compound(self.c, self.options.size, seed=self.options.seed, today=self.today)
        self.outcome = Outcome(compound)
        self.outcome.keys = {who: "operator" for who in ROLE_KEYS}
        with self.phase("API keys for the committee and the subdistrict"):
            self.role_keys(KEYS_FIRST)
        self.say(
            f"[bold]{self.c}[/]: {len(compound.buildings)} buildings, {len(compound.households):,} households, "
            f"{len(compound.people):,} residents; today is {self.today.isoformat()} (the services' date)"
        )


def run_demo(options: Options, console: Console | None = None) -> Outcome:
    console = console or Console(stderr=True)
    outcome = SeedDay(options, console).run()
    out = Console()
    if not out.is_terminal:
        out = Console(width=150)  # a log file or a pipe: room for the tables
    summary(outcome, out)
    return outcome


__all__ = ["DemoError", "Options", "Outcome", "Size", "run_demo"]
