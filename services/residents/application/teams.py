"""Staff coverage, volunteers, their skills and roles (人尽其才: people where they fit)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from contracts.ids import global_id, local_id
from juwei.aggregate import NotFound
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.unit_of_work import UnitOfWork
from services.residents.domain import BuildingRoles, Staff, Volunteer, find_by_skill, staff_coverage
from services.residents.models import RoleIn, StaffBuildingsIn, VolunteerIn
from services.residents.views import buildings, roles, staff_buildings, volunteers


def _known_buildings(unit: UnitOfWork) -> set[str]:
    rows = unit.session.execute(select(buildings.c.building).where(buildings.c.compound == unit.compound))
    return set(rows.scalars())


def _enlisted(unit: UnitOfWork) -> dict[str, str]:
    rows = unit.session.execute(
        select(volunteers.c.volunteer, volunteers.c.building).where(volunteers.c.compound == unit.compound)
    )
    return {volunteer: building for volunteer, building in rows}


def assign_staff(unit: UnitOfWork, staff: str, body: StaffBuildingsIn) -> None:
    """Set the buildings a staff member covers (the first assignment registers them)."""
    with unit:
        member = unit.load_or_new(Staff, global_id(unit.compound, staff))
        member.assign([global_id(unit.compound, b) for b in body.buildings], known_buildings=_known_buildings(unit))


def coverage(runtime: Runtime, compound: str, max_buildings: int) -> dict[str, Any]:
    """Buildings nobody covers and staff with too many."""
    with runtime.database.reading() as session:
        every = (
            session.execute(
                select(buildings.c.building).where(buildings.c.compound == compound).order_by(buildings.c.number)
            )
            .scalars()
            .all()
        )
        assigned: dict[str, list[str]] = {}
        for staff, building in session.execute(
            select(staff_buildings.c.staff, staff_buildings.c.building).where(staff_buildings.c.compound == compound)
        ):
            assigned.setdefault(local_id(staff), []).append(building)
    found = staff_coverage(assigned, every, max_buildings)
    return {
        "staff": {s: sorted(local_id(b) for b in bs) for s, bs in sorted(assigned.items())},
        "uncovered": [local_id(b) for b in found.uncovered],
        "overloaded": found.overloaded,
        "max_buildings": max_buildings,
    }


def enlist(unit: UnitOfWork, caller: Caller, body: VolunteerIn) -> None:
    """Enlist a volunteer with their skills, in a registered building."""
    caller.require_scope(unit.compound, body.building)
    with unit:
        if global_id(unit.compound, body.building) not in _known_buildings(unit):
            raise NotFound(f"building {body.building} is not registered", code="building-unknown")
        volunteer = unit.load_or_new(Volunteer, global_id(unit.compound, body.volunteer))
        volunteer.enlist(global_id(unit.compound, body.building), body.skills)


def stand_down(unit: UnitOfWork, caller: Caller, volunteer: str, reason: str) -> dict[str, Any]:
    """Stand a volunteer down: their roles are released (and every key they hold ends, see ``Departures``)."""
    with unit:
        person = unit.load(Volunteer, global_id(unit.compound, volunteer))
        assert person.building is not None
        building = local_id(person.building)
        caller.require_scope(unit.compound, building)
        team = unit.load_or_new(BuildingRoles, person.building)
        released = team.roles_of(person.id)
        for role in released:
            team.release(person.id, role, reason or "stood down")
        person.stand_down(reason)
    return {"volunteer": volunteer, "building": building, "released": released, "stood_down": True}


def find_volunteers(
    runtime: Runtime, caller: Caller, compound: str, skill: str | None, wanted: set[str] | None
) -> dict[str, Any]:
    """Volunteers, optionally by skill and buildings (an information officer sees their own buildings')."""
    if caller.buildings is not None:
        wanted = set(caller.buildings) if wanted is None else wanted & set(caller.buildings)
    with runtime.database.reading() as session:
        rows = session.execute(select(volunteers).where(volunteers.c.compound == compound)).mappings().all()
    everyone = [(local_id(row["volunteer"]), local_id(row["building"]), json.loads(row["skills"])) for row in rows]
    if skill:
        chosen = find_by_skill(everyone, skill, wanted)
        skills_of = {v: s for v, _, s in everyone}
        found = [{"volunteer": v, "building": b, "skills": skills_of[v]} for v, b in chosen]
    else:
        found = [
            {"volunteer": v, "building": b, "skills": s}
            for v, b, s in sorted(everyone, key=lambda item: (item[1], item[0]))
            if wanted is None or b in wanted
        ]
    return {"volunteers": found}


def assign_role(unit: UnitOfWork, caller: Caller, building: str, volunteer: str, body: RoleIn) -> str | None:
    """Give a volunteer a role in their building; returns whom they replace (a new information officer)."""
    caller.require_scope(unit.compound, building)
    with unit:
        team = unit.load_or_new(BuildingRoles, global_id(unit.compound, building))
        team.assign(
            global_id(unit.compound, volunteer),
            body.role,
            enlisted=_enlisted(unit),
            shift=body.shift,
            leader=body.leader,
        )
        replaced = team.pending()[-1].replaces  # type: ignore[attr-defined]
    return local_id(replaced) if replaced else None


def release_role(unit: UnitOfWork, caller: Caller, building: str, volunteer: str, role: str, reason: str) -> None:
    caller.require_scope(unit.compound, building)
    with unit:
        team = unit.load_or_new(BuildingRoles, global_id(unit.compound, building))
        team.release(global_id(unit.compound, volunteer), role, reason)


def building_team(runtime: Runtime, caller: Caller, compound: str, building: str) -> dict[str, Any]:
    """The volunteer team of one building: its information officer, its logistics group by shift, its samplers."""
    caller.require_scope(compound, building)
    with runtime.database.reading() as session:
        rows = (
            session.execute(
                select(roles).where(roles.c.building == global_id(compound, building)).order_by(roles.c.volunteer)
            )
            .mappings()
            .all()
        )
    officer = next((local_id(row["volunteer"]) for row in rows if row["role"] == "information_officer"), None)
    logistics = [
        {"volunteer": local_id(row["volunteer"]), "shift": row["shift"], "leader": row["leader"]}
        for row in rows
        if row["role"] == "logistics"
    ]
    sampling = [local_id(row["volunteer"]) for row in rows if row["role"] == "sampling_point"]
    return {
        "building": building,
        "information_officer": officer,
        "logistics": {
            "A": [v for v in logistics if v["shift"] == "A"],
            "B": [v for v in logistics if v["shift"] == "B"],
        },
        "sampling_point": sampling,
    }
