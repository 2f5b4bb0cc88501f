"""How far consumer groups are behind their topics, read from Kafka (one admin client, a few requests).

Lag of a topic = Σ over its partitions (end offset − the group's committed offset); a partition the group has
not committed yet counts from the earliest record (the consumers start there: ``auto_offset_reset``). Used by
``juwei status`` for every service's group and by each service for its own readiness and metrics
(``KafkaWatch``: cached, refreshed off the request path, never joined on stop).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Gauge

# Live modes: a worker that died leaves no stale value behind (``juwei serve --workers``, multiprocess metrics).
KAFKA_UP = Gauge(
    "juwei_kafka_up", "1 when this service reached Kafka at its last look", ["service"], multiprocess_mode="livemin"
)
LAG = Gauge(
    "juwei_consumer_lag",
    "Records on a consumed topic the service's consumer group has not committed yet",
    ["group", "topic"],
    multiprocess_mode="livemax",
)


def admin_client(bootstrap: str, extra: Mapping[str, Any], timeout: float, client_id: str) -> Any:
    from kafka.admin import KafkaAdminClient

    from juwei.kafka_clients import made

    timeout_ms = int(timeout * 1000)
    return made(
        KafkaAdminClient,
        bootstrap_servers=bootstrap,
        client_id=client_id,
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
        **extra,
    )


def group_lags(admin: Any, wanted: Mapping[str, Iterable[str] | None]) -> dict[str, dict[str, int | None]]:
    """For each group → its topics (None: those it has committed offsets for): topic → lag (None: no such topic)."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    committed = admin.list_group_offsets({group: None for group in wanted}) if wanted else {}
    topics_of = {
        group: set(topics) if topics is not None else {tp.topic for tp in committed.get(group, {})}
        for group, topics in wanted.items()
    }
    every_topic = sorted(set().union(*topics_of.values())) if topics_of else []
    partitions: dict[str, list[TopicPartition]] = {}
    for described in admin.describe_topics(every_topic) if every_topic else []:
        if described["error_code"] == 0:
            partitions[described["name"]] = [
                TopicPartition(described["name"], p["partition_index"]) for p in described["partitions"]
            ]
    every = [tp for tps in partitions.values() for tp in tps]
    ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in every}) if every else {}
    starts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in every}) if every else {}
    lags: dict[str, dict[str, int | None]] = {}
    for group, topics in topics_of.items():
        offsets = committed.get(group, {})
        lags[group] = {}
        for topic in sorted(topics):
            if topic not in partitions:
                lags[group][topic] = None
                continue
            total = 0
            for tp in partitions[topic]:
                done = offsets.get(tp)
                position = done.offset if done is not None and done.offset >= 0 else starts[tp].offset
                total += max(0, ends[tp].offset - position)
            lags[group][topic] = total
    return lags


@dataclass(frozen=True)
class KafkaState:
    """What a service last saw of Kafka: reachable or not, and its group's lag per topic (empty: unknown)."""

    up: bool | None = None  # None: not looked yet
    error: str = ""
    lag: dict[str, int | None] = field(default_factory=dict)
    checked_at: float | None = None  # time.monotonic() of the look

    def as_json(self) -> dict[str, Any]:
        age = None if self.checked_at is None else round(time.monotonic() - self.checked_at, 1)
        return {"up": self.up, "error": self.error or None, "checked_seconds_ago": age}


class KafkaWatch:
    """One service's view of Kafka and of its consumer group's lag, cached for ``ttl`` seconds.

    A look runs in a daemon thread of its own, started by whoever finds the view stale (``/readyz``, ``/status``,
    ``/metrics``); the caller waits at most ``wait`` seconds for it, so an unreachable broker never holds a probe
    for kafka-python's connect timeout, and ``Runtime.stop`` has no thread to join.
    """

    def __init__(
        self,
        service: str,
        bootstrap: str,
        extra: Mapping[str, Any],
        group: str,
        topics: Iterable[str],
        ttl: float = 5.0,
        wait: float = 0.5,
        timeout: float = 3.0,
    ) -> None:
        self.service = service
        self.bootstrap = bootstrap
        self.extra = dict(extra)
        self.group = group
        self.topics = list(topics)
        self.ttl = ttl
        self.wait = wait
        self.timeout = timeout
        self._state = KafkaState()
        self._lock = threading.Lock()
        self._looking: threading.Event | None = None

    def state(self, wait: float | None = None) -> KafkaState:
        """The last look, or a new one if that is older than ``ttl`` (waited for up to ``wait`` seconds)."""
        with self._lock:
            state = self._state
            stale = state.checked_at is None or time.monotonic() - state.checked_at >= self.ttl
            looking = self._looking
            if stale and looking is None:
                looking = self._looking = threading.Event()
                threading.Thread(
                    target=self._look, args=(looking,), name=f"{self.service}-kafka-look", daemon=True
                ).start()
        if stale:
            looking.wait(self.wait if wait is None else wait)
            with self._lock:
                state = self._state
        return state

    def _look(self, done: threading.Event) -> None:
        try:
            state = self._measure()
            with self._lock:
                self._state = state
            KAFKA_UP.labels(self.service).set(1 if state.up else 0)
            for topic, lag in state.lag.items():
                if lag is not None:
                    LAG.labels(self.group, topic).set(lag)
        finally:
            with self._lock:
                self._looking = None
            done.set()

    def _measure(self) -> KafkaState:
        try:
            admin = admin_client(self.bootstrap, self.extra, self.timeout, f"{self.group}-watch")
        except Exception as exc:  # unreachable: the lag is unknown, which readiness does not hold against us
            return KafkaState(up=False, error=type(exc).__name__, checked_at=time.monotonic())
        try:
            lag = group_lags(admin, {self.group: self.topics})[self.group] if self.topics else {}
            return KafkaState(up=True, lag=lag, checked_at=time.monotonic())
        except Exception as exc:
            return KafkaState(up=False, error=type(exc).__name__, checked_at=time.monotonic())
        finally:
            admin.close()
