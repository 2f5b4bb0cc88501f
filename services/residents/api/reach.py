"""Routes marking households that hear no building group (their officer calls them with urgent news)."""

from __future__ import annotations

from fastapi import APIRouter

from contracts.access import Officers
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import Unit
from services.residents.api.register import PROBLEM_RESPONSES
from services.residents.application import reach
from services.residents.models import ReachIn, ReachOut

router = APIRouter(tags=["register"])
RESPONSES = {**PROBLEM_RESPONSES, 404: {"description": "No such household"}}


@router.put(
    "/compounds/{compound}/households/{household}/unreachable",
    response_model=ReachOut,
    summary="Mark a household as hearing no building group: urgent messages go on its officer's call list",
    responses=RESPONSES,
)
def mark_unreachable(compound: CompoundId, household: LocalId, body: ReachIn, caller: Officers, unit: Unit) -> ReachOut:
    return reach.mark_unreachable(unit, caller, household, body.reason)


@router.delete(
    "/compounds/{compound}/households/{household}/unreachable",
    response_model=ReachOut,
    summary="Clear the mark: the household hears its building group again",
    responses=RESPONSES,
)
def mark_reachable(compound: CompoundId, household: LocalId, caller: Officers, unit: Unit) -> ReachOut:
    return reach.mark_reachable(unit, caller, household)
