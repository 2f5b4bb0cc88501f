"""Who may read which events of a service's feed, and what of each event they get.

A service says, for a caller, what its feed shows them as a ``FeedScope``: which compounds, event types and
buildings, optionally only events that name one of some values (a household its own household, a sampling
volunteer its point), and whether health data. ``FeedRefused`` says why a caller reads nothing at all; the
feed answers it with 403. The same scope serves ``GET /events`` and ``GET /events/stream``.

What a reader gets of an event (``Disclosure``): only the fields its class publishes (never a private one,
also in events written before a field became private), without the fields classed ``health`` unless the
scope grants health; for readers with health, sealed fields are opened with the service's vault and each
person whose health data is shown is audited (``juwei.audit``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from juwei.audit import SensitiveRead
from juwei.callers import Caller
from juwei.events import DomainEvent, Envelope, EventRegistry
from juwei.sealing import Sealing
from juwei.session import Session


class FeedRefused(Exception):
    """The caller reads nothing of this feed; the message says why (it becomes the 403's detail)."""


@dataclass(frozen=True)
class FeedScope:
    """What a caller reads of a feed. None means no limit of that kind."""

    compounds: frozenset[str] | None = None
    # Base type names (``juwei.residents.ZoneStatusChanged``): every version of each.
    types: frozenset[str] | None = None
    # District-wide building ids; ``compound_wide`` lets events that concern no one building through.
    buildings: frozenset[str] | None = None
    compound_wide: bool = True
    # The event must name one of ``values`` in one of ``fields`` (a string, or a list of them).
    fields: frozenset[str] = frozenset()
    values: frozenset[str] | None = None
    health: bool = False

    def names(self, data: Mapping[str, Any]) -> bool:
        """Whether the event's public payload names one of the scope's values (always, without a value list)."""
        if self.values is None:
            return True
        for name in self.fields:
            value = data.get(name)
            if isinstance(value, str):
                if value in self.values:
                    return True
            elif isinstance(value, list) and any(isinstance(v, str) and v in self.values for v in value):
                return True
        return False


# What a service's feed shows one caller: called with the service's runtime (``juwei.service.Runtime``).
FeedAccess = Callable[[Any, Session, Caller], FeedScope]


def default_scope(_runtime: object, _session: Session, caller: Caller) -> FeedScope:
    """A service that states no rules: the key's compounds (every compound for a district key), health included."""
    return FeedScope(compounds=caller.reach, health=True)


@dataclass
class Disclosure:
    """What one page of events shows its reader: the published data, health only with a grant, and the audit.

    A sealed field's token is never shown: a reader with health gets the plain fields it seals (opened with
    the service's vault, absent once shredded), every other reader gets neither.
    """

    registry: EventRegistry
    sealing: Sealing
    health: bool
    reads: list[SensitiveRead] = field(default_factory=list)
    _classes: dict[type[DomainEvent], dict[str, str]] = field(default_factory=dict)

    def _classes_of(self, cls: type[DomainEvent]) -> dict[str, str]:
        found = self._classes.get(cls)
        if found is None:
            found = self._classes[cls] = dict(self.registry.field_classes(cls, strict=False))
        return found

    def shown(self, session: Session, envelopes: Sequence[Envelope]) -> list[dict[str, Any]]:
        """Each event as the reader may see it (structured CloudEvents)."""
        if self.health:
            envelopes = self.sealing.open(session, self.registry, envelopes)
        shown: list[dict[str, Any]] = []
        for envelope in envelopes:
            cls = self.registry.current_class(envelope.type)
            if cls is None:  # a type this service no longer knows: show nothing of it rather than guess
                continue
            classes = self._classes_of(cls)
            data = {
                name: value
                for name, value in envelope.data.items()
                if name in classes
                and name not in cls.private_fields
                and name not in cls.sealed_fields
                and classes[name] != "identity"
                and (self.health or classes[name] != "health")
            }
            if self.health:
                # Opened now, or in clear in an event written before the field was sealed.
                source = {**envelope.data, **(envelope.private or {})}
                for spec in cls.sealed_fields.values():
                    plain = {f: source[f] for f in spec.fields if source.get(f) is not None}
                    subject = envelope.data.get(spec.subject)
                    if plain and isinstance(subject, str):
                        data.update(plain)
                        self.reads.append(SensitiveRead(subject, "health", tuple(sorted(plain)), envelope.building))
            body = envelope.to_cloudevent()
            body["data"] = data
            shown.append(body)
        return shown


def type_names(registry: EventRegistry, scope: FeedScope) -> Collection[str] | None:
    """The stored type names (every version) a scope's base names stand for; None for every type."""
    return None if scope.types is None else registry.type_names(scope.types)


def bases(classes: Iterable[type[DomainEvent]], role: str) -> frozenset[str]:
    """The base names of the event types whose ``audience`` names ``role``."""
    return frozenset(cls.event_type for cls in classes if role in cls.audience)
