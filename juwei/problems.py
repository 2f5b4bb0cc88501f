"""RFC 9457 problem details for every 4xx and 5xx the services answer.

Every error leaves through here so that a caller always gets ``application/problem+json`` with a ``type``
it can switch on, a ``detail`` that says what was wrong, and the request id to quote to an operator.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from juwei.aggregate import Conflict, DomainRuleViolation, Invalid, NotFound, NotPermitted
from juwei.callers import Forbidden
from juwei.database import DatabaseUnavailable
from juwei.store import ConcurrencyError
from juwei.wording import Said, default_said, error_message, negotiate, title

log = structlog.get_logger("juwei.http")
MEDIA_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


# The domain's refusals (``juwei.aggregate``), each kind with the status it is answered with: the one place
# where they meet HTTP.
REFUSALS: dict[type[DomainRuleViolation], int] = {Invalid: 422, NotFound: 404, Conflict: 409, NotPermitted: 403}


def status_of(refusal: DomainRuleViolation) -> int:
    """The HTTP status a refusal is answered with (a rule broken, of no finer kind: 409)."""
    return next((REFUSALS[kind] for kind in type(refusal).__mro__ if kind in REFUSALS), 409)


# Problem types whose name is not just the title's slug (see the README's list of types).
_CODES = {401: "not-authenticated", 413: "body-too-large", 429: "rate-limited"}

# A key used outside its grant, again and again, is a misconfigured client or a key in the wrong hands.
FORBIDDEN = Counter(
    "juwei_forbidden_total",
    "Requests refused with 403, per key (a key used outside its grant)",
    ["service", "key", "role"],
)
REPEATED = 10  # refusals of one key within ``_WINDOW`` seconds that are logged as repeated
_WINDOW = 600.0
_refusals: dict[str, deque[float]] = {}
_refusals_lock = threading.Lock()


def _note_forbidden(request: Request, detail: str) -> None:
    """Count a 403 against the key that got it; log when one key keeps being refused."""
    caller = getattr(request.state, "caller", None)
    runtime = getattr(request.app.state, "runtime", None)
    service = runtime.definition.name if runtime is not None else request.app.title
    key, role = (caller.key_id, caller.role) if caller is not None else ("(none)", "(none)")
    FORBIDDEN.labels(service, key, role).inc()
    now = time.monotonic()
    with _refusals_lock:
        seen = _refusals.setdefault(key, deque())
        seen.append(now)
        while seen and now - seen[0] > _WINDOW:
            seen.popleft()
        count = len(seen)
    log.warning("http.forbidden", service=service, key=key, role=role, path=request.url.path, detail=detail)
    if count >= REPEATED and count % REPEATED == 0:
        log.warning("http.forbidden_repeated", service=service, key=key, role=role, refusals=count, window_s=_WINDOW)


class Refusal(StarletteHTTPException):
    """An HTTP exception of the kernel whose detail the catalogue can say in another language."""

    def __init__(self, status_code: int, detail: str, said: Said, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.said = said


class Problem(Exception):
    """Raise from a route to answer with a specific problem."""

    def __init__(
        self, status: int, detail: str, code: str | None = None, said: Said | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _slug(_TITLES.get(status, "error"))
        self.said = said  # the kernel's wording of the detail in other languages (``juwei.wording``)
        self.extra = extra


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-")


def problem_response(
    request: Request,
    status: int,
    detail: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    said: Said | None = None,
    **extra: Any,
) -> JSONResponse:
    code = code or _slug(_TITLES.get(status, "error"))
    language = negotiate(request.headers.get("accept-language"))
    said_here = said.text(language) if said is not None else None
    body: dict[str, Any] = {
        "type": f"urn:juwei:problem:{code}",
        "title": title(status, language, _TITLES.get(status, "Error")),
        "status": status,
        "detail": said_here or detail,
        "instance": request.url.path,
        # The type's last part on its own, for clients that switch on it.
        "code": code,
    }
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    if status == 403:
        _note_forbidden(request, detail)
    # The language of the title (and of the kernel's details), and that it depends on Accept-Language.
    headers = {**(headers or {}), "Content-Language": language, "Vary": "Accept-Language"}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI, wording: Mapping[str, str] | None = None) -> None:
    """The problem handlers; ``wording`` says the service's own rules in Chinese, by code, filled from the rule's
    details (``juwei.aggregate.DomainRuleViolation``)."""
    rules = wording or {}

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        language = negotiate(request.headers.get("accept-language"))
        errors = [
            {"location": list(err.get("loc", ())), "message": error_message(err, language), "type": err.get("type", "")}
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"location": [], "message": "invalid"}
        where = ".".join(str(part) for part in first["location"]) or "request"
        more = len(errors) - 1
        detail = f"{where}: {first['message']}" + (f" (and {more} more)" if more > 0 else "")
        said = Said(
            "validation-more" if more > 0 else "validation", {"where": where, "message": first["message"], "more": more}
        )
        return problem_response(request, 422, detail, "validation", said=said, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code)
        detail = str(exc.detail)
        said = getattr(exc, "said", None) or default_said(exc.status_code, detail, request.method, request.url.path)
        return problem_response(
            request, exc.status_code, detail, code, headers=getattr(exc, "headers", None), said=said
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return problem_response(request, 403, exc.detail, exc.code, said=exc.said)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        said = exc.said or Said(exc.code, exc.extra, rules)
        return problem_response(request, exc.status, exc.detail, exc.code, said=said, **exc.extra)

    @app.exception_handler(ConcurrencyError)
    async def _conflict(request: Request, exc: ConcurrencyError) -> JSONResponse:
        return problem_response(
            request,
            409,
            f"{exc}; reload and try again",
            "concurrency-conflict",
            stream=exc.stream_id,
            expected_version=exc.expected,
            actual_version=exc.actual,
        )

    @app.exception_handler(DomainRuleViolation)
    async def _rule(request: Request, exc: DomainRuleViolation) -> JSONResponse:
        said = Said(exc.code, exc.details, rules)
        return problem_response(request, status_of(exc), str(exc), exc.code, said=said, **exc.details)

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("http.database_unavailable", path=request.url.path, error=type(exc).__name__)
        return problem_response(
            request,
            503,
            "the database is not reachable; try again shortly",
            "database-unavailable",
            headers={"Retry-After": "5"},
            said=Said("database-unavailable"),
        )

    for kind in (DatabaseUnavailable, OperationalError, PoolTimeout):
        app.add_exception_handler(kind, _unavailable)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await _unavailable(request, exc)
        log.error("http.database_error", path=request.url.path, error=type(exc.orig).__name__)
        return problem_response(
            request, 500, "the request failed inside the service", "internal", said=Said("internal")
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unhandled", path=request.url.path)
        return problem_response(
            request, 500, "the request failed inside the service", "internal", said=Said("internal")
        )
