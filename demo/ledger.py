"""What each building group should have received, what notify composed for it, and what its channels got.

Three independent accounts per building:

- **implied**: the events the services published (their ``/events`` feeds), read with the rules the
  committee agreed for the groups (the table below: which events a group hears of);
- **composed**: the messages notify lists for the building (``GET /compounds/{c}/messages?building=``);
- **received**: what the local sinks accepted for the building's channels, each text traced back to the
  message it carries. A digest (sent when a platform's rate limit is reached) carries several messages:
  it is taken apart line by line.

A group is right when the three agree, and no channel got a message twice.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from demo.api import Suite

# How residents read each kind of message in the summary.
KINDS = {
    "round_scheduled": "round",
    "unit_called": "calls",
    "testing_progress": "sampled",
    "case_confirmed": "case",
    "zone_status_changed": "zone",
    "transfer_scheduled": "transfer",
    "case_transferred": "transfer",
    "disinfection_recorded": "disinfection",
    "batch_arrived": "supplies",
    "batch_dispatched": "supplies",
    "both_shifts_called": "supplies",
    "delivery_progress": "supplies",
    "building_delivered": "supplies",
    "donation_ledger": "donations",
    "donation_allocated": "donations",
    "answer": "answers",
    "announcement": "notices",
}

_MARK = re.compile(r"^(【紧急】|【重要】|\[URGENT\] )")
# The headings of a digest, in Chinese and in English (notify's words).
_DIGEST = (
    re.compile(r"^【通知汇总】以下 (\d+) 条通知合并发送$"),
    re.compile(r"^\[Digest\] (\d+) notices sent together$"),
)


def local(value: str | None) -> str:
    return str(value).split(":", 1)[-1]


# --- implied: the events, read with the groups' rules ----------------------------------------------------

Rule = Callable[[dict[str, Any], "Directory"], list[tuple[str, list[str]]]]


@dataclass
class Directory:
    """The compound as the rules need it: its buildings (with a group) and which building each household is in."""

    buildings: list[str]
    households: dict[str, str] = field(default_factory=dict)


def _one(template: str) -> Rule:
    return lambda data, _d: [(template, [local(data["building"])])]


def _every(template: str) -> Rule:
    return lambda _data, d: [(template, list(d.buildings))]


def _zone(data: dict[str, Any], d: Directory) -> list[tuple[str, list[str]]]:
    if data.get("scope") == "building" and data.get("building"):
        return [("zone_status_changed", [local(data["building"])])]
    return [("zone_status_changed", list(d.buildings))]


def _arrived(data: dict[str, Any], d: Directory) -> list[tuple[str, list[str]]]:
    targets = {local(b) for b in data.get("buildings", [])}
    targets |= {d.households[local(h)] for h in data.get("households", []) if local(h) in d.households}
    return [("batch_arrived", sorted(targets))] if targets else []


def _dispatched(data: dict[str, Any], _d: Directory) -> list[tuple[str, list[str]]]:
    return [("batch_dispatched", [local(b)]) for b in sorted(set(data["buildings"]))]


def _shifts(data: dict[str, Any], _d: Directory) -> list[tuple[str, list[str]]]:
    return [("both_shifts_called", [local(data["building"])])] if data["both"] else []


def _halfway(data: dict[str, Any], _d: Directory) -> list[tuple[str, list[str]]]:
    households = data["households"]
    if households >= 4 and data["delivered"] == (households + 1) // 2:
        return [("delivery_progress", [local(data["building"])])]
    return []


RULES: dict[str, Rule] = {
    "juwei.residents.ZoneStatusChanged.v1": _zone,
    "juwei.testing.RoundScheduled.v1": _every("round_scheduled"),
    "juwei.testing.UnitCalled.v1": _one("unit_called"),
    "juwei.testing.BuildingTestingProgress.v1": _one("testing_progress"),
    "juwei.testing.CaseConfirmed.v1": _one("case_confirmed"),
    "juwei.testing.CaseConfirmed.v2": _one("case_confirmed"),
    "juwei.testing.TransferScheduled.v1": _one("transfer_scheduled"),
    "juwei.testing.CaseTransferred.v1": _one("case_transferred"),
    "juwei.testing.DisinfectionRecorded.v1": _one("disinfection_recorded"),
    "juwei.supplies.BatchArrived.v1": _arrived,
    "juwei.supplies.BatchDispatched.v1": _dispatched,
    "juwei.supplies.ShiftCalled.v1": _shifts,
    "juwei.supplies.DeliveryConfirmed.v1": _halfway,
    "juwei.supplies.BuildingDelivered.v1": _one("building_delivered"),
    "juwei.supplies.DonationAccepted.v1": _every("donation_ledger"),
    "juwei.supplies.DonationRefused.v1": _every("donation_ledger"),
    "juwei.supplies.DonationAllocated.v1": _every("donation_allocated"),
    "juwei.notify.QuestionsAnswered.v1": lambda data, _d: [("answer", sorted({local(b) for b in data["buildings"]}))],
}


def implied(feeds: Iterable[dict[str, Any]], directory: Directory) -> dict[str, Counter[str]]:
    """building → template → how many messages the events call for."""
    wanted: dict[str, Counter[str]] = {b: Counter() for b in directory.buildings}
    for event in feeds:
        rule = RULES.get(event["type"])
        if rule is None:
            continue
        for template, buildings in rule(event["data"], directory):
            for building in buildings:
                if building in wanted:
                    wanted[building][template] += 1
    return wanted


# --- received: sink texts traced back to messages --------------------------------------------------------


@dataclass(frozen=True)
class Composed:
    """A message notify composed for a building, as the building's channels should show it (Chinese)."""

    message: str
    template: str
    title: str
    body: str


