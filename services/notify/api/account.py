"""Route of the daily account (光做不说不行), sent at the set hour and, by staff, on demand."""

from __future__ import annotations

from fastapi import APIRouter, Body

from contracts.access import Staff
from juwei.auth import CompoundId
from juwei.dependencies import Unit
from services.notify.application import account
from services.notify.models import DailyAccountIn, DailyAccountSent

router = APIRouter(tags=["messages"])


@router.post(
    "/compounds/{compound}/daily-account",
    response_model=DailyAccountSent,
    summary="Send the day's account to every building group now (once a day per group: a repeat sends nothing)",
)
def send_daily_account(
    compound: CompoundId, caller: Staff, unit: Unit, body: DailyAccountIn = Body(default_factory=DailyAccountIn)
) -> DailyAccountSent:
    return account.send_account(unit, caller, body.on)
