"""Routes of supply batches: arrival, the allocation plan per household, dispatch with the shift call, progress."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from contracts.access import BuildingTeam, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from services.supplies.answers import (
    AllocationOut,
    AllocationPlanned,
    BatchArrived,
    BatchList,
    BatchOut,
    Dispatched,
    ProgressOut,
)
from services.supplies.application import batches
from services.supplies.models import AllocationIn, BatchIn, DispatchIn

router = APIRouter(tags=["batches"])
BuildingFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


@router.post(
    "/compounds/{compound}/batches",
    status_code=201,
    response_model=BatchArrived,
    summary="A batch of supplies has arrived",
)
def batch_arrived(compound: CompoundId, body: BatchIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    return batches.batch_arrived(unit, body)


@router.post(
    "/compounds/{compound}/batches/{batch}/allocation",
    status_code=201,
    response_model=AllocationPlanned,
    summary="Plan who gets what",
)
def plan_allocation(
    compound: CompoundId, batch: LocalId, body: AllocationIn, caller: Staff, unit: Unit
) -> dict[str, Any]:
    return batches.plan_allocation(unit, batch, body)


@router.post(
    "/compounds/{compound}/batches/{batch}/dispatch",
    response_model=Dispatched,
    summary="Send the batch out: call the shifts",
)
def dispatch(
    compound: CompoundId, batch: LocalId, caller: Staff, unit: Unit, body: DispatchIn | None = None
) -> dict[str, Any]:
    return batches.dispatch(unit, batch, body.on if body else None)


@router.get("/compounds/{compound}/batches", response_model=BatchList, summary="Batches, newest first")
def list_batches(compound: CompoundId, caller: Staff, runtime: RuntimeOf) -> dict[str, Any]:
    return batches.list_batches(runtime, compound)


@router.get(
    "/compounds/{compound}/batches/{batch}",
    response_model=BatchOut,
    summary="One batch: items, targets, plan, dispatch",
)
def show_batch(compound: CompoundId, batch: LocalId, caller: Staff, runtime: RuntimeOf) -> dict[str, Any]:
    return batches.show_batch(runtime, compound, batch)


@router.get(
    "/compounds/{compound}/batches/{batch}/allocation",
    response_model=AllocationOut,
    summary="The plan: each household's share",
)
def show_allocation(
    compound: CompoundId, batch: LocalId, caller: Staff, runtime: RuntimeOf, building: BuildingFilter = None
) -> dict[str, Any]:
    return batches.show_allocation(runtime, compound, batch, building)


@router.get(
    "/compounds/{compound}/batches/{batch}/progress",
    response_model=ProgressOut,
    summary="Per building: 180/200 delivered",
)
def progress(
    compound: CompoundId, batch: LocalId, caller: BuildingTeam, runtime: RuntimeOf, building: BuildingFilter = None
) -> dict[str, Any]:
    return batches.progress(runtime, caller, compound, batch, building)
