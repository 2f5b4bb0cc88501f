"""The supplies service's domain rules: plain Python, no I/O.

Aggregates decide on commands and record events; their state changes only in ``on_<Event>`` methods:
``CompoundPolicy`` (rota, both-shifts threshold, card limit, donation categories), ``Batch`` (arrival,
allocation plan, dispatch), ``BuildingDelivery`` (one building's part of a batch: shift call, tasks per
floor, confirmations, failures, follow-ups), ``MedicineCard`` (a resident's medicine requests and the
custody chain of their medical-insurance card) and ``Donation`` (the no-gifts rule, what went where).
Facts that live elsewhere (households and their members, a building's logistics group) are passed in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from contracts.supplies import (
    AllocationPlanned,
    AllocationShare,
    BatchArrived,
    BatchDispatched,
    BuildingDelivered,
    CardCollected,
    CardHandedOver,
    CardHolder,
    CardOverdue,
    DeliveryConfirmed,
    DeliveryFailed,
    DeliveryTasksIssued,
    DonationAccepted,
    DonationAllocated,
    DonationItem,
    DonationRefused,
    DonationUse,
    FloorTask,
    FollowUpResolved,
    GroupOrder,
    MedicineAndCardReturned,
    MedicinePurchased,
    MedicineRequested,
    ShiftCalled,
    SupplyItem,
    SupplyPolicySet,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound, NotPermitted

SOURCES = ("government", "group_purchase", "donation")
METHODS = ("equal", "household_size", "needs", "orders")
NEEDS = ("elderly", "infant", "regular_medication", "mobility_impaired", "bedridden", "pregnant")
DEFAULT_NEEDS = ("elderly", "infant")
SHIFTS = ("A", "B")
FAILURE_REASONS = ("no_one_home", "refused", "wrong_items")
# "redelivered" is not chosen: it is what a confirmation after a failure records.
RESOLUTIONS = ("collected", "exchanged", "returned_to_stock")
# Statuses of a household in a delivery that mean it has its share.
RECEIVED = frozenset({"delivered", "collected", "exchanged"})
DEFAULT_CATEGORIES = (
    "masks",
    "antigen_kits",
    "disinfectant",
    "protective_clothing",
    "thermometers",
    "gloves",
    "face_shields",
    "hand_sanitiser",
)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")


def normalise_category(text: str) -> str:
    """ "Antigen kits" and "antigen-kits" are the same category: ``antigen_kits``."""
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


# --- the compound's supply policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class SupplyPolicy:
    """What a committee configures; the defaults come from the deployment (see ``app.py``)."""

    rota_pattern: str = "AB"
    rota_starts_on: date = date(2022, 4, 1)
    both_shifts_households: int = 60
    both_shifts_items: int = 300
    card_return_hours: int = 48
    donation_categories: tuple[str, ...] = DEFAULT_CATEGORIES

    def checked(self) -> SupplyPolicy:
        """The policy with categories normalised, or a 422 rule violation saying what is wrong."""
        pattern = self.rota_pattern.strip().upper()
        if not 1 <= len(pattern) <= 28 or set(pattern) - set(SHIFTS):
            raise Invalid(f"a rota pattern is 1-28 letters A and B, not {self.rota_pattern!r}", code="invalid-rota")
        if set(pattern) != set(SHIFTS):
            raise Invalid("the rota must give both shifts their turn (A and B)", code="invalid-rota")
        if self.both_shifts_households < 1 or self.both_shifts_items < 1:
            raise Invalid("both-shifts thresholds are at least 1", code="invalid-threshold")
        if not 1 <= self.card_return_hours <= 24 * 30:
            raise Invalid("a card's return limit is 1 hour to 30 days", code="invalid-card-limit")
        categories = tuple(dict.fromkeys(normalise_category(c) for c in self.donation_categories if c.strip()))
        bad = [c for c in categories if not _SLUG.match(c)]
        if bad:
            raise Invalid(f"categories are words like antigen_kits, not {bad[0]!r}", code="invalid-category")
        if not categories:
            raise Invalid("name at least one epidemic-prevention category", code="invalid-category")
        return SupplyPolicy(
            pattern,
            self.rota_starts_on,
            self.both_shifts_households,
            self.both_shifts_items,
            self.card_return_hours,
            categories,
        )

    @classmethod
    def from_event(cls, event: SupplyPolicySet) -> SupplyPolicy:
        return cls(
            event.rota_pattern,
            event.rota_starts_on,
            event.both_shifts_households,
            event.both_shifts_items,
            event.card_return_hours,
            tuple(event.donation_categories),
        )


class CompoundPolicy(Aggregate):
    """The supply policy of one compound (id: the compound); unset, the deployment's defaults hold."""

    stream_prefix = "policy"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.terms: dict | None = None

    def current(self, default: SupplyPolicy) -> SupplyPolicy:
        if self.terms is None:
            return default
        return SupplyPolicy(**{**self.terms, "donation_categories": tuple(self.terms["donation_categories"])})

    def set(self, policy: SupplyPolicy) -> None:
        checked = policy.checked()
        self.record(
            SupplyPolicySet(
                rota_pattern=checked.rota_pattern,
                rota_starts_on=checked.rota_starts_on,
                both_shifts_households=checked.both_shifts_households,
                both_shifts_items=checked.both_shifts_items,
                card_return_hours=checked.card_return_hours,
                donation_categories=list(checked.donation_categories),
            )
        )

    def on_SupplyPolicySet(self, event: SupplyPolicySet) -> None:
        self.terms = event.model_dump(mode="python")


