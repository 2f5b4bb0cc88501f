"""Staff invite a volunteer or a household: a one-time link and its QR code; the invited open it once."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from console import invitations, sessions
from console.dependencies import Console, checked_form, client_for, form_text, role_in
from console.i18n import N_
from console.invitations import Invitation
from console.navigation import STAFF_ROLES, home_of
from console.pages.session import pre_csrf, pre_csrf_matches, set_session_cookie, with_pre_csrf
from console.services_client import ServiceProblem
from console.sessions import Person
from contracts.roles import HOUSEHOLD, INFORMATION_OFFICER, LOGISTICS_VOLUNTEER, SAMPLING_VOLUNTEER

router = APIRouter()
Staff = Annotated[Person, Depends(role_in(*STAFF_ROLES))]
LOCAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
ROLE_NAMES = {
    INFORMATION_OFFICER: N_("Information officer"),
    LOGISTICS_VOLUNTEER: N_("Logistics volunteer"),
    SAMPLING_VOLUNTEER: N_("Sampling volunteer"),
    HOUSEHOLD: N_("Household representative"),
}


def _form_page(
    request: Request, console: Console, *, error: str | None = None, values: dict | None = None, status: int = 200
) -> HTMLResponse:
    hours = console.settings.invitation_seconds // 3600
    context = {"roles": ROLE_NAMES, "error": error, "values": values or {}, "hours": hours}
    return console.pages.render(request, "staff/invite.html", context, status=status)


@router.get("/invitations/new", response_class=HTMLResponse)
def invitation_form(request: Request, console: Console, person: Staff) -> HTMLResponse:
    return _form_page(request, console)


@router.post("/invitations", response_class=HTMLResponse)
async def invite(
    request: Request, console: Console, person: Staff, form: Annotated[FormData, Depends(checked_form)]
) -> HTMLResponse:
    locale = request.state.locale
    role, holder, label = form_text(form, "role"), form_text(form, "holder"), form_text(form, "label")
    point = form_text(form, "point")
    buildings = [b.strip() for b in form_text(form, "buildings").replace("，", ",").split(",") if b.strip()]
    values = {"role": role, "holder": holder, "buildings": ", ".join(buildings), "label": label, "point": point}
    problem = None
    if role not in ROLE_NAMES:
        problem = N_("Choose a role.")
    elif not LOCAL_ID.fullmatch(holder):
        problem = N_("Enter the volunteer's or household's id from the register.")
    elif role == SAMPLING_VOLUNTEER and not LOCAL_ID.fullmatch(point):
        problem = N_("A sampling volunteer serves at one sampling point: enter its id.")
    elif any(not LOCAL_ID.fullmatch(b) for b in buildings):
        problem = N_("Buildings are ids separated by commas.")
    elif len(label) > 200:
        problem = N_("The note is too long.")
    if problem:
        return _form_page(request, console, error=console.pages.gettext(locale, problem), values=values, status=422)
    key_id, key = invitations.new_key()
    lasts = console.settings.invited_key_seconds
    client = client_for(request, console, person)
    path = f"/compounds/{person.compound}/keys"
    if role == SAMPLING_VOLUNTEER:
        # Testing admits a sampling volunteer only with its own point key (bound to that point); the other
        # services then store that same key.
        try:
            made = await client.post(
                "testing", f"/compounds/{person.compound}/points/{point}/keys", {"volunteer": holder}
            )
        except ServiceProblem as refused:
            if refused.status in (0, 500, 502, 503):
                raise
            detail = refused.detail or console.pages.gettext(locale, N_("The invitation could not be made."))
            return _form_page(request, console, error=detail, values=values, status=refused.status)
        key = str(made["key"])
        key_id = key.split("_", 2)[1]
    body = {
        "key": key,
        "role": role,
        "holder": {"kind": "household" if role == HOUSEHOLD else "volunteer", "id": holder},
        "buildings": buildings or None,
        "label": label or f"console invitation by {person.username}",
        "expires_in": lasts,
    }
    # Residents first: it checks the register and settles the buildings (the person's own when none are
    # named); the others then get those buildings by name, or their key would cover every building.
    try:
        issued = await client.post("residents", path, body, idempotency_key=f"invite-{key_id}-residents")
    except ServiceProblem as refused:
        if role == SAMPLING_VOLUNTEER:
            with contextlib.suppress(ServiceProblem):  # the point key made for nobody: revoked, or it waits unused
                await client.delete("testing", f"{path}/{key_id}")
        if refused.status in (0, 500, 502, 503):
            raise
        detail = refused.detail or console.pages.gettext(locale, N_("The invitation could not be made."))
        return _form_page(request, console, error=detail, values=values, status=refused.status)
    body["buildings"] = issued.get("buildings")
    # Testing already holds a sampling volunteer's point key.
    stored = ("residents", "testing") if role == SAMPLING_VOLUNTEER else ("residents",)
    names = [name for name in console.urls if name not in stored]
    answers = await asyncio.gather(
        *(client.post(name, path, body, idempotency_key=f"invite-{key_id}-{name}") for name in names),
        return_exceptions=True,
    )
    failed = [a for a in answers if isinstance(a, BaseException)]
    if failed:
        # Nothing half-made: the key goes again from the services that stored it.
        for name in [
            *stored,
            *(n for n, a in zip(names, answers, strict=True) if not isinstance(a, BaseException)),
        ]:
            with contextlib.suppress(ServiceProblem):  # else it expires by itself; no one ever got the link
                await client.delete(name, f"{path}/{key_id}")
        first = failed[0]
        if not isinstance(first, ServiceProblem):
            raise first
        detail = first.detail or console.pages.gettext(locale, N_("The invitation could not be made."))
        return _form_page(request, console, error=detail, values=values, status=first.status if first.status else 502)
    invitation = Invitation(
        compound=person.compound,
        role=role,
        holder_kind=body["holder"]["kind"],
        holder=f"{person.compound}:{holder}",
        buildings=issued.get("buildings"),
        key_id=key_id,
        sealed_key=console.seal.seal(key, key_id),
        key_expires_at=datetime.now(UTC) + timedelta(seconds=lasts),
    )
    with console.database.unit_of_work() as session:
        token = invitations.create(
            session,
            invitation,
            invited_by=person.username or "",
            label=label or None,
            lasts=timedelta(seconds=console.settings.invitation_seconds),
        )
    link = f"{str(request.base_url).rstrip('/')}/welcome/{token}"
    qr = segno.make(link, error="m").svg_inline(scale=5, border=2)
    context = {
        "link": link,
        "qr": qr,
        "role_name": ROLE_NAMES[role],
        "holder": holder,
        "buildings": invitation.buildings,
        "hours": console.settings.invitation_seconds // 3600,
    }
    return console.pages.render(request, "staff/invited.html", context, status=201)


@router.get("/welcome/{token}", response_class=HTMLResponse)
def welcome(request: Request, console: Console, token: str) -> Response:
    """The link shows a button, and only the button opens the session: a chat app's link preview, which
    fetches the page, does not use up the invitation."""
    with console.database.reading() as session:
        found = invitations.find_open(session, token)
    if found is None:
        return _gone(request, console)
    value, new = pre_csrf(request)
    request.state.pre_csrf = value
    context = {"token": token, "role_name": ROLE_NAMES.get(found.role, found.role), "buildings": found.buildings}
    return with_pre_csrf(console.pages.render(request, "welcome.html", context), console, request, value, new)


@router.post("/welcome/{token}")
async def accept(request: Request, console: Console, token: str) -> Response:
    form = await request.form()
    given = form.get("csrf")
    if not pre_csrf_matches(request, given if isinstance(given, str) else None):
        return RedirectResponse(f"/welcome/{token}", status_code=303)
    now = datetime.now(UTC)
    with console.database.unit_of_work() as session:
        found = invitations.use(session, token, now)
        if found is None:
            opened = None
        else:
            lasts = found.key_expires_at - now
            opened = sessions.start(
                session,
                compound=found.compound,
                role=found.role,
                holder_kind=found.holder_kind,
                holder=found.holder,
                buildings=found.buildings,
                key_id=found.key_id,
                sealed_key=found.sealed_key,
                username=None,
                idle=timedelta(seconds=console.settings.person_idle_seconds),
                lasts=lasts,
                now=now,
            )
    if found is None or opened is None:
        return _gone(request, console)
    response = RedirectResponse(home_of(found.role), status_code=303)
    set_session_cookie(response, console, request, opened, max(60, int((found.key_expires_at - now).total_seconds())))
    return response


def _gone(request: Request, console: Console) -> HTMLResponse:
    detail = console.pages.gettext(
        request.state.locale, N_("This link has been used or has expired. Ask the committee for a new one.")
    )
    return console.pages.render(request, "errors/problem.html", {"status": 410, "detail": detail}, status=410)
