"""Urgent messages and the calls they oblige: plain Python, no I/O.

An urgent message (a case, a round or a floor called, a zone change: decided by the event's contract class)
reaches a building's group; a household marked as hearing no group must be called or visited by the
building's information officer. One ``CallList`` per (message, building) holds who is to be told, and who was.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.notify import CallsListed, HouseholdCalled
from contracts.residents import ZoneStatusChanged
from contracts.testing import CaseConfirmed, RoundScheduled, UnitCalled
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound
from juwei.events import DomainEvent

# The events whose messages no household may miss: a case in the building, a testing round announced or
# floors called down now, a zone that changes what residents may do. Supplies and progress can wait.
URGENT: frozenset[type[DomainEvent]] = frozenset({CaseConfirmed, RoundScheduled, UnitCalled, ZoneStatusChanged})
DEFAULT_DUE_MINUTES = 120
_IDS = uuid.UUID("1c0a7e55-5e1f-4c2a-9a57-63616c6c6973")  # namespace of call and call-list ids


def call_list_id(compound: str, message: str, building: str) -> str:
    """One call list per (message, building): derived, so a redelivered message finds its list."""
    return f"{compound}:l-{uuid.uuid5(_IDS, message + '|' + building).hex}"


def call_id(compound: str, call_list: str, household: str) -> str:
    """One call per household of a list; its local part is the id in the officer's ``done`` path."""
    return f"{compound}:{uuid.uuid5(_IDS, call_list + '|' + household).hex}"


# The call lists' refusals in Chinese, by code (``ServiceDefinition.wording``).
WORDING = {
    "call-unknown": "没有这个电话任务，或这一户不在这份名单上",
    "calls-listed": "这条紧急通知的电话名单已经列好",
    "no-household": "电话名单至少要有一户",
    "invalid-deadline": "电话任务的期限不能是负数",
}


def is_urgent(event: DomainEvent) -> bool:
    return type(event) in URGENT


def due_at(listed_at: datetime, minutes: int) -> datetime:
    """When a call not yet done becomes overdue for staff."""
    if minutes < 0:
        raise Invalid(f"a call's deadline cannot be negative ({minutes} minutes)", code="invalid-deadline")
    return listed_at + timedelta(minutes=minutes)


@dataclass(frozen=True)
class Marked:
    """A household marked as hearing no group, where it is."""

    household: str
    building: str
    floor: int
    room: int


def households_to_call(event: DomainEvent, building: str, marked: Iterable[Marked]) -> list[str]:
    """The marked households of ``building`` the message concerns: for floors called down, only those floors
    (and rooms, when the call names rooms); otherwise every marked household of the building."""
    chosen = [m for m in marked if m.building == building]
    if isinstance(event, UnitCalled):
        rooms = set(event.rooms)
        chosen = [
            m for m in chosen if event.lowest_floor <= m.floor <= event.highest_floor and (not rooms or m.room in rooms)
        ]
    return sorted({m.household for m in chosen})


class CallList(Aggregate):
    """The households one urgent message must reach by phone or at the door, in one building."""

    stream_prefix = "calls"

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        return NotFound(f"no call list {id}", code="call-unknown")

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.message: str | None = None
        self.building: str | None = None
        self.households: list[str] = []
        self.done: dict[str, str] = {}  # household → who marked it done

    def list(self, message: str, building: str, households: Iterable[str], due: datetime) -> None:
        if self.exists:
            raise Conflict(f"the calls of message {message} in {building} are listed already", code="calls-listed")
        chosen = sorted(set(households))
        if not chosen:
            raise Invalid("a call list needs at least one household", code="no-household")
        self.record(CallsListed(message=message, building=building, households=chosen, due_at=due))

    def mark_done(self, household: str, by: str) -> bool:
        """Record that the household was told; False (nothing recorded) when it was done already."""
        if self.message is None or self.building is None:
            raise self.unknown(self.id)
        if household not in self.households:
            raise NotFound(f"household {household} is not on this call list", code="call-unknown")
        if household in self.done:
            return False
        self.record(HouseholdCalled(message=self.message, building=self.building, household=household, by=by))
        return True

    def on_CallsListed(self, event: CallsListed) -> None:
        self.message, self.building, self.households = event.message, event.building, list(event.households)

    def on_HouseholdCalled(self, event: HouseholdCalled) -> None:
        self.done[event.household] = event.by
