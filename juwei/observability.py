"""Request ids in every line a request logs (the format is ``juwei.logs``) and Prometheus metrics for every service."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
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


def install(app: FastAPI, service: str, max_body_bytes: int) -> None:
    log = structlog.get_logger("juwei.http")
    # Added before the middleware below, so it runs inside it (request ids are set when it answers).
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        incoming = request.headers.get(_REQUEST_ID, "")
        # Accept the caller's id only when it is short and plain, so it cannot forge log lines.
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isascii() and incoming.isprintable() else ""
        request_id = request_id or uuid.uuid4().hex
        request.state.request_id = request_id
        incoming_trace = valid_traceparent(request.headers.get("traceparent"))
        # The request's span (when traces are exported) continues the caller's trace; what the request appends
        # carries it on.
        server_span = tracing.ServerSpan(request.method, incoming_trace)
        trace = server_span.traceparent or incoming_trace or new_traceparent()
        token = current_traceparent.set(trace)
        structlog.contextvars.bind_contextvars(request_id=request_id, service=service)
        started = time.perf_counter()
        try:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
                response: Response = problem_response(
                    request,
                    413,
                    f"the body is larger than {max_body_bytes} bytes",
                    "body-too-large",
                    said=Said("body-too-large", {"limit": max_body_bytes}),
                )
            else:
                response = await call_next(request)
        except BaseException:
            server_span.close(getattr(request.scope.get("route"), "path", "unmatched"), 500)
            raise
        finally:
            structlog.contextvars.clear_contextvars()
            current_traceparent.reset(token)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        elapsed = time.perf_counter() - started
        REQUESTS.labels(service, request.method, template, str(response.status_code)).inc()
        LATENCY.labels(service, request.method, template).observe(elapsed)
        response.headers[_REQUEST_ID] = request_id
        response.headers["traceparent"] = trace
        log.info(
            "http.request",
            request_id=request_id,
            trace_id=trace.split("-")[1],  # the request's context is already reset here
            service=service,
            method=request.method,
            route=template,
            status=response.status_code,
            ms=round(elapsed * 1000, 1),
        )
        server_span.close(template, response.status_code)
        return response
