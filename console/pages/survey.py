"""The information officer's survey lists on the phone: whom to ask about medicine this week (with "asked"),
and the households nobody has reached yet in the current round. Only the officer's own building."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from console.dependencies import Console, LocalId, building_of, checked_form, client_for, form_segment, role_in
from console.pages.phone import first_building, phone_page
from console.services_client import ServiceProblem, gather_settled
from console.sessions import Person
from contracts.roles import INFORMATION_OFFICER

router = APIRouter()
Officer = Annotated[Person, Depends(role_in(INFORMATION_OFFICER))]


@router.get("/phone/survey")
def my_survey(person: Officer) -> Response:
    return RedirectResponse(f"/phone/survey/{first_building(person)}", status_code=303)


@router.get("/phone/survey/{building}", response_class=HTMLResponse)
async def survey(request: Request, console: Console, person: Officer, building: LocalId) -> HTMLResponse:
    """The two lists, each from its own service (one down leaves the other standing)."""
    building_of(person, building)
    client = client_for(request, console, person)
    found = await gather_settled(
        {
            "medicine": client.get("residents", f"/compounds/{person.compound}/buildings/{building}/medicine-survey"),
            "unreached": client.get("testing", f"/compounds/{person.compound}/unreached-households", building=building),
        }
    )
    medicine, unreached = found["medicine"], found["unreached"]
    households: list[dict[str, Any]] = []
    if isinstance(unreached, dict):
        households = next((b["households"] for b in unreached["buildings"] if b["building"] == building), [])
    context = {
        "building": building,
        "medicine": medicine if isinstance(medicine, dict) else None,
        "round": unreached["round"] if isinstance(unreached, dict) else None,
        "households": households,
        # No round begun yet is no failure: the list is simply empty.
        "unavailable": [
            name
            for name, value in found.items()
            if isinstance(value, ServiceProblem) and value.status not in (403, 404)
        ],
        "asked": request.query_params.get("asked"),
    }
    return phone_page(console, request, "phone/survey.html", context)


@router.post("/phone/survey/{building}/asked")
async def asked(
    request: Request,
    console: Console,
    person: Officer,
    building: LocalId,
    form: Annotated[FormData, Depends(checked_form)],
) -> Response:
    """The officer asked one resident about medicine today; back to the list, which no longer shows them."""
    building_of(person, building)
    resident = form_segment(form, "resident")
    client = client_for(request, console, person)
    await client.post("residents", f"/compounds/{person.compound}/residents/{resident}/medicine-asked", {})
    return RedirectResponse(f"/phone/survey/{building}?asked={resident}", status_code=303)
