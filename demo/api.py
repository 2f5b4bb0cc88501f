"""The four services as the demo reaches them: their public HTTP APIs, one key per caller, and the bus's quiet.

Nothing here imports a service: requests go to the addresses given, answers are JSON (problems are
``application/problem+json``), and "has everyone caught up?" is asked of ``/status`` and, where the demo
can reach the broker, of the consumer groups' lag (what ``juwei status`` shows).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from juwei_client import Connection, Feed, ProblemError

SERVICES = ("residents", "supplies", "testing", "notify")
# Seconds a refused connection is retried: long enough for a killed service container to come back.
RESTART_GRACE = 120.0
T = TypeVar("T")
R = TypeVar("R")


class DemoError(RuntimeError):
    """A step of the day could not be done; the message says which and what the service answered."""


@dataclass
class Suite:
    """HTTP clients of the four services, acting with ``key`` unless a call names another key."""

    urls: dict[str, str]
    key: str
    timeout: float = 120.0
    clients: dict[str, httpx.Client] = field(default_factory=dict)
    requests: int = 0

    def __post_init__(self) -> None:
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        for name in SERVICES:
            self.clients[name] = httpx.Client(base_url=self.urls[name].rstrip("/"), timeout=self.timeout, limits=limits)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        key: str | None = None,
        ok: Sequence[int] = (200, 201, 204),
        attempts: int = 6,
        **kwargs: Any,
    ) -> Any:
        """One request; retried while the service says to wait (503) or two writers met (409 conflict).

        A refused connection sent nothing (and a GET changes nothing), so either is retried for up to
        ``RESTART_GRACE`` seconds: a service that is restarting (a container killed and started again)
        answers the same request a little later.
        """
        headers = {"X-API-Key": key or self.key, **kwargs.pop("headers", {})}
        answer: httpx.Response | None = None
        attempt = 0
        restarting_until = time.monotonic() + RESTART_GRACE
        while attempt < attempts:
            attempt += 1
            try:
                answer = self.clients[service].request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                # A GET may also be cut off by a container's port proxy while the service inside starts.
                restarting = isinstance(exc, httpx.ConnectError) or (
                    method == "GET" and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError)
                )
                if restarting and time.monotonic() < restarting_until:
                    attempt -= 1  # nothing reached the service: not an attempt
                    time.sleep(1.0)
                    continue
                if attempt == attempts:
                    raise DemoError(f"{service} did not answer {method} {path}: {exc!r}") from exc
                time.sleep(0.5 * attempt)
                continue
            self.requests += 1
            if answer.status_code in ok:
                return answer.json() if answer.content else None
            if not _worth_retrying(answer) or attempt == attempts:
                break
            time.sleep(float(answer.headers.get("retry-after") or 0.2 * attempt))
        assert answer is not None
        raise DemoError(f"{service} answered {method} {path} with {answer.status_code}: {_problem(answer)}")

    def get(self, service: str, path: str, **kwargs: Any) -> Any:
        return self.call(service, "GET", path, **kwargs)

    def post(self, service: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["json"] = body
        return self.call(service, "POST", path, **kwargs)

    def put(self, service: str, path: str, body: Any, **kwargs: Any) -> Any:
        return self.call(service, "PUT", path, json=body, **kwargs)

    def patch(self, service: str, path: str, body: Any, **kwargs: Any) -> Any:
        return self.call(service, "PATCH", path, json=body, **kwargs)

    def healthy(self) -> dict[str, str | None]:
        """service → None when it answers /healthz, else why not."""
        found: dict[str, str | None] = {}
        for name, client in self.clients.items():
            try:
                answer = client.get("/healthz", timeout=5)
                found[name] = None if answer.status_code == 200 else f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                found[name] = type(exc).__name__
        return found

    def feed(self, service: str, compound: str) -> list[dict[str, Any]]:
        """Every event of the compound a service has published, oldest first, read as any integrator reads it:
        through juwei-client's feed (``GET /events`` page by page, ``next_after`` on)."""
        # Retried for about RESTART_GRACE (backoff doubling to 8 s): a killed service container comes back.
        connection = Connection(
            self.urls[service],
            self.key,
            timeout=self.timeout,
            retries=20,
            backoff_max=8.0,
            client=self.clients[service],
        )
        feed, after = Feed(connection), 0
        found: list[dict[str, Any]] = []
        while True:
            try:
                page = feed.page(after, limit=1000)
            except (ProblemError, httpx.HTTPError) as exc:
                raise DemoError(f"{service} did not give its feed after position {after}: {exc}") from exc
            self.requests += 1
            found.extend(event.raw for event in page.events if event.compound == compound)
            after = page.next_after
            if not page.has_more:
                return found

    def settle(self, kafka: str | None, timeout: float = 180.0, quiet: float = 2.0) -> str:
        """Wait until every relay has published its log and every consumer group has read its topics.

        With the broker reachable, the consumer groups' lag says it exactly; without, the services' inbox
        positions must stay still for ``quiet`` seconds. Returns how it was decided.
        """
        deadline = time.monotonic() + timeout
        if kafka:
            from juwei.status import Target, collect

            targets = [Target(name, self.urls[name]) for name in SERVICES]
            calm = 0
            while time.monotonic() < deadline:
                report = collect(targets, kafka, sample_seconds=0, timeout=5)
                if report.kafka_error is not None:
                    break  # not reachable from here (a compose stack's inside address): fall back
                backlog = [s.relay_backlog for s in report.services]
                lag = [n for s in report.services for n in s.lag.values()]
                # Twice in a row: what a consumer appended in reaction has been relayed and read too.
                calm = calm + 1 if all(b == 0 for b in backlog) and all(n == 0 for n in lag) else 0
                if calm == 2:
                    return "consumer lag 0 on every topic"
                time.sleep(0.3)
            else:
                raise DemoError(f"the services did not catch up on Kafka within {timeout:.0f} s")
        last: tuple[Any, ...] | None = None
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            statuses = [self.clients[name].get("/status").json() for name in SERVICES]
            now = tuple((s["relay"]["backlog"], *sorted(str(p) for p in s["projections"].values())) for s in statuses)
            if now != last or any(s["relay"]["backlog"] for s in statuses):
                last, still_since = now, time.monotonic()
            elif time.monotonic() - still_since >= quiet:
                return f"every service still for {quiet:.0f} s"
            time.sleep(0.3)
        raise DemoError(f"the services did not settle within {timeout:.0f} s")


def _worth_retrying(answer: httpx.Response) -> bool:
    if answer.status_code == 503:
        return True
    if answer.status_code == 409:
        try:
            return answer.json().get("type", "").endswith(("concurrency-conflict", ":conflict"))
        except ValueError:
            return False
    return False


def _problem(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:300]
    return str(body.get("detail") or body.get("title") or body)[:500]


def in_parallel(work: Callable[[T], R], items: Iterable[T], workers: int = 4) -> list[R]:
    """``work`` over ``items`` on a few threads (the services are separate processes: requests overlap)."""
    chosen = list(items)
    if workers <= 1 or len(chosen) <= 1:
        return [work(item) for item in chosen]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="demo") as pool:
        return list(pool.map(work, chosen))


def wait_until(check: Callable[[], T | None], what: str, timeout: float = 120.0, every: float = 0.3) -> T:
    """Poll ``check`` until it returns something truthy; its value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
