"""Aggregates: rebuild from events, decide on a command, emit new events; and the domain's refusals.

Plain Python, no I/O: the domain modules build on this and nothing here touches a database. A command method
checks the rules against the current state and calls ``self.record(event)``; ``when(event)`` changes the
state and is the only place that does. ``juwei.repository`` loads an aggregate from its stream and saves
what it recorded; ``juwei.unit_of_work`` does that for one command.

A command the domain refuses raises one of the refusals below. Each names the rule it breaks (``code``); the
kind of refusal says how the caller may answer, and the edge maps it to HTTP once (``juwei.problems``):

- ``Invalid``: the command asks for what the rules never allow (a floor the building lacks, an unknown
  zone, a pool larger than the tube holds);
- ``NotFound``: it names something that is not there (a household never registered);
- ``Conflict``: the present state forbids it (already registered, already resulted, a full group);
- ``NotPermitted``: the rules name who may do it, and it is someone else (only the building's logistics
  leader collects a medical-insurance card).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Self

from juwei.events import DomainEvent


class DomainRuleViolation(Exception):
    """A command breaks one of the domain's rules; ``code`` names the rule, ``details`` say more (every bad
    item of a batch, say) and travel with the problem the caller gets."""

    default_code: ClassVar[str] = "rule-violated"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.details = details


class Invalid(DomainRuleViolation):
    """The command asks for what the rules never allow, whatever the state."""


class NotFound(DomainRuleViolation):
    """The command names something that is not there."""

    default_code = "not-found"


class Conflict(DomainRuleViolation):
    """The present state forbids the command (it may be allowed later, or was done already)."""


class NotPermitted(DomainRuleViolation):
    """The rules name who may do this, and the person acting is not among them."""


class Aggregate:
    """Base of the domain's aggregates. ``stream_prefix`` names the stream: ``<prefix>-<id>``."""

    stream_prefix: ClassVar[str] = ""
    # Keep a snapshot every this many events (0: never); long streams load from the latest one.
    snapshot_every: ClassVar[int] = 0

    def __init__(self, id: str) -> None:
        self.id = id
        self.version = 0
        self._pending: list[DomainEvent] = []

    @classmethod
    def stream_id(cls, id: str) -> str:
        return f"{cls.stream_prefix}-{id}"

    @property
    def exists(self) -> bool:
        return self.version > 0 or bool(self._pending)

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        """What a command is told that names this kind of aggregate by an id no stream holds."""
        return NotFound(f"{cls.__name__.lower()} {id} does not exist")

    def record(self, event: DomainEvent) -> None:
        self.when(event)
        self._pending.append(event)

    def when(self, event: DomainEvent) -> None:
        """Change state from one event; dispatches to ``on_<EventClass>`` when defined."""
        handler = getattr(self, f"on_{type(event).__name__}", None)
        if handler is not None:
            handler(event)

    def replay(self, events: Iterable[DomainEvent]) -> Self:
        for event in events:
            self.when(event)
            self.version += 1
        return self

    def pending(self) -> list[DomainEvent]:
        return list(self._pending)

    def mark_saved(self) -> None:
        self.version += len(self._pending)
        self._pending.clear()

    def snapshot_state(self) -> dict[str, Any]:
        """JSON-able state for a snapshot; the default takes the public attributes."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in ("id", "version")}

    def restore_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
