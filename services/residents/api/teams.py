"""Routes of staff coverage, volunteers, their skills and roles (人尽其才: people where they fit)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from contracts.access import Officers, Staff, Volunteers
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from juwei.problems import Problem
from services.residents.application import teams
from services.residents.domain import MAX_BUILDINGS_PER_STAFF
from services.residents.models import (
    BuildingTeamOut,
    CoverageOut,
    RoleIn,
    RoleOut,
    RoleReleasedOut,
    StaffBuildingsIn,
    StaffBuildingsOut,
    StoodDownOut,
    VolunteerIn,
    VolunteerOut,
    VolunteersOut,
)

router = APIRouter(tags=["teams"])


@router.put(
    "/compounds/{compound}/staff/{staff}/buildings",
    response_model=StaffBuildingsOut,
    summary="Set the buildings a staff member covers",
)
def assign_staff(
    compound: CompoundId, staff: LocalId, body: StaffBuildingsIn, caller: Staff, unit: Unit
) -> dict[str, object]:
    teams.assign_staff(unit, staff, body)
    return {"staff": staff, "buildings": body.buildings}


@router.get(
    "/compounds/{compound}/coverage",
    response_model=CoverageOut,
    summary="Buildings nobody covers and staff with too many",
)
def coverage(
    compound: CompoundId,
    caller: Staff,
    runtime: RuntimeOf,
    max_buildings: Annotated[int, Query(ge=1, le=25)] = MAX_BUILDINGS_PER_STAFF,
) -> dict[str, object]:
    return teams.coverage(runtime, compound, max_buildings)


@router.post(
    "/compounds/{compound}/volunteers",
    status_code=201,
    response_model=VolunteerOut,
    summary="Enlist a volunteer with their skills",
)
def enlist(compound: CompoundId, body: VolunteerIn, caller: Officers, unit: Unit) -> dict[str, object]:
    teams.enlist(unit, caller, body)
    return {"volunteer": body.volunteer, "building": body.building}


@router.delete(
    "/compounds/{compound}/volunteers/{volunteer}",
    response_model=StoodDownOut,
    summary="Stand a volunteer down: their roles are released and every key they hold ends",
    responses={404: {"description": "No such volunteer"}, 409: {"description": "Already stood down"}},
)
def stand_down(
    compound: CompoundId,
    volunteer: LocalId,
    caller: Staff,
    unit: Unit,
    reason: Annotated[str, Query(max_length=200)] = "",
) -> dict[str, object]:
    return teams.stand_down(unit, caller, volunteer, reason)


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


@router.get(
    "/compounds/{compound}/volunteers",
    response_model=VolunteersOut,
    summary="Volunteers, optionally by skill and buildings",
)
def find_volunteers(
    compound: CompoundId,
    caller: Officers,
    runtime: RuntimeOf,
    skill: Annotated[str | None, Query(max_length=40, examples=["spreadsheets"])] = None,
    buildings_: Annotated[str | None, Query(alias="buildings", max_length=200, examples=["1-5"])] = None,
) -> dict[str, object]:
    return teams.find_volunteers(runtime, caller, compound, skill, parse_buildings(buildings_))


@router.put(
    "/compounds/{compound}/buildings/{building}/roles/{volunteer}",
    response_model=RoleOut,
    summary="Give a volunteer a role in their building (a new information officer replaces the old one)",
)
def assign_role(
    compound: CompoundId, building: LocalId, volunteer: LocalId, body: RoleIn, caller: Staff, unit: Unit
) -> dict[str, object]:
    replaced = teams.assign_role(unit, caller, building, volunteer, body)
    return {"volunteer": volunteer, "role": body.role, "replaces": replaced}


@router.delete(
    "/compounds/{compound}/buildings/{building}/roles/{volunteer}/{role}",
    response_model=RoleReleasedOut,
    summary="Release a volunteer from a role",
)
def release_role(
    compound: CompoundId,
    building: LocalId,
    volunteer: LocalId,
    role: Literal["information_officer", "logistics", "sampling_point"],
    caller: Staff,
    unit: Unit,
    reason: Annotated[str, Query(max_length=200)] = "",
) -> dict[str, object]:
    teams.release_role(unit, caller, building, volunteer, role, reason)
    return {"volunteer": volunteer, "role": role, "released": True}


@router.get(
    "/compounds/{compound}/buildings/{building}/roles",
    response_model=BuildingTeamOut,
    summary="The volunteer team of one building",
)
def building_team(compound: CompoundId, building: LocalId, caller: Volunteers, runtime: RuntimeOf) -> dict[str, object]:
    return teams.building_team(runtime, caller, compound, building)
