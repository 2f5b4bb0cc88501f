"""Structured JSON logs with request ids (structlog) and Prometheus metrics for every service."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Histogram

from juwei.events import current_traceparent, new_traceparent, valid_traceparent
from juwei.problems import problem_response

REQUESTS = Counter("juwei_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("juwei_http_request_seconds", "HTTP request latency", ["service", "method", "route"])
_REQUEST_ID = "X-Request-ID"


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
    for noisy in ("kafka", "alembic", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def install(app: FastAPI, service: str, max_body_bytes: int) -> None:
    log = structlog.get_logger("juwei.http")

    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        incoming = request.headers.get(_REQUEST_ID, "")
        # Accept the caller's id only when it is short and plain, so it cannot forge log lines.
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isascii() and incoming.isprintable() else ""
        request_id = request_id or uuid.uuid4().hex
        request.state.request_id = request_id
        trace = valid_traceparent(request.headers.get("traceparent")) or new_traceparent()
        token = current_traceparent.set(trace)
        structlog.contextvars.bind_contextvars(request_id=request_id, service=service)
        started = time.perf_counter()
        try:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
                response: Response = problem_response(
                    request, 413, f"the body is larger than {max_body_bytes} bytes", "body-too-large"
                )
            else:
                response = await call_next(request)
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
            service=service,
            method=request.method,
            route=template,
            status=response.status_code,
            ms=round(elapsed * 1000, 1),
        )
        return response
