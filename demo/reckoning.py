"""The reckoning: what each building's group received, counted at the sinks against what the events imply, and
the day in figures."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table

from demo.day import Day, Outcome
from demo.ledger import GroupAccount, account, composed_for, directory_of, implied


class Reckoning(Day):
    """Counting at the sinks."""

    def count_at_the_sinks(self) -> None:
        assert self.outcome is not None and self.sinks is not None
        with self.phase("every event through Kafka to notify"):
            self.suite.settle(self.options.kafka, timeout=300)
        residents_feed = self.suite.feed("residents", self.c)
        feeds = [
            *residents_feed,
            *self.suite.feed("testing", self.c),
            *self.suite.feed("supplies", self.c),
            *self.suite.feed("notify", self.c),
        ]
        directory = directory_of(self.suite, self.c, residents_feed)
        wanted = implied(feeds, directory)
        composed = {b: composed_for(self.suite, self.c, b) for b in directory.buildings}
        total = sum(len(composed[b]) * len(self.sinks.channels_of(b)) for b in composed)
        sinks = self.sinks

        def accounts() -> list[GroupAccount]:
            return [
                GroupAccount(
                    b,
                    wanted[b],
                    composed[b],
                    [account(kind, texts, composed[b]) for kind, texts in sinks.received(b).items()],
                )
                for b in directory.buildings
            ]

        with self.phase("messages at the building groups' sinks", total) as advance:
            deadline = time.monotonic() + self.options.delivery_timeout
            shown = 0
            while True:
                groups = accounts()
                arrived = sum(min(ch.received[m.message], 1) for g in groups for ch in g.channels for m in g.composed)
                advance(arrived - shown)
                shown = arrived
                stuck = self.suite.get(
                    "notify", self.path("/deliveries"), params={"status": "dead,uncertain"}, key=self.key("staff")
                )["deliveries"]
                if arrived >= total or stuck or time.monotonic() > deadline:
                    break
                time.sleep(1.0)
        # What arrived late (a rate-limit window) or twice would show now: count once more after a breath.
        time.sleep(1.5)
        self.outcome.groups = accounts()
        self.outcome.texts = {b: sinks.received(b) for b in directory.buildings}
        self.outcome.figures.update(
            messages=sum(len(v) for v in composed.values()),
            deliveries=total,
            texts=sum(ch.texts for g in self.outcome.groups for ch in g.channels),
            digests=sum(ch.digests for g in self.outcome.groups for ch in g.channels),
            stuck=len(stuck),
        )


def summary(outcome: Outcome, console: Console) -> None:
    """The day in figures, then what each building's group received."""
    f, t = outcome.figures, outcome.timings
    day = Table(title=f"Compound {outcome.compound.compound}: the day in figures", title_justify="left")
    day.add_column("")
    day.add_column("what happened")
    day.add_column("seconds", justify="right")

    def row(what: str, text: str, *phases: str) -> None:
        seconds = sum(v for k, v in t.items() if any(k.startswith(p) for p in phases))
        day.add_row(what, text, f"{seconds:.1f}" if phases else "")

    row(
        "register",
        f"{f['buildings']} buildings, {f['households']:,} households, {f['residents']:,} residents "
        f"({f['elderly']:,} elderly, {f['regular_medication']:,} on regular medication, {f['bedridden']} bedridden, "
        f"{f['infants']} infants, {f['pregnant']} pregnant); {f['staff']} staff, {f['volunteers']} volunteers",
        "register",
        "staff",
        "volunteers",
        "API keys",
    )
    row("the bus", "testing, supplies and notify built their registers from juwei.residents", "the register")
    row("channels", f"{f['channels']} channels attached (local WeCom / DingTalk bots and e-mail lists)", "channels")
    row(
        "testing",
        f"{f['points']} points, {f['calls']} floor calls, {f['tubes']} tubes, {f['samples']:,} samples "
        f"({f['door_to_door']} at home); {f['tested']:,} tested, {f['listed_missing']} listed missing "
        f"in {f['households_listed']} households",
        "sampling",
        "PCR",
        "the lab",
    )
    row(
        "the case",
        f"case {outcome.case} in building {outcome.case_building}: {f['zone']['zone']} zone; "
        "transferred; disinfected with a photo",
        "building",
        "transfer",
    )
    row(
        "supplies",
        f"both shifts called in {f['both_shifts']} buildings; {f['delivery_failures']} failed "
        "deliveries followed up; donated masks to the sealed building",
        "government",
        "deliveries",
        "follow-ups",
        "donated",
    )
    reason = f["refusal_reason"].split(":")[0]
    row(
        "donations",
        f"accepted {', '.join(f['donation_accepted'])}; refused {', '.join(f['donation_refused'])} "
        f"({reason}); both on the public ledger",
        "donations",
    )
    row("medicine", f"{f['cards']} cards out and back, each with its owner", "medicine")
    row(
        "questions",
        f"{f['questions']} questions, {f['question_groups']} groups, {len(f['answers'])} answered",
        "residents' questions",
    )
    row(
        "notify",
        f"{f['messages']} messages to groups → {f['deliveries']:,} deliveries, {f['texts']:,} texts at "
        f"the sinks ({f['digests']} digests under the platforms' rate limits)",
        "every event",
        "messages",
    )
    row("in all", f"{f['requests']:,} HTTP requests", "the whole day")
    console.print(day)

    groups = Table(title="What each building's group received", title_justify="left")
    for column, justify in (
        ("building", "right"),
        ("implied", "right"),
        ("composed", "right"),
        ("chat", "right"),
        ("e-mail", "right"),
        ("what", "left"),
        ("", "left"),
    ):
        groups.add_column(column, justify=justify)  # type: ignore[arg-type]
    for g in outcome.groups:
        by = {ch.channel: ch for ch in g.channels}
        chat = next((ch for k, ch in by.items() if k != "email"), None)
        mail = by.get("email")

        def cell(ch: Any) -> str:
            if ch is None:
                return "—"
            got = sum(ch.received.values())
            return f"{got}" + (f" ({ch.digests} digest{'s' if ch.digests > 1 else ''})" if ch.digests else "")

        mark = "[green]✓[/]" if g.ok else "[red]✗ " + "; ".join(g.problems())[:120] + "[/]"
        groups.add_row(
            g.building,
            str(sum(g.implied.values())),
            str(len(g.composed)),
            f"{chat.channel if chat else ''} {cell(chat)}".strip(),
            cell(mail),
            g.kinds(),
            mark,
        )
    console.print(groups)
    verdict = (
        "[green]every group received exactly what concerns it, once[/]"
        if outcome.ok
        else "[red]some groups did not receive what the events imply (see above)[/]"
    )
    console.print(verdict)
