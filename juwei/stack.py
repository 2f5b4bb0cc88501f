"""The compose stack (``deploy/compose.yaml``) driven through python-on-whales: up, down, ps, logs.

Every call goes through one ``DockerClient`` configured with the compose file, the env file(s) and the
profiles, so what `juwei up` runs is exactly ``docker compose --file … --profile … --env-file … up``.

The deploy folder holds compose.yaml, .env.example and the operator's .env: ``JUWEI_DEPLOY_DIR``, else the
source tree's ``deploy/``, else (Juwei installed from wheels, e.g. out of an offline bundle) the current
folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where the engine is called: every `juwei` process (serve too) would pay ~0.3 s CPU
    from python_on_whales import Container as DockerContainer
    from python_on_whales import DockerClient

from juwei import envfile
from juwei.registration import suite

SOURCE_DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy"
COMPOSE_FILE = SOURCE_DEPLOY_DIR / "compose.yaml"
ENV_FILE = SOURCE_DEPLOY_DIR / ".env"
DEFAULT_PROFILES = ("single",)
# The brokers' listener for clients outside the compose network (published per broker).
KAFKA_EXTERNAL_PORT = 9094
KAFKA_SERVICES = ("kafka", "kafka-1", "kafka-2", "kafka-3")
SERVICE_LABEL = "com.docker.compose.service"


class StackError(RuntimeError):
    """The compose stack could not be driven (no docker CLI, no env file, a container that is not healthy)."""

    def __init__(self, message: str, containers: Sequence[Container] = ()) -> None:
        super().__init__(message)
        self.containers = list(containers)


@dataclass(frozen=True)
class Container:
    """One container of the stack as `docker container inspect` describes it."""

    service: str
    name: str
    state: str
    health: str | None = None
    exit_code: int | None = None
    # restart policy "no": a job that runs once (topic creation), done when it exited 0
    one_shot: bool = False
    # container port ("8001/tcp") → published (host address, host port) pairs
    ports: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    # What the last failed health check printed: why a container is not healthy, without `docker inspect`.
    last_check: str | None = None

    @property
    def ok(self) -> bool:
        if self.one_shot and self.state == "exited":
            return self.exit_code == 0
        return self.state == "running" and self.health in (None, "healthy")

    def published(self, port: int, protocol: str = "tcp") -> tuple[str, int] | None:
        bindings = self.ports.get(f"{port}/{protocol}") or []
        if not bindings:
            return None
        host, host_port = bindings[0]
        # Bound to every interface: this host answers on loopback too.
        return ("127.0.0.1" if host in ("", "0.0.0.0", "::") else host), host_port

    def as_json(self) -> dict[str, object]:
        return {
            "service": self.service,
            "name": self.name,
            "state": self.state,
            "health": self.health,
            "exit_code": self.exit_code,
            "one_shot": self.one_shot,
            "ports": {port: [f"{host}:{number}" for host, number in pairs] for port, pairs in self.ports.items()},
        }


def deploy_dir() -> Path:
    """Where compose.yaml, .env.example and the operator's .env are (see the module's docstring)."""
    explicit = os.environ.get("JUWEI_DEPLOY_DIR")
    if explicit:
        return Path(explicit).resolve()
    if (SOURCE_DEPLOY_DIR / "compose.yaml").is_file():
        return SOURCE_DEPLOY_DIR
    return Path.cwd()


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose env file (comments and blank lines skipped, optional quotes removed)."""
    return envfile.read(path)


