"""The stack's two jobs run for real: the PostgreSQL init script and the Kafka topic job.

No container runs them here (tests/stack does), but the same code does, against a real PostgreSQL and a
real Kafka broker: the init script as the postgres image runs it (psql as the superuser), the topic job as
the compose file spells it (its command under the service image's entrypoint, `juwei`, with its environment).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from psycopg import sql
from sqlalchemy.engine import make_url

from juwei.broker import LocalBroker
from juwei.cli import _topics
from juwei.registration import suite
from tests.conftest import ROOT
from tests.deploy.conftest import DEPLOY

KNOWN_SERVICES = tuple(suite().names)

INIT_SCRIPT = DEPLOY / "postgres" / "init-databases.sh"
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
    assert "JUWEI_DATABASES" not in postgres["environment"]  # the script's default: the services and the console
    assert re.search(
        r"databases=\$\{JUWEI_DATABASES:-residents supplies testing notify console\}", INIT_SCRIPT.read_text()
    )
    for service in (*KNOWN_SERVICES, "console"):
        assert postgres["environment"][f"JUWEI_{service.upper()}_DB_PASSWORD"]
    assert os.access(INIT_SCRIPT, os.X_OK)  # executed, not sourced, by the image's entrypoint


# ---------------------------------------------------------------- Kafka topics


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


def _run_job(job: dict[str, Any], bootstrap: str) -> subprocess.CompletedProcess[str]:
    """The job's command in the service image's entrypoint (`juwei`), with the job's environment."""
    env = {**os.environ, **{k: str(v) for k, v in job["environment"].items()}, "JUWEI_KAFKA_BOOTSTRAP": bootstrap}
    return subprocess.run([sys.executable, "-m", "juwei.cli", *job["command"]], env=env, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)  # fmt: skip


@pytest.mark.kafka
def test_the_topic_job_creates_every_topic_and_aligns_retention(
    resolved: Callable, private_broker: LocalBroker
) -> None:
    job = resolved("single")["services"]["kafka-topics"]
    assert job["command"] == ["topics"] and job["environment"]["JUWEI_KAFKA_BOOTSTRAP"] == "kafka:9092"
    # An existing topic (an earlier `up`): keeps its partitions, gets the configured retention; another
    # setting an operator gave it by hand stays.
    admin = KafkaAdminClient(bootstrap_servers=private_broker.bootstrap)
    admin.create_topics(
        {
            "juwei.residents": {
                "num_partitions": 2,
                "replication_factor": 1,
                "configs": {"retention.ms": "1000", "max.message.bytes": "2000000"},
            }
        }
    )
    admin.close()
    ran = _run_job(job, private_broker.bootstrap)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = dict(line.split(": ", 1) for line in ran.stdout.splitlines())
    assert set(lines) == set(_topics(list(KNOWN_SERVICES)))
    for name, said in lines.items():
        dead_letters = name.endswith(".dlq")
        retention = job["environment"]["JUWEI_KAFKA_DLQ_RETENTION_MS" if dead_letters else "JUWEI_KAFKA_RETENTION_MS"]
        assert f"retention.ms {retention}" in said, (name, said)
        partitions = "2" if name == "juwei.residents" else job["environment"]["JUWEI_KAFKA_PARTITIONS"]
        assert said.startswith(("kept" if name == "juwei.residents" else "created") + f", {partitions} partitions")
        assert "replication factor 1" in said  # the single broker's default
    admin = KafkaAdminClient(bootstrap_servers=private_broker.bootstrap)
    kept = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "juwei.residents")])
    admin.close()
    assert kept["topic"]["juwei.residents"]["max.message.bytes"]["value"] == "2000000"
    # A second `up` runs it again: nothing to create, the same retention.
    again = _run_job(job, private_broker.bootstrap)
    assert again.returncode == 0 and "created" not in again.stdout
