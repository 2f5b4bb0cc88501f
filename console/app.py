"""The console's FastAPI app: pages, static files, the person's language, and errors as pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from console import i18n
from console.dependencies import NotSignedIn, PageRefused
from console.pages import ROUTERS
from console.runtime import ConsoleRuntime
from console.services_client import ServiceProblem
from console.settings import ConsoleSettings, console_settings

STATIC = Path(__file__).resolve().parent / "static"

# The console's own words for a service's refusal, by status, when the service gave none (msgids).
FALLBACK = {
    0: i18n.N_("The service could not be reached. Please try again in a moment."),
    400: i18n.N_("The request was not understood."),
    401: i18n.N_("Your access has ended. Please sign in again."),
    403: i18n.N_("You may not do this."),
    404: i18n.N_("Not found."),
    409: i18n.N_("This was changed by someone else in the meantime."),
    413: i18n.N_("The file is too large."),
    422: i18n.N_("Some of what was entered is not valid."),
    429: i18n.N_("Too many requests. Please wait a moment."),
    503: i18n.N_("The service is not ready. Please try again in a moment."),
}


def create_app(
    config: ConsoleSettings | None = None, runtime: ConsoleRuntime | None = None, migrate_on_start: bool = True
) -> FastAPI:
    console = runtime or ConsoleRuntime.build(config or console_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if migrate_on_start:
            console.migrate()
        try:
            yield
        finally:
            await console.close_http()

    app = FastAPI(title="Juwei console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = console

    @app.middleware("http")
    async def language(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.locale = i18n.negotiate(request)
        response = await call_next(request)
        response.headers.setdefault("Content-Language", i18n.html_lang(request.state.locale))
        return response

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, _exc: NotSignedIn) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(PageRefused)
    async def _refused(request: Request, exc: PageRefused) -> Response:
        locale = request.state.locale
        return console.pages.render(
            request,
            "errors/problem.html",
            {"status": exc.status, "detail": console.pages.gettext(locale, exc.message)},
            status=exc.status,
        )

    @app.exception_handler(ServiceProblem)
    async def _service_problem(request: Request, exc: ServiceProblem) -> Response:
        return console.pages.render(
            request, "errors/problem.html", problem_context(console, request, exc), status=page_status(exc)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = FALLBACK.get(exc.status_code, FALLBACK[400])
        return console.pages.render(
            request,
            "errors/problem.html",
            {"status": exc.status_code, "detail": console.pages.gettext(request.state.locale, message)},
            status=exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, _exc: RequestValidationError) -> Response:
        return console.pages.render(
            request,
            "errors/problem.html",
            {"status": 422, "detail": console.pages.gettext(request.state.locale, FALLBACK[422])},
            status=422,
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "console"}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app


def page_status(problem: ServiceProblem) -> int:
    """The status the console answers with: the service's refusal, or 502 when it was unreachable or failed."""
    return problem.status if 400 <= problem.status < 500 else 502


def problem_context(console: ConsoleRuntime, request: Request, problem: ServiceProblem) -> dict[str, object]:
    """What the error page shows: the service's own title and detail (in the person's language where the
    service has it), else the console's words for the status."""
    locale = request.state.locale
    fallback = console.pages.gettext(locale, FALLBACK.get(problem.status, FALLBACK[400 if problem.status else 0]))
    return {
        "status": page_status(problem),
        "title": problem.title if problem.status and problem.title else None,
        "detail": problem.detail if problem.status and problem.detail else fallback,
    }
