"""Read models of the compound's work groups, volunteers' availability and the weekly medicine survey:
projections of residents' own events, rebuilt by ``juwei replay residents``.
"""

from __future__ import annotations

import json

from sqlalchemy import Column, Date, String, Table, Text, delete

from contracts.residents import (
    MedicineAsked,
    VolunteerAvailabilitySet,
    VolunteerJoinedWorkGroup,
    VolunteerLeftWorkGroup,
    VolunteerStoodDown,
    WorkGroupNamed,
    registry,
)
from juwei.events import Envelope
from juwei.projection import Projection, upsert
from juwei.session import Session
from services.residents.views import tables

work_groups = Table(
    "res_work_groups",
    tables,
    Column("work_group", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False),
)
work_group_members = Table(
    "res_work_group_members",
    tables,
    Column("work_group", String(100), primary_key=True),
    Column("volunteer", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
)
availability = Table(
    "res_availability",
    tables,
    Column("volunteer", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("slots", Text, nullable=False),
)
medicine_asked = Table(
    "res_medicine_asked",
    tables,
    Column("resident", String(100), primary_key=True),
    Column("week", String(10), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", String(100), nullable=False, index=True),
    Column("asked_on", Date, nullable=False),
)


class WorkGroups(Projection):
    """The committee's work groups, who is in each, and when each volunteer can work."""

    name = "work_groups"
    tables = (work_groups, work_group_members, availability)
    reads = (
        WorkGroupNamed,
        VolunteerJoinedWorkGroup,
        VolunteerLeftWorkGroup,
        VolunteerAvailabilitySet,
        VolunteerStoodDown,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        kind = type(registry.decode(envelope.type, envelope.data)).__name__
        data, compound = envelope.data, envelope.compound
        if kind == "WorkGroupNamed":
            upsert(
                session,
                work_groups,
                {"work_group": data["group"]},
                {"compound": compound, "name": data["label"], "description": data.get("description", "")},
            )
        elif kind == "VolunteerJoinedWorkGroup":
            upsert(
                session,
                work_group_members,
                {"work_group": data["group"], "volunteer": data["volunteer"]},
                {"compound": compound},
            )
        elif kind == "VolunteerLeftWorkGroup":
            session.execute(
                delete(work_group_members).where(
                    work_group_members.c.work_group == data["group"],
                    work_group_members.c.volunteer == data["volunteer"],
                )
            )
        elif kind == "VolunteerAvailabilitySet":
            upsert(
                session,
                availability,
                {"volunteer": data["volunteer"]},
                {"compound": compound, "slots": json.dumps(data["availability"])},
            )
        else:  # stood down: no longer suggested, in no group (their stream keeps the history)
            volunteer = data["volunteer"]
            session.execute(delete(work_group_members).where(work_group_members.c.volunteer == volunteer))
            session.execute(delete(availability).where(availability.c.volunteer == volunteer))


class MedicineSurvey(Projection):
    """Whom each building's information officer has asked about medicine, by ISO week."""

    name = "medicine_survey"
    tables = (medicine_asked,)
    reads = (MedicineAsked,)

    def apply(self, session: Session, envelope: Envelope) -> None:
        data = {**envelope.data, **(envelope.private or {})}  # whom it names is private to residents
        upsert(
            session,
            medicine_asked,
            {"resident": data["resident"], "week": data["week"]},
            {"compound": envelope.compound, "building": data["building"], "asked_on": _day(data["asked_on"])},
        )


def _day(value: object) -> object:
    from datetime import date

    return date.fromisoformat(value) if isinstance(value, str) else value
