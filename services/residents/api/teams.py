"""Staff coverage, volunteers, their skills and roles (人尽其才: people where they fit)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from contracts import roles as r
from juwei.auth import CompoundId, LocalId, require
from juwei.callers import Caller
from juwei.problems import Problem
from services.residents.api.common import Command, global_id, local_id, runtime_of
from services.residents.domain import (
    MAX_BUILDINGS_PER_STAFF,
    BuildingRoles,
    Staff,
    Volunteer,
    find_by_skill,
    staff_coverage,
)
from services.residents.views import buildings, roles, staff_buildings, volunteers

router = APIRouter(tags=["teams"])
StaffOnly = Annotated[Caller, Depends(require(*r.STAFF))]
Organisers = Annotated[Caller, Depends(require(*r.STAFF, r.INFORMATION_OFFICER))]
Anyone = Annotated[
    Caller, Depends(require(*r.STAFF, r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER, r.SAMPLING_VOLUNTEER))
]
LocalIdText = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


class StaffBuildingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"buildings": ["1", "2", "3", "4"]}]})
    buildings: list[LocalIdText] = Field(max_length=100, description="Every building this member covers from now on")


class VolunteerIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"volunteer": "v-0701", "building": "7", "skills": ["spreadsheets"]}]},
    )
    volunteer: LocalIdText
    building: LocalIdText
    skills: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list, max_length=20)


class RoleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "logistics", "shift": "A", "leader": True}]}
    )
    role: Literal["information_officer", "logistics", "sampling_point"]
    shift: Literal["A", "B"] | None = None
    leader: bool = False


def _known_buildings(command: Command) -> set[str]:
    assert command.session is not None
    rows = command.session.execute(select(buildings.c.building).where(buildings.c.compound == command.compound))
    return set(rows.scalars())


@router.put("/compounds/{compound}/staff/{staff}/buildings", summary="Set the buildings a staff member covers")
def assign_staff(
    compound: CompoundId, staff: LocalId, body: StaffBuildingsIn, request: Request, caller: StaffOnly
) -> dict[str, object]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        member = command.load(Staff, staff)
        member.assign([global_id(compound, b) for b in body.buildings], known_buildings=_known_buildings(command))
    return {"staff": staff, "buildings": body.buildings}


@router.get("/compounds/{compound}/coverage", summary="Buildings nobody covers and staff with too many")
def coverage(
    compound: CompoundId,
    request: Request,
    caller: StaffOnly,
    max_buildings: Annotated[int, Query(ge=1, le=25)] = MAX_BUILDINGS_PER_STAFF,
) -> dict[str, object]:
    caller.require_scope(compound)
    with runtime_of(request).database.reading() as session:
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


@router.post("/compounds/{compound}/volunteers", status_code=201, summary="Enlist a volunteer with their skills")
def enlist(compound: CompoundId, body: VolunteerIn, request: Request, caller: Organisers) -> dict[str, object]:
    caller.require_scope(compound, body.building)
    command = Command(request, caller, compound)
    with command.unit():
        if global_id(compound, body.building) not in _known_buildings(command):
            raise Problem(404, f"building {body.building} is not registered", "building-unknown")
        command.load(Volunteer, body.volunteer).enlist(global_id(compound, body.building), body.skills)
    return {"volunteer": body.volunteer, "building": body.building}


@router.delete(
    "/compounds/{compound}/volunteers/{volunteer}",
    summary="Stand a volunteer down: their roles are released and every key they hold ends",
    responses={404: {"description": "No such volunteer"}, 409: {"description": "Already stood down"}},
)
def stand_down(
    compound: CompoundId,
    volunteer: LocalId,
    request: Request,
    caller: StaffOnly,
    reason: Annotated[str, Query(max_length=200)] = "",
) -> dict[str, object]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    with command.unit():
        person = command.load(Volunteer, volunteer)
        if not person.exists:
            raise Problem(404, f"volunteer {volunteer} is not enlisted in compound {compound}", "volunteer-unknown")
        assert person.building is not None
        building = local_id(person.building)
        caller.require_scope(compound, building)
        team = command.load(BuildingRoles, building)
        released = team.roles_of(person.id)
        for role in released:
            team.release(person.id, role, reason or "stood down")
        person.stand_down(reason)
    return {"volunteer": volunteer, "building": building, "released": released, "stood_down": True}


def parse_buildings(spec: str | None) -> set[str] | None:
    """ "1-5,8" → {"1","2","3","4","5","8"}: how the committee names groups of buildings."""
    if not spec:
        return None
    chosen: set[str] = set()
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            low, _, high = part.partition("-")
            if not (low.isdigit() and high.isdigit()) or int(low) > int(high) or int(high) - int(low) > 500:
                raise Problem(422, f"buildings: {part!r} is not a range like 1-5", "validation")
            chosen.update(str(n) for n in range(int(low), int(high) + 1))
        elif part:
            chosen.add(part)
    return chosen


@router.get("/compounds/{compound}/volunteers", summary="Volunteers, optionally by skill and buildings")
def find_volunteers(
    compound: CompoundId,
    request: Request,
    caller: Organisers,
    skill: Annotated[str | None, Query(max_length=40, examples=["spreadsheets"])] = None,
    buildings_: Annotated[str | None, Query(alias="buildings", max_length=200, examples=["1-5"])] = None,
) -> dict[str, object]:
    caller.require_scope(compound)
    wanted = parse_buildings(buildings_)
    if caller.buildings is not None:  # an information officer sees the volunteers of their own buildings
        wanted = set(caller.buildings) if wanted is None else wanted & set(caller.buildings)
    with runtime_of(request).database.reading() as session:
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


def _enlisted(command: Command) -> dict[str, str]:
    assert command.session is not None
    rows = command.session.execute(
        select(volunteers.c.volunteer, volunteers.c.building).where(volunteers.c.compound == command.compound)
    )
    return {volunteer: building for volunteer, building in rows}


@router.put(
    "/compounds/{compound}/buildings/{building}/roles/{volunteer}",
    summary="Give a volunteer a role in their building (a new information officer replaces the old one)",
)
def assign_role(
    compound: CompoundId, building: LocalId, volunteer: LocalId, body: RoleIn, request: Request, caller: StaffOnly
) -> dict[str, object]:
    caller.require_scope(compound, building)
    command = Command(request, caller, compound)
    with command.unit():
        team = command.load(BuildingRoles, building)
        team.assign(
            global_id(compound, volunteer), body.role, enlisted=_enlisted(command), shift=body.shift, leader=body.leader
        )
        replaced = team.pending()[-1].replaces  # type: ignore[attr-defined]
    return {"volunteer": volunteer, "role": body.role, "replaces": local_id(replaced) if replaced else None}


@router.delete(
    "/compounds/{compound}/buildings/{building}/roles/{volunteer}/{role}", summary="Release a volunteer from a role"
)
def release_role(
    compound: CompoundId,
    building: LocalId,
    volunteer: LocalId,
    role: Literal["information_officer", "logistics", "sampling_point"],
    request: Request,
    caller: StaffOnly,
    reason: Annotated[str, Query(max_length=200)] = "",
) -> dict[str, object]:
    caller.require_scope(compound, building)
    command = Command(request, caller, compound)
    with command.unit():
        command.load(BuildingRoles, building).release(global_id(compound, volunteer), role, reason)
    return {"volunteer": volunteer, "role": role, "released": True}


@router.get("/compounds/{compound}/buildings/{building}/roles", summary="The volunteer team of one building")
def building_team(compound: CompoundId, building: LocalId, request: Request, caller: Anyone) -> dict[str, object]:
    caller.require_scope(compound, building)
    with runtime_of(request).database.reading() as session:
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
