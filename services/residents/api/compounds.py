"""Routes of the register of compounds: a compound's subdistrict (街道) and its own zone rules; a subdistrict's
compounds."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from contracts import roles as r
from contracts.access import Oversight, Staff
from juwei.auth import CompoundId, require
from juwei.callers import Caller
from juwei.dependencies import RuntimeOf, Unit
from services.residents.application import compounds
from services.residents.models import CompoundIn, CompoundOut, SubdistrictCompoundsOut, ZoneRulesIn

router = APIRouter(tags=["compounds"])

SubdistrictId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="Subdistrict id")]
# The district, and a subdistrict's own key (checked against the path).
SubdistrictReaders = Annotated[Caller, Depends(require(r.DISTRICT_OPERATOR, r.SUBDISTRICT_STAFF))]


@router.get("/compounds/{compound}/registration", response_model=CompoundOut, summary="The compound in the register")
def registration(compound: CompoundId, caller: Oversight, runtime: RuntimeOf) -> dict[str, Any]:
    return compounds.compound(runtime, compound)


@router.put(
    "/compounds/{compound}/registration",
    response_model=CompoundOut,
    summary="Register the compound with its subdistrict (街道), or move it to another",
)
def register(compound: CompoundId, body: CompoundIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    return compounds.register(unit, body)


@router.put(
    "/compounds/{compound}/zone-rules",
    response_model=CompoundOut,
    summary="The compound's own zone rules (days before controlled, before precaution); its zones follow at once",
)
def set_zone_rules(compound: CompoundId, body: ZoneRulesIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    return compounds.set_zone_rules(unit, body)


@router.get(
    "/subdistricts/{subdistrict}/compounds",
    response_model=SubdistrictCompoundsOut,
    summary="The compounds registered in a subdistrict (the district, or that subdistrict's key)",
)
def subdistrict_compounds(subdistrict: SubdistrictId, caller: SubdistrictReaders, runtime: RuntimeOf) -> dict[str, Any]:
    return compounds.of_subdistrict(runtime, caller, subdistrict)
