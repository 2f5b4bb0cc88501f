"""The suite as processes, for the end-to-end benchmarks: services, sinks, keys, and the waits between stages.

* the bench broker (``benchlib.kafka_bootstrap``) with the four services' topics made fresh for every run
  (deleted with their consumer groups, then created again), so nothing of an earlier run is consumed;
* services served by ``python -m juwei.cli serve <service> --port <free port>`` with their SQLite files
  in a fresh folder under ``.local/bench/suite/``; their databases are migrated and API keys issued
  before they start (the same key in every service, as an operator hands one out);
* the webhook sink: ``bench/sink.py`` in a process of its own, serving ``demo.sinks.Platforms`` (the
  platform imitations of the notify tests and the demo), one signed webhook receiver per building
  group; it writes every accepted message, with the time it arrived, to a JSON-lines file;
* residents' events published to ``juwei.residents`` by a producer configured like the residents relay;
* memory: ``RssSampler`` reads ``VmRSS`` of the processes from ``/proc`` every half second.

Nothing here asserts timings; the scripts print what they measure.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib
import httpx
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import CoordinatorLoadInProgressError

from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.events import Envelope
from juwei.relay import producer_config
from juwei.service import Runtime, load_definition
from juwei.settings import Settings

ROOT = benchlib.ROOT
SUITE_HOME = benchlib.BENCH_HOME / "suite"
SERVICES = ("residents", "supplies", "testing", "notify")
TOPICS = [f"juwei.{name}" for name in SERVICES] + [f"juwei.{name}.dlq" for name in SERVICES]
GROUPS = [f"juwei-{name}" for name in SERVICES]
OPERATOR = "district-operator"
CLIENT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------------ kafka


def fresh_topics(bootstrap: str, partitions: int = 6, timeout: float = 60) -> None:
    """Delete the suite's topics and consumer groups (whatever an earlier run left), then create the topics."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="juwei-bench", request_timeout_ms=30_000)
    try:
        existing = set(admin.list_topics())
        doomed = [t for t in TOPICS if t in existing]
        if doomed:
            admin.delete_topics(doomed, timeout_ms=30_000, raise_errors=False)
        groups = {_group_id(g) for g in _groups(admin, time.monotonic() + timeout)}
        if groups & set(GROUPS):
            admin.delete_groups(sorted(groups & set(GROUPS)))
        deadline = time.monotonic() + timeout
        while set(admin.list_topics()) & set(doomed):
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics {doomed} were not deleted in {timeout} s")
            time.sleep(0.2)
    finally:
        admin.close()
    while True:  # a topic just deleted may be refused for a moment ("marked for deletion")
        try:
            benchlib.create_topics(bootstrap, TOPICS, partitions=partitions)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _groups(admin: KafkaAdminClient, deadline: float) -> list[Any]:
    """The broker's consumer groups; a broker just started answers "coordinator loading" for a moment."""
    while True:
        try:
            return list(admin.list_groups())
        except CoordinatorLoadInProgressError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="juwei-bench", enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of ``topic`` the consumer group has not committed yet (its whole topic if it committed nothing)."""
    ends = end_offsets(bootstrap, topic)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="juwei-bench", request_timeout_ms=30_000)
    try:
        committed = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    done = {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == topic}
    return sum(max(0, end - max(0, done.get(p, 0))) for p, end in ends.items())


def _group_id(group: Any) -> str:
    """kafka-python gives groups as dicts (``group_id``) or, in older releases, as (id, protocol) tuples."""
    if isinstance(group, dict):
        return str(group.get("group_id") or group.get("group") or "")
    return str(group[0])


class Publisher:
    """Residents' events onto ``juwei.residents`` as its relay would send them (binary CloudEvents, same settings)."""

    def __init__(self, bootstrap: str, topic: str = "juwei.residents") -> None:
        self.topic = topic
        self.producer = KafkaProducer(**producer_config(bootstrap, client_id="juwei-bench-residents"))
        self.sent = 0

    def send(self, envelopes: Iterable[Envelope]) -> int:
        count = 0
        for envelope in envelopes:
            key, value, headers = envelope.to_kafka()
            self.producer.send(self.topic, key=key, value=value, headers=headers)
            count += 1
        self.sent += count
        return count

    def flush(self) -> None:
        self.producer.flush(timeout=120)

    def close(self) -> None:
        self.producer.close(timeout=30)


# ---------------------------------------------------------------------------------------------- processes


def _rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


