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

from juwei.images import BuildSettings
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
if args[:1] == ["version"]:
    print(json.dumps(canned["engine"]))
    sys.exit(0 if canned["engine"].get("Server") else 1)
if args[:2] == ["image", "inspect"]:
    found = [canned["images"][name] for name in args[2:] if name in canned["images"]]
    print(json.dumps(found))
    for name in args[2:]:
        if name not in canned["images"]:
            print("Error: No such image: " + name, file=sys.stderr)
    sys.exit(0 if len(found) == len(args[2:]) else 1)
rest = args[1:]
while rest and rest[0].startswith("--"):
    rest = rest[2:]  # --file, --profile, --env-file: each takes a value
if args[:1] == ["compose"] and rest[:1] == ["version"]:
    print(canned["compose_version"])
    sys.exit(0)
answer = canned.get(rest[0] if rest else "", {{}})
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("exit", 0))
"""
ENGINE_20_10 = {"Client": {"Version": "28.2.2"}, "Server": {"Version": "20.10.24+dfsg1", "ApiVersion": "1.41"}}
STACK_IMAGES = sorted(set(BuildSettings().names().values()))


def image(name: str) -> dict[str, Any]:
    """`docker image inspect` of an image, as much as python-on-whales reads to say it exists."""
    return {"Id": "sha256:" + name.encode().hex()[:64].ljust(64, "0"), "RepoTags": [name], "Config": {"Labels": {}}}


def container(
    ident: str,
    service: str,
    ports: dict[str, str] | None = None,
    state: str = "running",
    health: str | None = "healthy",
    exit_code: int = 0,
    restart: str = "unless-stopped",
    checks: tuple[tuple[int, str], ...] = (),
) -> dict[str, Any]:
    """`docker container inspect` of one compose container, as much of it as the CLI reads."""
    log = [{"ExitCode": code, "Output": output} for code, output in checks]
    return {
        "Id": ident,
        "Name": f"/juwei-{service}-1",
        "State": {"Status": state, "Running": state == "running", "ExitCode": exit_code}
        | ({"Health": {"Status": health, "Log": log}} if health else {}),
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

    def answer(
        self,
        containers: list[dict[str, Any]],
        engine: dict[str, Any] | None = None,
        compose_version: str = "2.40.3",
        images: list[str] = STACK_IMAGES,
        **verbs: dict[str, Any],
    ) -> None:
        canned: dict[str, Any] = {"containers": {c["Id"]: c for c in containers}}
        canned["ps"] = {"stdout": "".join(f"{c['Id']}\n" for c in containers)}
        canned["engine"] = ENGINE_20_10 if engine is None else engine
        canned["compose_version"] = compose_version
        canned["images"] = {name: image(name) for name in images}
        # What `compose config --format json` answers: the images the stack runs.
        canned["config"] = {"stdout": json.dumps({"services": {n: {"image": n} for n in STACK_IMAGES}})}
        canned.update(verbs)
        (self.folder / "canned.json").write_text(json.dumps(canned))
        (self.folder / "calls.jsonl").unlink(missing_ok=True)

    @property
    def calls(self) -> list[list[str]]:
        log = self.folder / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def compose_calls(self) -> list[list[str]]:
        """The calls on the compose project (not `compose version`, the engine check's question)."""
        return [call for call in self.calls if call[:1] == ["compose"] and call[:2] != ["compose", "version"]]

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


def test_up_checks_then_starts_waits_for_health_and_prints_where_services_answer(docker: Docker, env: Path) -> None:
    done = docker.juwei("up", "--env-file", str(env))
    assert done.returncode == 0, done.stderr
    assert docker.calls[0] == ["version", "--format", "{{json .}}"]  # the engine first
    compose = docker.compose_calls()
    assert compose[0] == [*prefix(env, "single"), "config", "--format", "json"]  # which images it needs
    inspected = [call[2] for call in docker.calls if call[:2] == ["image", "inspect"]]
    assert sorted(inspected) == STACK_IMAGES  # each is here: nothing to pull
    assert compose[1] == [*prefix(env, "single"), "up", "--detach", "--wait", "--wait-timeout", "600"]
    assert compose[2] == [*prefix(env, "single"), "ps", "--quiet", "--all"]
    inspected = {call[2] for call in docker.calls if call[:2] == ["container", "inspect"]}
    assert inspected == {c["Id"] for c in HEALTHY_STACK}
    assert "http://127.0.0.1:18001" in done.stdout and "http://127.0.0.1:18002" in done.stdout
    assert "127.0.0.1:19094" in done.stdout  # Kafka's external listener, for clients on this host


def test_up_takes_profiles_from_the_option_else_from_the_env_file(docker: Docker, tmp_path: Path) -> None:
    cluster_env = write_env_file(tmp_path / "cluster.env", {"COMPOSE_PROFILES": "cluster"})
    assert docker.juwei("up", "--env-file", str(cluster_env), "--timeout", "90").returncode == 0
    assert docker.compose_calls()[1] == [
        *prefix(cluster_env, "cluster"), "up", "--detach", "--wait", "--wait-timeout", "90"
    ]  # fmt: skip
    docker.answer(HEALTHY_STACK)
    assert (
        docker.juwei("up", "--env-file", str(cluster_env), "--profile", "single", "--profile", "tools").returncode == 0
    )
    assert docker.compose_calls()[1][: len(prefix(cluster_env, "single", "tools"))] == prefix(
        cluster_env, "single", "tools"
    )
    # COMPOSE_PROFILES present but empty: no broker of ours (an outside Kafka); no --profile at all.
    outside = write_env_file(tmp_path / "outside.env", {"COMPOSE_PROFILES": ""})
    docker.answer(HEALTHY_STACK)
    assert docker.juwei("up", "--env-file", str(outside)).returncode == 0
    assert "--profile" not in docker.compose_calls()[1]
    docker.answer(HEALTHY_STACK)
    assert docker.juwei("up", "--env-file", str(outside), "--no-wait").returncode == 0
    assert docker.compose_calls()[1][-2:] == ["up", "--detach"]


def test_up_refuses_a_bad_env_file_before_it_touches_docker(docker: Docker, tmp_path: Path) -> None:
    broken = write_env_file(
        tmp_path / ".env",
        {"JUWEI_TESTING_VAULT_KEY": "not-a-key", "JUWEI_NOTIFY_DB_PASSWORD": "", "JUWEI_LOG_LEVEL": "LOUD",
         "JUWEI_RESIDENTS_HTTP_PORT": "80801"},
    )  # fmt: skip
    done = docker.juwei("up", "--env-file", str(broken))
    assert done.returncode == 2
    for named in ("JUWEI_TESTING_VAULT_KEY", "JUWEI_NOTIFY_DB_PASSWORD is empty", "JUWEI_LOG_LEVEL",
                  "JUWEI_RESIDENTS_HTTP_PORT", "nothing was started"):  # fmt: skip
        assert named in done.stderr, named
    assert docker.calls == []


@pytest.mark.parametrize(
    ("engine", "compose_version", "said"),
    [
        ({"Client": {"Version": "28.2.2"}}, "2.40.3", "no Docker engine answers at"),
        ({"Server": {"Version": "19.03.15", "ApiVersion": "1.40"}}, "2.40.3", "Docker Engine 19.03.15 is older"),
        (ENGINE_20_10, "2.12.2", "Docker Compose 2.12.2 is older than 2.20"),
    ],
    ids=["no-engine", "engine-19.03", "compose-2.12"],
)
def test_an_engine_or_compose_too_old_or_absent_is_one_line_naming_what_to_install(
    docker: Docker, env: Path, engine: dict[str, Any], compose_version: str, said: str
) -> None:
    docker.answer(HEALTHY_STACK, engine=engine, compose_version=compose_version)
    done = docker.juwei("up", "--env-file", str(env))
    assert done.returncode == 2
    assert said in done.stderr
    assert ("start it" if "answers" in said else "install") in done.stderr  # what to do about it
    assert len(done.stderr.strip().split(". ")) == 1  # one sentence
    assert docker.compose_calls() == []  # nothing started


def test_up_without_the_images_says_how_to_get_them_and_starts_nothing(docker: Docker, env: Path) -> None:
    docker.answer(HEALTHY_STACK, images=[STACK_IMAGES[0]])
    done = docker.juwei("up", "--env-file", str(env))
    assert done.returncode == 2
    assert "juwei images build" in done.stderr and "juwei bundle load" in done.stderr
    assert STACK_IMAGES[1] in done.stderr
    assert [call for call in docker.compose_calls() if "up" in call] == []


def test_up_that_does_not_become_healthy_says_which_container_and_fails(docker: Docker, env: Path) -> None:
    said = "urllib.error.HTTPError: HTTP Error 503:\n  Service Unavailable"
    broken = [
        # An earlier failure of a container that is healthy now is not a reason.
        container("c-kafka", "kafka", {"9094/tcp": "19094"}, checks=((1, "connection refused"), (0, ""))),
        *HEALTHY_STACK[1:-1],
        container(
            "c-supplies",
            "supplies",
            {"8002/tcp": "18002"},
            health="unhealthy",
            checks=((1, "an older failure"), (1, said)),
        ),
    ]
    docker.answer(
        broken, up={"exit": 1, "stderr": "dependency failed to start: container juwei-supplies-1 is unhealthy\n"}
    )
    done = docker.juwei("up", "--env-file", str(env))
    assert done.returncode == 1
    assert "juwei-supplies-1 is unhealthy" in done.stderr and "juwei logs" in done.stderr
    assert "unhealthy" in done.stdout  # the containers table
    # Why, in the check's own words, for the container that is not healthy only (rich wraps at 80 columns here).
    said_here = " ".join(done.stderr.split())
    assert "supplies: its last health check said: urllib.error.HTTPError: HTTP Error 503: Service Unavailable" in (
        said_here
    )
    assert "connection refused" not in said_here and "an older failure" not in said_here


def test_up_without_an_env_file_tells_the_operator_to_make_one(docker: Docker, tmp_path: Path) -> None:
    done = docker.juwei("up", "--env-file", str(tmp_path / "missing.env"))
    assert done.returncode == 2 and "juwei init" in done.stderr
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
    assert done.returncode == 2 and "`docker` command is not installed" in done.stderr and "docker.io" in done.stderr
