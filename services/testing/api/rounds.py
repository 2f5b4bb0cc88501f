"""Routes of rounds, their call plans (testing without crowds), "call next" and door-to-door lists."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from contracts.access import CompoundPeople, RoundWorkers, Samplers, Staff
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from services.testing.application import rounds
from services.testing.models import CalledNext, HomeVisits, PlanMade, PlanOut, RoundIn, RoundList, RoundOut

router = APIRouter(tags=["rounds"])
BuildingQuery = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


@router.post(
    "/compounds/{compound}/rounds",
    status_code=201,
    response_model=RoundOut,
    response_model_exclude_unset=True,
    summary="Schedule a PCR round or an antigen day",
)
def schedule(compound: CompoundId, body: RoundIn, caller: Staff, unit: Unit) -> dict[str, Any]:
    return rounds.schedule(unit, body)


@router.get(
    "/compounds/{compound}/rounds",
    response_model=RoundList,
    response_model_exclude_unset=True,
    summary="Rounds of the compound, latest first",
)
def list_rounds(compound: CompoundId, caller: CompoundPeople, runtime: RuntimeOf) -> dict[str, Any]:
    return rounds.list_rounds(runtime, compound)


@router.get(
    "/compounds/{compound}/rounds/{round}",
    response_model=RoundOut,
    response_model_exclude_unset=True,
    summary="One round",
)
def get_round(compound: CompoundId, round: LocalId, caller: CompoundPeople, runtime: RuntimeOf) -> dict[str, Any]:
    return rounds.get_round(runtime, compound, round)


@router.post(
    "/compounds/{compound}/rounds/{round}/plan",
    response_model=PlanMade,
    summary="Make (or remake) the round's call plan",
)
def make_plan(compound: CompoundId, round: LocalId, caller: Staff, unit: Unit) -> dict[str, Any]:
    """From who lives where now: a timetable per point, and door-to-door visits for bedridden residents."""
    return rounds.make_plan(unit, round)


@router.get(
    "/compounds/{compound}/rounds/{round}/plan", response_model=PlanOut, summary="The round's timetable per point"
)
def read_plan(
    compound: CompoundId, round: LocalId, caller: RoundWorkers, runtime: RuntimeOf, building: BuildingQuery = None
) -> dict[str, Any]:
    """Information officers see the calls of their buildings; volunteers and staff see every point's."""
    return rounds.read_plan(runtime, caller, compound, round, building)


@router.post(
    "/compounds/{compound}/rounds/{round}/points/{point}/calls/next",
    response_model=CalledNext,
    summary="Call next: the next floors come down to this point now",
)
def call_next(compound: CompoundId, round: LocalId, point: LocalId, caller: Samplers, unit: Unit) -> dict[str, Any]:
    return rounds.call_next(unit, caller, round, point)


@router.get(
    "/compounds/{compound}/rounds/{round}/door-to-door",
    response_model=HomeVisits,
    summary="Residents to sample at home",
)
def home_visits(
    compound: CompoundId, round: LocalId, caller: RoundWorkers, runtime: RuntimeOf, building: BuildingQuery = None
) -> dict[str, Any]:
    return rounds.home_visits(runtime, caller, compound, round, building)
