"""Real parts for the tests: a local Kafka broker and a local PostgreSQL, started once per session.

Neither is optional: if one cannot start, the tests that need it fail (they are never skipped).
``JUWEI_KAFKA_BOOTSTRAP`` / ``JUWEI_TEST_POSTGRES_URL`` point the tests at servers that already run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from juwei.broker import LocalBroker, bootstrap_from_env
from juwei.local_postgres import LocalPostgres

ROOT = Path(__file__).resolve().parents[1]
TEST_HOME = Path(os.environ.get("JUWEI_TEST_HOME", ROOT / ".local" / "test"))
KAFKA_PORT = int(os.environ.get("JUWEI_TEST_KAFKA_PORT", "19092"))
POSTGRES_PORT = int(os.environ.get("JUWEI_TEST_POSTGRES_PORT", "15432"))
# No daily account at its set hour in tests and the processes they start (it would add a message to every group
# between 20:00 and midnight in Shanghai): tests/notify/test_daily_account.py sets the hour it wants.
os.environ.setdefault("JUWEI_DAILY_ACCOUNT_AT", "off")


def _session_broker() -> LocalBroker:
    return LocalBroker(TEST_HOME / "kafka", port=KAFKA_PORT, controller_port=KAFKA_PORT + 1, partitions=3)


def _session_postgres() -> LocalPostgres:
    return LocalPostgres(TEST_HOME / "postgres", port=POSTGRES_PORT, fast=True)


# Started by the pytest-xdist controller (``pytest -n N``) before its workers exist: each worker's fixtures below
# then find them running, share them, and leave them to the controller to stop when the whole run is over.
_STARTED_FOR_WORKERS: list[LocalBroker | LocalPostgres] = []


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    servers: list[LocalBroker | LocalPostgres] = []
    if not bootstrap_from_env():
        servers.append(_session_broker())
    if not os.environ.get("JUWEI_TEST_POSTGRES_URL"):
        servers.append(_session_postgres())
    for server in servers:
        if not server.is_running():
            server.start()
            _STARTED_FOR_WORKERS.append(server)


# The files that take longest (make test's --durations), longest first: on the xdist workers they start first (with
# --no-loadscope-reorder, which keeps this order), so that no worker is still in one of them after the others ran out.
SLOWEST_FIRST = (
    "tests/hostile/test_schemathesis.py",
    "tests/faults/test_faults.py",
    "tests/testing/test_round_on_kafka.py",
    "tests/kernel/test_alert_metrics.py",
    "tests/kernel/test_crash.py",
    "tests/kernel/test_operations.py",
    "tests/e2e/test_seed_compound_day.py",
    "tests/kernel/test_log_format.py",
    "tests/kernel/test_gap_safety.py",
    "tests/infra/test_local_infra.py",
    "tests/access/test_matrix.py",
    "tests/testing/test_labfile_on_kafka.py",
    "tests/supplies/test_kafka_flow.py",
    "tests/notify/test_crash.py",
    "tests/e2e/test_run_detached.py",
    "tests/console/staff/test_exports.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):
        return  # one plain pytest: the files in their own order
    rank = {path: number for number, path in enumerate(SLOWEST_FIRST)}
    # A stable sort on the file alone: every worker collects the same order, as xdist requires.
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_unconfigure(config: pytest.Config) -> None:
    while _STARTED_FOR_WORKERS:
        _STARTED_FOR_WORKERS.pop().stop()


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker | None]:
    if bootstrap_from_env():
        yield None
        return
    local = _session_broker()
    ours = not local.is_running()  # another test session may share it: stop only what we started
    local.start()
    yield local
    if ours:
        local.stop()


@pytest.fixture(scope="session")
def kafka(broker: LocalBroker | None) -> str:
    return bootstrap_from_env() or broker.bootstrap  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres | None]:
    if os.environ.get("JUWEI_TEST_POSTGRES_URL"):
        yield None
        return
    local = _session_postgres()
    ours = not local.is_running()
    local.start()
    yield local
    if ours:
        local.stop()


def _external_pg_database(name: str) -> str:
    base = os.environ["JUWEI_TEST_POSTGRES_URL"]
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def new_database(tmp_path: Path, request: pytest.FixtureRequest):
    """A factory of fresh, empty databases of the test's dialect (``sqlite`` or ``postgresql``)."""
    dialect = getattr(request, "param", "sqlite")
    made: list[str] = []

    def make(label: str = "db") -> str:
        if dialect == "sqlite":
            return f"sqlite:///{tmp_path / f'{label}.db'}"
        name = f"t_{label}_{uuid.uuid4().hex[:10]}".lower()
        made.append(name)
        pg = request.getfixturevalue("postgres")
        return pg.create_database(name) if pg is not None else _external_pg_database(name)

    make.dialect = dialect  # type: ignore[attr-defined]
    yield make
    pg = request.getfixturevalue("postgres") if made else None
    for name in made:
        if pg is not None:
            pg.drop_database(name)


both_databases = pytest.mark.parametrize("new_database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def suffix() -> str:
    return uuid.uuid4().hex[:8]
