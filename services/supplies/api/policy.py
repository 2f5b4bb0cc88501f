"""The compound's supply policy: the A/B rota, the both-shifts threshold, the card limit, donation categories."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from juwei.auth import CompoundId
from services.supplies.api.common import Command, Logistics, StaffOnly, Volunteers, runtime_of, today_of
from services.supplies.domain import CompoundPolicy, SupplyPolicy, rota
from services.supplies.policy import policy_for

router = APIRouter(tags=["policy"])


class PolicyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rota_pattern": "AB",
                    "rota_starts_on": "2022-04-01",
                    "both_shifts_households": 60,
                    "both_shifts_items": 300,
                    "card_return_hours": 48,
                    "donation_categories": ["masks", "antigen_kits", "disinfectant"],
                }
            ]
        },
    )
    rota_pattern: str = Field(min_length=1, max_length=28, pattern=r"^[ABab]+$")
    rota_starts_on: date
    both_shifts_households: int = Field(ge=1, le=100_000)
    both_shifts_items: int = Field(ge=1, le=10_000_000)
    card_return_hours: int = Field(ge=1, le=24 * 30)
    donation_categories: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(min_length=1, max_length=50)


def _shown(policy: SupplyPolicy) -> dict[str, Any]:
    return {
        "rota_pattern": policy.rota_pattern,
        "rota_starts_on": policy.rota_starts_on.isoformat(),
        "both_shifts_households": policy.both_shifts_households,
        "both_shifts_items": policy.both_shifts_items,
        "card_return_hours": policy.card_return_hours,
        "donation_categories": list(policy.donation_categories),
    }


@router.get("/compounds/{compound}/supply-policy", summary="The supply policy in force")
def show_policy(compound: CompoundId, request: Request, caller: Volunteers) -> dict[str, Any]:
    caller.require_scope(compound)
    runtime = runtime_of(request)
    with runtime.database.reading() as session:
        return _shown(policy_for(runtime, session, compound))


@router.put("/compounds/{compound}/supply-policy", summary="Set the compound's supply policy")
def set_policy(compound: CompoundId, body: PolicyIn, request: Request, caller: StaffOnly) -> dict[str, Any]:
    caller.require_scope(compound)
    command = Command(request, caller, compound)
    policy = SupplyPolicy(
        body.rota_pattern,
        body.rota_starts_on,
        body.both_shifts_households,
        body.both_shifts_items,
        body.card_return_hours,
        tuple(body.donation_categories),
    )
    with command.unit():
        command.load(CompoundPolicy, compound).set(policy)
    return _shown(policy.checked())


@router.get("/compounds/{compound}/rota", summary="Which logistics shift is on duty, day by day")
def show_rota(
    compound: CompoundId,
    request: Request,
    caller: Logistics,
    start: Annotated[date | None, Query(alias="from")] = None,
    days: Annotated[int, Query(ge=1, le=60)] = 7,
) -> dict[str, Any]:
    caller.require_scope(compound)
    runtime = runtime_of(request)
    with runtime.database.reading() as session:
        policy = policy_for(runtime, session, compound)
    first = start or today_of(request)
    return {
        "pattern": policy.rota_pattern,
        "days": [{"on": d.isoformat(), "shift": s} for d, s in rota(first, days, policy)],
    }
