"""Cases (confirmed → transfer scheduled → transferred → closed) and the disinfection of a building's common
areas, with photos. Plain Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from contracts.testing import (
    CaseClosed,
    CaseConfirmed,
    CaseTransferred,
    CloseContactsIsolated,
    DisinfectionRecorded,
    StoredPhoto,
    TransferScheduled,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound

OUTCOMES = ("returned", "recovered")


MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PHOTOS = 10
# How late a clock may run: a record "done" more than this in the future is a typo, not a plan.
CLOCK_SLACK = timedelta(minutes=10)


CASE_STATUSES = ("confirmed", "transfer-scheduled", "transferred", "closed")


class Case(Aggregate):
    """A confirmed case: awaiting transfer (with a time when known) → transferred → returned or recovered."""

    stream_prefix = "case"

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        return NotFound(f"case {id} is not known", code="case-unknown")

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status: str | None = None
        self.building: str | None = None
        self.scheduled_at: datetime | None = None
        self.transferred_at: datetime | None = None

    def confirm(
        self, resident: str, household: str, building: str, *, on: date, household_members: Iterable[str]
    ) -> None:
        """Open the case; the rest of the household become close contacts in home isolation."""
        if self.exists:
            raise Conflict(f"case {self.id} is already confirmed", code="case-exists")
        self.record(
            CaseConfirmed(case=self.id, resident=resident, household=household, building=building, confirmed_on=on)
        )
        contacts = [m for m in dict.fromkeys(household_members) if m != resident]
        self.record(
            CloseContactsIsolated(case=self.id, household=household, building=building, residents=contacts, since=on)
        )

    def _require(self, *statuses: str) -> str:
        if self.status is None:
            raise self.unknown(self.id)
        if self.status not in statuses:
            raise Conflict(
                f"case {self.id} is {self.status}; this needs it {' or '.join(statuses)}", code="case-wrong-status"
            )
        assert self.building is not None
        return self.building

    def schedule_transfer(self, at: datetime) -> None:
        building = self._require("confirmed", "transfer-scheduled")
        if at.tzinfo is None:
            raise Invalid("the transfer time needs a time zone", code="invalid-time")
        if at == self.scheduled_at:
            return
        self.record(TransferScheduled(case=self.id, building=building, scheduled_at=at))

    def transferred(self, at: datetime, *, now: datetime, facility: str = "") -> None:
        building = self._require("confirmed", "transfer-scheduled")
        if at > now + CLOCK_SLACK:
            raise Invalid("a transfer cannot be recorded before it happens", code="time-in-future")
        self.record(CaseTransferred(case=self.id, building=building, transferred_at=at, facility=facility.strip()))

    def close(self, outcome: str, at: datetime, *, now: datetime) -> None:
        building = self._require("transferred")
        if outcome not in OUTCOMES:
            raise Invalid(f"a case closes as returned or recovered, not {outcome!r}", code="invalid-outcome")
        if at > now + CLOCK_SLACK:
            raise Invalid("a case cannot be closed before it happens", code="time-in-future")
        if self.transferred_at is not None and at < self.transferred_at:
            raise Invalid("a case closes after its transfer", code="invalid-time")
        self.record(CaseClosed(case=self.id, building=building, outcome=outcome, closed_at=at))  # type: ignore[arg-type]

    def on_CaseConfirmed(self, event: CaseConfirmed) -> None:
        self.status = "confirmed"
        self.building = event.building

    def on_TransferScheduled(self, event: TransferScheduled) -> None:
        self.status = "transfer-scheduled"
        self.scheduled_at = event.scheduled_at

    def on_CaseTransferred(self, event: CaseTransferred) -> None:
        self.status = "transferred"
        self.transferred_at = event.transferred_at

    def on_CaseClosed(self, _event: CaseClosed) -> None:
        self.status = "closed"


def photo_type(data: bytes) -> str | None:
    """The photo's content type from its first bytes (JPEG, PNG or WebP), never from what the sender says."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class Disinfection(Aggregate):
    """Common areas of a building disinfected after a case: time, areas, photos."""

    stream_prefix = "disinfection"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.building: str | None = None

    def record_done(
        self,
        building: str,
        done_at: datetime,
        areas: Sequence[str],
        photos: Sequence[StoredPhoto],
        *,
        now: datetime,
        case: str | None = None,
    ) -> None:
        if self.exists:
            raise Conflict(f"disinfection {self.id} is already recorded", code="disinfection-exists")
        clean = list(dict.fromkeys(a.strip() for a in areas if a.strip()))
        if not clean:
            raise Invalid("say which common areas were disinfected", code="areas-required")
        if not photos:
            raise Invalid("a disinfection record needs at least one photo", code="photos-required")
        if len(photos) > MAX_PHOTOS:
            raise Invalid(f"at most {MAX_PHOTOS} photos per record", code="too-many-photos")
        if done_at.tzinfo is None:
            raise Invalid("the time needs a time zone", code="invalid-time")
        if done_at > now + CLOCK_SLACK:
            raise Invalid("a disinfection cannot be recorded before it is done", code="time-in-future")
        self.record(
            DisinfectionRecorded(
                disinfection=self.id, building=building, done_at=done_at, areas=clean, photos=list(photos), case=case
            )
        )

    def on_DisinfectionRecorded(self, event: DisinfectionRecorded) -> None:
        self.building = event.building
