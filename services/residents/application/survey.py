"""The weekly medicine survey: whom an information officer still has to ask, and recording that they asked."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import or_, select

from contracts.ids import global_id, local_id
from contracts.roles import HEALTH_ROLES
from juwei.aggregate import NotFound
from juwei.audit import Reading, SensitiveRead, record_reads
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.unit_of_work import UnitOfWork
from services.residents import views
from services.residents.domain.survey import MedicineSurvey, iso_week, survey_id
from services.residents.rosters import medicine_asked


def record_asked(unit: UnitOfWork, caller: Caller, resident: str, asked_on: date | None) -> dict[str, Any]:
    """The officer asked ``resident`` about medicine (today unless ``asked_on``): once per resident and week."""
    today = unit.runtime.settings.local_today()
    day = asked_on or today
    with unit:
        row = unit.session.execute(
            select(views.residents.c.household, views.residents.c.building).where(
                views.residents.c.resident == global_id(unit.compound, resident),
                views.residents.c.erased.is_(False),
            )
        ).first()
        if row is None:
            raise NotFound(
                f"住户 {resident} 不在登记册中 (resident {resident} is not registered)", code="resident-unknown"
            )
        caller.require_scope(unit.compound, local_id(row.building))
        survey = unit.load_or_new(MedicineSurvey, survey_id(row.building, iso_week(day)))
        recorded = survey.ask(global_id(unit.compound, resident), row.household, day, today=today)
    return {
        "resident": resident,
        "building": local_id(row.building),
        "week": iso_week(day),
        "asked_on": day,
        "recorded": recorded,
    }


def still_to_ask(runtime: Runtime, caller: Caller, compound: str, building: str, reading: Reading) -> dict[str, Any]:
    """The elderly and regular-medication residents of ``building`` not yet asked this week. A reader without a
    health grant gets the elderly only (who takes regular medication is health data); a health read is audited."""
    caller.require_scope(compound, building)
    health = caller.role in HEALTH_ROLES
    week = iso_week(runtime.settings.local_today())
    place = global_id(compound, building)
    people, homes = views.residents, views.households
    needs = (
        or_(people.c.elderly.is_(True), people.c.regular_medication.is_(True)) if health else people.c.elderly.is_(True)
    )
    query = (
        select(
            people.c.resident,
            people.c.household,
            homes.c.floor,
            homes.c.room,
            people.c.elderly,
            people.c.regular_medication,
        )
        .join(homes, homes.c.household == people.c.household)
        .where(people.c.building == place, people.c.erased.is_(False), needs)
    )
    with runtime.database.unit_of_work() if health else runtime.database.reading() as session:
        known = session.execute(select(views.buildings.c.building).where(views.buildings.c.building == place)).first()
        if known is None:
            raise NotFound(f"楼栋 {building} 未登记 (building {building} is not registered)", code="building-unknown")
        rows = session.execute(query).all()
        asked = set(
            session.execute(
                select(medicine_asked.c.resident).where(
                    medicine_asked.c.building == place, medicine_asked.c.week == week
                )
            ).scalars()
        )
        waiting = sorted((r for r in rows if r.resident not in asked), key=lambda r: (r.floor, r.room, r.resident))
        if health:
            reads = [SensitiveRead(r.resident, "health", ("regular_medication",), place) for r in waiting]
            record_reads(session, reading, caller, compound, reads)
    return {
        "building": building,
        "week": week,
        "asked": len(rows) - len(waiting),
        "not_asked": [
            {
                "resident": local_id(r.resident),
                "household": local_id(r.household),
                "floor": r.floor,
                "room": r.room,
                "elderly": r.elderly,
                "regular_medication": r.regular_medication if health else None,
            }
            for r in waiting
        ],
    }
