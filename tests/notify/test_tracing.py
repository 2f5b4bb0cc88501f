"""Traces: one trace from a request to testing, through Kafka, to notify's send to a building group's sink,
received by a real OTLP/HTTP receiver; and nothing installed when no endpoint is configured.

The receiver is a small HTTP server in the test that takes ``POST /v1/traces`` as the OTLP exporter sends it
(protobuf ``ExportTraceServiceRequest``) and keeps every span. The services run as processes on the test
broker (``tests.e2e.conftest.serve_suite``) with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at it.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.trace import SpanKind

from demo.sinks import free_port
from juwei import tracing
from juwei.service import create_app
from tests.e2e.conftest import serve_suite, start_groups_at_the_end
from tests.kernel.harness import key, runtime, wait_for
from tests.kernel.sample import definitions

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
# OTLP's span kinds (opentelemetry.proto.trace.v1.Span.SpanKind) by the API's names.
KINDS = {1: SpanKind.INTERNAL, 2: SpanKind.SERVER, 3: SpanKind.CLIENT, 4: SpanKind.PRODUCER, 5: SpanKind.CONSUMER}


@dataclass(frozen=True)
class Received:
    service: str
    name: str
    kind: SpanKind
    trace_id: str
    span_id: str
    parent: str
    attributes: dict[str, Any]
    error: bool
    links: tuple[tuple[str, str], ...] = ()


def _value(any_value: Any) -> Any:
    which = any_value.WhichOneof("value")
    return getattr(any_value, which) if which else None


class Collector:
    """A real OTLP/HTTP receiver: decodes each export request and keeps its spans."""

    def __init__(self) -> None:
        self.spans: list[Received] = []
        self.requests = 0
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                collector.take(ExportTraceServiceRequest.FromString(raw))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, request: ExportTraceServiceRequest) -> None:
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        Received(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            kind=KINDS[span.kind],
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            error=span.status.code == 2,
                            links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
                        )
                    )
        with self.lock:
            self.requests += 1
            self.spans.extend(found)

    def of(self, trace_id: str) -> list[Received]:
        with self.lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class GroupSink:
    """A building group's webhook receiver that keeps the headers of what it is sent."""

    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                sink.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/b1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    made = Collector()
    yield made
    made.stop()


@pytest.fixture
def sink() -> Iterator[GroupSink]:
    made = GroupSink()
    yield made
    made.stop()


def _one(spans: list[Received], what: str, **wanted: Any) -> Received:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in wanted.items())]
    assert len(found) == 1, f"{what}: {len(found)} spans match {wanted} among {[(s.service, s.name) for s in spans]}"
    return found[0]


