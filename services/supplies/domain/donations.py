"""Donations under the no-gifts rule: only epidemic-prevention supplies are accepted, and what was accepted is
allocated to batches, never more than is left. Plain Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date

from contracts.supplies import (
    DonationAccepted,
    DonationAllocated,
    DonationItem,
    DonationRefused,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound
from services.supplies.domain.policy import normalise_category

# --- donations: the no-gifts rule -----------------------------------------------------------------------


def judge(items: Iterable[DonationItem], categories: Collection[str]) -> tuple[list[DonationItem], list[DonationItem]]:
    """(accepted, refused): only epidemic-prevention categories are accepted, anything else is a gift."""
    accepted: list[DonationItem] = []
    refused: list[DonationItem] = []
    for item in items:
        (accepted if normalise_category(item.category) in categories else refused).append(item)
    return accepted, refused


def refusal_reason(refused: Iterable[DonationItem], categories: Collection[str]) -> str:
    kinds = ", ".join(dict.fromkeys(normalise_category(i.category) for i in refused))
    allowed = ", ".join(c.replace("_", " ") for c in categories)
    return f"not epidemic-prevention supplies ({kinds}): the committee accepts no gifts, only {allowed}"


class Donation(Aggregate):
    """A donation as it came in: what was accepted (and which batches it went into) and what was refused."""

    stream_prefix = "donation"

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        return NotFound(f"donation {id} is not recorded", code="donation-unknown")

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.donor: str | None = None
        # item -> {"category", "quantity", "unit", "allocated"}
        self.accepted: dict[str, dict] = {}

    def receive(
        self,
        donor: str,
        items: Sequence[DonationItem],
        *,
        categories: Collection[str],
        received_on: date,
        donor_name: str | None = None,
        refuse_reason: str | None = None,
    ) -> None:
        """Accept the epidemic-prevention items, refuse the rest with the reason; ``refuse_reason`` refuses all."""
        if self.exists:
            raise Conflict(f"donation {self.id} is already recorded", code="donation-exists")
        if not items:
            raise Invalid("a donation has at least one item", code="items-required")
        names = [i.item for i in items]
        if len(set(names)) != len(names):
            raise Invalid("each item appears once in a donation", code="item-twice")
        items = [i.model_copy(update={"category": normalise_category(i.category)}) for i in items]
        if refuse_reason is not None:
            if not refuse_reason.strip():
                raise Invalid("a refusal needs its reason", code="reason-required")
            accepted, refused, reason = [], list(items), refuse_reason.strip()
        else:
            accepted, refused = judge(items, categories)
            reason = refusal_reason(refused, categories) if refused else ""
        common = {"donation": self.id, "donor": donor, "received_on": received_on, "donor_name": donor_name}
        if accepted:
            self.record(DonationAccepted(items=accepted, **common))
        if refused:
            self.record(DonationRefused(items=refused, reason=reason, **common))

    def remaining(self, item: str) -> int:
        entry = self.accepted.get(item)
        return 0 if entry is None else entry["quantity"] - entry["allocated"]

    def unit_of(self, item: str) -> str:
        return self.accepted[item]["unit"] if item in self.accepted else "piece"

    def allocate(self, batch: str, items: Mapping[str, int]) -> None:
        """Some of the accepted items go into ``batch``; never more than was accepted and is left."""
        if not self.exists:
            raise NotFound(f"donation {self.id} is not recorded", code="donation-unknown")
        for item, quantity in items.items():
            if item not in self.accepted:
                raise Conflict(f"donation {self.id} has no accepted {item}", code="not-accepted")
            if quantity > self.remaining(item):
                raise Conflict(
                    f"donation {self.id} has {self.remaining(item)} {item} left, not {quantity}", code="donation-short"
                )
        self.record(DonationAllocated(donation=self.id, batch=batch, items=dict(items)))

    def on_DonationAccepted(self, event: DonationAccepted) -> None:
        self.donor = event.donor
        for item in event.items:
            self.accepted[item.item] = {
                "category": item.category,
                "quantity": item.quantity,
                "unit": item.unit,
                "allocated": 0,
            }

    def on_DonationRefused(self, event: DonationRefused) -> None:
        self.donor = event.donor

    def on_DonationAllocated(self, event: DonationAllocated) -> None:
        for item, quantity in event.items.items():
            self.accepted[item]["allocated"] += quantity
