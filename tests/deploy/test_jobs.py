"""The stack's two scripts run for real: the PostgreSQL init script and the Kafka topic-creation job.

No container runs them here, but the same script text does, against a real PostgreSQL and a real Kafka
broker: the init script as the postgres image would (psql as the superuser), the topic job as the
compose file spells it (its `$$` turned into `$` as compose does, `bash -euc`, its environment) with the
Kafka command-line tools of the image's Kafka version fetched from Maven Central.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka.admin import KafkaAdminClient
from psycopg import sql
from sqlalchemy.engine import make_url

from juwei.broker import DEPLOY_DIR as BROKER_DEPLOY_DIR
from juwei.broker import KAFKA_VERSION, LocalBroker
from juwei.cli import _topics
from juwei.service import KNOWN_SERVICES
from tests.conftest import TEST_HOME
from tests.deploy.conftest import DEPLOY

INIT_SCRIPT = DEPLOY / "postgres" / "init-databases.sh"
# The image's bin/ scripts, as the Java classes they start (Kafka 4.1).
KAFKA_TOOLS = {
    "kafka-topics.sh": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs.sh": "kafka.admin.ConfigCommand",
}
# Command-line tools run for a second: a small heap and C1 only start them faster.
TOOL_JVM = "-Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
TOOLS_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>juwei.tests</groupId><artifactId>kafka-command-line-tools</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>{v}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{v}</version></dependency>
  </dependencies>
</project>
"""


# ---------------------------------------------------------------- PostgreSQL


def _server(postgres: Any) -> dict[str, str]:
    """libpq settings of the test server's superuser (the session's private cluster or an outside one)."""
    if postgres is not None:
        return {"host": "127.0.0.1", "port": str(postgres.port), "user": "postgres", "dbname": "postgres"}
    url = make_url(os.environ["JUWEI_TEST_POSTGRES_URL"])
    server = {"host": url.host or "127.0.0.1", "port": str(url.port or 5432), "user": url.username or "postgres"}
    return {**server, "dbname": url.database or "postgres", "password": url.password or ""}


def _run_init(server: dict[str, str], databases: list[str], passwords: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "JUWEI_"))}
    env.update(PGHOST=server["host"], PGPORT=server["port"], PGPASSWORD=server.get("password", ""))
    # What the postgres image sets, and what deploy/compose.yaml passes to it.
    env.update(POSTGRES_USER=server["user"], POSTGRES_DB=server["dbname"], JUWEI_DATABASES=" ".join(databases))
    env.update({f"JUWEI_{name.upper()}_DB_PASSWORD": password for name, password in passwords.items()})
    return subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def _scram_matches(stored: str, password: str) -> bool:
    """Whether a SCRAM-SHA-256 verifier from pg_authid was made from ``password`` (RFC 5802)."""
    method, rest = stored.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return method == "SCRAM-SHA-256" and hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)


