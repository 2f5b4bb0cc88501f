"""What the benchmark scripts share: the payload, filling a store, local servers, machine facts, output.

Not a test helper and not part of the kernel: scripts in bench/ import it as ``benchlib`` (their own
directory is on ``sys.path`` when run as ``python bench/<script>.py``).
"""

from __future__ import annotations

import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError
from sqlalchemy import text

from juwei.broker import KAFKA_VERSION, LocalBroker, bootstrap_from_env
from juwei.database import Database
from juwei.events import DomainEvent, EventRegistry
from juwei.local_postgres import LocalPostgres
from juwei.migrate import upgrade
from juwei.store import EventStore

ROOT = Path(__file__).resolve().parents[1]
BENCH_HOME = ROOT / ".local" / "bench"
KAFKA_HOME = BENCH_HOME / "kafka"
KAFKA_PORT, KAFKA_CONTROLLER_PORT = 29092, 29093
POSTGRES_HOME = BENCH_HOME / "postgres"
POSTGRES_PORT = 25432
SOURCE = "/juwei/bench/supplies"
COMPOUND = "c-bench"
BUILDINGS = 40

registry = EventRegistry()


@registry.register
class SupplyDelivered(DomainEvent):
    """A volunteer brought a household its share of a delivery: small, and typical of the lockdown domain."""

    event_type = "juwei.bench.SupplyDelivered"
    version = 1
    building: str
    household: str
    kind: str
    items: int
    volunteer: str
    note: str = ""


_KINDS = ("vegetables", "rice", "eggs", "milk", "medicine", "masks", "meat", "bread")
_NOTES = ("", "", "", "left at the door", "call before delivery", "second floor, no lift", "elderly resident")