@dataclass
class ChannelAccount:
    channel: str  # "wecom", "dingtalk", "email"
    texts: int = 0
    digests: int = 0
    received: Counter[str] = field(default_factory=Counter)  # message id → times received
    unknown: list[str] = field(default_factory=list)  # texts (or digest lines) that match no message


def _match(rest: str, candidates: list[Composed], separator: str, taken: Counter[str]) -> tuple[Composed | None, int]:
    """The message whose digest line ``rest`` starts with, and how much of ``rest`` that line takes.

    Two messages may read the same (two batches dispatched on one day): the one received fewer times wins.
    """
    best: tuple[Composed | None, int] = (None, 0)
    for message in candidates:
        for line in (f"{message.title}{separator}{message.body}", message.title):
            if not rest.startswith(line) or (len(rest) > len(line) and rest[len(line)] != "\n"):
                continue
            chosen = best[0]
            fewer = chosen is not None and taken[message.message] < taken[chosen.message]
            if len(line) > best[1] or (len(line) == best[1] and fewer):
                best = (message, len(line))
    return best


def notices(
    title: str, body: str, candidates: list[Composed], taken: Counter[str] | None = None
) -> tuple[list[Composed], list[str], bool]:
    """The messages one text carries: (found, unmatched parts, whether it was a digest).

    ``taken`` counts what the channel already received; it is updated with what this text carries.
    """
    taken = Counter() if taken is None else taken
    title = _MARK.sub("", title.strip())
    body = body.strip()
    for number, heading in enumerate(_DIGEST):
        counted = heading.match(title)
        if counted is None:
            continue
        separator = "：" if number == 0 else ": "
        found, unknown, rest = [], [], body
        for n in range(1, int(counted.group(1)) + 1):
            prefix = f"{n}. "
            if not rest.startswith(prefix):
                unknown.append(rest.split("\n", 1)[0])
                break
            message, length = _match(rest[len(prefix) :], candidates, separator, taken)
            if message is None:
                unknown.append(rest.split("\n", 1)[0])
                rest = rest.split("\n", 1)[1] if "\n" in rest else ""
                continue
            found.append(message)
            taken[message.message] += 1
            rest = rest[len(prefix) + length + 1 :]
        return found, unknown, True
    exact = [m for m in candidates if m.title == title and (m.body == body or (not m.body and body == title))]
    chosen = sorted(exact or [m for m in candidates if m.title == title], key=lambda m: taken[m.message])
    if not chosen:
        return [], [f"{title}\n{body}"[:200]], False
    taken[chosen[0].message] += 1
    return chosen[:1], [], False


def account(channel: str, texts: Iterable[tuple[str, str]], candidates: list[Composed]) -> ChannelAccount:
    """Trace every (title, body) a channel received back to ``candidates`` (the building's messages)."""
    made = ChannelAccount(channel)
    for title, body in texts:
        made.texts += 1
        _found, unknown, digest = notices(title, body, candidates, made.received)
        made.digests += digest
        made.unknown.extend(unknown)
    return made


# --- per building ----------------------------------------------------------------------------------------


@dataclass
class GroupAccount:
    building: str
    implied: Counter[str]
    composed: list[Composed]
    channels: list[ChannelAccount]

    @property
    def composed_templates(self) -> Counter[str]:
        return Counter(m.template for m in self.composed)

    def problems(self) -> list[str]:
        """Everything that is not exactly right, in words; empty when the group got what it should, once."""
        found = []
        if self.composed_templates != self.implied:
            found.append(f"composed {dict(self.composed_templates)} but the events imply {dict(self.implied)}")
        ids = Counter(m.message for m in self.composed)
        if not self.channels:
            found.append("no channel")
        for channel in self.channels:
            if channel.received != ids:
                missing = sorted((ids - channel.received).elements())
                doubled = sorted(m for m, n in channel.received.items() if n > 1)
                extra = sorted(set(channel.received) - set(ids))  # not a message of this building at all
                found.append(f"{channel.channel}: missing {len(missing)}, doubled {len(doubled)}, extra {len(extra)}")
            if channel.unknown:
                found.append(f"{channel.channel}: {len(channel.unknown)} texts match no message: {channel.unknown[:2]}")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems()

    def kinds(self) -> str:
        counted = Counter(KINDS.get(m.template, m.template) for m in self.composed)
        order = list(dict.fromkeys(KINDS.values()))
        return " · ".join(
            f"{kind} {counted[kind]}" if counted[kind] > 1 else kind
            for kind in sorted(counted, key=lambda k: order.index(k) if k in order else 99)
        )


def composed_for(suite: Suite, compound: str, building: str) -> list[Composed]:
    listed = suite.get("notify", f"/compounds/{compound}/messages", params={"building": building, "limit": 500})
    return [Composed(m["message"], m["template"], m["title"], m["body"]) for m in listed["messages"]]


def directory_of(suite: Suite, compound: str, residents_feed: list[dict[str, Any]]) -> Directory:
    groups = suite.get("notify", f"/compounds/{compound}/groups")["groups"]
    households = {
        local(e["data"]["household"]): local(e["data"]["building"])
        for e in residents_feed
        if e["type"] == "juwei.residents.HouseholdRegistered.v1"
    }
    ordered = sorted(
        (g["building"] for g in groups), key=lambda b: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", b)]
    )
    return Directory(ordered, households)
