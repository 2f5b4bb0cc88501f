"""The service factory: what every Juwei service is made of, wired once here.

A service is described by a ``ServiceDefinition`` (its name, event catalogue, routes, projections, the
topics it consumes and its migrations). ``Runtime`` builds the database, event store, projector, relay
and consumers from the settings; ``create_app`` builds the FastAPI app with health, readiness, metrics,
problem+json errors, request ids, API-key auth and the event feed.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from juwei import commands, docs, migrate, observability, openapi, problems, retention, tracing
from juwei.access import FeedAccess
from juwei.audit import audit_router
from juwei.auth import RateLimiter, issue_key, split_key
from juwei.callers import OPERATOR_ROLE, Caller, Holder
from juwei.consumer import Delivery, EventConsumer
from juwei.consumer_lag import KafkaWatch
from juwei.database import PROBE_SECONDS, Database, DatabaseUnavailable
from juwei.events import DomainEvent, Envelope, EventRegistry, catalogue_of, sealed_subject
from juwei.feed import feed_router
from juwei.issuing import key_router
from juwei.logs import bind_service, configure_logging
from juwei.observability import metrics_exposition
from juwei.projection import Projection, Projector
from juwei.registration import suite, topic_of
from juwei.relay import Relay
from juwei.sealing import Sealing
from juwei.service_status import Health, Readiness, ServiceStatus
from juwei.session import Session
from juwei.settings import Settings, settings
from juwei.store import EventStore
from juwei.vault import KeyCourier, Vault

if TYPE_CHECKING:
    import typer

log = structlog.get_logger("juwei.service")


@dataclass
class ServiceDefinition:
    """Everything that makes one service different from another."""

    name: str
    registry: EventRegistry
    routers: Sequence[APIRouter] = ()
    projections: Callable[[], Sequence[Projection]] = lambda: ()
    # The other services' events it reads (its handlers and projections), by class: the topics it consumes
    # and their published catalogues follow from them unless named outright (tests that rename topics).
    consumed_events: Sequence[type[DomainEvent]] = ()
    consumes: Sequence[str] = ()
    # The published catalogue of the consumed topics: a type it does not know is dead-lettered.
    catalogue: EventRegistry | None = None
    # Called for every event received from another service, inside the consumer's transaction.
    on_received: Callable[[Runtime, Session, Delivery], None] | None = None
    migrations: Path | None = None
    # Jobs run every ``seconds`` in the service process (e.g. zone status moving on as days pass).
    periodic: Sequence[tuple[float, Callable[[Runtime], None]]] = ()
    # Removes a compound's identity and health rows once its lockdown is over (``juwei.retention``).
    retention: Callable[[Runtime, Session, str], dict[str, Any]] | None = None
    # What the feed shows each caller (``juwei.access``); None: the key's compound, everything in it.
    feed_access: FeedAccess | None = None
    # The roles that may list the audit of sensitive reads and resolve an event's actor to its holder.
    auditors: Sequence[str] = (OPERATOR_ROLE,)
    # The key shared by the services granted health data (None: this service is not one of them): with it a
    # service hands over, or takes, the keys of sealed health fields (``juwei.vault.KeyCourier``).
    health_key: Callable[[Settings], str] | None = None
    # Whether a person may hold a key issued over HTTP: (why not or None, their building's local id or None).
    # Only the service that keeps the register sets it (residents); the others accept whom staff vouch for.
    holder_check: Callable[[Runtime, Holder], tuple[str | None, str | None]] | None = None
    # Called in the transaction of a key issued over HTTP (testing binds a household's key to the household).
    key_issued: Callable[[Runtime, Session, Caller], None] | None = None
    # Its rules said in Chinese, by the code a ``DomainRuleViolation`` or ``Problem`` carries; ``{name}`` is filled
    # from the violation's details. A code not here keeps its English detail (``juwei.wording``).
    wording: Mapping[str, str] = field(default_factory=dict)
    # Its own commands, mounted by the ``juwei`` command under the service's name (``juwei residents import``).
    commands: typer.Typer | None = None
    description: str = ""
    version: str = "0.1.0"

    def __post_init__(self) -> None:
        catalogues = list({id(c): c for c in map(catalogue_of, self.consumed_events)}.values())
        if not self.consumes:
            self.consumes = [catalogue.topic for catalogue in catalogues]
        if self.catalogue is None and catalogues:
            self.catalogue = EventRegistry.merged(*catalogues)

    @property
    def topic(self) -> str:
        return topic_of(self.name)

    @property
    def source(self) -> str:
        return f"/juwei/{self.name}"


# What a service does with one event it receives, inside the consumer's transaction: (runtime, session, the
# event decoded as its current version, its envelope).
EventHandler = Callable[["Runtime", Session, Any, Envelope], None]


def handled_by(table: Mapping[type[DomainEvent], EventHandler]) -> Callable[[Runtime, Session, Delivery], None]:
    """``ServiceDefinition.on_received`` from a table of handlers keyed by event class (cosmicpython's
    ``EVENT_HANDLERS``): a received event whose class has a handler is decoded and handed to it; others pass."""

    def on_received(runtime: Runtime, session: Session, delivery: Delivery) -> None:
        catalogue = runtime.definition.catalogue
        if catalogue is None:
            return
        handler = table.get(catalogue.current_class(delivery.envelope.type))  # type: ignore[arg-type]
        if handler is not None:
            event = catalogue.decode(delivery.envelope.type, delivery.envelope.data)
            handler(runtime, session, event, delivery.envelope)

    return on_received


def foreign_events(
    own: EventRegistry, projections: Iterable[Projection], handlers: Iterable[type[DomainEvent]] = ()
) -> list[type[DomainEvent]]:
    """The other services' events a service consumes: those its handlers take and its projections read."""
    found = [*handlers, *(cls for projection in projections for cls in projection.reads)]
    return list(dict.fromkeys(cls for cls in found if catalogue_of(cls) is not own))


