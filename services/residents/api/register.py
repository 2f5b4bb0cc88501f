"""Routes of the register: buildings, households and residents (identity sealed, masked, audited), erasure.

Each route parses its request, calls a use case (``services.residents.application``) and presents what comes
back. Views show identity masked to everyone; ``?reveal=true`` shows it to committee staff, district operators
and the building's information officer, and each such read is audited. Health flags are shown only to roles
with a health grant (``contracts.roles.HEALTH_ROLES``): not to logistics volunteers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from contracts.access import BuildingTeam, CompoundPeople, Officers, Staff
from juwei.audit import AUDITED_READ, reading_of
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from juwei.paging import MAX_POSITION, Limit
from services.residents.application import lookups, register
from services.residents.application.disclosure import household_out, resident_out
from services.residents.models import (
    ID_PATTERN,
    BuildingHouseholds,
    BuildingIn,
    BuildingList,
    BuildingOut,
    HouseholdIn,
    HouseholdOut,
    IdentityIn,
    IdentityReads,
    MoveIn,
    NeedsPatch,
    RepresentativeIn,
    ResidentIn,
    ResidentOut,
)

router = APIRouter(tags=["register"])

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or an unknown or revoked one (application/problem+json)"},
    403: {"description": "The key's role or scope does not cover this compound or building"},
    422: {"description": "Invalid input; `errors` names each field (application/problem+json)"},
}


# --- buildings --------------------------------------------------------------------------------------------


@router.post(
    "/compounds/{compound}/buildings",
    status_code=201,
    response_model=BuildingOut,
    summary="Register a building",
    responses={**PROBLEM_RESPONSES, 409: {"description": "The building is already registered"}},
)
def register_building(compound: CompoundId, body: BuildingIn, caller: Staff, unit: Unit) -> BuildingOut:
    register.register_building(unit, caller, body)
    return BuildingOut(**body.model_dump())


@router.get(
    "/compounds/{compound}/buildings",
    response_model=BuildingList,
    summary="The compound's buildings, with how many households and residents each has",
    responses=PROBLEM_RESPONSES,
)
def list_buildings(compound: CompoundId, caller: CompoundPeople, runtime: RuntimeOf) -> BuildingList:
    return lookups.list_buildings(runtime, compound)


@router.get(
    "/compounds/{compound}/buildings/{building}/households",
    response_model=BuildingHouseholds,
    response_model_exclude_unset=True,
    summary="Households of a building with their members (masked unless revealed; reveals are audited)",
    openapi_extra=AUDITED_READ,
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such building"}},
)
def building_households(
    compound: CompoundId,
    building: LocalId,
    request: Request,
    caller: BuildingTeam,
    runtime: RuntimeOf,
    reveal: Annotated[
        bool, Query(description="Show name, phone and ID number unmasked (staff and the information officer)")
    ] = False,
) -> BuildingHouseholds:
    reading = reading_of(request, f"register: households of building {building}")
    return lookups.building_households(runtime, caller, compound, building, reveal=reveal, reading=reading)


# --- households -------------------------------------------------------------------------------------------


@router.post(
    "/compounds/{compound}/households",
    status_code=201,
    response_model=HouseholdOut,
    summary="Register a household in one room of a building",
    responses={
        **PROBLEM_RESPONSES,
        404: {"description": "No such building"},
        409: {"description": "The household is already registered"},
    },
)
def register_household(compound: CompoundId, body: HouseholdIn, caller: Officers, unit: Unit) -> HouseholdOut:
    register.register_household(unit, caller, body)
    return HouseholdOut(**body.model_dump())


@router.post(
    "/compounds/{compound}/households/{household}/representative",
    response_model=HouseholdOut,
    summary="Choose the household's representative (the member in the building's group)",
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such household"}, 409: {"description": "Not a member"}},
)
def choose_representative(
    compound: CompoundId, household: LocalId, body: RepresentativeIn, caller: Officers, unit: Unit
) -> HouseholdOut:
    return household_out(register.choose_representative(unit, caller, household, body))


# --- residents --------------------------------------------------------------------------------------------


@router.post(
    "/compounds/{compound}/households/{household}/residents",
    status_code=201,
    response_model=ResidentOut,
    response_model_exclude_unset=True,
    summary="Register a resident in a household (identity sealed, never published)",
    responses={
        **PROBLEM_RESPONSES,
        404: {"description": "No such household"},
        409: {"description": "The resident is already registered (or was erased)"},
    },
)
def register_resident(
    compound: CompoundId, household: LocalId, body: ResidentIn, caller: Officers, unit: Unit
) -> ResidentOut:
    register.register_resident(unit, caller, household, body)
    return resident_out(unit.runtime, caller, unit.compound, body.resident)


@router.patch(
    "/compounds/{compound}/households/{household}/residents/{resident}/needs",
    response_model=ResidentOut,
    response_model_exclude_unset=True,
    summary="Change a resident's needs flags (only the flags sent)",
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such resident in this household"}},
)
def change_needs(
    compound: CompoundId, household: LocalId, resident: LocalId, body: NeedsPatch, caller: Officers, unit: Unit
) -> ResidentOut:
    register.change_needs(unit, caller, household, resident, body)
    return resident_out(unit.runtime, caller, unit.compound, resident)


@router.post(
    "/compounds/{compound}/households/{household}/residents/{resident}/move",
    response_model=ResidentOut,
    response_model_exclude_unset=True,
    summary="Move a resident to another household (both households record their half)",
    responses={
        **PROBLEM_RESPONSES,
        404: {"description": "No such resident or household"},
        409: {"description": "Already living there"},
    },
)
def move_resident(
    compound: CompoundId, household: LocalId, resident: LocalId, body: MoveIn, caller: Officers, unit: Unit
) -> ResidentOut:
    register.move_resident(unit, caller, household, resident, body)
    return resident_out(unit.runtime, caller, unit.compound, resident)


@router.put(
    "/compounds/{compound}/households/{household}/residents/{resident}/identity",
    response_model=ResidentOut,
    response_model_exclude_unset=True,
    summary="Correct a resident's name, phone or ID number (sealed again, never published)",
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such resident in this household"}},
)
def correct_identity(
    compound: CompoundId, household: LocalId, resident: LocalId, body: IdentityIn, caller: Officers, unit: Unit
) -> ResidentOut:
    register.correct_identity(unit, caller, household, resident, body)
    return resident_out(unit.runtime, caller, unit.compound, resident)


@router.delete(
    "/compounds/{compound}/residents/{resident}",
    status_code=204,
    response_class=Response,
    summary="Erase a resident: their identity becomes unreadable everywhere (crypto-shredding)",
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such resident"}},
)
def erase_resident(compound: CompoundId, resident: LocalId, caller: Staff, unit: Unit) -> Response:
    register.erase_resident(unit, caller, resident)
    return Response(status_code=204)


@router.get(
    "/compounds/{compound}/residents/{resident}",
    response_model=ResidentOut,
    response_model_exclude_unset=True,
    summary="One resident (masked unless revealed; reveals are audited)",
    openapi_extra=AUDITED_READ,
    responses={**PROBLEM_RESPONSES, 404: {"description": "No such resident"}},
)
def get_resident(
    compound: CompoundId,
    resident: LocalId,
    request: Request,
    caller: BuildingTeam,
    runtime: RuntimeOf,
    reveal: Annotated[bool, Query(description="Show identity unmasked (staff and the information officer)")] = False,
) -> ResidentOut:
    reading = reading_of(request, "register: one resident")
    return lookups.one_resident(runtime, caller, compound, resident, reveal=reveal, reading=reading)


@router.get(
    "/compounds/{compound}/identity-reads",
    response_model=IdentityReads,
    summary="The audit log of unmasked identity reads (PIPL accountability)",
    responses=PROBLEM_RESPONSES,
)
def identity_reads(
    compound: CompoundId,
    caller: Staff,
    runtime: RuntimeOf,
    resident: Annotated[str | None, Query(pattern=ID_PATTERN, description="Only reads of this resident")] = None,
    after: Annotated[int, Query(ge=0, le=MAX_POSITION, description="`seq` of the last read already seen")] = 0,
    limit: Limit = 100,
) -> IdentityReads:
    return lookups.identity_reads(runtime, caller, compound, resident, after, limit)
