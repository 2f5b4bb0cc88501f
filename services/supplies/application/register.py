"""The register as supplies knows it (its copy of ``juwei.residents``): buildings, residents, logistics groups,
information officers, and what a key may see of them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from contracts.ids import global_id
from juwei.aggregate import NotFound
from juwei.callers import Caller, Forbidden
from juwei.session import Session
from services.supplies.domain import Batch, HouseholdFacts
from services.supplies.views import FLAGS, buildings, households, residents, volunteer_roles


def building_known(session: Session, compound: str, building: str) -> str:
    """The district-wide id of a registered building of the compound."""
    building_id = global_id(compound, building)
    if session.execute(select(buildings.c.building).where(buildings.c.building == building_id)).first() is None:
        raise NotFound(f"building {building} is not registered", code="building-unknown")
    return building_id


def resident_row(session: Session, compound: str, resident: str) -> dict[str, Any]:
    row = (
        session.execute(select(residents).where(residents.c.resident == global_id(compound, resident)))
        .mappings()
        .first()
    )
    if row is None or row["erased"]:
        raise NotFound(f"resident {resident} is not registered", code="resident-unknown")
    return dict(row)


def logistics_group(session: Session, building: str) -> dict[str, str | None]:
    """volunteer → shift of one building's logistics group (district-wide ids)."""
    rows = session.execute(
        select(volunteer_roles.c.volunteer, volunteer_roles.c.shift).where(
            volunteer_roles.c.building == building, volunteer_roles.c.role == "logistics"
        )
    )
    return {volunteer: shift for volunteer, shift in rows}


def logistics_leader(session: Session, building: str) -> str | None:
    return session.execute(
        select(volunteer_roles.c.volunteer).where(
            volunteer_roles.c.building == building,
            volunteer_roles.c.role == "logistics",
            volunteer_roles.c.leader.is_(True),
        )
    ).scalar()


def information_officer(session: Session, building: str) -> str | None:
    return session.execute(
        select(volunteer_roles.c.volunteer).where(
            volunteer_roles.c.building == building, volunteer_roles.c.role == "information_officer"
        )
    ).scalar()


def visible_buildings(caller: Caller, wanted: str | None) -> set[str] | None:
    """The local building ids a listing may show: the caller's own buildings, narrowed by ``wanted``."""
    if wanted is not None:
        if caller.buildings is not None and wanted not in caller.buildings:
            raise Forbidden(f"this key may not see building {wanted}")
        return {wanted}
    return set(caller.buildings) if caller.buildings is not None else None


def household_facts(session: Session, compound: str, batch: Batch) -> list[HouseholdFacts]:
    """The targets' households with each living member's needs flags (erased residents do not count)."""
    target_buildings, listed = batch.targets()
    wanted_buildings, wanted = set(target_buildings), set(listed)
    members: dict[str, list[frozenset[str]]] = {}
    for row in session.execute(
        select(residents).where(residents.c.compound == compound, residents.c.erased.is_(False))
    ).mappings():
        members.setdefault(row["household"], []).append(frozenset(flag for flag in FLAGS if row[flag]))
    return [
        HouseholdFacts(row.household, row.building, row.floor, row.room, tuple(members.get(row.household, ())))
        for row in session.execute(select(households).where(households.c.compound == compound))
        if row.building in wanted_buildings or row.household in wanted
    ]