@dataclass
class Process:
    """A child process the suite started (a service or the sink), with its log file.

    Under py-spy (``profile_out`` set) ``popen`` is py-spy and the service is its child: ``pid`` names the
    service, and stopping ends the service first so that py-spy writes its samples and exits.
    """

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    profile_out: Path | None = None

    @property
    def pid(self) -> int:
        if self.profile_out is None:
            return self.popen.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                children = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children").read_text().split()
            except OSError:
                children = []
            if children:
                return int(children[0])
            time.sleep(0.05)
        raise RuntimeError(f"py-spy started no {self.name}")

    def rss_mib(self) -> float:
        return _rss_kib(self.pid) / 1024

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_mib(self) -> float:
        """The kernel's high-water mark of the resident set (``VmHWM``)."""
        return _rss_kib(self.pid, "VmHWM") / 1024

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            if self.profile_out is not None:
                os.kill(self.pid, signal.SIGTERM)  # the service; py-spy then writes its file and exits
            else:
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(name: str, args: Sequence[str], env: dict[str, str], folder: Path, profile: bool = False) -> Process:
    """Start ``args`` with its output in ``<folder>/<name>.log``; under py-spy when ``profile``."""
    log_path = folder / f"{name}.log"
    profile_out = folder / f"{name}.pyspy.txt" if profile else None
    command = list(args)
    if profile_out is not None:
        py_spy = Path(sys.executable).parent / "py-spy"
        command = [str(py_spy), "record", "--nonblocking", "--rate", "100", "-f", "raw", "-o", str(profile_out), "--"]
        command += list(args)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    return Process(name, popen, log_path, profile_out)


