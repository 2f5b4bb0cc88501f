"""Routes of donations under the no-gifts rule, and the public ledger every household of the compound can read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from contracts.access import CompoundPeople, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from services.supplies.answers import DonationOut, DonationReceived, DonorErased, LedgerOut
from services.supplies.application import donations
from services.supplies.models import DonationIn

router = APIRouter(tags=["donations"])


@router.post(
    "/compounds/{compound}/donations",
    status_code=201,
    response_model=DonationReceived,
    summary="Record a donation: accepted or refused",
)
def receive_donation(compound: CompoundId, body: DonationIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    return donations.receive_donation(unit, body)


@router.get(
    "/compounds/{compound}/donations/{donation}",
    response_model=DonationOut,
    summary="One donation, with the donor's name (staff)",
)
def show_donation(compound: CompoundId, donation: LocalId, caller: Staff, runtime: RuntimeOf) -> dict[str, Any]:
    return donations.show_donation(runtime, compound, donation)


@router.delete(
    "/compounds/{compound}/donors/{donor}/name",
    response_model=DonorErased,
    summary="Erase a donor's name (the ledger stays)",
)
def erase_donor_name(compound: CompoundId, donor: LocalId, caller: Staff, runtime: RuntimeOf) -> dict[str, Any]:
    return donations.erase_donor_name(runtime, compound, donor)


@router.get(
    "/compounds/{compound}/ledger",
    response_model=LedgerOut,
    summary="The public ledger: what came in, where it went, what was refused",
)
def ledger(compound: CompoundId, caller: CompoundPeople, runtime: RuntimeOf) -> dict[str, Any]:
    return donations.ledger(runtime, compound)