@pytest.fixture
def scratch_roles(postgres: Any, suffix: str) -> Iterator[tuple[dict[str, str], list[str]]]:
    server = _server(postgres)
    names = [f"jw_{suffix}_{service}" for service in ("residents", "supplies")]
    yield server, names
    with psycopg.connect(**server, autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.mark.postgres
def test_the_init_script_gives_each_service_a_private_database(scratch_roles) -> None:
    server, names = scratch_roles
    first = {name: secrets.token_hex(12) for name in names}
    made = _run_init(server, names, first)
    assert made.returncode == 0, made.stderr
    # Run again (as an operator would after changing a password): nothing is recreated, the password moves.
    second = {**first, names[0]: "it's-" + secrets.token_hex(8)}  # a quote: psql variables, not pasting
    again = _run_init(server, names, second)
    assert again.returncode == 0, again.stderr
    with psycopg.connect(**server, autocommit=True) as admin:
        for name in names:
            role = admin.execute(
                "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolpassword"
                " FROM pg_authid WHERE rolname = %s",
                (name,),
            ).fetchone()
            assert role is not None and role[:4] == (True, False, False, False)
            assert _scram_matches(role[4], second[name])
            owner = admin.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            assert owner == (name,)
    own = {k: v for k, v in server.items() if k not in ("user", "dbname", "password")}
    with psycopg.connect(**own, user=names[0], dbname=names[0], password=second[names[0]], autocommit=True) as conn:
        conn.execute("CREATE TABLE juwei_events (position bigint PRIMARY KEY)")  # owns its schema
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(**own, user=names[0], dbname=names[1], password=second[names[0]])


@pytest.mark.postgres
def test_the_init_script_refuses_to_run_without_a_password(scratch_roles) -> None:
    server, names = scratch_roles
    refused = _run_init(server, names, {names[0]: "x"})
    assert refused.returncode != 0
    assert f"JUWEI_{names[1].upper()}_DB_PASSWORD is not set" in refused.stderr


def test_the_compose_file_feeds_the_init_script_the_four_services(resolved: Callable) -> None:
    postgres = resolved("single")["services"]["postgres"]
    assert "JUWEI_DATABASES" not in postgres["environment"]  # the script's default: the four services
    assert re.search(r"databases=\$\{JUWEI_DATABASES:-residents supplies testing notify\}", INIT_SCRIPT.read_text())
    for service in KNOWN_SERVICES:
        assert postgres["environment"][f"JUWEI_{service.upper()}_DB_PASSWORD"]
    assert os.access(INIT_SCRIPT, os.X_OK)  # executed, not sourced, by the image's entrypoint


# ---------------------------------------------------------------- Kafka topics


@pytest.fixture(scope="session")
def kafka_tools() -> Path:
    """bin/ with kafka-topics.sh and kafka-configs.sh of Kafka KAFKA_VERSION (jars from Maven Central, once)."""
    home = TEST_HOME / f"kafka-tools-{KAFKA_VERSION}"
    libs, marker = home / "libs", home / "libs" / ".fetched"
    if not marker.exists():
        home.mkdir(parents=True, exist_ok=True)
        (home / "pom.xml").write_text(TOOLS_POM.format(v=KAFKA_VERSION))
        shutil.rmtree(libs, ignore_errors=True)
        fetched = subprocess.run(
            ["mvn", "-B", "-q", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
             f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
            capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        marker.write_text(KAFKA_VERSION)
    bin_dir = home / "bin"
    bin_dir.mkdir(exist_ok=True)
    log4j = BROKER_DEPLOY_DIR / "log4j2.yaml"
    for script, main in KAFKA_TOOLS.items():
        shim = bin_dir / script
        java = f"exec java {TOOL_JVM} -Dlog4j2.configurationFile={log4j}"
        shim.write_text(f'#!/usr/bin/env bash\n{java} -cp "{libs}/*" {main} "$@"\n')
        shim.chmod(0o755)
    return bin_dir


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own: the job creates the real juwei.* topic names."""
    port = _free_port()
    controller = _free_port()
    broker = LocalBroker(tmp_path / "kafka", port=port, controller_port=controller, partitions=1)
    broker.start()
    yield broker
    broker.stop()


def _described(output: str) -> dict[str, dict[str, str]]:
    """`kafka-topics.sh --describe` summary lines → topic: {PartitionCount, Configs…}."""
    topics: dict[str, dict[str, str]] = {}
    for line in output.splitlines():
        match = re.match(r"Topic: (\S+)\tTopicId: \S+\tPartitionCount: (\d+)\t.*Configs: ?(.*)$", line)
        if match:
            configs = dict(item.split("=", 1) for item in match.group(3).split(",") if "=" in item)
            topics[match.group(1)] = {"partitions": match.group(2), **configs}
    return topics


@pytest.mark.kafka
def test_the_topic_job_creates_every_topic_and_aligns_retention(
    resolved: Callable, kafka_tools: Path, private_broker: LocalBroker
) -> None:
    job = resolved("single")["services"]["kafka-topics"]
    # An existing topic (an earlier `up`): keeps its partitions, gets the configured retention.
    admin = KafkaAdminClient(bootstrap_servers=private_broker.bootstrap)
    admin.create_topics({"juwei.residents": {"num_partitions": 2, "replication_factor": 1,
                                             "configs": {"retention.ms": "1000"}}})  # fmt: skip
    admin.close()
    script = job["command"][0].replace("$$", "$").replace("/opt/kafka/bin", str(kafka_tools))
    env = {**os.environ, **job["environment"], "BOOTSTRAP": private_broker.bootstrap}
    ran = subprocess.run([*job["entrypoint"], script], env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    topics = _described(ran.stdout)
    assert set(topics) == set(_topics(list(KNOWN_SERVICES)))
    for name, described in topics.items():
        dead_letters = name.endswith(".dlq")
        assert described["retention.ms"] == job["environment"]["DLQ_RETENTION_MS" if dead_letters else "RETENTION_MS"]
        expected = "2" if name == "juwei.residents" else job["environment"]["PARTITIONS"]
        assert described["partitions"] == expected, name
