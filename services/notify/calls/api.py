"""Routes of the call lists: the officer's calls for a building, the done mark, staff's overdue calls."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from contracts.access import Officers, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from services.notify.calls import application
from services.notify.calls.models import CallListOut, CallOut, OverdueOut

router = APIRouter(tags=["calls"])
PROBLEMS = {403: {"description": "Another building's calls"}, 404: {"description": "No such call"}}


@router.get(
    "/compounds/{compound}/buildings/{building}/calls",
    response_model=CallListOut,
    summary="Households of the building in no group, to call or visit with each urgent message",
    responses=PROBLEMS,
)
def building_calls(
    compound: CompoundId,
    building: LocalId,
    caller: Officers,
    runtime: RuntimeOf,
    status: Literal["open", "done", "all"] = "open",
) -> CallListOut:
    return application.building_calls(runtime, caller, compound, building, status)


@router.post(
    "/compounds/{compound}/calls/{call}/done",
    response_model=CallOut,
    summary="Mark a call done (the household was told); marking it again changes nothing",
    responses=PROBLEMS,
)
def mark_done(compound: CompoundId, call: LocalId, caller: Officers, unit: Unit) -> CallOut:
    return application.mark_done(unit, caller, call)


@router.get(
    "/compounds/{compound}/calls/overdue",
    response_model=OverdueOut,
    summary="Calls not done within their deadline, across the compound's buildings",
)
def overdue_calls(compound: CompoundId, caller: Staff, runtime: RuntimeOf) -> OverdueOut:
    return application.overdue_calls(runtime, compound)
