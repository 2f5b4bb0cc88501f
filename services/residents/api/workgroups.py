"""Routes of the compound's work groups, volunteers' availability and who fits a task."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from contracts.access import BuildingTeam, Officers, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from services.residents.application import workgroups
from services.residents.volunteering import (
    AvailabilityIn,
    AvailabilityOut,
    MembershipOut,
    SuggestionsOut,
    WorkGroupIn,
    WorkGroupNamedOut,
    WorkGroupsOut,
)

router = APIRouter(tags=["work groups"])


@router.put(
    "/compounds/{compound}/work-groups/{group}",
    response_model=WorkGroupNamedOut,
    summary="Set up (or rename) a work group of the whole compound",
)
def name_group(compound: CompoundId, group: LocalId, body: WorkGroupIn, caller: Staff, unit: Unit) -> dict[str, object]:
    workgroups.name_group(unit, group, body)
    return {"group": group, "name": " ".join(body.name.split()), "description": body.description.strip()}


@router.get(
    "/compounds/{compound}/work-groups",
    response_model=WorkGroupsOut,
    summary="The work groups and their members (a key of some buildings: members from those)",
)
def list_groups(compound: CompoundId, caller: BuildingTeam, runtime: RuntimeOf) -> dict[str, object]:
    return workgroups.list_groups(runtime, caller, compound)


@router.put(
    "/compounds/{compound}/work-groups/{group}/members/{volunteer}",
    response_model=MembershipOut,
    summary="A volunteer joins a work group",
    responses={404: {"description": "No such group or volunteer"}, 409: {"description": "Volunteer stood down"}},
)
def join(compound: CompoundId, group: LocalId, volunteer: LocalId, caller: Staff, unit: Unit) -> dict[str, object]:
    changed = workgroups.join(unit, caller, group, volunteer)
    return {"group": group, "volunteer": volunteer, "member": True, "changed": changed}


@router.delete(
    "/compounds/{compound}/work-groups/{group}/members/{volunteer}",
    response_model=MembershipOut,
    summary="A volunteer leaves a work group",
)
def leave(
    compound: CompoundId,
    group: LocalId,
    volunteer: LocalId,
    caller: Staff,
    unit: Unit,
    reason: Annotated[str, Query(max_length=200)] = "",
) -> dict[str, object]:
    workgroups.leave(unit, caller, group, volunteer, reason)
    return {"group": group, "volunteer": volunteer, "member": False, "changed": True}


@router.put(
    "/compounds/{compound}/volunteers/{volunteer}/availability",
    response_model=AvailabilityOut,
    summary="When a volunteer can work (days of the week and hours); replaces what was said before",
)
def set_availability(
    compound: CompoundId, volunteer: LocalId, body: AvailabilityIn, caller: Officers, unit: Unit
) -> dict[str, object]:
    return workgroups.set_availability(unit, caller, volunteer, body)


@router.get(
    "/compounds/{compound}/volunteer-suggestions",
    response_model=SuggestionsOut,
    summary="Who fits a task: by skill or work group, and the hours they are free on the day, best first",
)
def suggestions(
    compound: CompoundId,
    caller: Officers,
    runtime: RuntimeOf,
    skill: Annotated[str | None, Query(max_length=40, examples=["spreadsheets"])] = None,
    group: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$", examples=["data-entry"])] = None,
    day: Annotated[str | None, Query(max_length=9, examples=["mon"])] = None,
    start: Annotated[str | None, Query(max_length=5, examples=["08:00"])] = None,
    end: Annotated[str | None, Query(max_length=5, examples=["12:00"])] = None,
    # Not a page (`limit` is the paged lists' name, up to PAGE_MAX): how many of the best to name.
    top: Annotated[int, Query(ge=1, le=100, description="How many suggestions, best first")] = 10,
) -> dict[str, object]:
    return workgroups.suggestions(
        runtime, caller, compound, skill=skill, group=group, day=day, start=start, end=end, limit=top
    )
