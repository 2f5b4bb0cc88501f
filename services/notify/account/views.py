"""The day counters of the daily account: a projection of the events notify receives, rebuilt by replay.

Decided: notify keeps a small projection of its own (counts per building and local day) rather than asking
the other services, which it may not import, or keeping their events. Each counted event adds to the
counter of its building and of the local day (``JUWEI_TIMEZONE``) of the moment it was recorded; the inbox
applies it once, in the consumer's transaction. Two small helpers: the samples of each tube not yet
resulted (a pooled tube's result counts for every sample in it, by building; the rows go once resulted, and a
marker row remembers the day, since testing's samples and results travel on different partitions and a
result may arrive first), and each round's residents and first samples per building (what is still missing).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Date, Integer, String, Table, and_, delete, func, select

from contracts.notify import QuestionsAnswered, QuestionSubmitted
from contracts.supplies import (
    CardCollected,
    DeliveryConfirmed,
    DonationAccepted,
    DonationRefused,
    FollowUpResolved,
    MedicineAndCardReturned,
    MedicinePurchased,
    MedicineRequested,
)
from contracts.supplies import DeliveryFailed as SupplyDeliveryFailed
from contracts.testing import (
    AntigenReported,
    BuildingTestingProgress,
    IndividualResultRecorded,
    SampleCollected,
    TubeResulted,
)
from juwei.events import Envelope
from juwei.projection import Projection, upsert
from juwei.session import Session
from services.notify.account.domain import COMPOUND
from services.notify.views import questions, tables

account_counts = Table(
    "notify_account_counts",
    tables,
    Column("compound", String(64), primary_key=True),
    Column("building", String(100), primary_key=True),  # "" for a figure of the compound as a whole
    Column("day", Date, primary_key=True),
    Column("figure", String(40), primary_key=True),
    Column("count", Integer, nullable=False),
)
account_tubes = Table(
    "notify_account_tubes",
    tables,
    Column("compound", String(64), primary_key=True),
    Column("tube", String(100), primary_key=True),
    Column("building", String(100), primary_key=True),
    Column("samples", Integer, nullable=False),
    Column("resulted_on", Date, nullable=True),  # set on the tube's marker row (building "") once resulted
)
account_rounds = Table(
    "notify_account_rounds",
    tables,
    Column("compound", String(64), primary_key=True),
    Column("round", String(100), primary_key=True),
    Column("building", String(100), primary_key=True),
    Column("residents", Integer, nullable=True),  # known once testing reported the building's progress
    Column("tested", Integer, nullable=False),
    Column("last_day", Date, nullable=False),
)
# Where the compounds are: the projection has no settings, and its day must not depend on who replays it.
TIMEZONE = ZoneInfo(os.environ.get("JUWEI_TIMEZONE", "Asia/Shanghai"))
# Event kind → the figure it adds one to, for the building named in the event.
ONE_EACH = {
    "SampleCollected": "samples_taken",
    "IndividualResultRecorded": "results",
    "AntigenReported": "results",
    "DeliveryConfirmed": "delivered",
    "DeliveryFailed": "delivery_failed",
    "FollowUpResolved": "followed_up",
    "MedicineRequested": "medicine_requested",
    "CardCollected": "cards_collected",
    "MedicinePurchased": "medicine_bought",
    "MedicineAndCardReturned": "cards_returned",
    "QuestionSubmitted": "questions_asked",
}
DONATIONS = {"DonationAccepted": "donations_accepted", "DonationRefused": "donations_refused"}


def pinned_day() -> date | None:
    """``JUWEI_TODAY`` (demos, tests): every event counts for that day. Read once per batch of events."""
    pinned = os.environ.get("JUWEI_TODAY")
    return date.fromisoformat(pinned) if pinned else None


def local_day(moment: datetime, pinned: date | None) -> date:
    """The day an event counts for: the pinned day, else the event's own day where the compounds are."""
    return pinned or moment.astimezone(TIMEZONE).date()


