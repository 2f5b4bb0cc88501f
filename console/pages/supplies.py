"""Supplies: each batch's delivery progress by building, the households still to follow up, and where every
medical-insurance card is (supplies' batches, progress, follow-ups and cards, fetched at once)."""

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
RECENT = 10  # batches shown with their progress; older ones are listed by name


def _raise_any(found: dict[str, Any]) -> None:
    for answer in found.values():
        if isinstance(answer, ServiceProblem):
            raise answer


@router.get("/supplies", response_class=HTMLResponse)
async def supplies(request: Request, console: Console, person: Staff) -> HTMLResponse:
    client = client_for(request, console, person)
    base = f"/compounds/{person.compound}"
    first = await gather_settled(
        {
            "batches": client.get("supplies", f"{base}/batches"),
            "follow_ups": client.get("supplies", f"{base}/follow-ups"),
            "cards": client.get("supplies", f"{base}/cards", out="true"),
        }
    )
    _raise_any(first)
    dispatched = [b for b in first["batches"]["batches"] if b.get("dispatched_on")][:RECENT]
    progress = await gather_settled(
        {b["batch"]: client.get("supplies", f"{base}/batches/{b['batch']}/progress") for b in dispatched}
    )
    _raise_any(progress)
    visible = person.buildings

    def mine(entry: dict[str, Any]) -> bool:
        return visible is None or entry["building"] in visible

    context = {
        "batches": first["batches"]["batches"],
        "progress": [{**b, "progress": progress[b["batch"]]} for b in dispatched],
        "follow_ups": [f for f in first["follow_ups"]["follow_ups"] if mine(f)],
        "cards": [c for c in first["cards"]["cards"] if mine(c)],
    }
    return console.pages.render(request, "staff/supplies.html", context)
