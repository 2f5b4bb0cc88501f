"""``juwei status``: each service's health, readiness, relay backlog, consumer lag and events per second.

Works against any stack whose services answer over HTTP (the local `juwei run` processes or the compose
stack's published ports). A service that does not answer is reported as down; its consumer lag is still
read from Kafka, since a stopped consumer is exactly when lag grows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

from juwei.settings import settings
from juwei.stack import Container


@dataclass(frozen=True)
class Target:
    """A service to ask: its name (for its consumer group ``juwei-<name>``) and base URL, if it has one."""

    name: str
    url: str | None


@dataclass
class ServiceStatus:
    name: str
    url: str | None
    healthy: bool = False
    ready: bool | None = None
    readiness: str = ""
    # What the service itself last saw of Kafka: "ok", "unreachable (<error>)", None (not known)
    kafka: str | None = None
    head_position: int | None = None
    relay_backlog: int | None = None
    events_per_second: float | None = None
    consumer_group: str | None = None
    consumed_topics: list[str] | None = None
    # topic → unconsumed records of the group (None: the topic does not exist)
    lag: dict[str, int | None] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        # A service that cannot reach Kafka is still ready (its outbox keeps the writes) but not all right.
        return self.healthy and self.ready is True and self.kafka in ("ok", None)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "healthy": self.healthy,
            "ready": self.ready,
            "readiness": self.readiness,
            "kafka": self.kafka,
            "head_position": self.head_position,
            "relay_backlog": self.relay_backlog,
            "events_per_second": self.events_per_second,
            "consumer_group": self.consumer_group,
            "lag": self.lag,
            "error": self.error,
        }


@dataclass
class StackStatus:
    services: list[ServiceStatus]
    kafka_bootstrap: str | None
    kafka_error: str | None = None
    containers: list[Container] | None = None

    @property
    def ok(self) -> bool:
        containers_ok = self.containers is None or all(c.ok for c in self.containers)
        return all(s.ok for s in self.services) and self.kafka_error is None and containers_ok

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "kafka": {"bootstrap": self.kafka_bootstrap, "error": self.kafka_error},
            "services": [s.as_json() for s in self.services],
            "containers": None if self.containers is None else [c.as_json() for c in self.containers],
        }


# ---------------------------------------------------------------- collecting


def collect(
    targets: Sequence[Target],
    kafka_bootstrap: str | None,
    kafka_extra: dict[str, Any] | None = None,
    sample_seconds: float = 1.0,
    # Kafka's admin requests (a service's own /readyz answers within a second, Kafka reachable or not).
    timeout: float = 6.0,
    containers: list[Container] | None = None,
) -> StackStatus:
    """Ask every service (in parallel), then Kafka for the lag of each service's consumer group."""
    with httpx.Client(timeout=timeout) as client, ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        services = list(pool.map(lambda t: _probe(client, t, sample_seconds), targets))
    report = StackStatus(services, kafka_bootstrap, containers=containers)
    if kafka_bootstrap:
        try:
            _add_lag(services, kafka_bootstrap, kafka_extra or {}, timeout)
        except Exception as exc:  # any broker trouble is a finding to show, not a crash of the command
            text = str(exc)
            report.kafka_error = text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"
    else:
        report.kafka_error = "no Kafka bootstrap servers known"
    return report


