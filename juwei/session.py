"""A unit of work's session: its transaction on one pooled connection (``Database.unit_of_work`` opens it).

Not SQLAlchemy's ORM session: juwei maps no classes, so the ORM's identity map, flush and state machine cost
CPU for nothing (a one-event unit of work on SQLite: 556 µs of CPU through the ORM's, 446 µs through this;
``bench/append_rate.py --layers``). Its own module so that importing it imports no metrics (``juwei.workers``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, Executable, NestedTransaction, Result


class Session:
    """One unit of work's transaction on one pooled connection: what use cases, repositories and projections
    read and write through (``execute`` as SQLAlchemy's ``Connection.execute``)."""

    __slots__ = ("_connection", "committed", "info")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        # Per unit of work: ``Connection.info`` would outlive it, as long as the pooled connection lives.
        self.info: dict[str, Any] = {}
        self.committed: list[Callable[[Session], None]] = []

    def after_commit(self, hook: Callable[[Session], None]) -> None:
        """Call ``hook`` once the transaction has committed (never if it rolls back)."""
        self.committed.append(hook)

    def execute(self, statement: Executable, parameters: Any = None) -> Result[Any]:
        return self._connection.execute(statement, parameters)

    def connection(self) -> Connection:
        """The transaction's connection (the event store runs its statements on its driver connection)."""
        return self._connection

    def get_bind(self) -> Engine:
        return self._connection.engine

    def begin_nested(self) -> NestedTransaction:
        """A savepoint: rolled back alone when its block raises, the unit of work's transaction goes on."""
        return self._connection.begin_nested()
