"""Who gets what of a batch: equal shares, by household size, by needs, or group-purchase orders, with
remainders handed out in a fixed, fair order. Plain Python, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from contracts.supplies import (
    GroupOrder,
)
from juwei.aggregate import Invalid

METHODS = ("equal", "household_size", "needs", "orders")
NEEDS = ("elderly", "infant", "regular_medication", "mobility_impaired", "bedridden", "pregnant")
DEFAULT_NEEDS = ("elderly", "infant")


# --- allocation -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HouseholdFacts:
    """What allocation needs to know of a household: where it is and each member's needs flags."""

    household: str
    building: str
    floor: int
    room: int
    members: tuple[frozenset[str], ...] = field(default_factory=tuple)


def weight(facts: HouseholdFacts, method: str, needs: Collection[str]) -> int:
    if method == "equal":
        return 1 if facts.members else 0  # a flat nobody lives in any more gets nothing
    if method == "household_size":
        return len(facts.members)
    if method == "needs":
        wanted = frozenset(needs)
        return sum(1 for member in facts.members if member & wanted)
    raise Invalid(f"unknown allocation method {method!r} (one of {', '.join(METHODS)})", code="invalid-method")


def apportion(quantity: int, weights: Mapping[str, int], rank: Mapping[str, str]) -> dict[str, int]:
    """Split ``quantity`` whole units in proportion to ``weights`` (largest remainder, exact integers).

    The sum of the result is ``quantity``. Units left after the whole-number shares go to the largest
    remainders; ties go by ``rank`` (a stable per-batch order), so the same call always gives the same plan.
    """
    total = sum(weights.values())
    if total <= 0:
        raise Invalid("nobody to allocate to: every household's weight is 0", code="nobody-to-allocate")
    base = {h: quantity * w // total for h, w in weights.items()}
    remainder = {h: quantity * w % total for h, w in weights.items()}
    left = quantity - sum(base.values())
    for household in sorted((h for h, w in weights.items() if w > 0), key=lambda h: (-remainder[h], rank[h]))[:left]:
        base[household] += 1
    return {h: q for h, q in base.items() if q}


def tie_rank(batch: str, household: str) -> str:
    """A stable order per batch: leftover units go to different households from one batch to the next."""
    return hashlib.sha256(f"{batch}|{household}".encode()).hexdigest()


def allocate(
    batch: str,
    items: Mapping[str, int],
    households: Sequence[HouseholdFacts],
    method: str,
    needs: Collection[str] = DEFAULT_NEEDS,
) -> dict[str, dict[str, int]]:
    """Each household's share of every item; totals are conserved and no household appears twice."""
    seen: set[str] = set()
    for facts in households:
        if facts.household in seen:
            raise Invalid(f"household {facts.household} is listed twice", code="household-twice")
        seen.add(facts.household)
    unknown_needs = set(needs) - set(NEEDS)
    if unknown_needs:
        raise Invalid(f"unknown needs: {', '.join(sorted(unknown_needs))}", code="invalid-needs")
    weights = {f.household: weight(f, method, needs) for f in households}
    rank = {h: tie_rank(batch, h) for h in weights}
    plan: dict[str, dict[str, int]] = {}
    for item, quantity in sorted(items.items()):
        for household, share in apportion(quantity, weights, rank).items():
            plan.setdefault(household, {})[item] = share
    return plan


def allocate_orders(orders: Iterable[GroupOrder]) -> dict[str, dict[str, int]]:
    """Group-purchase orders go to the household they are for; two orders of one household make one share."""
    plan: dict[str, dict[str, int]] = {}
    for order in orders:
        share = plan.setdefault(order.household, {})
        for item, quantity in order.items.items():
            share[item] = share.get(item, 0) + quantity
    return plan


def item_totals(entries: Iterable[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for item, quantity in entries:
        totals[item] = totals.get(item, 0) + quantity
    return totals
