"""A supply batch: its arrival, the allocation plan per household and its dispatch building by building.
Plain Python, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from contracts.supplies import (
    AllocationPlanned,
    AllocationShare,
    BatchArrived,
    BatchDispatched,
    DonationUse,
    GroupOrder,
    SupplyItem,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound
from services.supplies.domain.allocation import (
    DEFAULT_NEEDS,
    HouseholdFacts,
    allocate,
    allocate_orders,
    item_totals,
)

SOURCES = ("government", "group_purchase", "donation")


class Batch(Aggregate):
    """A batch of supplies from arrival to dispatch; its plan says who gets what before anything moves."""

    stream_prefix = "batch"

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        return NotFound(f"batch {id.partition(':')[2]} has not arrived", code="batch-unknown")

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.source: str | None = None
        self.items: dict[str, int] = {}
        self.buildings: list[str] = []
        self.households: list[str] = []
        self.orders: list[dict] = []
        self.method: str | None = None
        # household -> {"building", "floor", "room", "items"}
        self.shares: dict[str, dict] = {}
        self.dispatched_on: str | None = None

    def _require_arrived(self) -> str:
        if self.source is None:
            raise NotFound(f"batch {self.id} has not arrived", code="batch-unknown")
        return self.source

    def arrive(
        self,
        source: str,
        items: Sequence[SupplyItem],
        *,
        arrived_on: date,
        label: str = "",
        buildings: Sequence[str] = (),
        households: Sequence[str] = (),
        orders: Sequence[GroupOrder] = (),
        donations: Sequence[tuple[DonationUse, str]] = (),
    ) -> None:
        """Record the arrival; ``donations`` pairs each use of a donation with the unit it was given in."""
        if self.exists:
            raise Conflict(f"batch {self.id} has already arrived", code="batch-exists")
        if source not in SOURCES:
            raise Invalid(f"unknown source {source!r} (one of {', '.join(SOURCES)})", code="invalid-source")
        names = [i.item for i in items]
        if len(set(names)) != len(names):
            raise Invalid("each item appears once in a batch", code="item-twice")
        if source == "group_purchase":
            if not orders:
                raise Invalid("a group purchase arrives with its orders", code="orders-required")
            if buildings or households or donations:
                raise Invalid("a group purchase goes to its orders' households only", code="invalid-batch")
            ids = [o.order for o in orders]
            if len(set(ids)) != len(ids):
                raise Invalid("each order appears once in a batch", code="order-twice")
            totals = item_totals((item, q) for o in orders for item, q in o.items.items())
            if items and {i.item: i.quantity for i in items} != totals:
                raise Invalid("the items do not add up to the orders", code="items-do-not-match-orders")
            units = {i.item: i.unit for i in items}
            items = [SupplyItem(item=k, quantity=v, unit=units.get(k, "piece")) for k, v in sorted(totals.items())]
        elif source == "donation":
            if not donations:
                raise Invalid("a donation batch names the accepted donations it comes from", code="donations-required")
            if orders or items:
                raise Invalid("a donation batch's items are the donations it comes from", code="invalid-batch")
            pairs = [(use.donation, use.item) for use, _ in donations]
            if len(set(pairs)) != len(pairs):
                raise Invalid("each item of a donation appears once in a batch", code="item-twice")
            units = {use.item: unit for use, unit in donations}
            totals = item_totals((use.item, use.quantity) for use, _ in donations)
            items = [SupplyItem(item=k, quantity=v, unit=units[k]) for k, v in sorted(totals.items())]
        elif orders or donations:
            raise Invalid("government supplies come without orders or donations", code="invalid-batch")
        elif not items:
            raise Invalid("a batch has at least one item", code="items-required")
        if source != "group_purchase" and not (buildings or households):
            raise Invalid("say which buildings or households the batch is for", code="targets-required")
        self.record(
            BatchArrived(
                batch=self.id,
                source=source,  # type: ignore[arg-type]
                label=label,
                arrived_on=arrived_on,
                items=list(items),
                buildings=list(dict.fromkeys(buildings)),
                households=list(dict.fromkeys(households)),
                orders=list(orders),
                donations=[use for use, _ in donations],
            )
        )

    def targets(self) -> tuple[list[str], list[str]]:
        """(buildings, households) the batch is for: a group purchase is for its orders' households."""
        if self.source == "group_purchase":
            return [], list(dict.fromkeys(o["household"] for o in self.orders))
        return list(self.buildings), list(self.households)

    def plan(self, households: Sequence[HouseholdFacts], method: str | None = None, needs: Sequence[str] = ()) -> None:
        """Allocate the batch to ``households`` (the targets' facts) and record the plan, building by building."""
        source = self._require_arrived()
        if self.method is not None:
            raise Conflict(f"batch {self.id} is already planned ({self.method})", code="already-planned")
        buildings, listed = self.targets()
        strays = [f.household for f in households if f.building not in buildings and f.household not in listed]
        if strays:
            raise Invalid(f"household {strays[0]} is not one the batch is for", code="not-a-target")
        chosen_needs = tuple(needs) or DEFAULT_NEEDS
        if source == "group_purchase":
            if method not in (None, "orders"):
                raise Invalid("a group purchase is allocated by its orders", code="invalid-method")
            method = "orders"
            known = {f.household for f in households}
            missing = [o["household"] for o in self.orders if o["household"] not in known]
            if missing:
                raise NotFound(f"household {missing[0]} of an order is not registered", code="household-unknown")
            plan = allocate_orders(GroupOrder(**o) for o in self.orders)
        else:
            method = method or "equal"
            if method == "orders":
                raise Invalid("only a group purchase is allocated by orders", code="invalid-method")
            if not households:
                raise Invalid(f"batch {self.id} is for no registered household", code="nobody-to-allocate")
            plan = allocate(self.id, self.items, households, method, chosen_needs)
        facts = {f.household: f for f in households}
        by_building: dict[str, list[AllocationShare]] = {}
        for household, share in plan.items():
            where = facts[household]
            by_building.setdefault(where.building, []).append(
                AllocationShare(
                    household=household, floor=where.floor, room=where.room, items=dict(sorted(share.items()))
                )
            )
        for building, shares in sorted(by_building.items()):
            shares.sort(key=lambda s: (s.floor, s.room, s.household))
            self.record(
                AllocationPlanned(
                    batch=self.id,
                    building=building,
                    method=method,  # type: ignore[arg-type]
                    needs=list(chosen_needs) if method == "needs" else [],
                    shares=shares,
                    households=len(shares),
                    items=item_totals((i, q) for s in shares for i, q in s.items.items()),
                )
            )

    def dispatch(self, on: date) -> list[str]:
        """Send the planned batch out; returns the buildings whose shifts are to be called."""
        self._require_arrived()
        if self.method is None:
            raise Conflict(
                f"batch {self.id} has no allocation plan yet: plan before anything moves", code="not-planned"
            )
        if self.dispatched_on is not None:
            raise Conflict(f"batch {self.id} was dispatched on {self.dispatched_on}", code="already-dispatched")
        buildings = sorted({s["building"] for s in self.shares.values()})
        self.record(BatchDispatched(batch=self.id, on=on, buildings=buildings))
        return buildings

    def load_of(self, building: str) -> tuple[list[tuple[str, int, int]], int]:
        """The (household, floor, room) tasks of one building and the number of items to carry there."""
        mine = [(h, s["floor"], s["room"]) for h, s in self.shares.items() if s["building"] == building]
        items = sum(q for s in self.shares.values() if s["building"] == building for q in s["items"].values())
        return sorted(mine, key=lambda t: (t[1], t[2], t[0])), items

    def on_BatchArrived(self, event: BatchArrived) -> None:
        self.source = event.source
        self.items = {i.item: i.quantity for i in event.items}
        self.buildings = list(event.buildings)
        self.households = list(event.households)
        self.orders = [o.model_dump() for o in event.orders]

    def on_AllocationPlanned(self, event: AllocationPlanned) -> None:
        self.method = event.method
        for share in event.shares:
            self.shares[share.household] = {
                "building": event.building,
                "floor": share.floor,
                "room": share.room,
                "items": dict(share.items),
            }

    def on_BatchDispatched(self, event: BatchDispatched) -> None:
        self.dispatched_on = event.on.isoformat()
