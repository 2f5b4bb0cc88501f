"""The compound's supply policy: the A/B rota, the both-shifts threshold, the card limit, donation categories."""

from __future__ import annotations

from datetime import date
from typing import Any

from juwei.service import Runtime
from juwei.unit_of_work import UnitOfWork
from services.supplies.domain import CompoundPolicy, SupplyPolicy, rota
from services.supplies.models import PolicyIn
from services.supplies.policy import policy_for


def shown(policy: SupplyPolicy) -> dict[str, Any]:
    return {
        "rota_pattern": policy.rota_pattern,
        "rota_starts_on": policy.rota_starts_on.isoformat(),
        "both_shifts_households": policy.both_shifts_households,
        "both_shifts_items": policy.both_shifts_items,
        "card_return_hours": policy.card_return_hours,
        "donation_categories": list(policy.donation_categories),
    }


def show_policy(runtime: Runtime, compound: str) -> dict[str, Any]:
    with runtime.database.reading() as session:
        return shown(policy_for(runtime, session, compound))


def set_policy(unit: UnitOfWork, body: PolicyIn) -> dict[str, Any]:
    policy = SupplyPolicy(
        body.rota_pattern,
        body.rota_starts_on,
        body.both_shifts_households,
        body.both_shifts_items,
        body.card_return_hours,
        tuple(body.donation_categories),
    )
    with unit:
        unit.load_or_new(CompoundPolicy, unit.compound).set(policy)
    return shown(policy.checked())


def show_rota(runtime: Runtime, compound: str, first: date, days: int) -> dict[str, Any]:
    with runtime.database.reading() as session:
        policy = policy_for(runtime, session, compound)
    return {
        "pattern": policy.rota_pattern,
        "days": [{"on": d.isoformat(), "shift": s} for d, s in rota(first, days, policy)],
    }
