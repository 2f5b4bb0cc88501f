"""Cases and transfers (转运), the building's answer to "when will the case be transferred?", disinfection."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from contracts.ids import global_id, local_id
from contracts.testing import StoredPhoto
from juwei.aggregate import Invalid, NotFound
from juwei.service import Runtime
from juwei.session import Session
from juwei.unit_of_work import UnitOfWork
from services.testing.application.clock import Clock, now
from services.testing.domain import Case, Disinfection
from services.testing.models import CaseCloseIn, TransferIn, TransferredIn
from services.testing.views import buildings, cases, close_contacts, disinfections


def case_row(session: Session, compound: str, case: str) -> Any:
    row = (
        session.execute(select(cases).where(cases.c.case == global_id(compound, case), cases.c.compound == compound))
        .mappings()
        .first()
    )
    if row is None:
        raise Case.unknown(case)
    return row


def staff_view(clock: Clock, session: Session, row: Any) -> dict[str, Any]:
    contacts = session.execute(
        select(close_contacts.c.resident)
        .where(close_contacts.c.case == row["case"])
        .order_by(close_contacts.c.resident)
    ).scalars()
    return {
        "case": local_id(row["case"]),
        "resident": local_id(row["resident"]),
        "household": local_id(row["household"]),
        "building": local_id(row["building"]),
        "status": row["status"],
        "confirmed_on": row["confirmed_on"].isoformat(),
        "transfer_scheduled_at": clock.shown(row["scheduled_at"]),
        "transferred_at": clock.shown(row["transferred_at"]),
        "facility": row["facility"],
        "closed_at": clock.shown(row["closed_at"]),
        "outcome": row["outcome"],
        "close_contacts": [local_id(c) for c in contacts],
    }


def list_cases(runtime: Runtime, compound: str, status: str | None) -> dict[str, Any]:
    """Cases of the compound (staff: with resident ids)."""
    clock = Clock.of(runtime)
    with runtime.database.reading() as session:
        query = select(cases).where(cases.c.compound == compound)
        if status is not None:
            query = query.where(cases.c.status == status)
        rows = session.execute(query.order_by(cases.c.confirmed_on, cases.c.case)).mappings().all()
        return {"cases": [staff_view(clock, session, row) for row in rows]}


CASE_STATUSES = ("confirmed", "transfer-scheduled", "transferred", "closed")


def case_counts(runtime: Runtime, compound: str) -> dict[str, Any]:
    """How many cases the compound has in each state: no ids (what the subdistrict's overview shows)."""
    with runtime.database.reading() as session:
        rows = session.execute(
            select(cases.c.status, func.count()).where(cases.c.compound == compound).group_by(cases.c.status)
        ).all()
    found = {status: int(count) for status, count in rows}
    return {
        "compound": compound,
        "by_status": {status: found.get(status, 0) for status in CASE_STATUSES},
        "total": sum(found.values()),
    }


def get_case(runtime: Runtime, compound: str, case: str) -> dict[str, Any]:
    with runtime.database.reading() as session:
        return staff_view(Clock.of(runtime), session, case_row(session, compound, case))


def schedule_transfer(unit: UnitOfWork, case: str, body: TransferIn) -> dict[str, Any]:
    """Schedule (or reschedule) the transfer; the case as it reads afterwards."""
    with unit:
        found = unit.load(Case, global_id(unit.compound, case))
        found.schedule_transfer(Clock.of(unit.runtime).local(body.scheduled_at))
    return get_case(unit.runtime, unit.compound, case)


def transferred(unit: UnitOfWork, case: str, body: TransferredIn) -> dict[str, Any]:
    """The case left for central isolation."""
    at = Clock.of(unit.runtime).local(body.transferred_at) if body.transferred_at else now()
    with unit:
        unit.load(Case, global_id(unit.compound, case)).transferred(at, now=now(), facility=body.facility)
    return get_case(unit.runtime, unit.compound, case)


def close(unit: UnitOfWork, case: str, body: CaseCloseIn) -> dict[str, Any]:
    """The case returned home or recovered."""
    at = Clock.of(unit.runtime).local(body.closed_at) if body.closed_at else now()
    with unit:
        unit.load(Case, global_id(unit.compound, case)).close(body.outcome, at, now=now())
    return get_case(unit.runtime, unit.compound, case)


def require_building(session: Session, compound: str, building: str) -> None:
    known = session.execute(
        select(buildings.c.building).where(buildings.c.building == global_id(compound, building))
    ).first()
    if known is None:
        raise NotFound(f"building {building} is not registered", code="building-unknown")


def building_cases(runtime: Runtime, compound: str, building: str) -> dict[str, Any]:
    """What the building group may know: how many cases, each one's status and transfer time; no ids."""
    clock = Clock.of(runtime)
    with runtime.database.reading() as session:
        require_building(session, compound, building)
        rows = (
            session.execute(
                select(cases).where(cases.c.building == global_id(compound, building)).order_by(cases.c.confirmed_on)
            )
            .mappings()
            .all()
        )
    listed = [
        {
            "number": number,
            "status": row["status"],
            "confirmed_on": row["confirmed_on"].isoformat(),
            "transfer_scheduled_at": clock.shown(row["scheduled_at"]),
            "transferred_at": clock.shown(row["transferred_at"]),
        }
        for number, row in enumerate(rows, start=1)
    ]
    waiting = [c for c in listed if c["status"] in ("confirmed", "transfer-scheduled")]
    return {
        "building": building,
        "open_cases": sum(1 for c in listed if c["status"] != "closed"),
        "awaiting_transfer": len(waiting),
        "cases": listed,
    }


# --- disinfection --------------------------------------------------------------------------------------------


def check_disinfection(runtime: Runtime, compound: str, building: str, case: str | None) -> None:
    """The building is registered, and the case (if one is named) is in it: checked before photos are kept."""
    with runtime.database.reading() as session:
        require_building(session, compound, building)
        if case is not None:
            row = case_row(session, compound, case)
            if local_id(row["building"]) != building:
                raise Invalid(f"case {case} is not in building {building}", code="case-other-building")


def record_disinfection(
    unit: UnitOfWork,
    building: str,
    areas: list[str],
    kept: list[StoredPhoto],
    done_at: datetime | None,
    case: str | None,
) -> dict[str, Any]:
    """Record a disinfection of the building's common areas with the photos already kept."""
    compound = unit.compound
    clock = Clock.of(unit.runtime)
    record_id = global_id(compound, f"d-{secrets.token_hex(5)}")
    with unit:
        unit.load_or_new(Disinfection, record_id).record_done(
            global_id(compound, building),
            clock.local(done_at) if done_at else now(),
            areas,
            kept,
            now=now(),
            case=global_id(compound, case) if case else None,
        )
    with unit.runtime.database.reading() as session:
        row = session.execute(select(disinfections).where(disinfections.c.disinfection == record_id)).mappings().one()
    return disinfection_view(clock, compound, row)


def disinfection_view(clock: Clock, compound: str, row: Any) -> dict[str, Any]:
    record = local_id(row["disinfection"])
    return {
        "disinfection": record,
        "building": local_id(row["building"]),
        "done_at": clock.shown(row["done_at"]),
        "areas": json.loads(row["areas"]),
        "photos": [
            {**photo, "url": f"/compounds/{compound}/disinfections/{record}/photos/{photo['photo']}"}
            for photo in json.loads(row["photos"])
        ],
        "after_case": row["case"] is not None,
    }


def building_disinfections(runtime: Runtime, compound: str, building: str) -> dict[str, Any]:
    """The building's disinfections, newest first."""
    clock = Clock.of(runtime)
    with runtime.database.reading() as session:
        require_building(session, compound, building)
        rows = (
            session.execute(
                select(disinfections)
                .where(disinfections.c.building == global_id(compound, building))
                .order_by(disinfections.c.done_at.desc())
            )
            .mappings()
            .all()
        )
    return {"building": building, "disinfections": [disinfection_view(clock, compound, row) for row in rows]}


def disinfection_photo(runtime: Runtime, compound: str, disinfection: str, photo: str) -> None:
    """That ``photo`` belongs to the disinfection record (the file itself is the album's)."""
    with runtime.database.reading() as session:
        row = session.execute(
            select(disinfections.c.photos).where(
                disinfections.c.disinfection == global_id(compound, disinfection), disinfections.c.compound == compound
            )
        ).first()
    if row is None:
        raise NotFound(f"disinfection {disinfection} is not recorded", code="disinfection-unknown")
    listed = {p["photo"]: p for p in json.loads(row.photos)}
    if photo not in listed:
        raise NotFound("no such photo in this record", code="photo-unknown")
