"""An offline bundle carries the stack to a host without network: checked, loaded, started.

The "host" is a second Docker engine with an empty data root (it never built or pulled anything). Every
operator command on it runs in a network namespace of its own with no interface up (``unshare --net``): the
``juwei`` command is installed there from the bundle's wheels, loads the bundle and starts the stack with no
network at all. It reaches the engine through its unix socket; the engine has no registry to reach either.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from juwei.images import VERSION
from tests.conftest import ROOT, TEST_HOME
from tests.stack.conftest import CONSOLE_PORT, HTTP_PORTS, DockerEngine, juwei, record

# Minutes, not the suite's default of five; the test alone: its fixtures (images built, stacks started) run
# under their own commands' limits, and a slow image build once failed the first test that needed it.
pytestmark = pytest.mark.timeout(1800, func_only=True)


@pytest.fixture
def offline_engine() -> Iterator[DockerEngine]:
    engine = DockerEngine(TEST_HOME / "docker-offline")
    if engine.answers():
        engine.docker("rm", "--force", "--volumes", *engine.docker("ps", "-aq").stdout.split(), check=False)
    shutil.rmtree(engine.home / "root", ignore_errors=True)  # a host that never had an image
    engine.start()
    yield engine
    engine.stop()
    shutil.rmtree(engine.home / "root", ignore_errors=True)


def offline(engine: DockerEngine, command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A command on the offline host: no network interface at all, the engine through its socket."""
    environment = {"PATH": os.environ["PATH"], "HOME": str(cwd), "LANG": "C.UTF-8", **engine.environment, **env}
    return subprocess.run(["unshare", "--net", *command], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=1800)  # fmt: skip


def _altered(bundle: Path, target: Path) -> Path:
    """A copy with one byte of the images changed (as a bad disk or a tampered copy would)."""
    shutil.copy2(bundle, target)
    with tarfile.open(bundle) as archive:
        member = archive.getmember("images.tar.gz")
    with target.open("r+b") as copy:
        copy.seek(member.offset_data + member.size // 2)
        byte = copy.read(1)
        copy.seek(-1, os.SEEK_CUR)
        copy.write(bytes([byte[0] ^ 0xFF]))
    return target


def _truncated(bundle: Path, target: Path) -> Path:
    with bundle.open("rb") as source, target.open("wb") as copy:
        copy.write(source.read(bundle.stat().st_size * 2 // 3))
    return target


def test_a_bundle_is_checked_loaded_and_started_on_a_host_without_network(
    docker_engine: DockerEngine, stack_images: dict[str, Any], offline_engine: DockerEngine, tmp_path: Path
) -> None:
    bundle = tmp_path / f"juwei-bundle-{VERSION}.tar"
    started = time.monotonic()
    made = juwei(docker_engine, "bundle", "create", "--output", str(bundle))
    assert made.returncode == 0, made.stderr[-3000:]
    record("bundle create seconds", round(time.monotonic() - started, 1))
    record("bundle MiB", round(bundle.stat().st_size / 2**20))
    digest = (tmp_path / f"{bundle.name}.sha256").read_text().split()[0]
    assert len(digest) == 64

    # The operator's host: extract the wheels, install the juwei command from them, without network.
    host = tmp_path / "host"
    host.mkdir()
    with tarfile.open(bundle) as archive:
        archive.extractall(host, members=[m for m in archive.getmembers() if m.name.startswith("wheels/")],
                           filter="data")  # fmt: skip
    venv = host / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    installed = offline(offline_engine, [str(venv / "bin" / "pip"), "install", "--quiet", "--no-index",
                                         "--find-links", str(host / "wheels"), "juwei[deploy]", "juwei-client"],
                        host)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    # juwei demo reads the feeds through juwei-client: the bundle carries it too.
    client = offline(offline_engine, [str(venv / "bin" / "python"), "-c", "import juwei_client, demo.api"], host)
    assert client.returncode == 0, client.stderr[-2000:]
    record("juwei command installed from the bundle's wheels seconds", round(time.monotonic() - started, 1))
    command = [str(venv / "bin" / "juwei")]
    deploy = host / "deploy"
    deploy.mkdir()
    settings = {"JUWEI_DEPLOY_DIR": str(deploy), "JUWEI_DATA_DIR": str(host / "data")}

    # A damaged or altered bundle is refused, naming why, and nothing reaches the engine.
    for bad, said in (
        (_truncated(bundle, tmp_path / "truncated.tar"), "truncated"),
        (_altered(bundle, tmp_path / "altered.tar"), "does not match its sha256"),
    ):
        refused = offline(offline_engine, [*command, "bundle", "load", str(bad)], host, **settings)
        assert refused.returncode == 1, refused.stderr
        assert said in refused.stderr and "nothing was loaded" in refused.stderr
        assert offline_engine.docker("image", "ls", "--quiet").stdout.split() == []
        assert not (deploy / "compose.yaml").exists()

    started = time.monotonic()
    loaded = offline(offline_engine, [*command, "bundle", "load", str(bundle)], host, **settings)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    record("bundle load seconds", round(time.monotonic() - started, 1))
    manifest = json.loads((deploy / "bundle-manifest.json").read_text())
    names = {image["name"] for image in manifest["images"]}
    present = set(offline_engine.docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split())
    assert names <= present
    assert (deploy / "compose.yaml").read_text() == (ROOT / "deploy" / "compose.yaml").read_text()

    made_env = offline(offline_engine, [*command, "init"], host, **settings)
    assert made_env.returncode == 0, made_env.stderr
    with (deploy / ".env").open("a") as env:
        env.writelines(f"JUWEI_{name.upper()}_HTTP_PORT={port}\n" for name, port in HTTP_PORTS.items())
        env.write(f"JUWEI_CONSOLE_HTTP_PORT={CONSOLE_PORT}\n")
    lines = (deploy / ".env").read_text().splitlines()
    # The appended ports win over the template's: keep one line per name, the last.
    kept: dict[str, str] = {}
    for line in lines:
        kept[line.partition("=")[0] if "=" in line and not line.startswith("#") else f"#{len(kept)}"] = line
    (deploy / ".env").write_text("\n".join(kept.values()) + "\n")
    (deploy / ".env").chmod(0o600)

    started = time.monotonic()
    up = offline(offline_engine, [*command, "up"], host, **settings)
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
    record("up --wait seconds on the offline host (from a loaded bundle)", round(time.monotonic() - started, 1))
    key = next(line.split("=", 1)[1] for line in kept.values() if line.startswith("JUWEI_BOOTSTRAP_KEY="))
    for service, port in HTTP_PORTS.items():
        answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30)
        assert answer.status_code == 200, (service, answer.text)
    # The console's pages load nothing from the internet: everything it shows came with the bundle.
    signin = httpx.get(f"http://127.0.0.1:{CONSOLE_PORT}/signin", timeout=30)
    assert signin.status_code == 200 and "https://" not in signin.text, signin.text[:500]
    feed = httpx.get(f"http://127.0.0.1:{HTTP_PORTS['residents']}/events", headers={"X-API-Key": key}, timeout=30)
    assert feed.status_code == 200 and feed.json()["events"] == []
    down = offline(offline_engine, [*command, "down", "--volumes"], host, **settings)
    assert down.returncode == 0, down.stderr
