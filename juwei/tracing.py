"""Traces: OpenTelemetry spans for a request, the append, the relay's publish, the consumer's handling and the
deliveries a service sends, joined into one trace through Kafka by the W3C ``traceparent`` every event carries.

Spans are exported by OTLP/HTTP only when an endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; the exporter's other standard ``OTEL_*`` settings apply). Without one
no SDK tracer provider is installed, and every helper here returns before it touches OpenTelemetry at all: the
append and the relay are hot paths, and even the API's no-op spans cost microseconds each.

The spans are made by hand rather than by the opentelemetry-instrumentation packages: Juwei needs five spans
at places no instrumentation knows (the append, the outbox relay, the inbox consumer, notify's queue), and
the FastAPI and kafka-python instrumentations would add dependencies and spans of their own for little.
Span attributes are ids, counts and codes only: never a name, a phone, an ID number or health data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from juwei.events import current_traceparent, valid_traceparent

_PROPAGATOR = TraceContextTextMapPropagator()
# A proxy until a provider is installed, then the provider's tracer: safe to take at import.
_TRACER = trace.get_tracer("juwei")
_installed: Any = None  # the SDK's TracerProvider this process installed, else None
Attributes = Mapping[str, str | int | float | bool]


def endpoint() -> str:
    """The OTLP endpoint the settings name, else "" (an empty value, as compose passes by default, is none)."""
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return ""


def configure_tracing(service: str) -> bool:
    """Install a tracer provider exporting by OTLP/HTTP when an endpoint is configured; True when it exports.

    Once per process (OpenTelemetry's provider is global): a second call keeps the first service's name.
    """
    global _installed
    if _installed is not None:
        return True
    if not endpoint() or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME, when set, names the process instead (Resource.create reads it).
    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": f"juwei-{service}"}
    provider = TracerProvider(resource=Resource.create({"service.namespace": "juwei", **named}))
    # The exporter reads the endpoint, headers, timeout and compression from the standard OTEL_* variables.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _installed = provider
    return True


def exporting() -> bool:
    return _installed is not None


def ending(timeout_ms: int = 5000) -> None:
    """Send the spans still queued (a service stopping); the provider's own exit hook shuts it down."""
    if _installed is not None:
        _installed.force_flush(timeout_ms)


def context_of(traceparent: str | None) -> Context | None:
    """The context a W3C traceparent names (None when there is none, or it is malformed)."""
    carried = valid_traceparent(traceparent)
    if carried is None:
        return None
    return _PROPAGATOR.extract({"traceparent": carried})


def traceparent_of(span: Span | None) -> str | None:
    """``span`` as a W3C traceparent (None for no span, or one that records nothing)."""
    if span is None:
        return None
    context = span.get_span_context()
    if not context.is_valid:
        return None
    trace_id, span_id = trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)
    return f"00-{trace_id}-{span_id}-{context.trace_flags:02x}"


def traceparent_now() -> str | None:
    """The current span as a traceparent, to store with work that continues the trace later."""
    if _installed is None:
        return None
    return traceparent_of(trace.get_current_span())


def carried() -> str | None:
    """What to store with work done later: the current span, else the traceparent the request or event carried."""
    return traceparent_now() or current_traceparent.get()


@contextmanager
def span(
    name: str,
    *,
    parent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes | None = None,
    links: Sequence[str | None] = (),
) -> Iterator[Span | None]:
    """A current span named ``name``, child of ``parent`` (a traceparent) when given, else of the current span.

    Yields None when nothing is exported. Links point at other traceparents (a batch handled together).
    """
    if _installed is None:
        yield None
        return
    linked = [Link(context.get_span_context()) for context in _contexts(links)] if links else None
    # Not the SDK's exception event: its message may quote what a span must not hold; the error's type is enough.
    with _TRACER.start_as_current_span(
        name,
        context=context_of(parent),
        kind=kind,
        attributes=attributes,
        links=linked,
        record_exception=False,
        set_status_on_exception=False,
    ) as opened:
        try:
            yield opened
        except Exception as exc:
            opened.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def _contexts(traceparents: Sequence[str | None]) -> Iterator[Any]:
    for traceparent in traceparents[:128]:  # a batch of thousands links to the first ones only
        context = context_of(traceparent)
        if context is not None:
            yield trace.get_current_span(context)


def note(opened: Span | None, **attributes: str | int | float | bool | None) -> None:
    """Attributes known only at the end (a status, an outcome); nothing when nothing is traced."""
    if opened is None:
        return
    for key, value in attributes.items():
        if value is not None:
            opened.set_attribute(key, value)


def failed(opened: Span | None, description: str) -> None:
    if opened is not None:
        opened.set_status(Status(StatusCode.ERROR, description))


# --- the request ------------------------------------------------------------------------------------------------


class ServerSpan:
    """A request's ``HTTP <method> <route>`` span, current from ``open`` until ``close`` (one task's context)."""

    def __init__(self, method: str, carried_parent: str | None) -> None:
        self.method = method
        self.span: Span | None = None
        self._token: object | None = None
        if _installed is None:
            return
        self.span = _TRACER.start_span(
            f"HTTP {method}",
            context=context_of(carried_parent),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        )
        from opentelemetry import context as otel_context

        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    @property
    def traceparent(self) -> str | None:
        return traceparent_of(self.span)

    def close(self, route: str, status: int) -> None:
        """Named by the route's template (never the path: it holds ids), with its status; ends the span."""
        if self.span is None:
            return
        from opentelemetry import context as otel_context

        self.span.update_name(f"HTTP {self.method} {route}")
        self.span.set_attribute("http.route", route)
        self.span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        self.span.end()


# --- the relay --------------------------------------------------------------------------------------------------


def publishing(topic: str, rows: Sequence[Any]) -> list[Span]:
    """One ``publish <topic>`` span per row about to be sent, each a child of the trace its event was appended in."""
    if _installed is None:
        return []
    return [
        _TRACER.start_span(
            f"publish {topic}",
            context=context_of(row.traceparent),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
                "messaging.message.id": row.id,
                "juwei.event.type": row.type,
                "juwei.position": int(row.position),
                "juwei.compound": row.compound,
            },
        )
        for row in rows
    ]


def published(spans: Sequence[Span], error: BaseException | None = None) -> None:
    """End the publish spans once Kafka acknowledged them all (or the batch failed)."""
    for opened in spans:
        if error is not None:
            opened.set_status(Status(StatusCode.ERROR, type(error).__name__))
        opened.end()
