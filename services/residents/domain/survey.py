"""The weekly medicine survey: each information officer asks the elderly and regular-medication residents of
their building about medicine once a week, and records that they did. Plain Python, no I/O."""

from __future__ import annotations

from datetime import date, timedelta

from contracts.residents import MedicineAsked
from juwei.aggregate import Aggregate, Invalid

ASKED_WITHIN_DAYS = 7  # an asking recorded late is still this survey's; older than a week is another's


def iso_week(day: date) -> str:
    """``2022-04-10`` → ``"2022-W14"`` (weeks begin on Monday, as the committee's do)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def survey_id(building: str, week: str) -> str:
    """The survey of one building in one week: ``<compound>:<building>@<week>``."""
    return f"{building}@{week}"


def needs_asking(elderly: bool, regular_medication: bool) -> bool:
    return elderly or regular_medication


def check_asked_on(asked_on: date, today: date) -> None:
    if asked_on > today:
        raise Invalid(f"询问日期 {asked_on} 晚于今天 {today} (asked_on is in the future)", code="asked-on-invalid")
    if asked_on < today - timedelta(days=ASKED_WITHIN_DAYS):
        raise Invalid(
            f"询问日期 {asked_on} 早于 {ASKED_WITHIN_DAYS} 天前，请记录本周的询问 (asked_on is over a week ago)",
            code="asked-on-invalid",
        )


class MedicineSurvey(Aggregate):
    """Whom the officer of one building has asked in one ISO week (id from ``survey_id``)."""

    stream_prefix = "medsurvey"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.asked: dict[str, date] = {}

    @property
    def week(self) -> str:
        return self.id.rpartition("@")[2]

    @property
    def building(self) -> str:
        return self.id.rpartition("@")[0]

    def ask(self, resident: str, household: str, asked_on: date, *, today: date) -> bool:
        """Record that ``resident`` was asked on ``asked_on``; False when they were already asked this week."""
        check_asked_on(asked_on, today)
        if iso_week(asked_on) != self.week:
            raise Invalid(f"{asked_on} 不在 {self.week} 这一周 (not in week {self.week})", code="asked-on-invalid")
        if resident in self.asked:
            return False
        self.record(
            MedicineAsked(
                resident=resident, household=household, building=self.building, week=self.week, asked_on=asked_on
            )
        )
        return True

    def on_MedicineAsked(self, event: MedicineAsked) -> None:
        if event.resident is not None:
            self.asked[event.resident] = event.asked_on
