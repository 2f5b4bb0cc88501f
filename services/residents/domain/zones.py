"""Zone status (sealed, controlled, precaution) from the days since the last case, or by the authorities'
decision, and the answer to "when can we go out?". Plain Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from contracts.residents import (
    ZoneCaseRecorded,
    ZoneStatusChanged,
)
from juwei.aggregate import Aggregate, Conflict, Invalid

SEALED_DAYS = 7
PRECAUTION_DAYS = 14


# Strictest first.
ZONES = ("sealed", "controlled", "precaution")


# --- zone status ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneView:
    """A zone and the answer to "when can we go out?"."""

    zone: str
    last_case_on: date | None
    days_since_last_case: int | None
    next_zone: str | None
    next_change_on: date | None


def zone_for(
    last_case_on: date | None, today: date, sealed_days: int = SEALED_DAYS, precaution_days: int = PRECAUTION_DAYS
) -> ZoneView:
    """Shanghai, April 2022: sealed with a case in the last ``sealed_days`` days, controlled after that,
    precaution after ``precaution_days`` days without a case (and when there never was one)."""
    if not 1 <= sealed_days < precaution_days:
        raise ValueError(f"need 1 <= sealed_days < precaution_days, got {sealed_days}, {precaution_days}")
    if last_case_on is None:
        return ZoneView("precaution", None, None, None, None)
    days = (today - last_case_on).days
    if days < 0:
        raise Invalid(f"the last case ({last_case_on}) is after today ({today})", code="case-in-future")
    if days < sealed_days:
        return ZoneView("sealed", last_case_on, days, "controlled", last_case_on + timedelta(days=sealed_days))
    if days < precaution_days:
        return ZoneView("controlled", last_case_on, days, "precaution", last_case_on + timedelta(days=precaution_days))
    return ZoneView("precaution", last_case_on, days, None, None)


def strictest(zones: Iterable[str]) -> str:
    """The strictest of some zones (precaution when there are none)."""
    return min(zones, key=ZONES.index, default="precaution")


class Zone(Aggregate):
    """The zone of one building (id ``<compound>:<building>``) or of a whole compound (id: the compound).

    The zone follows the days since the last case (``zone_for``) unless the authorities decided otherwise;
    their decision holds until the next case, and a new case always re-seals. ``ZoneStatusChanged`` is
    recorded only when the zone (or whether it is held by an authority decision) changes.
    """

    stream_prefix = "zone"
    sealed_days = SEALED_DAYS
    precaution_days = PRECAUTION_DAYS

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.zone = "precaution"
        self.last_case_on: date | None = None
        self.by_authority = False
        self.reason = ""

    @property
    def scope(self) -> str:
        return "building" if ":" in self.id else "compound"

    @property
    def building(self) -> str | None:
        return None if self.scope == "compound" else self.id

    def follow(self, sealed_days: int, precaution_days: int) -> Zone:
        """Use the compound's zone rules (its own, or the deployment's) for this zone from now on."""
        self.sealed_days = sealed_days
        self.precaution_days = precaution_days
        return self

    def derived(self, today: date) -> ZoneView:
        return zone_for(self.last_case_on, today, self.sealed_days, self.precaution_days)

    def view(self, today: date) -> ZoneView:
        """What residents see: the zone in force, days since the last case and the next change (if known)."""
        derived = self.derived(today)
        if self.by_authority:  # holds until the next case: no date for the next change
            return ZoneView(self.zone, self.last_case_on, derived.days_since_last_case, None, None)
        return derived

    def _change(self, zone: str, today: date, reason: str, by_authority: bool) -> None:
        if zone == self.zone and by_authority == self.by_authority:
            return
        derived = self.derived(today)
        follows_days = derived.zone == zone
        self.record(
            ZoneStatusChanged(
                scope=self.scope,
                building=self.building,
                zone=zone,
                previous=self.zone,
                reason=reason,
                last_case_on=self.last_case_on,
                days_since_last_case=derived.days_since_last_case,
                next_zone=derived.next_zone if follows_days and not by_authority else None,
                next_change_on=derived.next_change_on if follows_days and not by_authority else None,
                decided_by_authority=by_authority,
            )
        )

    def record_case(self, case_on: date, *, today: date) -> None:
        """A confirmed case in this building (for the compound: in any of its buildings) on ``case_on``."""
        if case_on > today:
            raise Invalid(f"a case on {case_on} is in the future (today is {today})", code="case-in-future")
        newer = self.last_case_on is None or case_on > self.last_case_on
        if not newer and not self.by_authority:
            return
        latest = max(case_on, self.last_case_on or case_on)
        self.record(ZoneCaseRecorded(scope=self.scope, building=self.building, case_on=latest))
        derived = self.derived(today)
        self._change(derived.zone, today, f"confirmed case on {case_on.isoformat()}", False)

    def refresh(self, today: date) -> None:
        """Let the days count: move to the zone the days since the last case call for, unless decided."""
        if self.by_authority:
            return
        derived = self.derived(today)
        days = derived.days_since_last_case
        reason = "no case ever" if days is None else f"{days} days without a new case"
        self._change(derived.zone, today, reason, False)

    def decide(self, zone: str, reason: str, *, today: date) -> None:
        """Set the zone by decision of the authorities; it holds until the next case."""
        if zone not in ZONES:
            raise Invalid(f"unknown zone {zone!r} (one of {', '.join(ZONES)})", code="invalid-zone")
        if not reason.strip():
            raise Invalid("an authority decision needs its reason", code="reason-required")
        self._change(zone, today, reason.strip(), True)

    def reconcile(self, buildings: Iterable[Zone], *, today: date) -> None:
        """The compound's zone: the strictest of its buildings' zones today, unless the authorities decided.

        A case in any building later than the compound's last case counts as a new case for the compound.
        """
        if self.scope != "compound":
            raise Conflict("only the compound's zone follows its buildings", code="not-compound")
        buildings = list(buildings)
        cases = [b.last_case_on for b in buildings if b.last_case_on is not None]
        latest = max(cases, default=None)
        if latest is not None and (self.last_case_on is None or latest > self.last_case_on):
            self.record(ZoneCaseRecorded(scope="compound", building=None, case_on=latest))
        if self.by_authority:
            return
        zone = strictest(b.zone if b.by_authority else b.derived(today).zone for b in buildings)
        self._change(zone, today, f"strictest zone of {len(buildings)} buildings", False)

    def on_ZoneCaseRecorded(self, event: ZoneCaseRecorded) -> None:
        self.last_case_on = event.case_on
        self.by_authority = False

    def on_ZoneStatusChanged(self, event: ZoneStatusChanged) -> None:
        self.zone = event.zone
        self.by_authority = event.decided_by_authority
        self.reason = event.reason

    def snapshot_state(self) -> dict:
        state = super().snapshot_state()
        # The rules are the compound's, read afresh at every load: never kept in a snapshot.
        state.pop("sealed_days", None)
        state.pop("precaution_days", None)
        state["last_case_on"] = self.last_case_on.isoformat() if self.last_case_on else None
        return state

    def restore_state(self, state: dict) -> None:
        super().restore_state(state)
        if isinstance(self.last_case_on, str):
            self.last_case_on = date.fromisoformat(self.last_case_on)
