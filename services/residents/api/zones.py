"""Routes of zone status — sealed, controlled, precaution — and the answer to "when can we go out?"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from contracts.access import CompoundPeople, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Today, Unit
from services.residents.application import zones
from services.residents.models import BuildingZoneOut, CompoundZonesOut, DecisionIn, DecisionOut

router = APIRouter(tags=["zones"])


@router.get(
    "/compounds/{compound}/zones", response_model=CompoundZonesOut, summary="The compound's zone and every building's"
)
def compound_zones(compound: CompoundId, caller: CompoundPeople, runtime: RuntimeOf, today: Today) -> dict[str, Any]:
    return zones.compound_zones(runtime, compound, today)


@router.get(
    "/compounds/{compound}/buildings/{building}/zone",
    response_model=BuildingZoneOut,
    summary="When can we go out? (one building)",
)
def building_zone(
    compound: CompoundId, building: LocalId, caller: CompoundPeople, runtime: RuntimeOf, today: Today
) -> dict[str, Any]:
    return zones.building_zone(runtime, compound, building, today)


@router.post(
    "/compounds/{compound}/zones/decisions",
    status_code=201,
    response_model=DecisionOut,
    summary="Set a zone by the authorities' decision",
)
def decide(compound: CompoundId, body: DecisionIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    zones.decide(unit, caller, body)
    return {"building": body.building, "zone": body.zone, "decided_by_authority": True}
