"""Routes of medicine for the elderly: needs recorded by the information officer, and the card's custody chain."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from contracts.access import Buyers, CardCarriers, CustodyReaders, Logistics, MedicineReaders, Officers
from juwei.audit import AUDITED_READ, reading_of
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from services.supplies.answers import (
    BuildingNeeds,
    CardCollected,
    CardHistory,
    CardReturned,
    CardsOut,
    HandedOver,
    MedicineRequested,
    Outstanding,
    Purchased,
)
from services.supplies.application import medicine
from services.supplies.models import CollectionIn, HandoverIn, MedicineRequestIn, PurchaseIn, ReturnIn

router = APIRouter(tags=["medicine"])
BuildingFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


@router.post(
    "/compounds/{compound}/medicine-requests",
    status_code=201,
    response_model=MedicineRequested,
    summary="Record a medication need",
)
def request_medicine(compound: CompoundId, body: MedicineRequestIn, caller: Officers, unit: Unit) -> dict[str, Any]:
    return medicine.request_medicine(unit, caller, body)


@router.get(
    "/compounds/{compound}/buildings/{building}/medicine-requests",
    response_model=BuildingNeeds,
    summary="Medication needs of a building",
    openapi_extra=AUDITED_READ,
)
def building_needs(
    compound: CompoundId,
    building: LocalId,
    request: Request,
    caller: MedicineReaders,
    runtime: RuntimeOf,
    status: Annotated[Literal["open", "purchased", "fulfilled"] | None, Query()] = None,
) -> dict[str, Any]:
    reading = reading_of(request, f"medicine runs: the needs of building {building}")
    return medicine.building_needs(runtime, caller, compound, building, status, reading)


@router.get(
    "/compounds/{compound}/medicine/outstanding",
    response_model=Outstanding,
    summary="What is outstanding, building by building",
)
def outstanding(
    compound: CompoundId, caller: CustodyReaders, runtime: RuntimeOf, building: BuildingFilter = None
) -> dict[str, Any]:
    return medicine.outstanding(runtime, caller, compound, building)


@router.post(
    "/compounds/{compound}/cards/{resident}/collection",
    response_model=CardCollected,
    summary="The logistics leader collects a card",
)
def collect_card(
    compound: CompoundId, resident: LocalId, body: CollectionIn, caller: Logistics, unit: Unit
) -> dict[str, Any]:
    return medicine.collect_card(unit, caller, resident, body)


@router.post(
    "/compounds/{compound}/card-handovers",
    status_code=201,
    response_model=HandedOver,
    summary="Cards change hands (one or many)",
)
def hand_over(compound: CompoundId, body: HandoverIn, caller: CardCarriers, unit: Unit) -> dict[str, Any]:
    return medicine.hand_over(unit, caller, body)


@router.post(
    "/compounds/{compound}/medicine-requests/{medicine_request}/purchase",
    response_model=Purchased,
    summary="The medicine was bought",
)
def purchase(
    compound: CompoundId, medicine_request: LocalId, body: PurchaseIn, caller: Buyers, unit: Unit
) -> dict[str, Any]:
    return medicine.purchase(unit, caller, medicine_request, body)


@router.post(
    "/compounds/{compound}/cards/{resident}/return",
    response_model=CardReturned,
    summary="Medicine and card are back home",
)
def return_home(
    compound: CompoundId, resident: LocalId, body: ReturnIn, caller: CardCarriers, unit: Unit
) -> dict[str, Any]:
    return medicine.return_home(unit, caller, resident, body)


@router.get("/compounds/{compound}/cards", response_model=CardsOut, summary="Where is each card now")
def where_cards_are(
    compound: CompoundId,
    caller: CustodyReaders,
    runtime: RuntimeOf,
    building: BuildingFilter = None,
    out: Annotated[bool, Query(description="only cards away from home")] = False,
) -> dict[str, Any]:
    return medicine.where_cards_are(runtime, caller, compound, building, out)


@router.get(
    "/compounds/{compound}/cards/{resident}/history", response_model=CardHistory, summary="Every step of one card's way"
)
def card_steps(compound: CompoundId, resident: LocalId, caller: CustodyReaders, runtime: RuntimeOf) -> dict[str, Any]:
    return medicine.card_steps(runtime, caller, compound, resident)
