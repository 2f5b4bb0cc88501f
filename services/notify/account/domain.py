"""The daily account's rules: which figures it shows, how the compound's are summed, when it is due.

Counts only: no resident, household, room or result appears in an account, only how many.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

# What an account shows, in order; each is a count for the day (the building's, then the compound's).
FIGURES = (
    "samples_taken",  # samples collected (a retest counts again)
    "samples_missing",  # residents of the day's rounds not yet sampled (known once testing reported progress)
    "results",  # samples whose result came back (pooled tubes: every sample in them)
    "delivered",  # households a delivery reached
    "delivery_failed",  # deliveries that failed and went on the follow-up list
    "followed_up",  # follow-ups resolved
    "medicine_requested",
    "cards_collected",  # medical-insurance cards taken for a medicine run
    "medicine_bought",
    "cards_returned",  # medicine and card brought back to the household
    "questions_asked",
    "questions_answered",
    "donations_accepted",
    "donations_refused",
)
# Recorded for the compound only (a donation belongs to no building).
COMPOUND_ONLY = frozenset({"donations_accepted", "donations_refused"})
# ``samples_missing`` is computed from the rounds, never counted: unknown (None) until testing reports progress.
COMPUTED = frozenset({"samples_missing"})
COMPOUND = ""  # the building column of a figure kept for the compound as a whole
TEMPLATE = "daily_account"


def building_figures(counts: Mapping[str, int], missing: int | None) -> dict[str, int | None]:
    """A building's figures for the day: every figure present (0 when nothing happened)."""
    out: dict[str, int | None] = {name: int(counts.get(name, 0)) for name in FIGURES if name not in COMPOUND_ONLY}
    out["samples_missing"] = missing
    return out


def compound_figures(
    buildings: Mapping[str, Mapping[str, int | None]], compound_counts: Mapping[str, int]
) -> dict[str, int | None]:
    """The compound's figures: a figure kept for the compound as a whole is taken as it is, any other is the
    sum over its buildings (``samples_missing`` too, unknown only when no building's is known)."""
    out: dict[str, int | None] = {}
    for name in FIGURES:
        if name in compound_counts or name in COMPOUND_ONLY:
            out[name] = int(compound_counts.get(name, 0))
            continue
        known = [figures[name] for figures in buildings.values() if figures.get(name) is not None]
        out[name] = sum(int(value) for value in known) if known or name not in COMPUTED else None
    return out


def quiet_day(figures: Mapping[str, int | None]) -> bool:
    """Nothing was counted (the account still goes out: saying so is part of telling)."""
    return not any(value for name, value in figures.items() if name not in COMPUTED)


def account_params(
    day: date, label: str, building: Mapping[str, int | None], compound: Mapping[str, int | None]
) -> dict[str, Any]:
    """What the template sees: the day, the building's label, and counts. Nothing else can reach the text."""
    for name, value in (*building.items(), *compound.items()):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"figure {name} must be a count, not {value!r}")
    return {
        "day": day,
        "place": label,
        "b": dict(building),
        "c": dict(compound),
        "b_quiet": quiet_day(building),
    }


def parse_hour(text: str | None) -> time | None:
    """``JUWEI_DAILY_ACCOUNT_AT``: ``HH:MM`` in the compounds' local time; empty or ``off``: never at a set hour."""
    value = (text or "").strip()
    if value.lower() in ("", "off"):
        return None
    hours, _, minutes = value.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and int(hours) <= 23 and int(minutes) <= 59):
        raise ValueError(f"JUWEI_DAILY_ACCOUNT_AT must be HH:MM or 'off', not {value!r}")
    return time(int(hours), int(minutes))


def due(now_local: datetime, at: time | None) -> bool:
    """The day's account is due once the set hour has passed today (a notify that was down sends it later)."""
    return at is not None and now_local.time() >= at
