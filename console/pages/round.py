"""The testing round: its sampling points and their call progress, and who has not been tested, by building
and floor (testing's plan, counts and coverage, fetched at once)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from console.dependencies import Console, client_for, role_in
from console.figures import todays_round
from console.navigation import STAFF_ROLES
from console.services_client import ServiceProblem, gather_settled
from console.sessions import Person

router = APIRouter()
Staff = Annotated[Person, Depends(role_in(*STAFF_ROLES))]


@router.get("/round", response_class=HTMLResponse)
async def round_page(request: Request, console: Console, person: Staff, round: str | None = None) -> HTMLResponse:
    client = client_for(request, console, person)
    base = f"/compounds/{person.compound}"
    first = await gather_settled(
        {"rounds": client.get("testing", f"{base}/rounds"), "zones": client.get("residents", f"{base}/zones")}
    )
    if isinstance(first["rounds"], ServiceProblem):
        raise first["rounds"]
    listed: list[dict[str, Any]] = first["rounds"]["rounds"]
    today = first["zones"].get("today") if not isinstance(first["zones"], ServiceProblem) else None
    chosen = next((r for r in listed if r["round"] == round), None) if round else todays_round(listed, today)
    if chosen is None and listed and not round:
        chosen = listed[0]  # no round today: the latest
    context: dict[str, Any] = {"rounds": listed, "chosen": chosen, "points": [], "coverage": [], "counts": None}
    if chosen is not None:
        path = f"{base}/rounds/{chosen['round']}"
        calls = {
            "counts": client.get("testing", f"{path}/counts"),
            "coverage": client.get("testing", f"{path}/coverage"),
        }
        if chosen.get("kind") == "pcr":
            calls["plan"] = client.get("testing", f"{path}/plan")
        found = await gather_settled(calls)
        for answer in found.values():
            if isinstance(answer, ServiceProblem):
                raise answer
        visible = person.buildings
        context["counts"] = found["counts"]
        context["coverage"] = [b for b in found["coverage"]["buildings"] if visible is None or b["building"] in visible]
        context["points"] = found["plan"]["points"] if "plan" in found else []
    return console.pages.render(request, "staff/round.html", context)
