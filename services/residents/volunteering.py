"""What the routes of work groups, volunteers' availability, task suggestions and the medicine survey take and
give (apart from ``models`` to keep each module to one job)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from services.residents.domain.workgroups import MAX_SLOTS

TimeText = Annotated[str, Field(min_length=4, max_length=5, examples=["08:00"], description="HH:MM, 24:00 ends a day")]
DayText = Annotated[str, Field(min_length=1, max_length=9, examples=["mon"], description="mon…sun, 1-7 or 周一…周日")]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkGroupIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "数据录入", "description": "spreadsheets and data entry"}]},
    )
    name: str = Field(
        min_length=1,
        max_length=60,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The group's name, as the committee calls it",
    )
    description: str = Field("", max_length=300, pattern=r"^[^\x00]*$")


class MemberOut(Answer):
    volunteer: str
    building: str
    skills: list[str]
    availability: list[str] = Field(description='slots like "mon 08:00-12:00"; empty: not said')


class WorkGroupNamedOut(Answer):
    group: str
    name: str
    description: str


class WorkGroupOut(WorkGroupNamedOut):
    members: list[MemberOut]


class WorkGroupsOut(Answer):
    groups: list[WorkGroupOut]


class MembershipOut(Answer):
    group: str
    volunteer: str
    member: bool = Field(description="Whether the volunteer is in the group after this request")
    changed: bool = Field(description="False when the volunteer already was (or was not) a member")


class SlotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: list[DayText] = Field(min_length=1, max_length=7)
    start: TimeText
    end: TimeText


class AvailabilityIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"slots": [{"days": ["mon", "wed"], "start": "08:00", "end": "12:00"}]}],
        },
    )
    slots: list[SlotIn] = Field(max_length=MAX_SLOTS, description="Every time the volunteer can work; [] clears")


class AvailabilityOut(Answer):
    volunteer: str
    building: str
    availability: list[str]
    changed: bool


class FitOut(Answer):
    volunteer: str
    building: str
    skills: list[str]
    groups: list[str]
    availability: list[str]
    skill_match: int = Field(description="2: has the skill or is in the group; 1: a skill containing the words")
    free_share: float | None = Field(description="Share of the task's hours they are free; null: not said")
    score: float
    reasons: list[str]


class SuggestionsOut(Answer):
    skill: str | None
    group: str | None
    day: str | None
    start: str | None
    end: str | None
    suggestions: list[FitOut]


class MedicineAskedIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"asked_on": "2022-04-10"}]})
    asked_on: date | None = Field(None, description="The day asked; today when not given")


class MedicineAskedOut(Answer):
    resident: str
    building: str
    week: str
    asked_on: date
    recorded: bool = Field(description="False when they had already been asked this week")


class SurveyResidentOut(Answer):
    resident: str
    household: str
    floor: int
    room: int
    elderly: bool
    regular_medication: bool | None = Field(description="null for a reader without a health grant")


class MedicineSurveyOut(Answer):
    building: str
    week: str
    asked: int = Field(description="Residents of the list already asked this week")
    not_asked: list[SurveyResidentOut]
