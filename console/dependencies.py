"""What a page asks of the request: the console, the person signed in (of a role), a checked form, a client.

Every page depends on ``role_in(...)``: no session sends the browser to sign in; a role or building that is
not the person's is a 403 page in their language.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Path, Request
from starlette.datastructures import FormData

from console import sessions
from console.i18n import N_
from console.runtime import ConsoleRuntime
from console.services_client import ServiceClient
from console.sessions import Person

# An id of the services' (a building, a question group) as it may appear in a page's path: never a path of its own.
LocalId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]


class NotSignedIn(Exception):
    """No live session: the browser goes to the sign-in page (and comes back to ``next`` after)."""


class PageRefused(Exception):
    """A page refused: shown as an error page with ``status``; ``message`` is a msgid of the catalogues."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def console_runtime(request: Request) -> ConsoleRuntime:
    return request.app.state.console


Console = Annotated[ConsoleRuntime, Depends(console_runtime)]


def signed_in(request: Request, console: Console) -> Person:
    """The person of the session cookie (sync: the session row is read in the thread pool, off the loop)."""
    with console.database.unit_of_work() as session:
        person = sessions.find(session, request.cookies.get(sessions.COOKIE))
    if person is None:
        raise NotSignedIn()
    request.state.person = person
    return person


def role_in(*roles: str) -> Callable[..., Person]:
    """A dependency: the signed-in person, if their role is one of ``roles`` (else a 403 page)."""

    def dependency(person: Annotated[Person, Depends(signed_in)]) -> Person:
        if person.role not in roles:
            raise PageRefused(403, N_("This page is not for your role."))
        return person

    return dependency


def building_of(person: Person, building: str) -> str:
    """``building`` if the person may see it (else a 403 page)."""
    if not person.may_see(building):
        raise PageRefused(403, N_("This building is not yours."))
    return building


async def checked_form(request: Request, person: Annotated[Person, Depends(signed_in)]) -> FormData:
    """The form of a POST, once its CSRF token matches the session's."""
    form = await request.form()
    given = form.get("csrf")
    if not person.csrf_matches(given if isinstance(given, str) else None):
        raise PageRefused(403, N_("This form has expired. Please go back, reload the page and try again."))
    return form


def form_text(form: FormData, name: str) -> str:
    """A text field of the form, trimmed; "" when it is missing or a file."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def form_segment(form: FormData, name: str) -> str:
    """A field as one URL path segment whatever was typed: the service then refuses an id it does not know."""
    return quote(form_text(form, name), safe="")


def client_for(request: Request, console: Console, person: Person) -> ServiceClient:
    """The services, as ``person`` (their own key, opened from its seal for this request only)."""
    return ServiceClient(
        console.open_http(),
        console.urls,
        console.seal.open(person.sealed_key, person.key_id),
        getattr(request.state, "locale", "zh_CN"),
    )
