"""The staff overview: every building at a glance, from every service at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from console.dependencies import Console, client_for, role_in
from console.figures import gather_overview
from console.i18n import N_
from console.navigation import STAFF_ROLES
from console.sessions import Person

router = APIRouter()
Staff = Annotated[Person, Depends(role_in(*STAFF_ROLES))]
# The zone names the services use, as msgids (translated in the template).
ZONES = {"sealed": N_("sealed"), "controlled": N_("controlled"), "precaution": N_("precaution")}


@router.get("/overview", response_class=HTMLResponse)
async def overview(request: Request, console: Console, person: Staff) -> HTMLResponse:
    client = client_for(request, console, person)
    figures = await gather_overview(client, person.compound, person.buildings)
    return console.pages.render(request, "staff/overview.html", {"overview": figures, "zones": ZONES})