def profile_summary(path: Path, top: int = 22) -> str:
    """py-spy's raw samples of a service as two lists: functions by inclusive and by own share of busy samples.

    Frames every busy sample shares (thread start-up, the server's loop) are left out of the inclusive list.
    """
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    if not total:
        return f"{path}: no samples"
    lines = [f"{total:,} busy samples (100 a second) in {path.name}", "inclusive:"]
    chosen = [(n, f) for f, n in inclusive.items() if n < 0.97 * total]
    for count, frame in sorted(chosen, reverse=True)[:top]:
        lines.append(f"  {count / total:6.1%}  {frame}")
    lines.append("own (self):")
    for frame, count in sorted(own.items(), key=lambda item: -item[1])[: top // 2]:
        lines.append(f"  {count / total:6.1%}  {frame}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``name (path/to/file.py:123)`` → ``name (file.py)`` with the package for libraries, no line number."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{name} ({file})" if file else name


@dataclass
class Service:
    name: str
    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class RssSampler:
    """Samples the resident set of some processes every ``interval`` seconds on a thread of its own."""

    def __init__(self, processes: dict[str, int], interval: float = 0.5) -> None:
        self.processes = dict(processes)
        self.interval = interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.started = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(
                (time.monotonic() - self.started, {n: _rss_kib(pid) / 1024 for n, pid in self.processes.items()})
            )
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def peak(self, name: str) -> float:
        return max((values.get(name, 0.0) for _t, values in self.samples), default=0.0)

    def series(self, name: str, points: int = 12) -> list[tuple[float, float]]:
        """About ``points`` evenly spaced (seconds, MiB) samples of one process, for the report."""
        if not self.samples:
            return []
        step = max(1, len(self.samples) // points)
        chosen = self.samples[::step]
        if chosen[-1] is not self.samples[-1]:
            chosen.append(self.samples[-1])
        return [(round(t, 1), round(values.get(name, 0.0), 1)) for t, values in chosen]


# ------------------------------------------------------------------------------------------------- sink


@dataclass
class Sink:
    """``bench/sink.py``: one signed webhook receiver per token, in its own process."""

    process: Process
    port: int
    secret: str
    out: Path
    host: str = "127.0.0.1"
    _read: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)

    def config(self, token: str) -> dict[str, str]:
        return {"url": f"http://{self.host}:{self.port}/hooks/{token}", "secret": self.secret}

    def poll(self) -> list[dict[str, Any]]:
        """What arrived since the last call (the sink appends one JSON line per accepted message)."""
        try:
            with open(self.out, "rb") as handle:
                handle.seek(self._read)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._read += len(complete)
        new = [json.loads(line) for line in complete.splitlines() if line.strip()]
        self.received.extend(new)
        return new


def start_sink(folder: Path, tokens: Sequence[str], env: dict[str, str], host: str = "127.0.0.1") -> Sink:
    """The sink listening on ``host`` (the compose network's gateway for notify in a container)."""
    secret = "bench-webhook-secret-" + uuid.uuid4().hex[:12]
    out = folder / "sink.jsonl"
    spec = folder / "sink.json"
    spec.write_text(json.dumps({"tokens": list(tokens), "secret": secret, "out": str(out), "host": host}))
    process = spawn("sink", [sys.executable, str(ROOT / "bench" / "sink.py"), str(spec)], env, folder)
    port_file = folder / "sink.port"
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if not process.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the sink did not start:\n{process.log_tail()}")
        time.sleep(0.05)
    return Sink(process, int(port_file.read_text()), secret, out, host)


# ------------------------------------------------------------------------------------------------ suite


@dataclass
class Suite:
    bootstrap: str
    folder: Path
    keys: list[str]
    services: dict[str, Service] = field(default_factory=dict)
    sink: Sink | None = None
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=120, limits=CLIENT_LIMITS))
    _next_key: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def key(self) -> str:
        """The next of the suite's keys, round robin: the services limit requests per key (100/s by default)."""
        with self._lock:
            self._next_key = (self._next_key + 1) % len(self.keys)
            return self.keys[self._next_key]

    def request(self, service: str, method: str, path: str, ok: Sequence[int] = (200, 201), **kwargs: Any) -> Any:
        headers = {"X-API-Key": self.key(), **kwargs.pop("headers", {})}
        for attempt in range(8):
            answer = self.client.request(method, self.services[service].url + path, headers=headers, **kwargs)
            if answer.status_code in ok:
                return answer.json() if answer.content else None
            if answer.status_code in (409, 429, 503) and attempt < 7:  # a concurrent writer, a limit, a busy moment
                time.sleep(float(answer.headers.get("retry-after") or 0.1 * (attempt + 1)))
                continue
            break
        raise RuntimeError(f"{service} {method} {path}: {answer.status_code} {answer.text[:500]}")

    def post(self, service: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request(service, "POST", path, json=body, **kwargs)

    def get(self, service: str, path: str, **kwargs: Any) -> Any:
        return self.request(service, "GET", path, **kwargs)

    def status(self, service: str) -> dict[str, Any]:
        return self.get(service, "/status")

    def relay_backlog(self, service: str) -> int:
        return int(self.status(service)["relay"]["backlog"])

    def database_path(self, service: str) -> Path:
        return self.folder / f"{service}.db"

    def rows(self, service: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a service's table, read beside the running service (its SQLite file, read-only; WAL)."""
        connection = sqlite3.connect(f"file:{self.database_path(service)}?mode=ro", uri=True, timeout=30)
        try:
            return connection.execute(query, params).fetchall()
        finally:
            connection.close()

    def wait(self, what: str, done: Callable[[], bool], timeout: float, every: float = 0.05) -> float:
        """Poll ``done`` until it holds; seconds waited. Raises (with the services' log tails) on timeout."""
        started = time.monotonic()
        while not done():
            if time.monotonic() - started > timeout:
                tails = "\n".join(f"--- {s.name}\n{s.process.log_tail(15)}" for s in self.services.values())
                raise TimeoutError(f"{what}: not done after {timeout} s\n{tails}")
            for service in self.services.values():
                if not service.process.alive():
                    raise RuntimeError(f"{service.name} died:\n{service.process.log_tail()}")
            time.sleep(every)
        return time.monotonic() - started


def service_env(folder: Path, bootstrap: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUWEI_")}
    env.update(
        {
            "JUWEI_DATA_DIR": str(folder),
            "JUWEI_KAFKA_BOOTSTRAP": bootstrap,
            "JUWEI_LOG_LEVEL": "WARNING",
            "JUWEI_HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def prepare(name: str, folder: Path, bootstrap: str, keys: Sequence[str]) -> None:
    """Migrate a service's database and store the suite's keys in it, before the service starts."""
    runtime = Runtime(
        load_definition(name),
        Settings(data_dir=folder, kafka_bootstrap=bootstrap),
        database_url=f"sqlite:///{folder / f'{name}.db'}",
    )
    try:
        runtime.migrate()
        with runtime.database.unit_of_work() as session:
            for number, key in enumerate(keys):
                issue_key(
                    session, OPERATOR, None, label=f"bench operator {number}", key=key, holder=Holder("system", "bench")
                )
    finally:
        runtime.database.dispose()


@contextmanager
def running_suite(
    services: Sequence[str],
    *,
    sink_tokens: Sequence[str] = (),
    env: dict[str, str] | None = None,
    keys: int = 8,
    profile: Sequence[str] = (),
    log: Callable[..., None] = print,
) -> Iterator[Suite]:
    """The broker, fresh topics, the services as processes and the sink; everything stopped again on exit.

    Services named in ``profile`` run under py-spy (``<folder>/<service>.pyspy.txt``, see ``profile_summary``).
    """
    with ExitStack() as stack:
        bootstrap = stack.enter_context(benchlib.kafka_bootstrap(log))
        fresh_topics(bootstrap)
        folder = SUITE_HOME / time.strftime("%Y%m%d-%H%M%S")
        folder.mkdir(parents=True, exist_ok=True)
        made_keys = [f"jw_{uuid.uuid4().hex[:16]}_{uuid.uuid4().hex}" for _ in range(keys)]
        suite = Suite(bootstrap, folder, made_keys)
        stack.callback(suite.client.close)
        environment = service_env(folder, bootstrap, env)
        if sink_tokens:
            suite.sink = start_sink(folder, sink_tokens, environment)
            stack.callback(suite.sink.process.stop)
        for name in services:
            prepare(name, folder, bootstrap, made_keys)
        for name in services:
            port = free_port()
            command = [sys.executable, "-m", "juwei.cli", "serve", name, "--port", str(port)]
            process = spawn(name, command, environment, folder, profile=name in profile)
            suite.services[name] = Service(name, port, process)
            stack.callback(process.stop)
        for service in suite.services.values():
            suite.wait(
                f"{service.name} ready",
                lambda s=service: _ready(suite.client, s.url),
                timeout=120,
                every=0.2,
            )
        log(f"suite: {', '.join(f'{s.name} :{s.port} (pid {s.process.pid})' for s in suite.services.values())}")
        log(f"suite: data and logs in {folder}")
        yield suite


def _ready(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
