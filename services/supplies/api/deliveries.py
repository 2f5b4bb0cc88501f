"""Routes of deliveries: the tasks of a building floor by floor, confirmations and failures, the follow-ups."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from contracts.access import BuildingTeam, Logistics
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from services.supplies.answers import BuildingTasks, DeliveryProgress, FollowUpResolved, FollowUps
from services.supplies.application import deliveries
from services.supplies.models import OutcomesIn, ResolutionIn

router = APIRouter(tags=["deliveries"])
IdFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


@router.post(
    "/compounds/{compound}/batches/{batch}/buildings/{building}/outcomes",
    response_model=DeliveryProgress,
    summary="Record deliveries of a floor: delivered, or why not (no one home, refused, wrong items)",
)
def record_outcomes(
    compound: CompoundId, batch: LocalId, building: LocalId, body: OutcomesIn, caller: Logistics, unit: Unit
) -> dict[str, Any]:
    return deliveries.record_outcomes(unit, caller, batch, building, body)


@router.post(
    "/compounds/{compound}/batches/{batch}/buildings/{building}/follow-ups/{household}/resolution",
    response_model=FollowUpResolved,
    summary="Take a household off the follow-up list",
)
def resolve_follow_up(
    compound: CompoundId,
    batch: LocalId,
    building: LocalId,
    household: LocalId,
    body: ResolutionIn,
    caller: Logistics,
    unit: Unit,
) -> dict[str, Any]:
    return deliveries.resolve_follow_up(unit, caller, batch, building, household, body)


@router.get(
    "/compounds/{compound}/buildings/{building}/deliveries",
    response_model=BuildingTasks,
    summary="Open delivery tasks, floor by floor",
)
def building_tasks(compound: CompoundId, building: LocalId, caller: Logistics, runtime: RuntimeOf) -> dict[str, Any]:
    return deliveries.building_tasks(runtime, caller, compound, building)


# The building's information officer follows up on the same list as its logistics group (no identity in it).
@router.get(
    "/compounds/{compound}/follow-ups", response_model=FollowUps, summary="Households not yet delivered, until resolved"
)
def follow_ups(
    compound: CompoundId,
    caller: BuildingTeam,
    runtime: RuntimeOf,
    building: IdFilter = None,
    batch: IdFilter = None,
) -> dict[str, Any]:
    return deliveries.follow_ups(runtime, caller, compound, building, batch)
