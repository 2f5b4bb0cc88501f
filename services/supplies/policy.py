"""The supply policy in force for a compound: what its committee set, else the deployment's defaults."""

from __future__ import annotations

import os
from datetime import date

from juwei.repository import Repository
from juwei.service import Runtime
from juwei.session import Session
from services.supplies.domain import DEFAULT_CATEGORIES, CompoundPolicy, SupplyPolicy


def default_policy() -> SupplyPolicy:
    """The deployment's defaults (``JUWEI_SUPPLIES_*``), checked like a committee's own policy."""
    env = os.environ.get
    categories = env("JUWEI_SUPPLIES_DONATION_CATEGORIES")
    return SupplyPolicy(
        rota_pattern=env("JUWEI_SUPPLIES_ROTA_PATTERN", "AB"),
        rota_starts_on=date.fromisoformat(env("JUWEI_SUPPLIES_ROTA_STARTS_ON", "2022-04-01")),
        both_shifts_households=int(env("JUWEI_SUPPLIES_BOTH_SHIFTS_HOUSEHOLDS", "60")),
        both_shifts_items=int(env("JUWEI_SUPPLIES_BOTH_SHIFTS_ITEMS", "300")),
        card_return_hours=int(env("JUWEI_SUPPLIES_CARD_RETURN_HOURS", "48")),
        donation_categories=tuple(categories.split(",")) if categories else DEFAULT_CATEGORIES,
    ).checked()


def policy_for(runtime: Runtime, session: Session, compound: str) -> SupplyPolicy:
    return Repository(runtime.store, CompoundPolicy).load(session, compound).current(default_policy())
