"""The phones' outbox endpoint, ``POST /api/actions``, and the service worker that keeps their pages offline.

The endpoint answers JSON, never a page or a redirect (a phone's script reads it):

- 200 ``{"command_id", "status": "done", "replayed": bool, "answer": <the service's JSON>}``
- 4xx ``{"command_id", "status": "conflict", "problem": {"status", "title", "detail", "code"}}``: the service
  refused (409 done by someone else, 422 not valid, 403/404): the phone keeps it and shows the detail
- 502/503 ``{"command_id", "status": "unsent", "problem": ...}``: the service could not answer; send it again
- 400/403/422 ``{"status": "refused", "problem": ...}``: the console refused it (not understood, CSRF, role,
  building), 401 ``{"status": "signed-out"}``: no session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse

from console import sessions
from console.dependencies import Console, client_for
from console.i18n import N_
from console.phone_actions import ActionRefused, parse
from console.services_client import ServiceProblem
from console.sessions import Person

router = APIRouter()
log = structlog.get_logger("console.actions")
SERVICE_WORKER = Path(__file__).resolve().parent.parent / "static" / "sw.js"
# A refusal the phone cannot fix by waiting: kept and shown as a conflict. Anything else is sent again later.
KEPT = {400, 403, 404, 409, 410, 413, 422}


def session_of(request: Request, console: Console) -> Person | None:
    """The person of the session cookie, or None (sync: the session row is read off the loop)."""
    with console.database.unit_of_work() as session:
        person = sessions.find(session, request.cookies.get(sessions.COOKIE))
    if person is not None:
        request.state.person = person
    return person


def _problem(console: Console, request: Request, status: int, message: str) -> dict[str, Any]:
    return {"status": status, "title": None, "detail": console.pages.gettext(request.state.locale, message)}


@router.post("/api/actions")
async def act(
    request: Request, console: Console, person: Annotated[Person | None, Depends(session_of)]
) -> JSONResponse:
    if person is None:
        message = N_("Your access has ended. Please sign in again.")
        return JSONResponse({"status": "signed-out", "problem": _problem(console, request, 401, message)}, 401)
    if not person.csrf_matches(request.headers.get("X-CSRF-Token")):
        message = N_("This form has expired. Please go back, reload the page and try again.")
        return JSONResponse({"status": "refused", "problem": _problem(console, request, 403, message)}, 403)
    try:
        body = await request.json()
    except ValueError:
        body = None
    try:
        command_id, kind, params = parse(person, body)
    except ActionRefused as refused:
        problem = _problem(console, request, refused.status, refused.message)
        return JSONResponse({"status": "refused", "problem": problem}, refused.status)
    call = kind.call(person, params, command_id)
    client = client_for(request, console, person)
    try:
        answer = await client.send(call.method, call.service, call.path, json=call.json, idempotency_key=command_id)
    except ServiceProblem as problem:
        from console.app import FALLBACK  # the app imports the pages: read at call time

        fallback = FALLBACK.get(problem.status, FALLBACK[400 if problem.status else 0])
        shown = {
            "status": problem.status,
            "title": problem.title,
            "detail": problem.detail or console.pages.gettext(request.state.locale, fallback),
            "code": problem.code,
        }
        # The same command still being carried out by an earlier send: not a conflict, its answer comes later.
        kept = problem.status in KEPT and problem.code != "command-in-progress"
        log.info(
            "console.action_refused" if kept else "console.action_unsent", kind=body["kind"], status=problem.status
        )
        status = problem.status if kept else (503 if problem.status in (0, 429, 503) else 502)
        return JSONResponse(
            {"command_id": command_id, "status": "conflict" if kept else "unsent", "problem": shown}, status
        )
    return JSONResponse(
        {"command_id": command_id, "status": "done", "replayed": answer.replayed, "answer": answer.body}
    )


@router.get("/sw.js", include_in_schema=False)
def service_worker() -> FileResponse:
    """From the root so its scope covers the phone pages; never cached itself, so a new version takes over."""
    return FileResponse(
        SERVICE_WORKER,
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )
