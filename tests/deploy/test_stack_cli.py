"""`juwei up | down | ps | logs | status --compose` against a docker CLI replaced by a recorder.

The commands run as real processes (``python -m juwei.cli``) with a ``docker`` first on PATH that appends
its argv to a file and answers from canned JSON, so the tests see exactly the docker commands that
python-on-whales builds for them and how the CLI reads the answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from juwei.stack import COMPOSE_FILE
from tests.conftest import ROOT
from tests.deploy.conftest import write_env_file

RECORDER = """#!{python}
# A stand-in for the docker CLI: records its argv, answers from canned.json beside it.
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
with open(os.path.join(here, "calls.jsonl"), "a") as log:
    log.write(json.dumps(args) + "\\n")
with open(os.path.join(here, "canned.json")) as f:
    canned = json.load(f)
if args[:2] == ["container", "inspect"]:
    print(json.dumps([canned["containers"][ref] for ref in args[2:]]))
    sys.exit(0)
rest = args[1:]
while rest and rest[0].startswith("--"):
    rest = rest[2:]  # --file, --profile, --env-file: each takes a value
answer = canned.get(rest[0] if rest else "", {{}})
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("exit", 0))
"""


def container(
    ident: str,
    service: str,
    ports: dict[str, str] | None = None,
    state: str = "running",
    health: str | None = "healthy",
    exit_code: int = 0,
    restart: str = "unless-stopped",
) -> dict[str, Any]:
    """`docker container inspect` of one compose container, as much of it as the CLI reads."""
    return {
        "Id": ident,
        "Name": f"/juwei-{service}-1",
        "State": {"Status": state, "Running": state == "running", "ExitCode": exit_code}
        | ({"Health": {"Status": health}} if health else {}),
        "Config": {"Labels": {"com.docker.compose.service": service, "com.docker.compose.project": "juwei"}},
        "HostConfig": {"RestartPolicy": {"Name": restart}},
        "NetworkSettings": {
            "Ports": {port: [{"HostIp": "127.0.0.1", "HostPort": host}] for port, host in (ports or {}).items()}
        },
    }


HEALTHY_STACK = [
    container("c-kafka", "kafka", {"9094/tcp": "19094"}),
    container("c-topics", "kafka-topics", state="exited", health=None, restart="no"),
    container("c-postgres", "postgres"),
    container("c-residents", "residents", {"8001/tcp": "18001"}),
    container("c-supplies", "supplies", {"8002/tcp": "18002"}),
]


class Docker:
    """The recorder on PATH, its canned answers and what it was called with."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        (folder / "docker").write_text(RECORDER.format(python=sys.executable))
        (folder / "docker").chmod(0o755)
        self.answer(HEALTHY_STACK)

    def answer(self, containers: list[dict[str, Any]], **verbs: dict[str, Any]) -> None:
        canned: dict[str, Any] = {"containers": {c["Id"]: c for c in containers}}
        canned["ps"] = {"stdout": "".join(f"{c['Id']}\n" for c in containers)}
        canned.update(verbs)
        (self.folder / "canned.json").write_text(json.dumps(canned))
        (self.folder / "calls.jsonl").unlink(missing_ok=True)

    @property
    def calls(self) -> list[list[str]]:
        log = self.folder / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def compose_calls(self) -> list[list[str]]:
        return [call for call in self.calls if call[:1] == ["compose"]]

    def juwei(self, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=path or f"{self.folder}{os.pathsep}{os.environ['PATH']}")
        env.pop("JUWEI_KAFKA_BOOTSTRAP", None)
        return subprocess.run(
            [sys.executable, "-m", "juwei.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )


@pytest.fixture
def docker(tmp_path: Path) -> Docker:
    return Docker(tmp_path / "recorder")


@pytest.fixture
def env(tmp_path: Path) -> Path:
    return write_env_file(tmp_path / ".env")


def prefix(env: Path, *profiles: str) -> list[str]:
    """The options python-on-whales puts before every compose subcommand."""
    options = ["compose", "--file", str(COMPOSE_FILE)]
    for profile in profiles:
        options += ["--profile", profile]
    return [*options, "--env-file", str(env)]


def test_up_builds_starts_waits_for_health_and_prints_where_services_answer(docker: Docker, env: Path) -> None:
    done = docker.juwei("up", "--env-file", str(env))
    assert done.returncode == 0, done.stderr
    compose = docker.compose_calls()
    assert compose[0] == [
        *prefix(env, "single"), "up", "--build", "--detach", "--wait", "--wait-timeout", "600"
    ]  # fmt: skip
    assert compose[1] == [*prefix(env, "single"), "ps", "--quiet", "--all"]
    inspected = {call[2] for call in docker.calls if call[:2] == ["container", "inspect"]}
    assert inspected == {c["Id"] for c in HEALTHY_STACK}
    assert "http://127.0.0.1:18001" in done.stdout and "http://127.0.0.1:18002" in done.stdout
    assert "127.0.0.1:19094" in done.stdout  # Kafka's external listener, for clients on this host


def test_up_takes_profiles_from_the_option_else_from_the_env_file(docker: Docker, tmp_path: Path) -> None:
    cluster_env = write_env_file(tmp_path / "cluster.env", {"COMPOSE_PROFILES": "cluster"})
    assert docker.juwei("up", "--env-file", str(cluster_env), "--no-build", "--timeout", "90").returncode == 0
    assert docker.compose_calls()[0] == [
        *prefix(cluster_env, "cluster"), "up", "--detach", "--wait", "--wait-timeout", "90"
    ]  # fmt: skip
    docker.answer(HEALTHY_STACK)
    assert (
        docker.juwei("up", "--env-file", str(cluster_env), "--profile", "single", "--profile", "tools").returncode == 0
    )
    assert docker.compose_calls()[0][: len(prefix(cluster_env, "single", "tools"))] == prefix(
        cluster_env, "single", "tools"
    )
    # COMPOSE_PROFILES present but empty: no broker of ours (an outside Kafka); no --profile at all.
    outside = write_env_file(tmp_path / "outside.env", {"COMPOSE_PROFILES": ""})
    docker.answer(HEALTHY_STACK)
    assert docker.juwei("up", "--env-file", str(outside)).returncode == 0
    assert "--profile" not in docker.compose_calls()[0]


def test_up_that_does_not_become_healthy_says_which_container_and_fails(docker: Docker, env: Path) -> None:
    broken = [*HEALTHY_STACK[:-1], container("c-supplies", "supplies", {"8002/tcp": "18002"}, health="unhealthy")]
    docker.answer(
        broken, up={"exit": 1, "stderr": "dependency failed to start: container juwei-supplies-1 is unhealthy\n"}
    )
    done = docker.juwei("up", "--env-file", str(env))
    assert done.returncode == 1
    assert "juwei-supplies-1 is unhealthy" in done.stderr and "juwei logs" in done.stderr
    assert "unhealthy" in done.stdout  # the containers table


def test_up_without_an_env_file_tells_the_operator_to_make_one(docker: Docker, tmp_path: Path) -> None:
    done = docker.juwei("up", "--env-file", str(tmp_path / "missing.env"))
    assert done.returncode == 2 and ".env.example" in done.stderr
    assert docker.calls == []


def test_down_keeps_the_volumes_unless_asked(docker: Docker, env: Path) -> None:
    done = docker.juwei("down", "--env-file", str(env))
    assert done.returncode == 0, done.stderr
    # Every profile: containers started under another profile than the env file's are removed too.
    assert docker.compose_calls() == [[*prefix(env, "*"), "down", "--remove-orphans", "--timeout", "30"]]
    assert "volumes kept" in done.stderr
    docker.answer(HEALTHY_STACK)
    assert docker.juwei("down", "--env-file", str(env), "--volumes").returncode == 0
    assert docker.compose_calls() == [[*prefix(env, "*"), "down", "--remove-orphans", "--timeout", "30", "--volumes"]]


def test_ps_shows_every_container_and_fails_when_one_is_not_healthy(docker: Docker, env: Path) -> None:
    done = docker.juwei("ps", "--env-file", str(env), "--json")
    assert done.returncode == 0, done.stderr
    assert docker.compose_calls() == [[*prefix(env, "single"), "ps", "--quiet", "--all"]]
    listed = {c["service"]: c for c in json.loads(done.stdout)}
    assert listed["residents"]["health"] == "healthy" and listed["residents"]["ports"] == {
        "8001/tcp": ["127.0.0.1:18001"]
    }
    assert listed["kafka-topics"]["state"] == "exited" and listed["kafka-topics"]["one_shot"]
    docker.answer([*HEALTHY_STACK, container("c-notify", "notify", state="restarting", health="starting")])
    table = docker.juwei("ps", "--env-file", str(env))
    assert table.returncode == 1 and "restarting" in table.stdout


def test_logs_streams_the_lines_of_the_chosen_services(docker: Docker, env: Path) -> None:
    docker.answer(HEALTHY_STACK, logs={"stdout": "residents-1  | started\nresidents-1  | ready\n"})
    done = docker.juwei("logs", "residents", "--tail", "5", "--env-file", str(env))
    assert done.returncode == 0, done.stderr
    assert docker.compose_calls() == [
        [*prefix(env, "single"), "logs", "--no-color", "--tail", "5", "--timestamps", "residents"]
    ]
    assert done.stdout.splitlines() == ["residents-1  | started", "residents-1  | ready"]


def test_status_compose_reads_container_health_and_asks_the_published_ports(docker: Docker, env: Path) -> None:
    done = docker.juwei("status", "--compose", "--env-file", str(env), "--json", "--sample", "0")
    assert done.returncode == 1  # the recorded containers are healthy, but no service answers here
    assert docker.compose_calls() == [[*prefix(env, "single"), "ps", "--quiet", "--all"]]
    report = json.loads(done.stdout)
    assert {c["service"]: c["health"] for c in report["containers"]}["residents"] == "healthy"
    services = {s["name"]: s for s in report["services"]}
    assert services["residents"]["url"] == "http://127.0.0.1:18001"
    assert services["notify"]["url"] is None and services["notify"]["healthy"] is False  # no container
    assert services["residents"]["error"] == "connection refused"
    assert report["kafka"]["bootstrap"] == "127.0.0.1:19094"


def test_no_docker_cli_is_reported_not_crashed_on(docker: Docker, env: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    done = docker.juwei("ps", "--env-file", str(env), path=str(empty))
    assert done.returncode == 1 and "docker CLI" in done.stderr