def _probe(client: httpx.Client, target: Target, sample_seconds: float) -> ServiceStatus:
    status = ServiceStatus(target.name, target.url, consumer_group=f"{settings().consumer_group_prefix}-{target.name}")
    if target.url is None:
        status.error = "no published address (container not running?)"
        return status
    try:
        status.healthy = client.get(f"{target.url}/healthz").status_code == 200
        readyz = client.get(f"{target.url}/readyz")
        status.ready = readyz.status_code == 200
        status.readiness = "ready" if status.ready else _not_ready_detail(readyz)
        first_at = time.monotonic()
        first = client.get(f"{target.url}/status")
        first.raise_for_status()
    except httpx.HTTPError as exc:
        status.error = _http_error(exc)
        return status
    body = first.json()
    status.head_position = body.get("head_position")
    status.relay_backlog = (body.get("relay") or {}).get("backlog")
    consumer = body.get("consumer") or {}
    status.consumer_group = consumer.get("group") or status.consumer_group
    status.consumed_topics = list(consumer.get("topics") or [])
    status.kafka = _kafka_seen(body.get("kafka") or {})
    if sample_seconds > 0 and status.head_position is not None:
        # Two looks at the log head, about a second apart: the append rate right now.
        time.sleep(max(0.0, sample_seconds - (time.monotonic() - first_at)))
        try:
            second_at = time.monotonic()
            second = client.get(f"{target.url}/status").json()
            elapsed = max(second_at - first_at, 1e-3)
            status.events_per_second = round((second["head_position"] - status.head_position) / elapsed, 2)
            status.head_position = second["head_position"]
            status.relay_backlog = second["relay"]["backlog"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            status.error = f"second sample failed: {exc}"
    return status


def _kafka_seen(kafka: dict[str, Any]) -> str | None:
    up = kafka.get("up")
    if up is None:
        return None
    return "ok" if up else f"unreachable ({kafka.get('error') or 'no answer'})"


def _not_ready_detail(response: httpx.Response) -> str:
    try:
        checks = response.json().get("checks") or {}
    except ValueError:
        checks = {}
    failing = [f"{name} {value}" for name, value in checks.items() if value != "ok"]
    return "not ready: " + (", ".join(failing) or f"HTTP {response.status_code}")


def _http_error(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url.path}"
    return f"{type(exc).__name__}: {exc}"


def _add_lag(services: Sequence[ServiceStatus], bootstrap: str, extra: dict[str, Any], timeout: float) -> None:
    """Committed offsets of each ``juwei-<service>`` group against the end offsets of its topics."""
    from juwei.consumer_lag import admin_client, group_lags

    admin = admin_client(bootstrap, extra, timeout, "juwei-status")
    try:
        # A service that did not answer: the topics its group has committed offsets for (None).
        wanted = {s.consumer_group: s.consumed_topics for s in services if s.consumer_group}
        lags = group_lags(admin, wanted)
    finally:
        admin.close()
    for service in services:
        if service.consumer_group:
            service.lag = dict(lags.get(service.consumer_group, {}))


# ---------------------------------------------------------------- showing


def render(report: StackStatus, console: Console) -> None:
    if report.containers is not None:
        console.print(containers_table(report.containers))
    table = Table(title="Juwei services", title_justify="left")
    for column in ("service", "address", "health", "readiness", "kafka", "relay backlog", "events/s", "consumer lag"):
        numeric = column in ("relay backlog", "events/s")
        # Names and addresses whole on one line; a long readiness reason or lag list may wrap.
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column in ("service", "address"))
    for s in report.services:
        health = Text("up", style="green") if s.healthy else Text("down", style="bold red")
        if s.ready is None:
            readiness = Text(s.error or "—", style="red" if s.error else "")
        else:
            readiness = Text(s.readiness, style="green" if s.ready else "yellow")
        lag = "\n".join(f"{t}: {'no such topic' if n is None else n}" for t, n in s.lag.items()) or "—"
        table.add_row(
            s.name,
            (s.url or "—").removeprefix("http://"),
            health,
            readiness,
            Text(s.kafka or "—", style="" if s.kafka in ("ok", None) else "bold red"),
            "—" if s.relay_backlog is None else str(s.relay_backlog),
            "—" if s.events_per_second is None else f"{s.events_per_second:g}",
            Text(lag, style="yellow" if any(n for n in s.lag.values()) else ""),
        )
    console.print(table)
    if report.kafka_error:
        console.print(Text(f"Kafka {report.kafka_bootstrap or ''}: {report.kafka_error}", style="bold red"))
    else:
        console.print(f"Kafka {report.kafka_bootstrap}: reachable")
    console.print(Text("all up and ready", style="green") if report.ok else Text("NOT all up", style="bold red"))


def containers_table(containers: Sequence[Container]) -> Table:
    table = Table(title="Containers", title_justify="left")
    for column in ("service", "container", "state", "health", "published"):
        table.add_column(column, overflow="fold")
    for c in containers:
        state = c.state if c.exit_code in (None, 0) or c.state == "running" else f"{c.state} ({c.exit_code})"
        health = c.health or ("—" if not c.one_shot else "one-shot")
        published = ", ".join(
            f"{host or '0.0.0.0'}:{number}→{port}" for port, pairs in c.ports.items() for host, number in pairs
        )
        table.add_row(c.service, c.name, Text(state, style="green" if c.ok else "red"), health, published or "—")
    return table
