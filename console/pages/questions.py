"""The questions inbox: residents' questions grouped as near-duplicates; staff answer a group once and the
answer goes to every building that asked (notify's question groups)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from console.dependencies import Console, LocalId, checked_form, client_for, form_text, role_in
from console.i18n import N_
from console.navigation import STAFF_ROLES
from console.services_client import ServiceProblem
from console.sessions import Person

router = APIRouter()
Staff = Annotated[Person, Depends(role_in(*STAFF_ROLES))]
SHOWN = ("open", "answered")


async def _inbox(
    request: Request,
    console: Console,
    person: Person,
    status: str,
    *,
    error: str | None = None,
    failed_group: str | None = None,
    values: dict | None = None,
    code: int = 200,
) -> HTMLResponse:
    client = client_for(request, console, person)
    found = await client.get("notify", f"/compounds/{person.compound}/question-groups", status=status, limit=200)
    groups = [g for g in found["groups"] if person.buildings is None or set(g["buildings"]) & set(person.buildings)]
    context = {
        "groups": groups,
        "status": status,
        "error": error,
        "failed_group": failed_group,
        # A refusal for a group no longer listed here (answered meanwhile) is shown above the list.
        "error_above": error if failed_group not in {g["question_group"] for g in groups} else None,
        "values": values or {},
        "answered": request.query_params.get("answered"),
    }
    return console.pages.render(request, "staff/questions.html", context, status=code)


@router.get("/questions", response_class=HTMLResponse)
async def inbox(request: Request, console: Console, person: Staff, status: str = "open") -> HTMLResponse:
    return await _inbox(request, console, person, status if status in SHOWN else "open")


@router.post("/questions/{group}/answer")
async def answer(
    request: Request, console: Console, person: Staff, group: LocalId, form: Annotated[FormData, Depends(checked_form)]
) -> Response:
    question, reply = form_text(form, "question"), form_text(form, "answer")
    points = [line.strip() for line in form_text(form, "policy_points").splitlines() if line.strip()]
    values = {"question": question, "answer": reply, "policy_points": "\n".join(points)}
    problem = None
    if not question or len(question) > 200:
        problem = N_("Write the question as it will be published (at most 200 characters).")
    elif not reply or len(reply) > 4000:
        problem = N_("Write an answer (at most 4,000 characters).")
    elif len(points) > 20:
        problem = N_("At most 20 policy points.")
    if problem:
        error = console.pages.gettext(request.state.locale, problem)
        return await _inbox(request, console, person, "open", error=error, failed_group=group, values=values, code=422)
    body = {"question": question, "answer": reply, "policy_points": points}
    client = client_for(request, console, person)
    # The form's own id: a double tap, or a retry after a dropped answer, publishes the answer once.
    command = form_text(form, "command")
    command = command if re.fullmatch(r"[A-Za-z0-9_-]{8,64}", command) else None
    try:
        done = await client.post(
            "notify", f"/compounds/{person.compound}/question-groups/{group}/answer", body, idempotency_key=command
        )
    except ServiceProblem as exc:
        if exc.status in (0, 500, 502, 503):
            raise
        detail = exc.detail or console.pages.gettext(request.state.locale, N_("The answer was not sent."))
        return await _inbox(
            request, console, person, "open", error=detail, failed_group=group, values=values, code=exc.status
        )
    return RedirectResponse(f"/questions?answered={len(done['buildings'])}", status_code=303)
