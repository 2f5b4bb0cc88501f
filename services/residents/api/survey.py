"""Routes of the weekly medicine survey: whom an information officer still has to ask, and "asked"."""

from __future__ import annotations

from fastapi import APIRouter, Request

from contracts.access import Officers
from juwei.audit import AUDITED_READ, reading_of
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf, Unit
from services.residents.application import survey
from services.residents.volunteering import MedicineAskedIn, MedicineAskedOut, MedicineSurveyOut

router = APIRouter(tags=["medicine survey"])


@router.get(
    "/compounds/{compound}/buildings/{building}/medicine-survey",
    response_model=MedicineSurveyOut,
    summary="The elderly and regular-medication residents of a building not yet asked about medicine this week",
    openapi_extra=AUDITED_READ,
    responses={404: {"description": "No such building"}},
)
def still_to_ask(
    compound: CompoundId, building: LocalId, request: Request, caller: Officers, runtime: RuntimeOf
) -> dict[str, object]:
    reading = reading_of(request, f"medicine survey of building {building}")
    return survey.still_to_ask(runtime, caller, compound, building, reading)


@router.post(
    "/compounds/{compound}/residents/{resident}/medicine-asked",
    response_model=MedicineAskedOut,
    summary="Record that the information officer asked a resident about medicine this week",
    responses={404: {"description": "No such resident"}},
)
def record_asked(
    compound: CompoundId, resident: LocalId, body: MedicineAskedIn, caller: Officers, unit: Unit
) -> dict[str, object]:
    return survey.record_asked(unit, caller, resident, body.asked_on)
