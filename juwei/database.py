"""Engines and units of work for SQLite (the default) and PostgreSQL (production).

The request's session is the unit of work: events, read-model rows and inbox rows commit in one
transaction, a ``juwei.session.Session`` on one pooled connection (not SQLAlchemy's ORM session). On
SQLite every unit of work starts with ``BEGIN IMMEDIATE`` so that two writers never both read a stream
version and then race to upgrade their lock (SQLITE_BUSY_SNAPSHOT); reads use a second, deferred engine so
that the feed and the relay never hold the write lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool, QueuePool

from juwei.session import Session

BeforeCommit = Callable[[Session], None]


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the API answers 503 rather than hanging or failing with 500."""


# Live and lowest: one worker of a service that cannot reach its database is enough to say so.
DATABASE_UP = Gauge(
    "juwei_database_up",
    "1 when the service's database answered its last probe, 0 when it did not",
    ["service"],
    multiprocess_mode="livemin",
)
PROBE_SECONDS = 15.0  # a probe is one SELECT 1 (or a 5 s connect timeout): often enough for a 1-minute alert


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    memory = not path or path == ":memory:"
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        # Keep connections open: closing the last connection to a WAL database checkpoints the WAL back into
        # the file with fsyncs and deletes it, which made every unit of work pay for a full checkpoint.
        poolclass=NullPool if memory else QueuePool,
        **({} if memory else {"pool_size": 5, "max_overflow": 10, "pool_timeout": 30}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the relay can publish it, so a power cut cannot leave an
        # event on Kafka that the service's own log has lost.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # On the driver's connection: exec_driver_sql's execution path cost more than SQLite's BEGIN itself.
        try:
            conn.connection.driver_connection.execute(begin)
        except sqlite3.Error as error:
            conn._handle_dbapi_exception(error, begin, (), None, None)  # wrapped as SQLAlchemy would have

    return engine


def _postgres_engine(url: str, pool_size: int) -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )


class Database:
    """One service's database: a write engine for units of work, a read engine for queries."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.dialect = "sqlite" if is_sqlite(url) else "postgresql"
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        else:
            self.engine = _postgres_engine(url, pool_size)
            self.read_engine = self.engine
        self.before_commit: list[BeforeCommit] = []
        # Run first in every write transaction (the request's command is recorded there: ``juwei.commands``).
        self.at_start: list[BeforeCommit] = []

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A write transaction: commits what the block did, runs the before-commit hooks (projections)."""
        connection = self.engine.connect()
        try:
            transaction = connection.begin()  # SQLite: BEGIN IMMEDIATE (the engine's begin hook)
            session = Session(connection)
            for hook in self.at_start:
                hook(session)
            yield session
            for hook in self.before_commit:
                hook(session)
            transaction.commit()
        except BaseException:
            connection.rollback()  # nothing to do when BEGIN or COMMIT itself failed
            raise
        finally:
            connection.close()
        for hook in session.committed:
            hook(session)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        connection = self.read_engine.connect()
        try:
            yield Session(connection)
        finally:
            connection.rollback()
            connection.close()

    def ping(self) -> None:
        try:
            with self.read_engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError) as exc:
            raise DatabaseUnavailable(str(exc.orig or exc)) from exc

    def probe(self, service: str) -> bool:
        """Ping and say how it went in ``juwei_database_up`` (its alert: deploy/prometheus/alerts.yml)."""
        try:
            self.ping()
        except DatabaseUnavailable:
            DATABASE_UP.labels(service).set(0)
            return False
        DATABASE_UP.labels(service).set(1)
        return True

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
