"""What the supplies service's HTTP API takes: request models, apart from the routes. Ids in bodies are ids
local to the compound (the bus adds ``<compound>:``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.supplies import Need

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
