"""What the supplies service's HTTP API answers: response models, strict (a key a model does not name is a
bug, not a leak), apart from the routes and from the request models in ``models.py``."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from juwei.openapi import UtcTime


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyOut(Answer):
    rota_pattern: str = Field(examples=["AB"])
    rota_starts_on: date
    both_shifts_households: int
    both_shifts_items: int
    card_return_hours: int
    donation_categories: list[str]


class RotaDay(Answer):
    on: date
    shift: str = Field(examples=["A"])


class RotaOut(Answer):
    pattern: str
    days: list[RotaDay]


class DonationReceived(Answer):
    donation: str
    accepted: list[str] = Field(description="Items accepted")
    refused: list[str] = Field(description="Items refused under the no-gifts rule")
    reason: str | None


class DonatedItem(Answer):
    item: str
    category: str
    quantity: int
    unit: str


class DonatedItemShown(DonatedItem):
    accepted: bool
    allocated: int


class DonationOut(Answer):
    donation: str
    donor: str
    donor_name: str | None = Field(description="None once erased")
    received_on: date
    items: list[DonatedItemShown]
    refusal_reason: str | None


class DonorErased(Answer):
    donor: str
    erased: bool


class DonationUse(Answer):
    batch: str
    label: str
    arrived_on: date
    quantity: int


class LedgerItem(DonatedItem):
    allocated: int
    in_stock: int
    batches: list[DonationUse] = Field(description="The batches it went out with")


class LedgerAccepted(Answer):
    donation: str
    donor: str = Field(description="The donor's reference, never a name")
    received_on: date
    items: list[LedgerItem]


class LedgerRefused(Answer):
    donation: str
    donor: str
    received_on: date
    items: list[DonatedItem]
    reason: str | None


class LedgerOut(Answer):
    compound: str
    accepted: list[LedgerAccepted]
    refused: list[LedgerRefused]


class BatchArrived(Answer):
    batch: str
    source: str
    items: dict[str, int] = Field(description="Units by item")
    buildings: int = Field(description="How many buildings it is for")


class BuildingShare(Answer):
    building: str
    households: int
    items: dict[str, int]


class AllocationPlanned(Answer):
    batch: str
    method: str
    households: int
    buildings: list[BuildingShare]


class ShiftCallOut(Answer):
    building: str
    shifts: list[str] = Field(examples=[["A"]])
    both: bool = Field(description="Both shifts turn out: a large part of the batch")
    reason: str
    volunteers: list[str]
    households: int
    items: int


class Dispatched(Answer):
    batch: str
    on: date
    calls: list[ShiftCallOut]


class BatchItem(Answer):
    item: str
    quantity: int
    unit: str


class BatchSummary(Answer):
    batch: str
    source: str
    label: str
    arrived_on: date
    items: list[BatchItem]
    method: str | None = Field(description="None until an allocation is planned")
    households: int = Field(description="Households in the plan")
    dispatched_on: date | None


class BatchList(Answer):
    batches: list[BatchSummary]


class BatchDonation(Answer):
    donation: str
    item: str
    quantity: int


class BatchOut(BatchSummary):
    buildings: list[str]
    for_households: list[str]
    donations: list[BatchDonation]


class HouseholdShare(Answer):
    household: str
    building: str
    floor: int
    room: int
    items: dict[str, int]
    status: str


class AllocationOut(Answer):
    batch: str
    method: str | None
    shares: list[HouseholdShare]


class BuildingProgress(Answer):
    building: str
    shifts: list[str]
    households: int
    delivered: int
    follow_ups: int
    complete: bool
    text: str = Field(examples=["Building 12: 180/200 delivered"])


class ProgressOut(Answer):
    batch: str
    dispatched_on: date | None
    households: int
    delivered: int
    follow_ups: int
    buildings: list[BuildingProgress]


class DeliveryProgress(Answer):
    batch: str
    building: str
    households: int
    delivered: int
    follow_ups: int
    complete: bool


class FollowUpResolved(DeliveryProgress):
    household: str


class HouseholdTask(Answer):
    household: str
    room: int
    items: dict[str, int]
    status: str
    reason: str | None


class FloorTasks(Answer):
    floor: int
    households: list[HouseholdTask]


class BuildingDeliveryOut(Answer):
    batch: str
    label: str
    source: str
    on: date
    shifts: list[str]
    both: bool
    volunteers: list[str]
    progress: str = Field(examples=["180/200 delivered"])
    floors: list[FloorTasks]


class BuildingTasks(Answer):
    building: str
    deliveries: list[BuildingDeliveryOut]


class FollowUp(Answer):
    batch: str
    building: str
    household: str
    floor: int
    room: int
    reason: str | None
    attempts: int
    items: dict[str, int]


class FollowUps(Answer):
    follow_ups: list[FollowUp]
    count: int


class MedicineRequested(Answer):
    request: str
    resident: str
    household: str
    building: str


class Prescription(Answer):
    medicine: str
    quantity: str
    hospital: str


class MedicineRequestOut(Answer):
    request: str
    resident: str
    household: str
    requested_on: date
    status: Literal["open", "purchased", "fulfilled"]
    prescription: Prescription | None = Field(description="Health data, audited when shown; None once erased")


class BuildingNeeds(Answer):
    building: str
    requests: list[MedicineRequestOut]


class OutstandingBuilding(Answer):
    building: str
    open_requests: int
    bought_not_home: int
    cards_out: int
    cards_overdue: int


class Outstanding(Answer):
    buildings: list[OutstandingBuilding]


class CardHolderOut(Answer):
    kind: Literal["volunteer", "subdistrict", "staff", "household"]
    id: str = Field(description="A compound-local id, or subdistrict staff's own")


class CardCollected(Answer):
    card: str = Field(description="The card's resident")
    holder: CardHolderOut


class HandedOver(Answer):
    handover: str
    giver: CardHolderOut
    receiver: CardHolderOut
    cards: list[str]


class Purchased(Answer):
    request: str
    status: Literal["purchased"]


class CardReturned(Answer):
    card: str
    fulfilled: list[str] = Field(description="Requests fulfilled by this return")
    still_open: list[str]


class CardWhereabouts(Answer):
    card: str
    household: str
    building: str
    holder: CardHolderOut | None
    since: UtcTime | None
    out_since: UtcTime | None = Field(description="Away from home since; None at home")
    overdue: bool


class CardsOut(Answer):
    cards: list[CardWhereabouts]


class CardStep(Answer):
    step: str
    at: UtcTime
    giver: CardHolderOut | None
    receiver: CardHolderOut | None
    handover: str | None
    requests: list[str]


class CardHistory(Answer):
    card: str
    holder: CardHolderOut | None
    overdue: bool
    history: list[CardStep]
