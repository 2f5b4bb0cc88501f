"""The published event catalogue of the supplies service (topic ``juwei.supplies``).

Privacy (PIPL): these payloads go on Kafka and out of the feed, so they carry ids, item names and counts,
never a name, a phone number, an ID number or a medication. What a resident takes (medicine, quantity,
hospital) and who a donor is stay in ``private_fields``: sealed in this service's vault and kept in its
own log only. Every event that concerns one building declares ``building`` so Kafka keeps one building's
story in order (notify tells each building group what is coming and how far the delivery has got).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import roles as r
from contracts.sensitivity import COUNT, VOCABULARY
from juwei.events import DomainEvent, EventRegistry, Sensitivity

TOPIC = "juwei.supplies"
registry = EventRegistry(
    vocabulary=VOCABULARY,
    topic=TOPIC,
    description="Supply batches, allocations, shifts, deliveries, medicine custody, donations.",
)

# Who besides staff reads each event in the feed (``contracts.access``): the building's team its deliveries,
# the card carriers and the subdistrict the medicine runs, a household its own deliveries and requests.
DELIVERY_TEAM = frozenset({r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER})
DOORSTEP = frozenset({*DELIVERY_TEAM, r.HOUSEHOLD})
MEDICINE_RUN = frozenset({r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER, r.SUBDISTRICT_STAFF})

Source = Literal["government", "group_purchase", "donation"]
Method = Literal["equal", "household_size", "needs", "orders"]
Shift = Literal["A", "B"]
FailureReason = Literal["no_one_home", "refused", "wrong_items"]
Resolution = Literal["redelivered", "collected", "exchanged", "returned_to_stock"]
HolderKind = Literal["household", "volunteer", "subdistrict", "staff"]
Need = Literal["elderly", "infant", "regular_medication", "mobility_impaired", "bedridden", "pregnant"]
Quantity = Annotated[int, Field(ge=1)]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SupplyItem(_Part):
    """One kind of item in a batch: how many units arrived."""

    item: str
    quantity: Quantity
    unit: str = "box"


class GroupOrder(_Part):
    """A group-purchase order: it belongs to the household it is for, whoever placed it."""

    order: str
    household: str
    items: dict[str, Quantity]
    placed_from_outside: bool = Field(False, description="placed by someone outside the compound (e.g. a child)")


class DonationUse(_Part):
    """How much of one accepted donation's item went into a batch."""

    donation: str
    item: str
    quantity: Quantity


class AllocationShare(_Part):
    household: str
    floor: int
    room: int
    items: dict[str, Quantity]


class FloorTask(_Part):
    """The households one shift delivers to on one floor (rooms in order: one pass up the stairs)."""

    floor: int
    households: list[str]


class CardHolder(_Part):
    """Who holds a medical-insurance card: the household, a volunteer, subdistrict or committee staff (ids)."""

    kind: HolderKind
    id: str


class DonationItem(_Part):
    item: str
    category: str
    quantity: Quantity
    unit: str = "piece"


# --- policy ---------------------------------------------------------------------------------------------


class SupplyPolicySet(DomainEvent):
    """The compound's supply rules from now on: shift rota, both-shifts threshold, card limit, donations."""

    event_type = "juwei.supplies.SupplyPolicySet"
    version = 1
    rota_pattern: str = Field(description="shift on duty day by day, repeating, e.g. 'AB' or 'AABB'")
    rota_starts_on: date
    both_shifts_households: int = Field(ge=1, description="a building's part of a batch above this calls both shifts")
    both_shifts_items: int = Field(ge=1)
    card_return_hours: int = Field(ge=1, description="a card out longer than this raises CardOverdue")
    donation_categories: list[str]


# --- batches, allocation, shifts, deliveries ------------------------------------------------------------


class BatchArrived(DomainEvent):
    event_type = "juwei.supplies.BatchArrived"
    version = 1
    audience = DELIVERY_TEAM
    batch: str
    source: Source
    label: str = ""
    arrived_on: date
    items: list[SupplyItem]
    buildings: list[str] = Field(default_factory=list, description="every household of these buildings")
    households: list[str] = Field(default_factory=list, description="and these households")
    orders: list[GroupOrder] = Field(default_factory=list)
    donations: list[DonationUse] = Field(default_factory=list)


class AllocationPlanned(DomainEvent):
    """One building's part of a batch's plan; the plan is recorded before anything moves."""

    event_type = "juwei.supplies.AllocationPlanned"
    version = 1
    sensitivity: ClassVar[dict[str, Sensitivity]] = {"households": COUNT}
    audience = DELIVERY_TEAM
    batch: str
    building: str
    method: Method
    needs: list[Need] = Field(default_factory=list)
    shares: list[AllocationShare]
    households: int
    items: dict[str, int] = Field(description="what this building receives in all, by item")


class BatchDispatched(DomainEvent):
    event_type = "juwei.supplies.BatchDispatched"
    version = 1
    audience = DELIVERY_TEAM
    batch: str
    on: date
    buildings: list[str]


class ShiftCalled(DomainEvent):
    """The logistics shift(s) of a building called out for a batch; ``both`` when the load is large."""

    event_type = "juwei.supplies.ShiftCalled"
    version = 1
    sensitivity: ClassVar[dict[str, Sensitivity]] = {"households": COUNT}
    audience = DELIVERY_TEAM
    batch: str
    building: str
    on: date
    shift_on_duty: Shift
    shifts: list[Shift]
    both: bool
    reason: str
    volunteers: list[str] = Field(description="the logistics volunteers of the called shifts")
    households: int
    items: int


