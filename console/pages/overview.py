"""The staff overview: every building at a glance, from every service at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from console.dependencies import Console, client_for, role_in
from console.navigation import STAFF_ROLES
from console.services_client import ServiceProblem, gather_settled
from console.sessions import Person

router = APIRouter()
Staff = Annotated[Person, Depends(role_in(*STAFF_ROLES))]


@router.get("/overview", response_class=HTMLResponse)
async def overview(request: Request, console: Console, person: Staff) -> HTMLResponse:
    client = client_for(request, console, person)
    compound = person.compound
    found = await gather_settled({"zones": client.get("residents", f"/compounds/{compound}/zones")})
    zones = found["zones"]
    rows: list[dict[str, Any]] = []
    if not isinstance(zones, ServiceProblem):
        rows = [{"building": b["building"], "zone": b} for b in zones["buildings"] if person.may_see(b["building"])]
    missing = [name for name, answer in found.items() if isinstance(answer, ServiceProblem)]
    return console.pages.render(request, "staff/overview.html", {"rows": rows, "missing": missing})