@pytest.mark.kafka
@pytest.mark.timeout(600)
def test_one_trace_runs_from_a_request_to_testing_through_kafka_to_the_groups_sink(
    tmp_path: Path, kafka: str, broker, collector: Collector, sink: GroupSink
) -> None:
    start_groups_at_the_end(kafka, broker)
    exporting = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    with serve_suite(tmp_path / "suite", kafka, JUWEI_TODAY="2022-04-12", **exporting) as suite:
        headers = {"X-API-Key": suite.key}

        def post(service: str, path: str, body: dict[str, Any]) -> httpx.Response:
            answer = httpx.post(f"{suite.urls[service]}/compounds/c1{path}", json=body, headers=headers, timeout=30)
            assert answer.status_code in (200, 201), f"{answer.text}\n{suite.logs()}"
            return answer

        building = {"building": "b1", "number": "1", "floors": 6, "rooms_per_floor": 2, "lifts": 1, "lift_capacity": 8}
        registered = post("residents", "/buildings", building).headers["traceparent"].split("-")[1]

        def notify_has_the_group() -> bool:
            answer = httpx.get(f"{suite.urls['notify']}/compounds/c1/groups", headers=headers, timeout=10)
            return answer.status_code == 200 and bool(answer.json()["groups"])

        wait_for(notify_has_the_group, timeout=120, what="notify to hear of the building over Kafka")
        channel = post(
            "notify", "/groups/b1/channels", {"kind": "webhook", "config": {"url": sink.url, "secret": "s" * 16}}
        )
        channel_id = channel.json()["channel"]

        scheduled = post("testing", "/rounds", {"round": "r1", "kind": "antigen", "starts_at": "2022-04-13T07:00:00"})
        trace_id = scheduled.headers["traceparent"].split("-")[1]
        try:
            wait_for(lambda: bool(sink.received), timeout=120, what="the group's sink to be sent the round")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{suite.logs()}") from None
        wait_for(
            lambda: any(s.name == "deliver" for s in collector.of(trace_id)),
            timeout=60,
            what="notify's deliver span to be exported",
        )
        wait_for(
            lambda: any(s.name == "handle batch" and s.service == "juwei-testing" for s in collector.spans),
            timeout=60,
            what="testing's handling of the building to be exported",
        )

    spans = collector.of(trace_id)
    http = _one(spans, "the request", service="juwei-testing", name="HTTP POST /compounds/{compound}/rounds")
    assert http.kind == SpanKind.SERVER and http.parent == ""  # the request began the trace
    assert http.attributes["http.response.status_code"] == 201 and http.attributes["http.route"].endswith("/rounds")
    handle = _one(spans, "notify's handling", service="juwei-notify", name="handle juwei.testing.RoundScheduled.v1")
    assert handle.kind == SpanKind.CONSUMER
    # Its parent is the record's traceparent: the span testing appended the event in, under the request.
    append = _one(spans, "testing's append", span_id=handle.parent)
    assert append.service == "juwei-testing" and append.parent == http.span_id and append.name.startswith("append ")
    assert append.attributes["juwei.compound"] == "c1" and append.attributes["juwei.events"] >= 1
    published = [s for s in spans if s.name == "publish juwei.testing" and s.parent == append.span_id]
    assert published and all(s.kind == SpanKind.PRODUCER and s.service == "juwei-testing" for s in published)
    assert {s.attributes["messaging.destination.name"] for s in published} == {"juwei.testing"}
    message = _one(spans, "notify's message", service="juwei-notify", name="append message")
    assert message.parent == handle.span_id
    deliver = _one(spans, "the delivery", service="juwei-notify", name="deliver")
    assert deliver.parent == handle.span_id and deliver.kind == SpanKind.CLIENT and not deliver.error
    assert deliver.attributes["juwei.channel"] == f"c1:{channel_id}" and deliver.attributes["juwei.outcome"] == "sent"
    # The sink was sent the deliver span's context: the trace reaches the group's side.
    (sent_headers, sent_body) = sink.received[0]
    assert sent_headers["traceparent"].startswith(f"00-{trace_id}-{deliver.span_id}-")
    assert sent_body["message"] == deliver.attributes["juwei.message"]
    # Testing's read models take a poll's events at once: one span, linked to where each event was appended.
    building_append = _one(
        collector.of(registered), "residents' append", service="juwei-residents", name="append building"
    )
    batches = [s for s in collector.spans if s.name == "handle batch" and s.service == "juwei-testing"]
    assert any((registered, building_append.span_id) in s.links for s in batches), batches
    # Ids, counts and codes only: no URL with its query, no body, no text of the message.
    for span in spans:
        assert {k.split(".")[0] for k in span.attributes} <= {"http", "messaging", "juwei"}, span
        assert sent_body["title"] not in json.dumps(span.attributes, ensure_ascii=False)


def test_without_an_endpoint_no_provider_is_installed_and_the_traceparent_is_carried_as_before(
    new_database, suffix: str, monkeypatch: pytest.MonkeyPatch, collector: Collector
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")  # as the compose file passes it when unset
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", collector.url)  # not for traces: ignored
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    secret = key(made)
    with TestClient(create_app(made, background=False)) as client:
        answer = client.post(
            "/compounds/c1/tallies/1", json={"amount": 1}, headers={"X-API-Key": secret, "traceparent": TRACE}
        )
        events = client.get("/events", headers={"X-API-Key": secret}).json()["events"]
    assert answer.status_code == 201
    assert not tracing.exporting()
    assert type(trace.get_tracer_provider()).__module__.startswith("opentelemetry.trace")  # the API's, not the SDK's
    with tracing.span("nothing") as nothing:
        assert nothing is None and tracing.traceparent_now() is None
    # Exactly as without traces: the caller's traceparent answered and stored as it came.
    assert answer.headers["traceparent"] == TRACE and events[0]["traceparent"] == TRACE
    assert collector.requests == 0
    made.database.dispose()