class DailyAccounts(Projection):
    """Counts per building and local day of what the daily account reports."""

    name = "daily_accounts"
    tables = (account_counts, account_tubes, account_rounds)
    reads = (
        SampleCollected,
        BuildingTestingProgress,
        TubeResulted,
        IndividualResultRecorded,
        AntigenReported,
        DeliveryConfirmed,
        SupplyDeliveryFailed,
        FollowUpResolved,
        MedicineRequested,
        CardCollected,
        MedicinePurchased,
        MedicineAndCardReturned,
        DonationAccepted,
        DonationRefused,
        QuestionSubmitted,
        QuestionsAnswered,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        self.apply_many(session, [envelope])

    def apply_many(self, session: Session, envelopes: Sequence[Envelope]) -> None:
        # Counters summed in memory for the run, one upsert per (building, day, figure) at the end.
        counts: Counter[tuple[str, str, date, str]] = Counter()
        pinned = pinned_day()
        for envelope in envelopes:
            self._count(session, envelope, counts, pinned)
        for (compound, building, day, figure), count in counts.items():
            key = {"compound": compound, "building": building, "day": day, "figure": figure}
            upsert(session, account_counts, key, {"count": count}, add=("count",))

    def _count(
        self, session: Session, envelope: Envelope, counts: Counter[tuple[str, str, date, str]], pinned: date | None
    ) -> None:
        data, kind, compound = envelope.data, envelope.type.split(".")[2], envelope.compound
        day = local_day(envelope.time, pinned)
        if kind in ONE_EACH:
            counts[(compound, data["building"], day, ONE_EACH[kind])] += 1
        if kind in DONATIONS:
            counts[(compound, COMPOUND, day, DONATIONS[kind])] += 1
        elif kind == "SampleCollected":
            self._sampled(session, compound, data, counts)
            first = 1 if int(data.get("attempt", 1)) == 1 else 0
            key = {"compound": compound, "round": data["round"], "building": data["building"]}
            upsert(session, account_rounds, key, {"tested": first, "last_day": day}, add=("tested",))
        elif kind == "BuildingTestingProgress":
            self._progress(session, compound, data, day)
        elif kind == "TubeResulted":
            tube = and_(account_tubes.c.compound == compound, account_tubes.c.tube == data["tube"])
            for building, samples in session.execute(
                select(account_tubes.c.building, account_tubes.c.samples).where(tube, account_tubes.c.building != "")
            ):
                counts[(compound, building, day, "results")] += int(samples)
            session.execute(delete(account_tubes).where(tube))
            # The marker: a sample of this tube heard of later (another partition) counts as resulted that day.
            marker = {"compound": compound, "tube": data["tube"], "building": COMPOUND}
            upsert(session, account_tubes, marker, {"samples": 0, "resulted_on": day})
        elif kind == "QuestionsAnswered":
            asked = data["questions"]
            found = session.execute(
                select(questions.c.building, func.count())
                .where(questions.c.question.in_(asked))
                .group_by(questions.c.building)
            ).all()
            for building, number in found:
                counts[(compound, building, day, "questions_answered")] += int(number)
            # The compound's figure is the whole answer (questions already scrubbed by retention count here only).
            counts[(compound, COMPOUND, day, "questions_answered")] += len(asked)

    @staticmethod
    def _sampled(
        session: Session, compound: str, data: dict[str, Any], counts: Counter[tuple[str, str, date, str]]
    ) -> None:
        """A sample joins its tube's count, or counts as resulted at once when the tube's result came first."""
        resulted_on = session.execute(
            select(account_tubes.c.resulted_on).where(
                account_tubes.c.compound == compound,
                account_tubes.c.tube == data["tube"],
                account_tubes.c.building == COMPOUND,
            )
        ).scalar()
        if resulted_on is not None:
            counts[(compound, data["building"], resulted_on, "results")] += 1
            return
        tube = {"compound": compound, "tube": data["tube"], "building": data["building"]}
        upsert(session, account_tubes, tube, {"samples": 1}, add=("samples",))

    @staticmethod
    def _progress(session: Session, compound: str, data: dict[str, Any], day: date) -> None:
        key = (
            account_rounds.c.compound == compound,
            account_rounds.c.round == data["round"],
            account_rounds.c.building == data["building"],
        )
        tested = session.execute(select(account_rounds.c.tested).where(*key)).scalar()
        row = {
            "residents": int(data["residents"]),
            "tested": max(int(tested or 0), int(data["tested"])),  # testing's own count wins when ahead
            "last_day": day,
        }
        key = {"compound": compound, "round": data["round"], "building": data["building"]}
        upsert(session, account_rounds, key, row)
