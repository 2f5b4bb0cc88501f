"""The compound's supply policy (the A/B rota, when a batch calls both shifts, how long a medical-insurance card
may stay out, which donations are accepted) and the shifts it calls. Plain Python, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from contracts.supplies import (
    SupplyPolicySet,
)
from juwei.aggregate import Aggregate, Invalid

SHIFTS = ("A", "B")


DEFAULT_CATEGORIES = (
    "masks",
    "antigen_kits",
    "disinfectant",
    "protective_clothing",
    "thermometers",
    "gloves",
    "face_shields",
    "hand_sanitiser",
)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")


def normalise_category(text: str) -> str:
    """ "Antigen kits" and "antigen-kits" are the same category: ``antigen_kits``."""
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


# --- the compound's supply policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class SupplyPolicy:
    """What a committee configures; the defaults come from the deployment (see ``app.py``)."""

    rota_pattern: str = "AB"
    rota_starts_on: date = date(2022, 4, 1)
    both_shifts_households: int = 60
    both_shifts_items: int = 300
    card_return_hours: int = 48
    donation_categories: tuple[str, ...] = DEFAULT_CATEGORIES

    def checked(self) -> SupplyPolicy:
        """The policy with categories normalised, or a 422 rule violation saying what is wrong."""
        pattern = self.rota_pattern.strip().upper()
        if not 1 <= len(pattern) <= 28 or set(pattern) - set(SHIFTS):
            raise Invalid(f"a rota pattern is 1-28 letters A and B, not {self.rota_pattern!r}", code="invalid-rota")
        if set(pattern) != set(SHIFTS):
            raise Invalid("the rota must give both shifts their turn (A and B)", code="invalid-rota")
        if self.both_shifts_households < 1 or self.both_shifts_items < 1:
            raise Invalid("both-shifts thresholds are at least 1", code="invalid-threshold")
        if not 1 <= self.card_return_hours <= 24 * 30:
            raise Invalid("a card's return limit is 1 hour to 30 days", code="invalid-card-limit")
        categories = tuple(dict.fromkeys(normalise_category(c) for c in self.donation_categories if c.strip()))
        bad = [c for c in categories if not _SLUG.match(c)]
        if bad:
            raise Invalid(f"categories are words like antigen_kits, not {bad[0]!r}", code="invalid-category")
        if not categories:
            raise Invalid("name at least one epidemic-prevention category", code="invalid-category")
        return SupplyPolicy(
            pattern,
            self.rota_starts_on,
            self.both_shifts_households,
            self.both_shifts_items,
            self.card_return_hours,
            categories,
        )

    @classmethod
    def from_event(cls, event: SupplyPolicySet) -> SupplyPolicy:
        return cls(
            event.rota_pattern,
            event.rota_starts_on,
            event.both_shifts_households,
            event.both_shifts_items,
            event.card_return_hours,
            tuple(event.donation_categories),
        )


class CompoundPolicy(Aggregate):
    """The supply policy of one compound (id: the compound); unset, the deployment's defaults hold."""

    stream_prefix = "policy"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.terms: dict | None = None

    def current(self, default: SupplyPolicy) -> SupplyPolicy:
        if self.terms is None:
            return default
        return SupplyPolicy(**{**self.terms, "donation_categories": tuple(self.terms["donation_categories"])})

    def set(self, policy: SupplyPolicy) -> None:
        checked = policy.checked()
        self.record(
            SupplyPolicySet(
                rota_pattern=checked.rota_pattern,
                rota_starts_on=checked.rota_starts_on,
                both_shifts_households=checked.both_shifts_households,
                both_shifts_items=checked.both_shifts_items,
                card_return_hours=checked.card_return_hours,
                donation_categories=list(checked.donation_categories),
            )
        )

    def on_SupplyPolicySet(self, event: SupplyPolicySet) -> None:
        self.terms = event.model_dump(mode="python")


# --- A/B shifts -----------------------------------------------------------------------------------------


def shift_on_duty(day: date, policy: SupplyPolicy) -> str:
    """The shift whose turn it is on ``day``: the rota pattern repeats day by day from its start."""
    pattern = policy.rota_pattern
    return pattern[(day - policy.rota_starts_on).days % len(pattern)]


def rota(start: date, days: int, policy: SupplyPolicy) -> list[tuple[date, str]]:
    return [(start + timedelta(days=n), shift_on_duty(start + timedelta(days=n), policy)) for n in range(days)]


@dataclass(frozen=True)
class ShiftCall:
    shift_on_duty: str
    shifts: tuple[str, ...]
    both: bool
    reason: str


def call_shifts(households: int, items: int, day: date, policy: SupplyPolicy) -> ShiftCall:
    """The shift on duty, or both shifts when a building's part of a batch is above a threshold."""
    duty = shift_on_duty(day, policy)
    above = []
    if households > policy.both_shifts_households:
        above.append(f"{households} households (threshold {policy.both_shifts_households})")
    if items > policy.both_shifts_items:
        above.append(f"{items} items (threshold {policy.both_shifts_items})")
    if above:
        return ShiftCall(duty, SHIFTS, True, "large batch: " + " and ".join(above) + ": both shifts")
    return ShiftCall(duty, (duty,), False, f"shift {duty} on duty on {day.isoformat()}")