class Runtime:
    """One process's instance of a service: database, store, projections, relay, consumers."""

    def __init__(
        self, definition: ServiceDefinition, config: Settings | None = None, database_url: str | None = None
    ) -> None:
        self.definition = definition
        self.settings = config or settings()
        self.database = Database(database_url or self.settings.database_url(definition.name))
        self.store = EventStore(definition.source, definition.registry)
        self.projector = Projector(self.database, self.store, definition.projections())
        self.store.on_append.append(self.projector.apply_own)
        # A request's Idempotency-Key is recorded in the transaction of what it writes.
        self.database.at_start.append(commands.claim)
        # A replay must not bring back what retention removed.
        self.projector.after_rebuild.append(lambda session: retention.reapply(session, self._scrub))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # One wake per periodic job, by the job's name: ``wake`` runs it now instead of at its next tick.
        self._wakes: dict[str, threading.Event] = {}
        # Called by ``stop`` once the background threads have ended, before the database closes.
        self.on_stop: list[Callable[[], None]] = []
        self.relay: Relay | None = None
        self.consumer: EventConsumer | None = None
        self._vault: Vault | None = None
        self._courier: KeyCourier | None = None
        self._kafka_watch: KafkaWatch | None = None
        # Per current type with sealed fields: (token field, field naming its subject) pairs.
        self.sealed_types = {
            name: tuple((field_name, spec.subject) for field_name, spec in cls.sealed_fields.items())
            for name, cls in definition.registry.classes.items()
            if cls.sealed_fields
        }
        self.sealing = Sealing(lambda: self.vault)
        if self.sealed_types:
            self.store.sealing = self.sealing
        if definition.health_key is not None and definition.catalogue is not None:
            catalogue = definition.catalogue
            self.projector.open_received = lambda session, envelopes: self.sealing.open(session, catalogue, envelopes)

    @property
    def group(self) -> str:
        return f"{self.settings.consumer_group_prefix}-{self.definition.name}"

    @property
    def kafka_watch(self) -> KafkaWatch:
        """Kafka's reachability and this service's consumer lag, cached (``juwei.consumer_lag``)."""
        if self._kafka_watch is None:
            self._kafka_watch = KafkaWatch(
                self.definition.name,
                self.settings.bootstrap,
                self.settings.kafka_security(),
                self.group,
                self.definition.consumes,
            )
        return self._kafka_watch

    def consumers_behind(self) -> dict[str, int]:
        """Topics the group is further behind on than ``JUWEI_READY_MAX_LAG``; none when the lag is unknown."""
        bound = self.settings.ready_max_lag
        if not bound or not self.definition.consumes:
            return {}
        lag = self.kafka_watch.state().lag
        return {topic: n for topic, n in lag.items() if n is not None and n > bound}

    @property
    def _scrub(self) -> retention.Scrub | None:
        scrub = self.definition.retention
        return (lambda session, compound: scrub(self, session, compound)) if scrub is not None else None

    def retire(self, compound: str, actor: str | None = None) -> dict[str, Any]:
        """Remove the compound's identity and health rows of this service (``juwei.retention``)."""
        return retention.retire(self.database, self._scrub, compound, actor=actor, service=self.definition.name)

    def migrate(self) -> None:
        dirs = [self.definition.migrations] if self.definition.migrations else []
        migrate.upgrade(self.database, dirs)

    def ensure_bootstrap_key(self) -> None:
        key = self.settings.bootstrap_key
        if key and split_key(key):
            with self.database.unit_of_work() as session:
                issue_key(
                    session,
                    OPERATOR_ROLE,
                    None,
                    label="bootstrap operator key",
                    key=key,
                    holder=Holder("system", "bootstrap operator key (JUWEI_BOOTSTRAP_KEY)"),
                )

    @property
    def courier(self) -> KeyCourier | None:
        """Hands over and takes sealed-field keys; None when this service is not granted health data."""
        if self._courier is None and self.definition.health_key is not None:
            self._courier = KeyCourier(self.definition.health_key(self.settings))
        return self._courier

    def sealed_key_headers(self, session: Session, events: Sequence[tuple[str, dict[str, Any]]]) -> list[list]:
        """For each (type, payload): the headers handing over the keys of its sealed fields (none if shredded)."""
        courier = self.courier
        wanted: list[list[str]] = []
        for type_name, data in events:
            pairs = self.sealed_types.get(type_name, ()) if courier is not None else ()
            wanted.append(
                [
                    sealed_subject(data[subject], name)
                    for name, subject in pairs
                    if data.get(name) is not None and isinstance(data.get(subject), str)
                ]
            )
        subjects = [subject for names in wanted for subject in names]
        if not subjects or courier is None:
            return [[] for _ in events]
        headers = courier.headers(session, self.vault, subjects)
        return [[headers[subject] for subject in names if subject in headers] for names in wanted]

    def _attach_keys(self, session: Session, rows: Sequence[Any]) -> dict[int, list]:
        sealed = [row for row in rows if row.type in self.sealed_types]
        if not sealed:
            return {}
        found = self.sealed_key_headers(session, [(row.type, json.loads(row.data)) for row in sealed])
        return {row.position: headers for row, headers in zip(sealed, found, strict=True) if headers}

    def _take_keys(self, session: Session, delivery: Delivery) -> None:
        courier = self.courier
        if courier is None or not delivery.sealed_keys:
            return
        try:
            courier.take(session, self.vault, delivery.sealed_keys)
        except ValueError as exc:  # sealed under another shared key: the fields stay closed, the event is good
            # `event_id`: structlog's own first argument is called `event`.
            log.warning("service.sealed_key_refused", event_id=delivery.envelope.id, error=str(exc))

    def handle_received(self, session: Session, delivery: Delivery) -> None:
        catalogue = self.definition.catalogue
        if catalogue is not None:
            # Unknown types and payloads that break their published schema are poison (dead-lettered) even
            # when no handler here reads them: the inbox, and every replay of it, only holds valid events.
            catalogue.decode(delivery.envelope.type, delivery.envelope.data)
        self._take_keys(session, delivery)
        if self.definition.on_received is not None:
            self.definition.on_received(self, session, delivery)
        self.projector.apply_received(session, delivery.envelope, delivery.inbox_seq)

    def handle_received_many(self, session: Session, deliveries: list[Delivery]) -> None:
        """A poll's deliveries at once: only for services with no ``on_received`` (it may read the views)."""
        catalogue = self.definition.catalogue
        if catalogue is not None:
            for delivery in deliveries:
                catalogue.decode(delivery.envelope.type, delivery.envelope.data)
        for delivery in deliveries:
            self._take_keys(session, delivery)
        self.projector.apply_received_many(session, [(d.envelope, d.inbox_seq) for d in deliveries])

    def make_relay(self) -> Relay:
        return Relay(
            self.database,
            self.definition.topic,
            self.definition.source,
            self.settings.bootstrap,
            producer_overrides=self.settings.kafka_security(),
            attach=self._attach_keys if self.sealed_types and self.definition.health_key is not None else None,
        )

    def make_consumer(self) -> EventConsumer:
        return EventConsumer(
            self.database,
            self.group,
            list(self.definition.consumes),
            self.handle_received,
            self.settings.bootstrap,
            handle_many=self.handle_received_many if self.definition.on_received is None else None,
            consumer_overrides={
                "session_timeout_ms": self.settings.kafka_session_timeout_ms,
                "heartbeat_interval_ms": max(500, self.settings.kafka_session_timeout_ms // 6),
                **self.settings.kafka_security(),
            },
        )

    def start_background(self, relay: bool | None = None, consumers: bool | None = None) -> None:
        tracing.configure_tracing(self.definition.name)  # `juwei relay` and `juwei consume` have no app
        if relay if relay is not None else self.settings.relay:
            self.relay = self.make_relay()
            self._spawn("relay", self.relay.run)
        if self.definition.consumes and (consumers if consumers is not None else self.settings.consumers):
            self.consumer = self.make_consumer()
            self._spawn("consumer", self.consumer.run)
        for number, (seconds, job) in enumerate(self.definition.periodic):
            self._spawn(f"periodic-{number}", self._every(seconds, job))
        self._spawn("database-probe", self._probe_database)

    def _probe_database(self, stop: threading.Event) -> None:
        """``juwei_database_up`` kept fresh in every process of the service, whether or not anyone asks it."""
        while not stop.is_set():
            self.database.probe(self.definition.name)
            stop.wait(PROBE_SECONDS)

    @staticmethod
    def job_name(job: Callable[[Runtime], None]) -> str:
        return getattr(job, "__name__", "job")

    def wake(self, job: str) -> None:
        """Run the periodic job named ``job`` now rather than at its next tick; wakes during a run coalesce."""
        woken = self._wakes.get(job)
        if woken is not None:  # not running (no background, or another process's job): the tick will do
            woken.set()

    def wake_after_commit(self, session: Session, job: str) -> None:
        """Wake ``job`` once ``session``'s transaction has committed: never before, or it would not see the rows."""
        jobs: set[str] = session.info.setdefault("juwei.wake", set())
        if not jobs:
            session.after_commit(self._wake_committed)
        jobs.add(job)

    def _wake_committed(self, session: Session) -> None:
        for job in session.info.pop("juwei.wake", ()):
            self.wake(job)

    def _every(self, seconds: float, job: Callable[[Runtime], None]) -> Callable[[threading.Event], None]:
        woken = self._wakes.setdefault(self.job_name(job), threading.Event())

        def loop(stop: threading.Event) -> None:
            while True:
                woken.wait(seconds)
                if stop.is_set():
                    return
                woken.clear()  # before the run: a wake during it runs the job once more right after
                try:
                    job(self)
                except Exception as exc:  # a failed run is retried at the next tick, never kills the service
                    log.warning("service.periodic_failed", job=self.job_name(job), error=repr(exc))

        return loop

    @property
    def vault(self) -> Vault:
        """The service's vault for personal data (key from ``JUWEI_<SERVICE>_VAULT_KEY``)."""
        if self._vault is None:
            self._vault = Vault(self.settings.vault_key(self.definition.name))
        return self._vault

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        def named(stop: threading.Event) -> None:
            bind_service(self.definition.name)  # a new thread starts with no context: its lines name the service
            target(stop)

        thread = threading.Thread(target=named, args=(self._stop,), name=f"{self.definition.name}-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for woken in self._wakes.values():
            woken.set()  # a job waiting for its tick sees the stop at once
        for thread in self._threads:
            thread.join(timeout=15)
        self._threads.clear()
        for hook in self.on_stop:
            try:
                hook()
            except Exception as exc:  # stopping goes on: what a hook would have tidied expires by itself
                log.warning("service.on_stop_failed", error=repr(exc))
        self.database.dispose()
        tracing.ending()  # the spans of the last work, before the process exits

    def wait_forever(self) -> None:
        while not self._stop.is_set():
            time.sleep(0.5)


def create_app(runtime: Runtime, *, background: bool = True, migrate_on_start: bool = True) -> FastAPI:
    definition = runtime.definition
    configure_logging(runtime.settings.log_level, runtime.settings.log_levels, service=definition.name)
    tracing.configure_tracing(definition.name)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if migrate_on_start:
            runtime.migrate()
        runtime.ensure_bootstrap_key()
        runtime.kafka_watch.state(wait=0)  # a first look, so the first /status and /readyz know Kafka's state
        if background:
            runtime.start_background()
        log.info("service.started", service=definition.name)
        yield
        runtime.stop()

    app = FastAPI(
        title=f"Juwei {definition.name}",
        description=definition.description,
        version=definition.version,
        lifespan=lifespan,
        # Served from the package by juwei.docs (no CDN); ReDoc has no offline copy here.
        docs_url=None,
        redoc_url=None,
        # FastAPI's own spans would record each request's path and query string (`url.query`: an import's
        # mapping, a search): the request's span is juwei.tracing's, which names the route template only.
        telemetry={"tracing": False, "operation_spans": False, "metrics": False, "logs": False},
        generate_unique_id_function=openapi.operation_id(definition.name),
    )
    docs.install(app)
    app.state.runtime = runtime
    app.state.rate_limiter = RateLimiter(runtime.settings.rate_limit_per_second, runtime.settings.rate_limit_burst)
    problems.install(app, definition.wording)
    # Inside the body limit and the request ids (added first: the innermost of the middlewares).
    app.add_middleware(commands.CommandLedger, runtime=runtime)
    observability.install(app, definition.name, runtime.settings.max_body_bytes)
    schema = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            openapi.document_problems(commands.document(schema()))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = document  # type: ignore[method-assign]

    @app.get("/healthz", response_model=Health, tags=["operations"], summary="The process is alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": definition.name}

    @app.get(
        "/readyz",
        response_model=Readiness,
        tags=["operations"],
        summary="The database answers and the consumers keep up",
        responses={
            503: {"description": "Not ready: `checks` says which part is not", "x-juwei-problem-types": ["not-ready"]}
        },
    )
    def readyz(request: Request) -> JSONResponse:
        # Kafka is not asked for: with it away the outbox keeps writes going, so the service can still work.
        checks: dict[str, str] = {}
        try:
            runtime.database.ping()
            checks["database"] = "ok"
        except DatabaseUnavailable:
            checks["database"] = "unreachable"
        behind = runtime.consumers_behind()
        if definition.consumes:
            bound = runtime.settings.ready_max_lag
            checks["consumers"] = (
                "ok" if not behind else "behind on " + ", ".join(f"{t} ({n} > {bound})" for t, n in behind.items())
            )
        ready = all(value == "ok" for value in checks.values())
        if ready:
            return JSONResponse({"status": "ready", "checks": checks})
        failing = {name: value for name, value in checks.items() if value != "ok"}
        return problems.problem_response(
            request,
            503,
            "not ready: " + ", ".join(f"{name} {value}" for name, value in failing.items()),
            "not-ready",
            said=problems.Said("not-ready", {"checks": ", ".join(failing)}),
            checks=checks,
            behind=behind,
        )

    @app.get(
        "/status",
        response_model=ServiceStatus,
        tags=["operations"],
        summary="Log head, relay backlog, projections, Kafka and consumer lag",
    )
    def status() -> dict[str, Any]:
        from juwei.store import read_checkpoint

        kafka = runtime.kafka_watch.state()
        with runtime.database.reading() as session:
            head = runtime.store.head(session)
            published = read_checkpoint(session, f"relay:{definition.topic}")
        return {
            "service": definition.name,
            "topic": definition.topic,
            "head_position": head,
            "relay": {"published_position": published, "backlog": max(0, head - published)},
            "projections": {
                name: {"own_position": own, "inbox_seq": inbox}
                for name, (own, inbox) in runtime.projector.checkpoints().items()
            },
            "consumer": {"group": runtime.group, "topics": list(definition.consumes), "lag": kafka.lag or None},
            "kafka": kafka.as_json(),
        }

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses=openapi.answered_as("The text exposition format", "text/plain"),
    )
    def metrics() -> Response:
        runtime.kafka_watch.state()  # juwei_kafka_up and juwei_consumer_lag no older than the watch's ttl
        return Response(metrics_exposition(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(feed_router(runtime.settings.feed_page_max))
    app.include_router(key_router())
    app.include_router(audit_router(definition.auditors))
    for router in definition.routers:
        app.include_router(router)
    return app


def worker_app(spec: str) -> FastAPI:
    """One worker of ``juwei serve --workers`` (``juwei.workers``): HTTP only, the parent migrated the database and
    runs the relay, consumers and periodic jobs."""
    return create_app(Runtime(load_definition(spec)), background=False, migrate_on_start=False)


def configured_runtime(spec: str) -> Runtime:
    """A command's runtime for one service, its log lines named after that service."""
    runtime = Runtime(load_definition(spec))
    configure_logging(runtime.settings.log_level, runtime.settings.log_levels, service=runtime.definition.name)
    return runtime


def load_definition(spec: str) -> ServiceDefinition:
    """A registered service's name (``residents``, see ``juwei.registration``) or ``module:attribute``."""
    module_name, _, attribute = spec.partition(":")
    if attribute:
        definition = getattr(importlib.import_module(module_name), attribute)
    else:
        member = suite().member(spec)
        if member is None:
            raise LookupError(f"unknown service {spec!r}; known: {', '.join(suite().names) or 'none registered'}")
        definition = member.load()
    if not isinstance(definition, ServiceDefinition):
        raise TypeError(f"{spec} is not a ServiceDefinition")
    return definition
