"""Sign-in, sign-out, the language switch and the landing page."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from console import accounts, i18n, sessions
from console.dependencies import Console, NotSignedIn, PageRefused, checked_form, client_for, signed_in
from console.navigation import MENU, home_of
from console.services_client import ServiceProblem
from console.sessions import Person
from contracts.roles import COMMITTEE_STAFF

router = APIRouter()
log = structlog.get_logger("console.session")
# Before a session exists, forms carry this cookie's value too (double submit): another site cannot read it.
PRE_CSRF = "console_pre"


def safe_next(target: str | None) -> str | None:
    """Only a path of this site: never another host (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def secure(console: Console, request: Request) -> bool:
    chosen = console.settings.secure_cookies
    return chosen if chosen is not None else request.url.scheme == "https"


def set_session_cookie(response: Response, console: Console, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        sessions.COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure(console, request),
        path="/",
    )


def pre_csrf(request: Request) -> tuple[str, bool]:
    """The pre-session CSRF value of this browser (and whether it is new, to be set as a cookie)."""
    existing = request.cookies.get(PRE_CSRF)
    if existing and len(existing) >= 32:
        return existing, False
    return secrets.token_urlsafe(32), True


def with_pre_csrf(response: Response, console: Console, request: Request, value: str, new: bool) -> Response:
    if new:
        response.set_cookie(PRE_CSRF, value, httponly=True, samesite="strict", secure=secure(console, request))
    return response


def pre_csrf_matches(request: Request, given: str | None) -> bool:
    cookie = request.cookies.get(PRE_CSRF)
    return bool(cookie) and bool(given) and secrets.compare_digest(cookie or "", given or "")


@router.get("/")
def landing(request: Request, console: Console) -> Response:
    try:
        person = signed_in(request, console)
    except NotSignedIn:
        return RedirectResponse("/signin", status_code=303)
    return RedirectResponse(home_of(person.role), status_code=303)


def _signin_page(
    request: Request,
    console: Console,
    *,
    error: str | None = None,
    username: str = "",
    next_path: str | None = None,
    status: int = 200,
) -> Response:
    value, new = pre_csrf(request)
    request.state.pre_csrf = value
    context = {
        "error": console.pages.gettext(request.state.locale, error) if error else None,
        "username": username,
        "next": safe_next(next_path) or "",
    }
    response = console.pages.render(request, "signin.html", context, status=status)
    return with_pre_csrf(response, console, request, value, new)


@router.get("/signin")
def signin_form(request: Request, console: Console, next: str | None = None) -> Response:
    return _signin_page(request, console, next_path=next)


@router.post("/signin")
def signin(
    request: Request,
    console: Console,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    if not pre_csrf_matches(request, csrf):
        return _signin_page(
            request,
            console,
            error=i18n.N_("This form has expired. Please try again."),
            username=username,
            next_path=next,
            status=403,
        )
    name = username.strip().lower()
    with console.database.unit_of_work() as session:
        account = accounts.verify(session, name, password) if accounts.USERNAME.fullmatch(name) else None
        if account is None:
            log.info("console.signin_refused")  # never the name typed: it may be a password typed in the wrong box
            failed = True
        else:
            failed = False
            config = console.settings
            token = sessions.start(
                session,
                compound=account.compound,
                role=COMMITTEE_STAFF,
                holder_kind="staff",
                holder=f"{account.compound}:{account.staff}",
                buildings=None,
                key_id=account.key_id,
                sealed_key=account.sealed_key,
                username=account.username,
                idle=timedelta(seconds=config.staff_idle_seconds),
                lasts=timedelta(seconds=config.staff_absolute_seconds),
            )
    if failed:
        return _signin_page(
            request,
            console,
            error=i18n.N_("The username or password is not right."),
            username=username,
            next_path=next,
            status=401,
        )
    target = safe_next(next) or home_of(COMMITTEE_STAFF)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, console, request, token, console.settings.staff_absolute_seconds)
    return response


@router.post("/signout")
async def signout(
    request: Request,
    console: Console,
    person: Annotated[Person, Depends(signed_in)],
    _form: Annotated[FormData, Depends(checked_form)],
) -> Response:
    if not person.is_staff:
        # An invited person's key was made for this session alone: it ends with it, in every service.
        client = client_for(request, console, person)
        for service in console.urls:
            try:
                await client.delete(service, f"/compounds/{person.compound}/keys/{person.key_id}")
            except ServiceProblem as exc:
                log.warning("console.revoke_failed", service=service, status=exc.status)
    with console.database.unit_of_work() as session:
        sessions.end(session, person)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


@router.get("/language/{locale}")
def choose_language(request: Request, console: Console, locale: str, next: str | None = None) -> Response:
    if locale not in i18n.LOCALES:
        raise PageRefused(404, i18n.N_("Not found."))
    response = RedirectResponse(safe_next(next) or "/", status_code=303)
    response.set_cookie(i18n.COOKIE, locale, max_age=365 * 86400, samesite="lax", secure=secure(console, request))
    return response


__all__ = ["MENU", "router"]
