"""The published event catalogue of the testing service (topic ``juwei.testing``).

Only what other services already rely on is here so far; the testing service (issue 4) extends it.
Health data never leaves as identity: events carry resident, household and building ids.
"""

from __future__ import annotations

from datetime import date

from juwei.events import DomainEvent, EventRegistry

registry = EventRegistry()


class CaseConfirmed(DomainEvent):
    """An individual positive PCR result made a confirmed case (residents re-seals the building)."""

    event_type = "juwei.testing.CaseConfirmed"
    version = 1
    case: str
    resident: str
    household: str
    building: str
    confirmed_on: date


registry.register_all([CaseConfirmed])
