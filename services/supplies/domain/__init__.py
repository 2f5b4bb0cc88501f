"""The supplies service's domain rules: plain Python, no I/O.

Aggregates decide on commands and record events; their state changes only in ``on_<Event>`` methods:
``CompoundPolicy`` (rota, both-shifts threshold, card limit, donation categories), ``Batch`` (arrival,
allocation plan, dispatch), ``BuildingDelivery`` (one building's part of a batch: shift call, tasks per
floor, confirmations, failures, follow-ups), ``MedicineCard`` (a resident's medicine requests and the
custody chain of their medical-insurance card) and ``Donation`` (the no-gifts rule, what went where).
Facts that live elsewhere (households and their members, a building's logistics group) are passed in. One
module each: ``policy``, ``allocation``, ``batches``, ``deliveries``, ``medicine``, ``donations``.
"""

from __future__ import annotations

from services.supplies.domain.allocation import (
    DEFAULT_NEEDS,
    METHODS,
    NEEDS,
    HouseholdFacts,
    allocate,
    allocate_orders,
    apportion,
    item_totals,
    tie_rank,
    weight,
)
from services.supplies.domain.batches import (
    SOURCES,
    Batch,
)
from services.supplies.domain.deliveries import (
    FAILURE_REASONS,
    RECEIVED,
    RESOLUTIONS,
    BuildingDelivery,
    delivery_id,
)
from services.supplies.domain.donations import (
    Donation,
    judge,
    refusal_reason,
)
from services.supplies.domain.medicine import (
    MedicineCard,
    describe,
    holder,
)
from services.supplies.domain.policy import (
    DEFAULT_CATEGORIES,
    SHIFTS,
    CompoundPolicy,
    ShiftCall,
    SupplyPolicy,
    call_shifts,
    normalise_category,
    rota,
    shift_on_duty,
)

__all__ = [
    "DEFAULT_CATEGORIES",
    "DEFAULT_NEEDS",
    "FAILURE_REASONS",
    "METHODS",
    "NEEDS",
    "RECEIVED",
    "RESOLUTIONS",
    "SHIFTS",
    "SOURCES",
    "Batch",
    "BuildingDelivery",
    "CompoundPolicy",
    "Donation",
    "HouseholdFacts",
    "MedicineCard",
    "ShiftCall",
    "SupplyPolicy",
    "allocate",
    "allocate_orders",
    "apportion",
    "call_shifts",
    "delivery_id",
    "describe",
    "holder",
    "item_totals",
    "judge",
    "normalise_category",
    "refusal_reason",
    "rota",
    "shift_on_duty",
    "tie_rank",
    "weight",
]
