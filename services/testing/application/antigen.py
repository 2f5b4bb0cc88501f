"""Antigen self-reports: a household's own key, the members' results with an optional photo of the cassette,
and what the household and its building's officer read back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row

from contracts import roles as r
from contracts.ids import global_id, local_id
from contracts.testing import StoredPhoto
from juwei.aggregate import NotFound
from juwei.auth import issue_key
from juwei.callers import Caller, Holder
from juwei.service import Runtime
from juwei.session import Session
from juwei.unit_of_work import UnitOfWork
from services.testing.application.clock import Clock, now
from services.testing.application.keys import require_household
from services.testing.domain import Round, SelfReports
from services.testing.views import antigen, households, key_bindings, residents, round_residents


def household_row(session: Session, compound: str, household: str) -> Row[Any]:
    row = session.execute(
        select(households.c.building, households.c.floor).where(
            households.c.household == global_id(compound, household), households.c.compound == compound
        )
    ).first()
    if row is None:
        raise NotFound(f"household {household} is not registered", code="household-unknown")
    return row


def household_key(runtime: Runtime, caller: Caller, compound: str, household: str) -> dict[str, Any]:
    """A household's own key: its representative reports the members' self-tests, and nobody else's."""
    household_id = global_id(compound, household)
    with runtime.database.unit_of_work() as session:
        home = household_row(session, compound, household)
        caller.require_scope(compound, local_id(home.building))
        issued = issue_key(
            session,
            r.HOUSEHOLD,
            compound,
            [local_id(home.building)],
            label=f"household {household}",
            holder=Holder("household", household_id),
        )
        session.execute(
            key_bindings.insert().values(
                key_id=issued.caller.key_id, compound=compound, point=None, household=household_id
            )
        )
    return {"key": issued.key, "role": r.HOUSEHOLD, "household": household, "building": local_id(home.building)}


def check_reporter(runtime: Runtime, caller: Caller, compound: str, household: str) -> Row[Any]:
    """The household, if the caller may speak for it (before any photo of theirs is kept)."""
    with runtime.database.reading() as session:
        home = household_row(session, compound, household)
        require_household(session, caller, compound, global_id(compound, household), home.building)
    return home


def report_antigen(
    unit: UnitOfWork,
    home: Row[Any],
    round: str,
    household: str,
    resident: str,
    result: str,
    kept: StoredPhoto | None,
) -> dict[str, Any]:
    """A household member's antigen self-test result (a positive one asks for a PCR test)."""
    compound = unit.compound
    round_id, household_id = global_id(compound, round), global_id(compound, household)
    with unit:
        chosen = unit.load(Round, round_id)
        members = unit.session.execute(
            select(residents.c.resident).where(residents.c.household == household_id, residents.c.present.is_(True))
        ).scalars()
        reports = unit.load_or_new(SelfReports, SelfReports.id_of(round_id, household_id))
        reports.report(
            round_id,
            household_id,
            home.building,
            global_id(compound, resident),
            result,
            round_kind=chosen.kind,
            members=set(members),
            at=now(),
            photo=kept.photo if kept else None,
        )
    return {
        "round": round,
        "household": household,
        "resident": resident,
        "result": result,
        "pcr_requested": result == "positive",
        "photo": kept.photo if kept else None,
    }


def household_reports(runtime: Runtime, caller: Caller, compound: str, round: str, household: str) -> dict[str, Any]:
    """A household's self-reports in a round, with each member's status."""
    clock = Clock.of(runtime)
    round_id, household_id = global_id(compound, round), global_id(compound, household)
    with runtime.database.reading() as session:
        home = household_row(session, compound, household)
        require_household(session, caller, compound, household_id, home.building)
        members = (
            session.execute(
                select(residents.c.resident).where(residents.c.household == household_id, residents.c.present.is_(True))
            )
            .scalars()
            .all()
        )
        reported = {
            row["resident"]: row
            for row in session.execute(
                select(antigen).where(antigen.c["round"] == round_id, antigen.c.household == household_id)
            ).mappings()
        }
        statuses = dict(
            session.execute(
                select(round_residents.c.resident, round_residents.c.status).where(
                    round_residents.c["round"] == round_id, round_residents.c.household == household_id
                )
            ).all()
        )
    return {
        "round": round,
        "household": household,
        "members": [
            {
                "resident": local_id(m),
                "result": reported[m]["result"] if m in reported else None,
                "reported_at": clock.shown(reported[m]["reported_at"]) if m in reported else None,
                "photo": reported[m]["photo"] if m in reported else None,
                "status": statuses.get(m),
            }
            for m in sorted(members)
        ],
    }


def antigen_photo(runtime: Runtime, caller: Caller, compound: str, round: str, household: str, resident: str) -> str:
    """The id of the photo sent with a self-report."""
    household_id = global_id(compound, household)
    with runtime.database.reading() as session:
        home = household_row(session, compound, household)
        require_household(session, caller, compound, household_id, home.building)
        photo = session.execute(
            select(antigen.c.photo).where(
                antigen.c["round"] == global_id(compound, round),
                antigen.c.resident == global_id(compound, resident),
                antigen.c.household == household_id,
            )
        ).scalar()
    if photo is None:
        raise NotFound("no photo was sent with this report", code="photo-unknown")
    return photo
