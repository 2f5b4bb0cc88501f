"""What the supplies service's HTTP API takes: request models, apart from the routes. Ids in bodies are ids
local to the compound (the bus adds ``<compound>:``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.supplies import Need
from juwei.openapi import UtcTime

# An id within a compound, as the API speaks it (the bus adds "<compound>:").
LocalIdText = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]
# Item and category names: lower-case words (rice, antigen_kits).
ItemName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]{0,39}$", examples=["rice"])]


# --- the supply policy ---------------------------------------------------------------------------------------------


class PolicyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rota_pattern": "AB",
                    "rota_starts_on": "2022-04-01",
                    "both_shifts_households": 60,
                    "both_shifts_items": 300,
                    "card_return_hours": 48,
                    "donation_categories": ["masks", "antigen_kits", "disinfectant"],
                }
            ]
        },
    )
    rota_pattern: str = Field(min_length=1, max_length=28, pattern=r"^[ABab]+$")
    rota_starts_on: date
    both_shifts_households: int = Field(ge=1, le=100_000)
    both_shifts_items: int = Field(ge=1, le=10_000_000)
    card_return_hours: int = Field(ge=1, le=24 * 30)
    donation_categories: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(min_length=1, max_length=50)


# --- batches -------------------------------------------------------------------------------------------------------


Quantity = Annotated[int, Field(ge=1, le=1_000_000)]


# The unit an item is counted in (box, bag, kg).
ItemUnit = Annotated[str, Field(min_length=1, max_length=20)]


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: ItemName
    quantity: Quantity
    unit: ItemUnit = "box"


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order: LocalIdText
    household: LocalIdText = Field(description="the household the order is for, whoever placed it")
    items: dict[ItemName, Quantity] = Field(min_length=1, max_length=50)
    placed_from_outside: bool = False


class DonationUseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    donation: LocalIdText
    item: ItemName
    quantity: Quantity


class BatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "batch": "gov-0412",
                    "source": "government",
                    "label": "保供 vegetables and rice",
                    "items": [{"item": "vegetables", "quantity": 1800, "unit": "box"}],
                    "whole_compound": True,
                }
            ]
        },
    )
    batch: LocalIdText
    source: Literal["government", "group_purchase", "donation"]
    label: str = Field("", max_length=200, description="published with the batch: what it is, never who")
    arrived_on: date | None = None
    items: list[ItemIn] = Field(default_factory=list, max_length=200)
    whole_compound: bool = Field(False, description="for every building of the compound")
    buildings: list[LocalIdText] = Field(default_factory=list, max_length=500)
    households: list[LocalIdText] = Field(default_factory=list, max_length=20_000)
    orders: list[OrderIn] = Field(default_factory=list, max_length=20_000)
    donations: list[DonationUseIn] = Field(default_factory=list, max_length=500)


class AllocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"method": "household_size"}]})
    method: Literal["equal", "household_size", "needs", "orders"] | None = Field(
        None, description="default: orders for a group purchase, equal otherwise"
    )
    needs: list[Need] = Field(default_factory=list, description="for method 'needs'; default elderly, infant")


class DispatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on: date | None = Field(None, description="the day the shifts go out; default today")


# --- deliveries ----------------------------------------------------------------------------------------------------


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    household: LocalIdText
    outcome: Literal["delivered", "no_one_home", "refused", "wrong_items"]


class OutcomesIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "volunteer": "v-1201",
                    "outcomes": [
                        {"household": "12-0301", "outcome": "delivered"},
                        {"household": "12-0302", "outcome": "no_one_home"},
                    ],
                }
            ]
        },
    )
    volunteer: LocalIdText | None = Field(None, description="who delivered; required of a logistics volunteer's key")
    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=500)


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"resolution": "collected"}]})
    resolution: Literal["collected", "exchanged", "returned_to_stock"]
    volunteer: LocalIdText | None = None


# --- medicine ------------------------------------------------------------------------------------------------------


class MedicineRequestIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "request": "m-0412-07",
                    "resident": "r-120301",
                    "medicine": "硝苯地平控释片 30mg",
                    "quantity": "2 boxes",
                    "hospital": "瑞金医院",
                    "officer": "v-1200",
                }
            ]
        },
    )
    request: LocalIdText
    resident: LocalIdText
    medicine: str = Field(min_length=1, max_length=200)
    quantity: str = Field(min_length=1, max_length=50)
    hospital: str = Field(min_length=1, max_length=200)
    officer: LocalIdText | None = Field(None, description="the information officer; required of an officer's key")


class HolderIn(BaseModel):
    """Who holds or takes a card: ids are the compound's, except subdistrict staff's own."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["volunteer", "subdistrict", "staff", "household"]
    id: LocalIdText


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"leader": "v-1201"}]})
    leader: LocalIdText


class HandoverIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "handover": "h-0412-1",
                    "giver": {"kind": "volunteer", "id": "v-1201"},
                    "receiver": {"kind": "subdistrict", "id": "sd-wang"},
                    "cards": ["r-120301", "r-120502"],
                }
            ]
        },
    )
    handover: LocalIdText
    giver: HolderIn
    receiver: HolderIn
    cards: list[LocalIdText] = Field(min_length=1, max_length=500, description="the residents whose cards change hands")


class PurchaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    buyer: HolderIn = Field(description="who bought it: they hold the card")


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    giver: HolderIn


# --- donations -----------------------------------------------------------------------------------------------------


class DonationItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: ItemName
    category: str = Field(min_length=1, max_length=40, examples=["antigen_kits"])
    quantity: int = Field(ge=1, le=10_000_000)
    unit: str = Field("piece", min_length=1, max_length=20)


class DonationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "donation": "d-0415-01",
                    "donor": "donor-017",
                    "items": [
                        {"item": "kn95", "category": "masks", "quantity": 2000},
                        {"item": "staff_lunch", "category": "meals", "quantity": 7, "unit": "box"},
                    ],
                }
            ]
        },
    )
    donation: LocalIdText
    donor: LocalIdText = Field(description="a reference for the donor; the ledger shows this, never a name")
    donor_name: str | None = Field(None, min_length=1, max_length=100, description="sealed; staff only; erasable")
    received_on: date | None = None
    items: list[DonationItemIn] = Field(min_length=1, max_length=100)
    refuse_reason: str | None = Field(None, min_length=1, max_length=500, description="refuse it all, for this reason")


# --- answers (strict: a key the model does not name is a bug, not a leak) ---------------------------------------------


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