class DeliveryTasksIssued(DomainEvent):
    event_type = "juwei.supplies.DeliveryTasksIssued"
    version = 1
    sensitivity: ClassVar[dict[str, Sensitivity]] = {"floors": "location"}  # each floor's households, in delivery order
    audience = DELIVERY_TEAM
    batch: str
    building: str
    shifts: list[Shift]
    floors: list[FloorTask]


class _Progress(DomainEvent):
    """Every delivery event carries the building's progress after it: 'Building 12: 180/200 delivered'."""

    sensitivity: ClassVar[dict[str, Sensitivity]] = {"households": COUNT}

    delivered: int = 0
    households: int = 0
    follow_ups: int = Field(0, description="households still on the follow-up list")


class DeliveryConfirmed(_Progress):
    event_type = "juwei.supplies.DeliveryConfirmed"
    version = 1
    audience = DOORSTEP
    batch: str
    building: str
    household: str
    floor: int
    by: str | None = Field(None, description="the volunteer; none when staff recorded it")


class DeliveryFailed(_Progress):
    event_type = "juwei.supplies.DeliveryFailed"
    version = 1
    audience = DOORSTEP
    batch: str
    building: str
    household: str
    floor: int
    reason: FailureReason
    attempt: int
    by: str | None = None


class FollowUpResolved(_Progress):
    event_type = "juwei.supplies.FollowUpResolved"
    version = 1
    audience = DOORSTEP
    batch: str
    building: str
    household: str
    resolution: Resolution
    by: str | None = None


class BuildingDelivered(_Progress):
    """Every household of the building has its share or its follow-up resolved."""

    event_type = "juwei.supplies.BuildingDelivered"
    version = 1
    audience = DELIVERY_TEAM
    batch: str
    building: str
    resolved_otherwise: int = 0


# --- medicine for the elderly: the card's custody chain ------------------------------------------------


class MedicineRequested(DomainEvent):
    """A medication need recorded by the information officer; what and where stays sealed in ``prescription``."""

    event_type = "juwei.supplies.MedicineRequested"
    version = 1
    audience = frozenset({r.INFORMATION_OFFICER, r.SUBDISTRICT_STAFF, r.HOUSEHOLD})  # a need: not the carriers
    private_fields: ClassVar[frozenset[str]] = frozenset({"prescription"})
    request: str
    card: str
    resident: str
    household: str
    building: str
    requested_on: date
    by: str | None = None
    prescription: str | None = Field(
        None, description="medicine, quantity and hospital sealed under the resident's own key; never published"
    )


class CardCollected(DomainEvent):
    event_type = "juwei.supplies.CardCollected"
    version = 1
    audience = MEDICINE_RUN
    card: str
    resident: str
    building: str
    giver: CardHolder
    receiver: CardHolder
    requests: list[str]
    at: datetime


class CardHandedOver(DomainEvent):
    """One card changing hands; a handover of many cards records one of these per card, same ``handover``."""

    event_type = "juwei.supplies.CardHandedOver"
    version = 1
    audience = MEDICINE_RUN
    card: str
    resident: str
    building: str
    handover: str
    giver: CardHolder
    receiver: CardHolder
    cards_in_handover: int
    at: datetime


class MedicinePurchased(DomainEvent):
    event_type = "juwei.supplies.MedicinePurchased"
    version = 1
    audience = MEDICINE_RUN
    request: str
    card: str
    resident: str
    building: str
    by: CardHolder
    at: datetime


class MedicineAndCardReturned(DomainEvent):
    event_type = "juwei.supplies.MedicineAndCardReturned"
    version = 1
    audience = MEDICINE_RUN
    card: str
    resident: str
    building: str
    giver: CardHolder
    receiver: CardHolder
    fulfilled: list[str]
    still_open: list[str] = Field(description="requests the medicine could not be bought for: they stay open")
    at: datetime


class CardOverdue(DomainEvent):
    event_type = "juwei.supplies.CardOverdue"
    version = 1
    audience = MEDICINE_RUN
    card: str
    resident: str
    building: str
    holder: CardHolder
    out_since: datetime
    hours_out: int
    limit_hours: int


# --- donations and the public ledger ---------------------------------------------------------------------


class DonationAccepted(DomainEvent):
    event_type = "juwei.supplies.DonationAccepted"
    version = 1
    audience = DELIVERY_TEAM
    private_fields: ClassVar[frozenset[str]] = frozenset({"donor_name"})
    donation: str
    donor: str = Field(description="a donor reference, not a name")
    received_on: date
    items: list[DonationItem]
    donor_name: str | None = Field(None, description="sealed under the donor's own key; never published")


class DonationRefused(DomainEvent):
    event_type = "juwei.supplies.DonationRefused"
    version = 1
    audience = DELIVERY_TEAM
    private_fields: ClassVar[frozenset[str]] = frozenset({"donor_name"})
    donation: str
    donor: str
    received_on: date
    items: list[DonationItem]
    reason: str
    donor_name: str | None = None


class DonationAllocated(DomainEvent):
    event_type = "juwei.supplies.DonationAllocated"
    version = 1
    audience = DELIVERY_TEAM
    donation: str
    batch: str
    items: dict[str, Quantity]


CATALOGUE: tuple[type[DomainEvent], ...] = (
    SupplyPolicySet,
    BatchArrived,
    AllocationPlanned,
    BatchDispatched,
    ShiftCalled,
    DeliveryTasksIssued,
    DeliveryConfirmed,
    DeliveryFailed,
    FollowUpResolved,
    BuildingDelivered,
    MedicineRequested,
    CardCollected,
    CardHandedOver,
    MedicinePurchased,
    MedicineAndCardReturned,
    CardOverdue,
    DonationAccepted,
    DonationRefused,
    DonationAllocated,
)
registry.register_all(CATALOGUE)