# --- A/B shifts -----------------------------------------------------------------------------------------


def shift_on_duty(day: date, policy: SupplyPolicy) -> str:
    """The shift whose turn it is on ``day``: the rota pattern repeats day by day from its start."""
    pattern = policy.rota_pattern
    return pattern[(day - policy.rota_starts_on).days % len(pattern)]


def rota(start: date, days: int, policy: SupplyPolicy) -> list[tuple[date, str]]:
    return [(start + timedelta(days=n), shift_on_duty(start + timedelta(days=n), policy)) for n in range(days)]


@dataclass(frozen=True)
class ShiftCall:
    shift_on_duty: str
    shifts: tuple[str, ...]
    both: bool
    reason: str


def call_shifts(households: int, items: int, day: date, policy: SupplyPolicy) -> ShiftCall:
    """The shift on duty, or both shifts when a building's part of a batch is above a threshold."""
    duty = shift_on_duty(day, policy)
    above = []
    if households > policy.both_shifts_households:
        above.append(f"{households} households (threshold {policy.both_shifts_households})")
    if items > policy.both_shifts_items:
        above.append(f"{items} items (threshold {policy.both_shifts_items})")
    if above:
        return ShiftCall(duty, SHIFTS, True, "large batch: " + " and ".join(above) + ": both shifts")
    return ShiftCall(duty, (duty,), False, f"shift {duty} on duty on {day.isoformat()}")


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


