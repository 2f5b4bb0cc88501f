"""A single-node Apache Kafka (KRaft) broker run from jars that Maven fetches, for development and tests.

Debian ships no Kafka and Docker is not available everywhere, so the broker is plain `java` on the
classpath that `deploy/kafka/pom.xml` resolves. Everything lives under one *home* directory:

    home/libs/            jars (+ a marker naming the Kafka version and pom digest they came from)
    home/server.properties rendered from deploy/kafka/server.properties.template on every start
    home/cluster.id       the KRaft cluster id, generated once
    home/data/            KRaft metadata log and topic data
    home/broker.log       stdout/stderr of the broker (appended across restarts)
    home/broker.pid       pid of the running broker
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from juwei.kafka_clients import made

KAFKA_VERSION = "4.1.1"
DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy" / "kafka"
ENV_BOOTSTRAP = "JUWEI_KAFKA_BOOTSTRAP"

# Small heap and G1 like upstream's kafka-server-start.sh, but sized for a laptop / CI test broker.
BROKER_JVM_OPTS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    # A broker that ran out of heap is broken; dying makes the failure visible to start()/tests.
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
# StorageTool runs for a second: C1-only JIT and a tiny heap make it start noticeably faster.
TOOL_JVM_OPTS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Djava.awt.headless=true")

LOG_TAIL_LINES = 60
# A cold ~/.m2 downloads ~65 MB; a stalled mirror should fail loudly rather than hang a test run.
FETCH_TIMEOUT = 1200
_CLUSTER_ID = re.compile(r"[A-Za-z0-9_-]{22}")
# Maven's jansi emits colour codes even with -B/-Dstyle.color=never when output is not a TTY.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BrokerError(RuntimeError):
    """The local broker could not be fetched, formatted, started or administered."""


def bootstrap_from_env() -> str | None:
    """Bootstrap servers of an externally managed Kafka, if JUWEI_KAFKA_BOOTSTRAP is set (and non-empty)."""
    return os.environ.get(ENV_BOOTSTRAP) or None


class LocalBroker:
    """One KRaft broker+controller process on 127.0.0.1, owned by a home directory."""

    def __init__(self, home: Path, port: int = 9092, controller_port: int = 9093, partitions: int = 6) -> None:
        if port == controller_port:
            raise ValueError("port and controller_port must differ")
        self.home = Path(home).resolve()
        self.port = port
        self.controller_port = controller_port
        self.partitions = partitions
        self.libs_dir = self.home / "libs"
        self.data_dir = self.home / "data"
        self.config_path = self.home / "server.properties"
        self.cluster_id_path = self.home / "cluster.id"
        self.log_path = self.home / "broker.log"
        self.pid_path = self.home / "broker.pid"
        # Kept only to reap our own child: a SIGKILLed child stays a zombie (and looks alive) until waited.
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ fetch

    def _marker_text(self) -> str:
        # The pom digest is part of the marker so that editing the pom (e.g. a new binding) re-fetches.
        digest = hashlib.sha256((DEPLOY_DIR / "pom.xml").read_bytes()).hexdigest()[:16]
        return f"kafka_2.13 {KAFKA_VERSION} pom-sha256:{digest}\n"

    @property
    def _marker_path(self) -> Path:
        return self.libs_dir / ".juwei-fetched"

    def is_fetched(self) -> bool:
        try:
            return self._marker_path.read_text() == self._marker_text()
        except FileNotFoundError:
            return False

    def fetch(self) -> None:
        """Copy the broker's runtime jars into home/libs with Maven, unless the marker says they are there."""
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock("fetch"):
            if self.is_fetched():
                return
            mvn = shutil.which("mvn")
            if mvn is None:
                raise BrokerError("`mvn` not found on PATH: install Maven (apt-get install -y maven)")
            # Copy into a scratch dir and swap, so an interrupted fetch never leaves a half-filled libs/.
            staging = self.home / "libs.partial"
            shutil.rmtree(staging, ignore_errors=True)
            cmd = [
                mvn, "-B", "-q", "-Dstyle.color=never",
                "-f", str(DEPLOY_DIR / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ]  # fmt: skip
            try:
                result = subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=FETCH_TIMEOUT
                )
            except subprocess.TimeoutExpired as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise BrokerError(f"mvn did not finish within {FETCH_TIMEOUT} s (network?)") from exc
            jars = list(staging.glob("*.jar")) if staging.is_dir() else []
            if result.returncode != 0 or not any(j.name.startswith("kafka_2.13-") for j in jars):
                shutil.rmtree(staging, ignore_errors=True)
                output = _ANSI.sub("", result.stdout + result.stderr).strip()
                raise BrokerError(f"mvn failed (exit {result.returncode}) fetching Kafka jars:\n{output}")
            (staging / self._marker_path.name).write_text(self._marker_text())
            shutil.rmtree(self.libs_dir, ignore_errors=True)
            staging.rename(self.libs_dir)

    # ------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 90) -> None:
        """Fetch, format (once) and spawn the broker, then wait until it answers metadata requests."""
        deadline = time.monotonic() + timeout
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock("start"):
            if self.is_running():
                return
            self.fetch()
            # Whatever the pid file names is dead or not ours (pid reused): a leftover from a crash/kill.
            self.pid_path.unlink(missing_ok=True)
            for port in (self.port, self.controller_port):
                if _port_open(port):
                    raise BrokerError(f"127.0.0.1:{port} is already in use by another process")
            self._render_config()
            self._format_storage()
            self._spawn()
            self._wait_ready(deadline)

    def is_running(self) -> bool:
        pid = self._read_pid()
        return pid is not None and self._alive(pid)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (controlled shutdown), SIGKILL if still alive after `timeout`; removes the pid file."""
        pid = self._read_pid()
        if pid is not None and self._alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait_gone(pid, timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, 10)
        self.pid_path.unlink(missing_ok=True)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the broker like a crash would; broker.pid stays behind (start() treats it as stale)."""
        pid = self._read_pid()
        if pid is None or not self._alive(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not self._wait_gone(pid, 10):
            raise BrokerError(f"broker pid {pid} still alive 10 s after SIGKILL")

    # ---------------------------------------------------------------- admin

    def create_topics(self, names: Iterable[str], partitions: int | None = None) -> None:
        """Create topics (existing ones are left alone) and wait until every partition has a leader."""
        unique = list(dict.fromkeys(names))
        if not unique:
            return
        count = partitions if partitions is not None else self.partitions
        spec = {name: {"num_partitions": count, "replication_factor": 1} for name in unique}
        try:
            with self._admin(timeout_ms=30_000) as admin:
                result = admin.create_topics(spec, timeout_ms=30_000, raise_errors=False)
                errors = [
                    f"{t['name']}: error {t['error_code']} {t.get('error_message') or ''}".strip()
                    for t in result["topics"]
                    if t["error_code"] not in (0, TopicAlreadyExistsError.errno)
                ]
                if errors:
                    raise BrokerError("create_topics failed: " + "; ".join(errors))
                admin.wait_for_topics(unique, timeout_ms=30_000)
        except KafkaError as exc:
            raise BrokerError(f"create_topics({unique}) on {self.bootstrap} failed: {exc!r}") from exc

    # ------------------------------------------------------------- internals

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        # Serialises fetch/start across processes sharing a home (e.g. pytest-xdist workers).
        with open(self.home / f".{name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _admin(self, timeout_ms: int) -> KafkaAdminClient:
        return made(
            KafkaAdminClient,
            bootstrap_servers=self.bootstrap,
            client_id="juwei-local-broker",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )

    def _render_config(self) -> None:
        template = (DEPLOY_DIR / "server.properties.template").read_text()
        rendered = template.format(
            port=self.port,
            controller_port=self.controller_port,
            log_dir=self.data_dir,
            partitions=self.partitions,
        )
        self.config_path.write_text(rendered)

    def _java(self, *args: str, jvm_opts: Iterable[str]) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("`java` not found on PATH: Kafka 4 needs Java 17+ (apt-get install default-jre)")
        return [
            java,
            *jvm_opts,
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.yaml'}",
            "-cp",
            # Java expands the trailing `*` itself (no shell involved), in any order: jars do not overlap.
            str(self.libs_dir / "*"),
            *args,
        ]

    def _run_tool(self, *args: str) -> str:
        cmd = self._java("kafka.tools.StorageTool", *args, jvm_opts=TOOL_JVM_OPTS)
        result = subprocess.run(
            cmd, cwd=self.home, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise BrokerError(f"StorageTool {args[0]} failed (exit {result.returncode}):\n{output}")
        return result.stdout

    def _format_storage(self) -> None:
        # meta.properties is written by `format`: its presence means this home was formatted before.
        if (self.data_dir / "meta.properties").exists():
            return
        if not self.cluster_id_path.exists():
            output = self._run_tool("random-uuid")
            # Stdout may also carry log lines: pick the 22-char base64url id Kafka prints.
            ids = [ln.strip() for ln in output.splitlines() if _CLUSTER_ID.fullmatch(ln.strip())]
            if not ids:
                raise BrokerError(f"StorageTool random-uuid printed no cluster id:\n{output}")
            self.cluster_id_path.write_text(ids[-1] + "\n")
        cluster_id = self.cluster_id_path.read_text().strip()
        # --ignore-formatted keeps this safe if a previous run died between formatting and writing files.
        self._run_tool("format", f"--cluster-id={cluster_id}", "-c", str(self.config_path), "--ignore-formatted")

    def _spawn(self) -> None:
        cmd = self._java("kafka.Kafka", str(self.config_path), jvm_opts=BROKER_JVM_OPTS)
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            log.write(f"=== juwei LocalBroker start {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
            log.flush()
            # A new session keeps the broker alive past our process and out of reach of terminal ^C.
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        last_error: Exception | None = None
        while True:
            if self._proc.poll() is not None:
                self.pid_path.unlink(missing_ok=True)
                raise BrokerError(
                    f"broker exited with code {self._proc.returncode} during startup; "
                    f"{self.log_path} ends with:\n{self._log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # A TCP probe first: building an admin client against a closed port only produces log noise.
            if _port_open(self.port):
                try:
                    with self._admin(timeout_ms=int(min(max(remaining, 1), 5) * 1000)) as admin:
                        if admin.describe_cluster()["brokers"]:
                            return
                except (KafkaError, OSError) as exc:
                    last_error = exc
            time.sleep(0.25)
        # Do not leave a half-started broker holding the ports after we reported failure.
        self.stop(timeout=10)
        raise BrokerError(
            f"broker on {self.bootstrap} did not answer metadata in time (last error: {last_error!r}); "
            f"{self.log_path} ends with:\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(getattr(self, "_log_offset", 0))
                lines = fh.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no broker.log)"
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _alive(self, pid: int) -> bool:
        """True if `pid` is a live Kafka process started from this home's config."""
        if self._proc is not None and self._proc.pid == pid:
            # Our own child: waitpid is authoritative and also reaps it (no zombie left behind).
            return self._proc.poll() is None
        if not Path("/proc/self").exists():
            # No procfs (not Linux): fall back to "some process has this pid".
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        proc = Path("/proc") / str(pid)
        try:
            cmdline = (proc / "cmdline").read_bytes()
            # The JVM's main thread turns zombie before its other threads (and sockets) are gone,
            # so the process only counts as dead once no thread of it is left running.
            states = [_task_state(task) for task in (proc / "task").iterdir()]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if all(state in ("Z", "X", None) for state in states):
            return False
        # Guards against pid reuse after a reboot or a long-dead broker: it must be *our* broker.
        return b"kafka.Kafka" in cmdline and str(self.config_path).encode() in cmdline

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True


def _task_state(task: Path) -> str | None:
    """Field 3 of /proc/<pid>/task/<tid>/stat (R, S, D, Z, X, ...), or None if the thread is gone."""
    try:
        return (task / "stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