class Households:
    """Streams ``household-<building>-<n>`` with their current versions, and realistic events for them."""

    def __init__(self, count: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.streams = [f"household-b{(i % BUILDINGS) + 1:02d}-{i // BUILDINGS + 1:03d}" for i in range(count)]
        self.versions = dict.fromkeys(self.streams, 0)
        self._next = 0

    def next_stream(self) -> str:
        stream = self.streams[self._next % len(self.streams)]
        self._next += 1
        return stream

    def event(self, stream: str) -> SupplyDelivered:
        rng = self.rng
        building = stream.split("-")[1]
        return SupplyDelivered(
            building=building,
            household=stream,
            kind=rng.choice(_KINDS),
            items=rng.randint(1, 12),
            volunteer=f"v-{rng.randint(1, 300):04d}",
            note=rng.choice(_NOTES),
        )

    def append(self, store: EventStore, session: Any, stream: str, count: int) -> None:
        """Append ``count`` events to ``stream`` at the version we know it has (optimistic check on)."""
        events = [self.event(stream) for _ in range(count)]
        store.append(session, stream, events, expected_version=self.versions[stream], compound=COMPOUND)
        self.versions[stream] += count


def new_store() -> EventStore:
    return EventStore(SOURCE, registry)


def fresh_sqlite(path: Path) -> str:
    """A migrated, empty SQLite database file at ``path`` (WAL, as ``juwei.database`` configures it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def open_database(url: str) -> Database:
    database = Database(url)
    upgrade(database)
    return database


def fill(
    database: Database,
    store: EventStore,
    total: int,
    per_transaction: int = 500,
    per_append: int = 5,
    households: Households | None = None,
) -> float:
    """Append ``total`` events through ``EventStore.append`` in transactions of ``per_transaction``; seconds.

    Pass the same ``households`` to grow one log in steps (their stream versions carry over).
    """
    households = households or Households(max(1, total // 50))
    started = time.perf_counter()
    done = 0
    while done < total:
        in_txn = min(per_transaction, total - done)
        with database.unit_of_work() as session:
            left = in_txn
            while left:
                count = min(per_append, left)
                households.append(store, session, households.next_stream(), count)
                left -= count
        done += in_txn
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------- servers


@contextmanager
def kafka_bootstrap(log: Any = print) -> Iterator[str]:
    """JUWEI_KAFKA_BOOTSTRAP if set, else the bench broker (started here and stopped again if it was not up)."""
    external = bootstrap_from_env()
    if external:
        log(f"kafka: using JUWEI_KAFKA_BOOTSTRAP={external}")
        yield external
        return
    broker = LocalBroker(KAFKA_HOME, port=KAFKA_PORT, controller_port=KAFKA_CONTROLLER_PORT)
    was_running = broker.is_running()
    if was_running:
        log(f"kafka: reusing the running bench broker on {broker.bootstrap}")
    else:
        log(f"kafka: starting a local broker on {broker.bootstrap} (home {broker.home})")
        started = time.perf_counter()
        broker.start()
        log(f"kafka: up after {time.perf_counter() - started:.1f} s")
    try:
        yield broker.bootstrap
    finally:
        if not was_running:
            log("kafka: stopping the broker this run started")
            broker.stop()


@contextmanager
def local_postgres(log: Any = print) -> Iterator[LocalPostgres]:
    """The bench PostgreSQL (real fsync: not fast mode), started here and stopped again if it was not up."""
    server = LocalPostgres(POSTGRES_HOME, port=POSTGRES_PORT)
    was_running = server.is_running()
    if was_running:
        log(f"postgres: reusing the running bench server on port {server.port}")
    else:
        log(f"postgres: starting a local server on port {server.port} (home {server.home})")
        server.start()
    try:
        yield server
    finally:
        if not was_running:
            log("postgres: stopping the server this run started")
            server.stop()


def postgres_settings(database: Database) -> dict[str, str]:
    """The settings that decide what a commit costs (a reused server may have been started in fast mode)."""
    names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
    with database.engine.connect() as conn:
        return {name: str(conn.execute(text(f"SHOW {name}")).scalar()) for name in names}


def create_topics(bootstrap: str, names: Sequence[str], partitions: int = 6) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="juwei-bench", request_timeout_ms=30_000)
    try:
        spec = {name: {"num_partitions": partitions, "replication_factor": 1} for name in names}
        result = admin.create_topics(spec, timeout_ms=30_000, raise_errors=False)
        errors = [t for t in result["topics"] if t["error_code"] not in (0, TopicAlreadyExistsError.errno)]
        if errors:
            raise RuntimeError(f"create_topics failed: {errors}")
        admin.wait_for_topics(list(names), timeout_ms=30_000)
    finally:
        admin.close()


def delete_topics(bootstrap: str, names: Sequence[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="juwei-bench", request_timeout_ms=30_000)
    try:
        admin.delete_topics(list(names), timeout_ms=30_000, raise_errors=False)
    finally:
        admin.close()


def topic_size(bootstrap: str, topic: str) -> int:
    """Records in a topic (sum of end offsets; the bench topics are never compacted or truncated)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="juwei-bench", enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


# --------------------------------------------------------------------------------------------- facts


def machine() -> dict[str, Any]:
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    java = ""
    if shutil.which("java"):
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
        java = (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else ""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "kafka": KAFKA_VERSION,
        "java": java,
        "load": f"{os.getloadavg()[0]:.2f}",
    }


@dataclass
class Runs:
    """Repeated measurements of one configuration: events and seconds per run."""

    label: str
    events: list[int]
    seconds: list[float]
    # CPU seconds of this process (every thread) per run, where a script measures them.
    cpu_seconds: list[float] = field(default_factory=list)

    @property
    def rates(self) -> list[float]:
        return [e / s for e, s in zip(self.events, self.seconds, strict=True)]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def cpu_rates(self) -> list[float]:
        return [e / s for e, s in zip(self.events, self.cpu_seconds, strict=True)]

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_rates) if self.cpu_seconds else float("nan")

    def as_json(self) -> dict[str, Any]:
        runs = [{"events": e, "seconds": round(s, 4)} for e, s in zip(self.events, self.seconds, strict=True)]
        for run, cpu in zip(runs, self.cpu_seconds, strict=False):
            run["cpu_seconds"] = round(cpu, 4)
        body: dict[str, Any] = {"label": self.label, "median_events_per_s": round(self.median, 1), "runs": runs}
        if self.cpu_seconds:
            body["median_events_per_cpu_s"] = round(self.cpu_median, 1)
        return body


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"
