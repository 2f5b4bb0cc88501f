"""Request ids in every line a request logs (the format is ``juwei.logs``) and Prometheus metrics for every service."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from juwei import tracing
from juwei.events import current_traceparent, new_traceparent, valid_traceparent
from juwei.problems import problem_response
from juwei.wording import Said

REQUESTS = Counter("juwei_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("juwei_http_request_seconds", "HTTP request latency", ["service", "method", "route"])
_REQUEST_ID = "X-Request-ID"


def metrics_exposition() -> bytes:
    """The text for ``/metrics``: this process's metrics, or every worker's summed when the service runs several
    (``juwei serve --workers``: prometheus-client's multiprocess mode, one file per process and metric kind)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


class BodyTooLarge(HTTPException):
    """A body grew past the limit while it was read (chunked, or longer than it declared)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the body is larger than {limit} bytes")
        self.said = Said("body-too-large", {"limit": limit})


class BodyLimit:
    """Counts the bytes of every request body as the app reads them and stops at ``max_bytes``.

    The Content-Length check in ``install`` answers honest clients before anything is read; this catches
    bodies sent chunked (no Content-Length) or longer than declared. The error is raised inside the
    route's read, so the app's problem+json handler answers it with 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


class RequestObserver:
    """ASGI middleware: the request's id, trace, span, metrics and log line.

    A plain ASGI middleware rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs the
    app in a task of its own and streams the response through a memory channel, which cost more CPU per request
    than the route's own work on testing's result route (issue 20).
    """

    def __init__(self, app: ASGIApp, service: str, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.log = structlog.get_logger("juwei.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get(_REQUEST_ID, "")
        # Accept the caller's id only when it is short and plain, so it cannot forge log lines.
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isascii() and incoming.isprintable() else ""
        request_id = request_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        incoming_trace = valid_traceparent(headers.get("traceparent"))
        # The request's span (when traces are exported) continues the caller's trace; what the request appends
        # carries it on.
        server_span = tracing.ServerSpan(scope["method"], incoming_trace)
        trace = server_span.traceparent or incoming_trace or new_traceparent()
        token = current_traceparent.set(trace)
        structlog.contextvars.bind_contextvars(request_id=request_id, service=self.service)
        started = time.perf_counter()
        answered: dict[str, Any] = {}

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start" and not answered:
                answered["status"] = int(message["status"])
                answered["elapsed"] = time.perf_counter() - started
                kept = [(name, value) for name, value in message.get("headers", ()) if name.lower() not in _STAMPED]
                message = {**message, "headers": [*kept, *_stamps(request_id, trace)]}
            await send(message)

        try:
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                response: Response = problem_response(
                    Request(scope, receive),
                    413,
                    f"the body is larger than {self.max_body_bytes} bytes",
                    "body-too-large",
                    said=Said("body-too-large", {"limit": self.max_body_bytes}),
                )
                await response(scope, receive, stamped)
            else:
                await self.app(scope, receive, stamped)
        except BaseException:
            if not answered:
                server_span.close(getattr(scope.get("route"), "path", "unmatched"), 500)
                raise
            raise
        finally:
            structlog.contextvars.clear_contextvars()
            current_traceparent.reset(token)
        status = answered.get("status", 500)
        elapsed = answered.get("elapsed", time.perf_counter() - started)
        template = getattr(scope.get("route"), "path", "unmatched")
        method = scope["method"]
        REQUESTS.labels(self.service, method, template, str(status)).inc()
        LATENCY.labels(self.service, method, template).observe(elapsed)
        self.log.info(
            "http.request",
            request_id=request_id,
            trace_id=trace.split("-")[1],  # the request's context is already reset here
            service=self.service,
            method=method,
            route=template,
            status=status,
            ms=round(elapsed * 1000, 1),
        )
        server_span.close(template, status)


_STAMPED = frozenset({b"x-request-id", b"traceparent"})


def _stamps(request_id: str, trace: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-request-id", request_id.encode("latin-1")), (b"traceparent", trace.encode("latin-1"))]


def install(app: FastAPI, service: str, max_body_bytes: int) -> None:
    # Added first, so it runs inside the observer (request ids are set when it answers).
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(RequestObserver, service=service, max_body_bytes=max_body_bytes)