class Stack:
    """The Juwei compose project: one python-on-whales client per set of profiles."""

    def __init__(
        self,
        compose_files: Sequence[Path] | None = None,
        env_files: Sequence[Path] | None = None,
        profiles: Sequence[str] | None = None,
        docker_config: Path | None = None,
        client_call: Sequence[str] | None = None,
    ) -> None:
        # More than one: compose merges them in order (an operator's compose.override.yaml after ours).
        self.compose_files = [Path(p).resolve() for p in (compose_files or [deploy_dir() / "compose.yaml"])]
        self.env_files = [Path(p).resolve() for p in (env_files or [deploy_dir() / ".env"])]
        for path in self.env_files:
            if not path.is_file():
                raise StackError(f"{path} does not exist: write it with `juwei init` (from .env.example)")
        self.profiles = list(profiles) if profiles is not None else self._profiles_from_env_files()
        self.docker_config = docker_config
        self.client_call = list(client_call or ["docker"])
        self.docker = self.client(self.profiles)

    def _profiles_from_env_files(self) -> list[str]:
        # COMPOSE_PROFILES present but empty is a choice (an outside Kafka), not a missing value.
        chosen: str | None = None
        for path in self.env_files:
            chosen = read_env_file(path).get("COMPOSE_PROFILES", chosen)
        if chosen is None:
            return list(DEFAULT_PROFILES)
        return [name.strip() for name in chosen.split(",") if name.strip()]

    def client(self, profiles: Sequence[str]) -> DockerClient:
        from python_on_whales import DockerClient

        return DockerClient(
            config=self.docker_config,
            client_call=self.client_call,
            compose_files=self.compose_files,
            compose_env_files=self.env_files,
            compose_profiles=list(profiles),
        )

    # ------------------------------------------------------------ commands

    def up(self, wait: bool = True, wait_timeout: int = 600, services: Sequence[str] = ()) -> list[Container]:
        """Start (and by default wait until every container is healthy; one-shot jobs: finished)."""
        with _docker_failures(self._containers_or_none):
            self.docker.compose.up(
                list(services) or None, detach=True, wait=wait, wait_timeout=wait_timeout if wait else None
            )
        return self.ps()

    def admin(self, arguments: Sequence[str]) -> str:
        """Run ``juwei <arguments>`` once in the ``admin`` tool container (it reaches every database); its output."""
        with _docker_failures():
            # On a terminal the command may ask (a password, twice): attach it; else capture what it prints.
            output = self.client([*self.profiles, "tools"]).compose.run(
                "admin", list(arguments), remove=True, tty=sys.stdin.isatty(), detach=False
            )
        return str(output or "")

    def images(self) -> list[str]:
        """The images the compose file runs under the chosen profiles (after the env file's interpolation)."""
        with _docker_failures():
            config = self.docker.compose.config(return_json=True)
        return sorted({service["image"] for service in config.get("services", {}).values() if service.get("image")})

    def missing_images(self) -> list[str]:
        """Images the stack needs that this engine doesn't have (nothing is pulled: `pull_policy: never`)."""
        return [name for name in self.images() if not self.docker.image.exists(name)]

    def down(self, volumes: bool = False, timeout: int = 30) -> None:
        """Stop and remove the containers of every profile; the named volumes stay unless ``volumes``."""
        with _docker_failures():
            # Every profile: containers started under another profile than today's are stopped too.
            self.client(["*"]).compose.down(remove_orphans=True, volumes=volumes, timeout=timeout)

    def ps(self) -> list[Container]:
        with _docker_failures():
            found = self.docker.compose.ps(all=True)
            return sorted((_describe(c) for c in found), key=lambda c: (c.service, c.name))

    def logs(self, services: Sequence[str] = (), follow: bool = False, tail: str | None = "200") -> Iterator[str]:
        with _docker_failures():
            for _source, line in self.docker.compose.logs(
                services=list(services), follow=follow, tail=tail, stream=True, timestamps=True
            ):
                yield line.decode(errors="replace").rstrip("\n")

    # ------------------------------------------------------------ where things answer

    @staticmethod
    def endpoints(containers: Sequence[Container]) -> dict[str, str]:
        """Base URL of each Juwei service that publishes its port, e.g. ``residents → http://127.0.0.1:8001``."""
        urls: dict[str, str] = {}
        for container in containers:
            member = suite().member(container.service)
            port = member.port if member is not None else None
            published = container.published(port) if port else None
            if published and container.service not in urls:
                urls[container.service] = f"http://{published[0]}:{published[1]}"
        return urls

    @staticmethod
    def kafka_bootstrap(containers: Sequence[Container]) -> str | None:
        """The brokers' published external listeners, for Kafka clients on this host."""
        found = [
            f"{published[0]}:{published[1]}"
            for container in containers
            if container.service in KAFKA_SERVICES
            and (published := container.published(KAFKA_EXTERNAL_PORT)) is not None
        ]
        return ",".join(found) or None

    def _containers_or_none(self) -> list[Container]:
        try:
            return self.ps()
        except StackError:
            return []


def _describe(container: DockerContainer) -> Container:
    # Read each part once: python-on-whales caches one `docker container inspect` for a few milliseconds.
    state = container.state
    config = container.config
    host = container.host_config
    network = container.network_settings
    labels = (config.labels if config else None) or {}
    restart = (host.restart_policy.name if host and host.restart_policy else None) or "no"
    ports: dict[str, list[tuple[str, int]]] = {}
    for port, bindings in ((network.ports if network else None) or {}).items():
        ports[port] = [(b.get("HostIp", ""), int(b["HostPort"])) for b in bindings or [] if b.get("HostPort")]
    checks = (state.health.log if state and state.health else None) or []
    failed = [check for check in checks if check.exit_code not in (0, None)]
    last_check = (" ".join((failed[-1].output or "").split())[-300:] or None) if failed else None
    return Container(
        service=labels.get(SERVICE_LABEL, "?"),
        name=container.name,
        state=(state.status if state else None) or "unknown",
        health=state.health.status if state and state.health else None,
        exit_code=state.exit_code if state else None,
        one_shot=restart == "no",
        ports=ports,
        last_check=last_check,
    )


@contextmanager
def _docker_failures(containers: Callable[[], Sequence[Container]] = list) -> Iterator[None]:
    """A failed docker call as a StackError naming why (and, when asked, the containers as they are then)."""
    from python_on_whales import ClientNotFoundError, DockerException

    try:
        yield
    except ClientNotFoundError as exc:
        raise StackError("the docker CLI (with the compose plugin) is not on PATH", containers()) from exc
    except DockerException as exc:
        detail = (exc.stderr or "").strip().splitlines()
        reason = detail[-1] if detail else f"docker exited with code {exc.return_code}"
        raise StackError(reason, containers()) from exc
