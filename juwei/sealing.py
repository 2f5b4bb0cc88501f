"""Sealed fields: what the domain writes in plain, the store keeps sealed per data subject.

An event class names a token field and what it seals (``DomainEvent.sealed_fields``): the domain records the
plain fields (they are private: never published), and on append the store seals them into the token under
the vault key of ``<subject>#<token field>`` and keeps only the token. Whoever holds that key opens it again:
the service's own repository and read models (on load and on rebuild; a live append hands its projections
the plain values it was given), and the services the key was handed to (``juwei.vault.KeyCourier``).
Shredding the key (erasure, retention) closes the token everywhere: in the log, in inboxes, in backups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from pydantic_core import to_jsonable_python

from juwei.events import DomainEvent, Envelope, EventRegistry, sealed_subject
from juwei.session import Session


class SubjectKeys(Protocol):
    """What sealing needs of a vault (``juwei.vault.Vault``): seal values and open tokens, per data subject."""

    def seal_many(self, session: Session, values: Mapping[str, dict[str, Any]]) -> dict[str, str]: ...

    def unseal_each(
        self, session: Session, sealed: Sequence[tuple[str, str | None]]
    ) -> list[dict[str, Any] | None]: ...


class Sealing:
    """Seals and opens the sealed fields of one service's events with its vault."""

    def __init__(self, vault: Callable[[], SubjectKeys]) -> None:
        self._vault = vault

    def seal(self, session: Session, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """The events as they are stored: each sealed field's token set, the plain fields it seals emptied."""
        values: dict[str, dict[str, Any]] = {}
        for event in events:
            for name, spec in event.sealed_fields.items():
                values[sealed_subject(getattr(event, spec.subject), name)] = {
                    field: to_jsonable_python(getattr(event, field)) for field in spec.fields
                }
        if not values:
            return list(events)
        tokens = self._vault().seal_many(session, values)
        stored = []
        for event in events:
            if not event.sealed_fields:
                stored.append(event)
                continue
            update: dict[str, Any] = {}
            for name, spec in event.sealed_fields.items():
                update[name] = tokens[sealed_subject(getattr(event, spec.subject), name)]
                update.update(dict.fromkeys(spec.fields))
            stored.append(event.model_copy(update=update))
        return stored

    def open(self, session: Session, registry: EventRegistry, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """The envelopes with each sealed field's plain values in ``private`` (where the key is still here)."""
        sealed: list[tuple[str, str]] = []  # (subject, token): one subject may have several tokens here
        plan: list[tuple[int, int, int]] = []  # (envelope index, first and last position in ``sealed``)
        for index, envelope in enumerate(envelopes):
            cls = registry.current_class(envelope.type)
            if cls is None or not cls.sealed_fields:
                continue
            first = len(sealed)
            for name, spec in cls.sealed_fields.items():
                token, subject = envelope.data.get(name), envelope.data.get(spec.subject)
                if isinstance(token, str) and isinstance(subject, str):
                    sealed.append((sealed_subject(subject, name), token))
            if len(sealed) > first:
                plan.append((index, first, len(sealed)))
        if not plan:
            return list(envelopes)
        opened = self._vault().unseal_each(session, sealed)
        out = list(envelopes)
        for index, first, last in plan:
            plain: dict[str, Any] = {}
            for value in opened[first:last]:
                plain.update(value or {})
            if plain:
                envelope = out[index]
                out[index] = replace(envelope, private={**(envelope.private or {}), **plain})
        return out
