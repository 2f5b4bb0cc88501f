"""The append's statements, run on the database driver's own connection of the unit of work's transaction.

An append is always the same few statements (the append lock on PostgreSQL, the stream's version, the insert).
Sent through SQLAlchemy's Core, each paid for the compiled-statement cache lookup, parameter and result
processing and execution events: about as much as SQLite's own work, which put one-event transactions at
half of what the sqlite3 module alone makes of the same statements (bench/append_rate.py). Here they are
written once per dialect and run on the DBAPI connection SQLAlchemy already holds for the transaction:
same statements, same transaction, same durability. A driver error goes through SQLAlchemy's own handling
(wrapped as SQLAlchemy's exception, a lost connection invalidated), as if SQLAlchemy had run the statement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table

# Any 64-bit constant will do; it only has to be the same for every writer of this database.
APPEND_LOCK_KEY = 0x4A55574549  # "JUWEI"

# The inserted columns, in the order of a row tuple.
EVENT_COLUMNS = ("id", "stream_id", "version", "compound", "type", "building", "time", "data", "private",
                 "traceparent", "actor")  # fmt: skip


@dataclass(frozen=True)
class AppendStatements:
    """One dialect's append statements, and how a row's values are bound (as SQLAlchemy's types bind them)."""

    lock: str | None
    version: str
    insert: str
    # Bind processors by column index (SQLite's DateTime is text in SQLAlchemy's format; others bind as is).
    binds: tuple[tuple[int, Callable[[Any], Any]], ...]


_STATEMENTS: dict[Any, AppendStatements] = {}


def statements(connection: Connection, table: Table) -> AppendStatements:
    """The append statements of ``connection``'s dialect (made once per dialect object)."""
    dialect = connection.dialect
    found = _STATEMENTS.get(dialect)
    if found is None:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        binds = []
        for index, name in enumerate(EVENT_COLUMNS):
            process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                binds.append((index, process))
        found = _STATEMENTS[dialect] = AppendStatements(
            lock=f"SELECT pg_advisory_xact_lock({mark})" if dialect.name == "postgresql" else None,
            version=f"SELECT max(version) FROM {table.name} WHERE stream_id = {mark}",
            insert=(
                f"INSERT INTO {table.name} ({', '.join(EVENT_COLUMNS)}) "
                f"VALUES ({', '.join([mark] * len(EVENT_COLUMNS))}) RETURNING position"
            ),
            binds=tuple(binds),
        )
    return found


def _failed(connection: Connection, error: Exception, statement: str, parameters: Any) -> None:
    """Raise ``error`` as SQLAlchemy would have had it run the statement (wrapped; connection invalidated if lost)."""
    connection._handle_dbapi_exception(error, statement, parameters, None, None)


def lock(connection: Connection, table: Table) -> None:
    """Take the append lock (PostgreSQL; SQLite's unit of work already holds the database's write lock)."""
    made = statements(connection, table)
    if made.lock is None:
        return
    driver = connection.connection.driver_connection
    try:
        driver.execute(made.lock, (APPEND_LOCK_KEY,)).fetchone()
    except connection.dialect.loaded_dbapi.Error as error:
        _failed(connection, error, made.lock, (APPEND_LOCK_KEY,))


def current_version(connection: Connection, table: Table, stream_id: str) -> int:
    made = statements(connection, table)
    driver = connection.connection.driver_connection
    try:
        value = driver.execute(made.version, (stream_id,)).fetchone()[0]
    except connection.dialect.loaded_dbapi.Error as error:
        _failed(connection, error, made.version, (stream_id,))
    return int(value or 0)


def insert(connection: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert the rows (``EVENT_COLUMNS`` order); their positions, in the rows' order.

    Raises the driver's ``IntegrityError`` as is (the store turns it into a ``ConcurrencyError``).
    """
    made = statements(connection, table)
    if made.binds:
        rows = [_bound(row, made.binds) for row in rows]
    driver = connection.connection.driver_connection
    dbapi = connection.dialect.loaded_dbapi
    try:
        if len(rows) == 1 or connection.dialect.name != "postgresql":
            # SQLite runs in this process: a statement per row costs less than building a multi-row one.
            return [driver.execute(made.insert, row).fetchone()[0] for row in rows]
        # PostgreSQL: every row in one pipeline (one round trip), each row's own RETURNING in order.
        with driver.cursor() as cursor:
            cursor.executemany(made.insert, rows, returning=True)
            positions = []
            while True:
                positions.append(cursor.fetchone()[0])
                if not cursor.nextset():
                    return positions
    except dbapi.IntegrityError:
        raise
    except dbapi.Error as error:
        _failed(connection, error, made.insert, rows)
        raise  # not reached: _failed raises


def _bound(row: tuple[Any, ...], binds: tuple[tuple[int, Callable[[Any], Any]], ...]) -> tuple[Any, ...]:
    values = list(row)
    for index, process in binds:
        values[index] = process(values[index])
    return tuple(values)
