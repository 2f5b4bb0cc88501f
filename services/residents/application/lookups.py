"""What the register answers: the compound's buildings, a building's households, one resident, and the audit of
revealed identities. Staff keys that name buildings read the register of those buildings only (as they edit
only those); the compound's list of buildings stays compound-wide.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from sqlalchemy import func, select

from contracts.ids import global_id, local_id
from juwei.aggregate import NotFound
from juwei.audit import Reading, sensitive_reads_table
from juwei.callers import Caller
from juwei.service import Runtime
from services.residents import views
from services.residents.application.disclosure import disclosure, household_out, show
from services.residents.application.register import resident_row
from services.residents.models import (
    BuildingHouseholds,
    BuildingList,
    BuildingOut,
    HouseholdMembers,
    IdentityRead,
    IdentityReads,
    ResidentOut,
)


def _natural(text: str) -> list[Any]:
    """Building 2 before building 10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def list_buildings(runtime: Runtime, compound: str) -> BuildingList:
    """The compound's buildings, with how many households and residents each has."""
    with runtime.database.reading() as session:
        buildings = session.execute(select(views.buildings).where(views.buildings.c.compound == compound)).all()
        households = dict(
            session.execute(
                select(views.households.c.building, func.count())
                .where(views.households.c.compound == compound)
                .group_by(views.households.c.building)
            ).all()
        )
        residents = dict(
            session.execute(
                select(views.residents.c.building, func.count())
                .where(views.residents.c.compound == compound, views.residents.c.erased.is_(False))
                .group_by(views.residents.c.building)
            ).all()
        )
    out = [
        BuildingOut(
            building=local_id(row.building),
            number=row.number,
            floors=row.floors,
            rooms_per_floor=row.rooms_per_floor,
            lifts=row.lifts,
            lift_capacity=row.lift_capacity,
            households=households.get(row.building, 0),
            residents=residents.get(row.building, 0),
        )
        for row in buildings
    ]
    return BuildingList(buildings=sorted(out, key=lambda b: _natural(b.number)))


def building_households(
    runtime: Runtime, caller: Caller, compound: str, building: str, *, reveal: bool, reading: Reading
) -> BuildingHouseholds:
    """Households of a building with their members (masked unless revealed; reveals are audited)."""
    gid = global_id(compound, building)
    # Everyone reads the register of the buildings on their key, staff too (a key without buildings: all).
    caller.require_scope(compound, building)
    disclosure(caller, reveal)
    with runtime.database.reading() as session:
        if session.execute(select(views.buildings.c.building).where(views.buildings.c.building == gid)).first() is None:
            raise NotFound(f"building {building} is not registered in compound {compound}")
        homes = session.execute(
            select(views.households)
            .where(views.households.c.building == gid)
            .order_by(views.households.c.floor, views.households.c.room, views.households.c.household)
        ).all()
    query = select(views.residents).where(views.residents.c.building == gid).order_by(views.residents.c.resident)
    members = show(runtime, caller, compound, query, reveal=reveal, households=homes, reading=reading)
    by_household: dict[str, list[ResidentOut]] = {}
    for member in members:
        by_household.setdefault(member.household, []).append(member)
    return BuildingHouseholds(
        building=building,
        revealed=reveal,
        households=[
            HouseholdMembers(**household_out(home).model_dump(), members=by_household.get(local_id(home.household), []))
            for home in homes
        ],
    )


def one_resident(
    runtime: Runtime, caller: Caller, compound: str, resident: str, *, reveal: bool, reading: Reading
) -> ResidentOut:
    """One resident (masked unless revealed; reveals are audited)."""
    disclosure(caller, reveal)
    with runtime.database.reading() as session:
        row = resident_row(session, compound, resident)
    caller.require_scope(compound, local_id(row.building))
    query = select(views.residents).where(views.residents.c.resident == row.resident)
    return show(runtime, caller, compound, query, reveal=reveal, reading=reading)[0]


def identity_reads(
    runtime: Runtime, caller: Caller, compound: str, resident: str | None, after: int, limit: int
) -> IdentityReads:
    """The audit log of unmasked identity reads (PIPL accountability)."""
    table = sensitive_reads_table
    query = select(table).where(table.c.compound == compound, table.c.kind == "identity", table.c.seq > after)
    if resident is not None:
        query = query.where(table.c.subject == global_id(compound, resident))
    if caller.buildings is not None:  # staff of some buildings account for the reads in theirs
        query = query.where(table.c.building.in_(sorted(global_id(compound, b) for b in caller.buildings)))
    with runtime.database.reading() as session:
        rows = session.execute(query.order_by(table.c.seq).limit(limit)).all()
    reads = [
        IdentityRead(
            seq=row.seq,
            at=row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC),  # SQLite keeps no time zone
            key_id=row.key_id,
            role=row.role,
            resident=local_id(row.subject),
            fields=[f for f in row.fields.split(",") if f],
            request_id=row.request_id,
        )
        for row in rows
    ]
    return IdentityReads(reads=reads, next_after=rows[-1].seq if rows else after)
