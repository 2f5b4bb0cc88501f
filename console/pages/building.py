"""One building's page: its zone and "when can we go out" — for the people of the building and for staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console.dependencies import Console, LocalId, PageRefused, building_of, client_for, role_in
from console.i18n import N_
from console.navigation import INVITED_ROLES, STAFF_ROLES
from console.pages.overview import ZONES
from console.sessions import Person

router = APIRouter()
Anyone = Annotated[Person, Depends(role_in(*STAFF_ROLES, *INVITED_ROLES))]


@router.get("/me")
def mine(person: Anyone) -> Response:
    """A volunteer's or household's start: their (first) building."""
    if not person.buildings:
        raise PageRefused(404, N_("No building is named for you. Ask the committee."))
    return RedirectResponse(f"/buildings/{person.buildings[0]}", status_code=303)


@router.get("/buildings/{building}", response_class=HTMLResponse)
async def building_page(request: Request, console: Console, person: Anyone, building: LocalId) -> HTMLResponse:
    building_of(person, building)
    client = client_for(request, console, person)
    zone = await client.get("residents", f"/compounds/{person.compound}/buildings/{building}/zone")
    context = {"building": building, "zone": zone, "zones": ZONES}
    return console.pages.render(request, "building.html", context)