def _totals(entries: Iterable[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for item, quantity in entries:
        totals[item] = totals.get(item, 0) + quantity
    return totals


class Batch(Aggregate):
    """A batch of supplies from arrival to dispatch; its plan says who gets what before anything moves."""

    stream_prefix = "batch"

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
            totals = _totals((item, q) for o in orders for item, q in o.items.items())
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
            totals = _totals((use.item, use.quantity) for use, _ in donations)
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
                    items=_totals((i, q) for s in shares for i, q in s.items.items()),
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


# --- deliveries -----------------------------------------------------------------------------------------


def delivery_id(batch: str, building: str) -> str:
    """One building's part of one batch: ``<batch>@<building>`` (both district-wide ids)."""
    return f"{batch}@{building}"


class BuildingDelivery(Aggregate):
    """One building's part of a batch: the shift call, the tasks by floor and what became of each household."""

    stream_prefix = "delivery"
    snapshot_every = 100

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.batch: str | None = None
        self.building: str | None = None
        self.shifts: list[str] = []
        # household -> {"floor", "status", "attempts"}
        self.tasks: dict[str, dict] = {}
        self.complete = False

    def call(
        self,
        batch: str,
        building: str,
        on: date,
        decision: ShiftCall,
        *,
        volunteers: Sequence[str],
        tasks: Sequence[tuple[str, int, int]],
        items: int,
    ) -> None:
        """Call the shift(s) and issue the tasks floor by floor (``tasks``: household, floor, room)."""
        if self.exists:
            raise Conflict(
                f"the shifts of building {building} were already called for batch {batch}", code="already-called"
            )
        if not tasks:
            raise Invalid(f"batch {batch} has nothing for building {building}", code="nothing-to-deliver")
        floors: dict[int, list[str]] = {}
        for household, floor, _room in sorted(tasks, key=lambda t: (t[1], t[2], t[0])):
            floors.setdefault(floor, []).append(household)
        self.record(
            ShiftCalled(
                batch=batch,
                building=building,
                on=on,
                shift_on_duty=decision.shift_on_duty,  # type: ignore[arg-type]
                shifts=list(decision.shifts),  # type: ignore[arg-type]
                both=decision.both,
                reason=decision.reason,
                volunteers=sorted(volunteers),
                households=len(tasks),
                items=items,
            )
        )
        self.record(
            DeliveryTasksIssued(
                batch=batch,
                building=building,
                shifts=list(decision.shifts),  # type: ignore[arg-type]
                floors=[FloorTask(floor=f, households=hs) for f, hs in sorted(floors.items())],
            )
        )

    def _task(self, household: str) -> dict:
        if self.batch is None:
            raise NotFound(
                f"no delivery {self.id}: the batch was not dispatched to this building", code="not-dispatched"
            )
        task = self.tasks.get(household)
        if task is None:
            raise NotFound(f"household {household} has no share in this delivery", code="not-in-task")
        return task

    def check_deliverer(self, by: str | None, group: Mapping[str, str | None]) -> None:
        """``by`` (None: staff recording it) must be in the building's logistics group, on a called shift."""
        if by is None:
            return
        if by not in group:
            raise NotPermitted(
                f"volunteer {by} is not in the logistics group of building {self.building}", code="not-in-group"
            )
        if group[by] not in self.shifts:
            raise NotPermitted(
                f"volunteer {by} works shift {group[by]}; this delivery calls shift {' and '.join(self.shifts)}",
                code="not-on-shift",
            )

    def _progress(self, household: str, status: str) -> dict[str, int]:
        statuses = [status if h == household else t["status"] for h, t in self.tasks.items()]
        return {
            "delivered": sum(1 for s in statuses if s in RECEIVED),
            "households": len(statuses),
            "follow_ups": statuses.count("failed"),
        }

    def _finished(self, household: str) -> str:
        task = self._task(household)
        if task["status"] in RECEIVED or task["status"] == "returned_to_stock":
            raise Conflict(f"household {household} is done with: {task['status']}", code="already-done")
        return task["status"]

    def confirm(self, household: str, by: str | None, group: Mapping[str, str | None]) -> None:
        """The household has its share; a household on the follow-up list comes off it."""
        self.check_deliverer(by, group)
        before = self._finished(household)
        progress = self._progress(household, "delivered")
        floor = self.tasks[household]["floor"]
        assert self.batch is not None and self.building is not None
        self.record(
            DeliveryConfirmed(
                batch=self.batch, building=self.building, household=household, floor=floor, by=by, **progress
            )
        )
        if before == "failed":
            self.record(
                FollowUpResolved(
                    batch=self.batch,
                    building=self.building,
                    household=household,
                    resolution="redelivered",
                    by=by,
                    **progress,
                )
            )
        self._maybe_complete()

    def fail(self, household: str, reason: str, by: str | None, group: Mapping[str, str | None]) -> None:
        """Not delivered, and why: the household goes on (or stays on) the follow-up list."""
        self.check_deliverer(by, group)
        if reason not in FAILURE_REASONS:
            raise Invalid(f"reason is one of {', '.join(FAILURE_REASONS)}, not {reason!r}", code="invalid-reason")
        self._finished(household)
        task = self.tasks[household]
        assert self.batch is not None and self.building is not None
        self.record(
            DeliveryFailed(
                batch=self.batch,
                building=self.building,
                household=household,
                floor=task["floor"],
                reason=reason,  # type: ignore[arg-type]
                attempt=task["attempts"] + 1,
                by=by,
                **self._progress(household, "failed"),
            )
        )

    def resolve(self, household: str, resolution: str, by: str | None, group: Mapping[str, str | None]) -> None:
        """Take a household off the follow-up list: it collected its share, got it exchanged, or it went back."""
        self.check_deliverer(by, group)
        if resolution not in RESOLUTIONS:
            raise Invalid(
                f"resolution is one of {', '.join(RESOLUTIONS)}, not {resolution!r}", code="invalid-resolution"
            )
        task = self._task(household)
        if task["status"] != "failed":
            raise Conflict(
                f"household {household} is not on the follow-up list ({task['status']})", code="no-follow-up"
            )
        assert self.batch is not None and self.building is not None
        self.record(
            FollowUpResolved(
                batch=self.batch,
                building=self.building,
                household=household,
                resolution=resolution,  # type: ignore[arg-type]
                by=by,
                **self._progress(household, resolution),
            )
        )
        self._maybe_complete()

    def _maybe_complete(self) -> None:
        statuses = [t["status"] for t in self.tasks.values()]
        if self.complete or any(s in ("pending", "failed") for s in statuses):
            return
        assert self.batch is not None and self.building is not None
        self.record(
            BuildingDelivered(
                batch=self.batch,
                building=self.building,
                delivered=sum(1 for s in statuses if s in RECEIVED),
                households=len(statuses),
                follow_ups=0,
                resolved_otherwise=statuses.count("returned_to_stock"),
            )
        )

    @property
    def follow_ups(self) -> list[str]:
        return [h for h, t in self.tasks.items() if t["status"] == "failed"]

    def on_ShiftCalled(self, event: ShiftCalled) -> None:
        self.batch = event.batch
        self.building = event.building
        self.shifts = list(event.shifts)

    def on_DeliveryTasksIssued(self, event: DeliveryTasksIssued) -> None:
        for task in event.floors:
            for household in task.households:
                self.tasks[household] = {"floor": task.floor, "status": "pending", "attempts": 0}

    def on_DeliveryConfirmed(self, event: DeliveryConfirmed) -> None:
        self.tasks[event.household]["status"] = "delivered"

    def on_DeliveryFailed(self, event: DeliveryFailed) -> None:
        task = self.tasks[event.household]
        task["status"] = "failed"
        task["attempts"] = event.attempt

    def on_FollowUpResolved(self, event: FollowUpResolved) -> None:
        if event.resolution != "redelivered":
            self.tasks[event.household]["status"] = event.resolution

    def on_BuildingDelivered(self, event: BuildingDelivered) -> None:
        self.complete = True


# --- medicine for the elderly: the card's custody chain ------------------------------------------------


def holder(kind: str, id: str) -> CardHolder:
    return CardHolder(kind=kind, id=id)  # type: ignore[arg-type]


def describe(who: CardHolder | dict) -> str:
    kind, id = (who.kind, who.id) if isinstance(who, CardHolder) else (who["kind"], who["id"])
    return f"{kind.replace('subdistrict', 'subdistrict staff')} {id}"


class MedicineCard(Aggregate):
    """A resident's medical-insurance card (id: the resident) and the medicine requests it is taken out for.

    Exactly one holder at any time (``holder``: the household until the logistics leader collects it);
    only the holder can hand it on; the medicine is bought with the card, so only by whoever holds it.
    """

    stream_prefix = "card"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.household: str | None = None
        self.building: str | None = None
        self.requests: dict[str, str] = {}  # request -> "open" | "purchased"
        self.holder: dict | None = None  # {"kind", "id"}
        self.out_since: str | None = None
        self.overdue_alerted = False

    @property
    def at_home(self) -> bool:
        return self.holder is None or self.holder["kind"] == "household"

    def _home(self) -> CardHolder:
        assert self.household is not None
        return holder("household", self.household)

    def _require_known(self) -> tuple[str, str]:
        if self.household is None or self.building is None:
            raise NotFound(f"no medicine was requested for resident {self.id}", code="card-unknown")
        return self.household, self.building

    def _require_holder(self, giver: CardHolder) -> None:
        current = self.holder or self._home().model_dump()
        if (giver.kind, giver.id) != (current["kind"], current["id"]):
            raise Conflict(
                f"the card of resident {self.id} is held by {describe(current)}, not by {describe(giver)}:"
                " only the card's custodian can hand it over",
                code="not-the-custodian",
            )

    def request_medicine(
        self,
        request: str,
        *,
        household: str,
        building: str,
        requested_on: date,
        by: str | None,
        prescription: str | None,
    ) -> None:
        if request in self.requests:
            raise Conflict(f"medicine request {request} is already recorded", code="request-exists")
        if self.household is not None and household != self.household:
            raise Conflict(
                f"the card of resident {self.id} belongs to household {self.household}; settle it before the move",
                code="card-elsewhere",
            )
        self.record(
            MedicineRequested(
                request=request,
                card=self.id,
                resident=self.id,
                household=household,
                building=building,
                requested_on=requested_on,
                by=by,
                prescription=prescription,
            )
        )

    @property
    def open_requests(self) -> list[str]:
        return [r for r, status in self.requests.items() if status == "open"]

    def collect(self, leader: str, *, building_leader: str | None, at: datetime) -> None:
        """The building's logistics leader takes the card from the household."""
        _household, building = self._require_known()
        if not self.at_home:
            raise Conflict(
                f"the card of resident {self.id} is already out, with {describe(self.holder or {})}", code="card-out"
            )
        if not self.open_requests:
            raise Conflict(
                f"resident {self.id} has no open medicine request: the card stays home", code="nothing-to-buy"
            )
        if building_leader is None:
            raise Conflict(f"building {building} has no logistics leader to collect cards", code="no-leader")
        if leader != building_leader:
            raise NotPermitted(
                f"cards are collected by the logistics leader of building {building} ({building_leader}), not {leader}",
                code="not-the-leader",
            )
        self.record(
            CardCollected(
                card=self.id,
                resident=self.id,
                building=building,
                giver=self._home(),
                receiver=holder("volunteer", leader),
                requests=self.open_requests,
                at=at,
            )
        )

    def hand_over(
        self,
        giver: CardHolder,
        receiver: CardHolder,
        *,
        handover: str,
        cards_in_handover: int,
        logistics: Collection[str],
        at: datetime,
    ) -> None:
        """From its holder to the next on the way (leader ↔ subdistrict); ``logistics``: the building's group."""
        _household, building = self._require_known()
        if giver.kind == "household":
            raise Invalid(
                "a card leaves its household only when the logistics leader collects it", code="collect-first"
            )
        if receiver.kind == "household":
            raise Invalid("a card goes back to its household with the medicine: record the return", code="use-return")
        if (giver.kind, giver.id) == (receiver.kind, receiver.id):
            raise Invalid(f"{describe(giver)} cannot hand a card to themselves", code="same-holder")
        self._require_holder(giver)
        if receiver.kind == "volunteer" and receiver.id not in logistics:
            raise Invalid(
                f"volunteer {receiver.id} is not in the logistics group of building {building}", code="not-in-group"
            )
        self.record(
            CardHandedOver(
                card=self.id,
                resident=self.id,
                building=building,
                handover=handover,
                giver=giver,
                receiver=receiver,
                cards_in_handover=cards_in_handover,
                at=at,
            )
        )

    def purchase(self, request: str, by: CardHolder, *, at: datetime) -> None:
        """The medicine of ``request`` was bought, with the card, by whoever holds it."""
        _household, building = self._require_known()
        status = self.requests.get(request)
        if status is None:
            raise NotFound(f"resident {self.id} has no medicine request {request}", code="request-unknown")
        if status != "open":
            raise Conflict(f"the medicine of request {request} was already bought", code="already-purchased")
        current = self.holder or self._home().model_dump()
        if self.at_home or (by.kind, by.id) != (current["kind"], current["id"]):
            raise Conflict(
                f"medicine is bought with the card, which is with {describe(current)}, not {describe(by)}",
                code="card-not-with-buyer",
            )
        self.record(MedicinePurchased(request=request, card=self.id, resident=self.id, building=building, by=by, at=at))

    def return_home(self, giver: CardHolder, *, at: datetime) -> None:
        """Medicine and card back to the household; requests not bought stay open for the next run."""
        _household, building = self._require_known()
        if self.at_home:
            raise Conflict(f"the card of resident {self.id} is at home already", code="card-at-home")
        self._require_holder(giver)
        self.record(
            MedicineAndCardReturned(
                card=self.id,
                resident=self.id,
                building=building,
                giver=giver,
                receiver=self._home(),
                fulfilled=[r for r, s in self.requests.items() if s == "purchased"],
                still_open=self.open_requests,
                at=at,
            )
        )

    def check_overdue(self, now: datetime, limit_hours: int) -> bool:
        """Raise the alert (once per trip) when the card has been out longer than ``limit_hours``."""
        if self.at_home or self.out_since is None or self.overdue_alerted:
            return False
        out_since = datetime.fromisoformat(self.out_since)
        hours = (now - out_since).total_seconds() / 3600
        if hours <= limit_hours:
            return False
        assert self.building is not None and self.holder is not None
        self.record(
            CardOverdue(
                card=self.id,
                resident=self.id,
                building=self.building,
                holder=CardHolder(**self.holder),
                out_since=out_since,
                hours_out=int(hours),
                limit_hours=limit_hours,
            )
        )
        return True

    def on_MedicineRequested(self, event: MedicineRequested) -> None:
        self.household = event.household
        self.building = event.building
        self.requests[event.request] = "open"
        if self.holder is None:
            self.holder = self._home().model_dump()

    def on_CardCollected(self, event: CardCollected) -> None:
        self.holder = event.receiver.model_dump()
        self.out_since = event.at.isoformat()
        self.overdue_alerted = False

    def on_CardHandedOver(self, event: CardHandedOver) -> None:
        self.holder = event.receiver.model_dump()

    def on_MedicinePurchased(self, event: MedicinePurchased) -> None:
        self.requests[event.request] = "purchased"

    def on_MedicineAndCardReturned(self, event: MedicineAndCardReturned) -> None:
        self.holder = event.receiver.model_dump()
        self.out_since = None
        self.overdue_alerted = False
        for request in event.fulfilled:
            self.requests[request] = "fulfilled"

    def on_CardOverdue(self, event: CardOverdue) -> None:
        self.overdue_alerted = True


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
