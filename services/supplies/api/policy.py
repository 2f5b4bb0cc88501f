"""Routes of the compound's supply policy: the A/B rota, the both-shifts threshold, the card limit, donations."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from contracts.access import BuildingTeam, Logistics, Staff
from juwei.auth import CompoundId
from juwei.dependencies import RuntimeOf, Today, Unit
from services.supplies.answers import PolicyOut, RotaOut
from services.supplies.application import policy
from services.supplies.models import PolicyIn

router = APIRouter(tags=["policy"])


@router.get("/compounds/{compound}/supply-policy", response_model=PolicyOut, summary="The supply policy in force")
def show_policy(compound: CompoundId, caller: BuildingTeam, runtime: RuntimeOf) -> dict[str, Any]:
    return policy.show_policy(runtime, compound)


@router.put("/compounds/{compound}/supply-policy", response_model=PolicyOut, summary="Set the compound's supply policy")
def set_policy(compound: CompoundId, body: PolicyIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    return policy.set_policy(unit, body)


@router.get(
    "/compounds/{compound}/rota", response_model=RotaOut, summary="Which logistics shift is on duty, day by day"
)
def show_rota(
    compound: CompoundId,
    caller: Logistics,
    runtime: RuntimeOf,
    today: Today,
    start: Annotated[date | None, Query(alias="from")] = None,
    days: Annotated[int, Query(ge=1, le=60)] = 7,
) -> dict[str, Any]:
    return policy.show_rota(runtime, compound, start or today, days)
