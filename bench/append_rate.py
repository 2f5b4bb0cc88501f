"""Append rate of the event store beside the database driver alone doing the same writes, in the same run.

Configurations (each on a fresh database, measured ``--repeats`` times in alternating order, median reported):

* juwei / SQLite file, as ``juwei.database`` configures it: WAL, ``synchronous=FULL`` (a commit fsyncs the
  WAL), pooled connections.
* sqlite3 alone / SQLite file: the sqlite3 module on one connection doing what a one-event append does
  (BEGIN IMMEDIATE, the version SELECT, the INSERT … RETURNING, COMMIT), WAL, ``synchronous=FULL``. The goal
  (issue 20): juwei ≥ 0.9× this, one event per transaction.
* juwei / PostgreSQL (``LocalPostgres``, not fast mode: fsync on, synchronous_commit on), and psycopg alone
  on the same server doing the same statements (the append lock, the version, the insert, COMMIT).
  ``--no-postgres`` skips both.
* juwei / SQLite file with ``synchronous=NORMAL`` (a commit does not fsync): what the durability of each
  commit costs. Not juwei's configuration. ``--no-normal`` skips it.
* eventsourcing / SQLite file: ``Application`` + ``Aggregate`` with PERSISTENCE_MODULE=eventsourcing.sqlite
  (the earlier goal's yardstick). ``--no-eventsourcing`` skips it.
* ``--before``: juwei's append as it was before issue 20 (``CoreEventStore``: SQLAlchemy Core statements,
  BEGIN IMMEDIATE through ``exec_driver_sql``), on SQLite and PostgreSQL, for before/after in one run.
* ``--orm-session``: juwei's unit of work as it was before 2026-12-07, through SQLAlchemy's ORM ``Session``
  (``orm_unit_of_work``; today's is a ``juwei.session.Session`` on a ``Connection``), on both databases.
* ``--layers``: one-event units of work on SQLite through each layer, the same statements in each: juwei's
  whole append, juwei's unit of work, the ORM session, a SQLAlchemy ``Connection``, the pool's DBAPI
  connection, one pooled connection kept checked out, the sqlite3 module alone. Where the ratio goes.

Modes: ``1/txn`` one event per transaction (``Database.unit_of_work()`` + ``EventStore.append``, or
``app.save(aggregate)``); ``N/txn`` N events per transaction in N/5 appends of 5 events to as many streams;
``N/txn, append_many`` the same N events in one ``EventStore.append_many`` call (one version query, one
insert: the bulk path); ``N/txn, 1 stream`` N events in one append to one stream. Every append checks the
expected version. Building the events is inside the clock on every side. The drivers alone run 1/txn only.

``--profile`` adds, per database, a breakdown of one-event units of work (``perf_counter`` around each step)
and an untimed pass under pyinstrument; on PostgreSQL also ``append_many`` batches under pyinstrument.

Run from the repository root:  .venv/bin/python bench/append_rate.py [--json] [--profile]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import sqlite3
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import benchlib
import psycopg
from benchlib import BENCH_HOME, Households, Runs, fmt_rate
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from rich.console import Console
from rich.table import Table
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session as OrmSession

from juwei.appending import APPEND_LOCK_KEY, EVENT_COLUMNS
from juwei.database import Database
from juwei.events import dump_json, new_event_id, payload, utcnow
from juwei.store import ConcurrencyError, EventStore, events_table

PER_APPEND = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=2000, help="events per run, one per transaction")
    parser.add_argument("--batched", type=int, default=20_000, help="events per run in batched modes")
    parser.add_argument("--batch-size", type=int, default=500, help="events per transaction when batched")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration and mode (default 3)")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-normal", action="store_true", help="skip juwei on SQLite with synchronous=NORMAL")
    parser.add_argument("--no-eventsourcing", action="store_true", help="skip the eventsourcing library")
    parser.add_argument("--before", action="store_true", help="add juwei's append as it was before issue 20")
    parser.add_argument(
        "--orm-session", action="store_true", help="add juwei's unit of work through SQLAlchemy's ORM session (before)"
    )
    parser.add_argument("--layers", action="store_true", help="add one-event units of work on SQLite, layer by layer")
    parser.add_argument("--only-single", action="store_true", help="one event per transaction only (the goal)")
    parser.add_argument("--profile", action="store_true", help="add a pyinstrument pass and a step breakdown")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    return parser.parse_args()


# ---------------------------------------------------------------------------------------- eventsourcing


class Household(Aggregate):
    @event("Registered")
    def __init__(self, building: str) -> None:
        self.building = building
        self.deliveries = 0

    @event("SupplyDelivered")
    def deliver(self, kind: str, items: int, volunteer: str, note: str) -> None:
        self.deliveries += 1


class SupplyDesk(Application):
    pass


# --------------------------------------------------------------------------------------------- targets


@dataclass
class Target:
    """Something to append to: ``run(mode, events)`` returns the wall and CPU seconds it took."""

    system: str
    database: str
    config: str
    run: Callable[[str, int], tuple[float, float]]
    close: Callable[[], None]
    modes: tuple[str, ...] = ("single", "batched", "append_many", "one_append")


def juwei_target(
    database: Database,
    config: str,
    batch_size: int,
    streams: int,
    store_class: type[EventStore] = EventStore,
    orm: bool = False,
) -> Target:
    store = store_class(benchlib.SOURCE, benchlib.registry)
    households = Households(streams)
    unit_of_work: Callable[[], AbstractContextManager[Any]] = (
        (lambda: orm_unit_of_work(database)) if orm else database.unit_of_work
    )

    def run(mode: str, total: int) -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        if mode == "single":
            for _ in range(total):
                with unit_of_work() as session:
                    households.append(store, session, households.next_stream(), 1)
        elif mode == "batched":
            for _ in range(total // batch_size):
                with unit_of_work() as session:
                    for _ in range(batch_size // PER_APPEND):
                        households.append(store, session, households.next_stream(), PER_APPEND)
        elif mode == "append_many":
            for _ in range(total // batch_size):
                with unit_of_work() as session:
                    batches = []
                    for _ in range(batch_size // PER_APPEND):
                        stream = households.next_stream()
                        events = [households.event(stream) for _ in range(PER_APPEND)]
                        batches.append((stream, events, households.versions[stream], benchlib.COMPOUND))
                        households.versions[stream] += PER_APPEND
                    store.append_many(session, batches)
        else:  # one append of batch_size events to one stream per transaction
            for _ in range(total // batch_size):
                with unit_of_work() as session:
                    households.append(store, session, households.next_stream(), batch_size)
        return time.perf_counter() - started, time.process_time() - cpu

    system = "juwei ORM session" if orm else "juwei" if store_class is EventStore else "juwei before"
    return Target(system, database.dialect, config, run, database.dispose)


@contextmanager
def orm_unit_of_work(database: Database) -> Iterator[OrmSession]:
    """``Database.unit_of_work`` as it was before 2026-12-07: SQLAlchemy's ORM ``Session`` around the transaction
    (no hooks: the benchmark's database has none)."""
    session = OrmSession(database.engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def layered_units(folder: Path, units: int) -> dict[str, tuple[float, float]]:
    """One-event units of work on SQLite (WAL, FULL) through each layer: (wall µs, CPU µs) per unit, medians of 3.

    Every layer but the first runs the driver's own statements (BEGIN IMMEDIATE, the version SELECT, the INSERT,
    COMMIT) on its own fresh database; they differ only in what hands them a connection and a transaction.
    """
    store = EventStore(benchlib.SOURCE, benchlib.registry)
    households = Households(100)
    databases: list[Database] = []

    def fresh(name: str) -> Database:
        databases.append(benchlib.open_database(benchlib.fresh_sqlite(folder / f"layers_{name}.db")))
        return databases[-1]

    full, unit, orm, core, pool, kept = (fresh(name) for name in ("full", "unit", "orm", "core", "pool", "kept"))
    held = kept.engine.raw_connection()  # checked out once and kept: the pool's connection, not the pool
    fresh("alone").dispose()  # the schema for the sqlite3 module's own connection
    alone = sqlite3.connect(folder / "layers_alone.db", isolation_level=None, check_same_thread=False)
    alone.execute("PRAGMA journal_mode=WAL")
    alone.execute("PRAGMA synchronous=FULL")

    def juwei_append() -> None:
        with full.unit_of_work() as session:
            households.append(store, session, households.next_stream(), 1)

    def juwei_unit() -> None:
        with unit.unit_of_work() as session:
            sqlite3_write(session.connection().connection.driver_connection, households)

    def orm_session() -> None:
        with orm_unit_of_work(orm) as session:
            sqlite3_write(session.connection().connection.driver_connection, households)

    def connection() -> None:
        with core.engine.connect() as conn:
            conn.begin()
            sqlite3_write(conn.connection.driver_connection, households)
            conn.commit()

    def pooled() -> None:
        fairy = pool.engine.raw_connection()
        sqlite3_one_event(fairy.driver_connection, households)
        fairy.close()

    layers = {
        "juwei: Database.unit_of_work + EventStore.append": juwei_append,
        "juwei's unit of work (a Session on a Connection), the driver's statements": juwei_unit,
        "SQLAlchemy's ORM Session (juwei's unit of work before), the driver's statements": orm_session,
        "a SQLAlchemy Connection: connect, begin, the statements, commit, close": connection,
        "the pool's DBAPI connection: checkout, the statements by hand, return": pooled,
        "one of the pool's connections, kept checked out: the statements by hand": lambda: sqlite3_one_event(
            held.driver_connection, households
        ),
        "the sqlite3 module on one connection: the statements by hand": lambda: sqlite3_one_event(alone, households),
    }
    timings: dict[str, list[tuple[float, float]]] = defaultdict(list)
    try:
        for rep in range(3):
            for name in list(layers) if rep % 2 == 0 else reversed(list(layers)):
                for _ in range(units // 10):  # warm the pool and the caches
                    layers[name]()
                started, cpu = time.perf_counter(), time.process_time()
                for _ in range(units):
                    layers[name]()
                timings[name].append(
                    ((time.perf_counter() - started) / units * 1e6, (time.process_time() - cpu) / units * 1e6)
                )
    finally:
        held.close()
        alone.close()
        for database in databases:
            database.dispose()
    return {
        name: (statistics.median(t[0] for t in timings[name]), statistics.median(t[1] for t in timings[name]))
        for name in layers
    }


class CoreEventStore(EventStore):
    """The append as it was before issue 20 (for ``--before``): SQLAlchemy Core statements on the transaction's
    connection, the append lock through ``text()``; everything else is today's ``EventStore``."""

    def _append(self, session, stream_id, events, expected_version, compound, traceparent, actor):  # type: ignore[no-untyped-def]
        if session.get_bind().dialect.name == "postgresql":
            session.connection().execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
        connection = session.connection()
        current = int(connection.execute(_CORE_VERSION, {"stream_id": stream_id}).scalar() or 0)
        if expected_version is not None and current != expected_version:
            raise ConcurrencyError(stream_id, expected_version, current)
        planned = [(stream_id, event, current + offset, compound) for offset, event in enumerate(events, start=1)]
        pending = self._pending(session, planned, traceparent, actor)
        rows = [dict(zip(EVENT_COLUMNS, row, strict=True)) for _event, row in pending]
        positions = connection.execute(_CORE_INSERT, rows).scalars().all()
        appended = self._appended(pending, positions)
        for hook in self.on_append:
            hook(session, appended)
        return appended


_CORE_INSERT = insert(events_table).returning(events_table.c.position, sort_by_parameter_order=True)
_CORE_VERSION = select(func.max(events_table.c.version)).where(events_table.c.stream_id == bindparam("stream_id"))


def core_begin(database: Database) -> None:
    """SQLite's BEGIN IMMEDIATE through ``exec_driver_sql``, as ``juwei.database`` issued it before issue 20."""
    if database.dialect != "sqlite":
        return
    for listener in list(database.engine.dispatch.begin):
        sa_event.remove(database.engine, "begin", listener)

    @sa_event.listens_for(database.engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def eventsourcing_target(path: Path, batch_size: int, streams: int) -> Target:
    benchlib.fresh_sqlite(path)
    app = SupplyDesk(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    households = Households(streams)
    aggregates = {stream: Household(building=stream.split("-")[1]) for stream in households.streams}
    app.save(*aggregates.values())  # the Registered events, outside the clock

    def deliver(stream: str) -> Household:
        payload = households.event(stream)  # the same random payloads as the juwei side
        aggregate = aggregates[stream]
        aggregate.deliver(kind=payload.kind, items=payload.items, volunteer=payload.volunteer, note=payload.note)
        return aggregate

    def run(mode: str, total: int) -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        if mode == "single":
            for _ in range(total):
                app.save(deliver(households.next_stream()))
        elif mode in ("batched", "append_many"):
            for _ in range(total // batch_size):
                touched = []
                for _ in range(batch_size // PER_APPEND):
                    stream = households.next_stream()
                    for _ in range(PER_APPEND):
                        deliver(stream)
                    touched.append(aggregates[stream])
                app.save(*touched)
        else:
            for _ in range(total // batch_size):
                stream = households.next_stream()
                for _ in range(batch_size):
                    deliver(stream)
                app.save(aggregates[stream])
        return time.perf_counter() - started, time.process_time() - cpu

    def close() -> None:
        app.close()

    return Target("eventsourcing", "sqlite", "WAL, synchronous=FULL, pooled (library default)", run, close)


def sqlite_synchronous_normal(database: Database) -> None:
    """Make every new write connection skip the fsync of each commit (runs after juwei's own connect hook)."""

    @sa_event.listens_for(database.engine, "connect")
    def _normal(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def sqlite_synchronous(database: Database) -> str:
    with database.unit_of_work() as session:
        value = session.execute(text("PRAGMA synchronous")).scalar()
    return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(value, str(value))


# ------------------------------------------------------------------------------------------- profiling


def profile_single(database: Database, out: Path, appends: int = 2000) -> str:
    """One-event units of work under pyinstrument (untimed); the text tree, the HTML written to ``out``."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument is not installed: .venv/bin/pip install pyinstrument"
    store = EventStore(benchlib.SOURCE, benchlib.registry)
    households = Households(100)
    profiler = Profiler(interval=0.0002)
    profiler.start()
    try:
        for _ in range(appends):
            with database.unit_of_work() as session:
                households.append(store, session, households.next_stream(), 1)
    finally:
        profiler.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(profiler.output_html())
    return profiler.output_text(unicode=True, color=False, show_all=False)


def profile_batch(database: Database, out: Path, transactions: int = 40) -> str:
    """``append_many`` of 100 streams × 5 events per unit of work under pyinstrument (untimed)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument is not installed: .venv/bin/pip install pyinstrument"
    target = juwei_target(database, "profile", 500, 100)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        target.run("append_many", transactions * 500)
    finally:
        profiler.stop()
    out.write_text(profiler.output_html())
    return profiler.output_text(unicode=True, color=False, show_all=False)


def breakdown_single(database: Database, appends: int = 2000) -> dict[str, float]:
    """µs per one-event unit of work, step by step (medians of ``appends``)."""
    store = EventStore(benchlib.SOURCE, benchlib.registry)
    households = Households(100)
    steps: dict[str, list[float]] = defaultdict(list)
    for _ in range(appends):
        stream = households.next_stream()
        t0 = time.perf_counter()
        unit = database.unit_of_work()
        session = unit.__enter__()  # the pool's checkout and BEGIN
        t1 = time.perf_counter()
        new = [households.event(stream)]
        t3 = time.perf_counter()
        store.append(session, stream, new, expected_version=households.versions[stream], compound=benchlib.COMPOUND)
        households.versions[stream] += 1
        t4 = time.perf_counter()
        unit.__exit__(None, None, None)
        t5 = time.perf_counter()
        steps["1 enter the unit of work: pool checkout, BEGIN"].append(t1 - t0)
        steps["2 build the event (pydantic)"].append(t3 - t1)
        steps["3 EventStore.append (lock, version, insert, envelope)"].append(t4 - t3)
        steps["4 before-commit hooks, COMMIT (fsync), close"].append(t5 - t4)
        steps["total"].append(t5 - t0)
    return {step: statistics.median(values) * 1e6 for step, values in sorted(steps.items())}


_DRIVER_INSERT = (
    "INSERT INTO juwei_events (id, stream_id, version, compound, type, building, time, data, private, "
    "traceparent, actor) VALUES ({0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}) RETURNING position"
)
_DRIVER_VERSION = "SELECT max(version) FROM juwei_events WHERE stream_id = {0}"
_SQLITE_INSERT, _SQLITE_VERSION = _DRIVER_INSERT.format("?"), _DRIVER_VERSION.format("?")


def sqlite3_write(driver: Any, households: Households) -> None:
    """One event's statements on a sqlite3 connection by hand: the version SELECT and the INSERT (the floor)."""
    stream = households.next_stream()
    event = households.event(stream)
    current = driver.execute(_SQLITE_VERSION, (stream,)).fetchone()[0]
    row = (new_event_id(), stream, (current or 0) + 1, benchlib.COMPOUND, event.type_name(), event.building_id(),
           utcnow().strftime("%Y-%m-%d %H:%M:%S.%f"), dump_json(payload(event)).decode(), None, None, None)  # fmt: skip
    driver.execute(_SQLITE_INSERT, row).fetchone()


def sqlite3_one_event(driver: Any, households: Households) -> None:
    """``sqlite3_write`` in a transaction of its own: BEGIN IMMEDIATE, the statements, COMMIT."""
    driver.execute("BEGIN IMMEDIATE")
    sqlite3_write(driver, households)
    driver.execute("COMMIT")


def sqlite3_target(path: Path) -> Target:
    """One-event transactions with the sqlite3 module alone: the same statements, WAL, FULL (the floor).

    What any Python layer on this file can reach: what is left above it is juwei's (and SQLAlchemy's).
    """
    database = benchlib.open_database(benchlib.fresh_sqlite(path))  # the same schema, made by the migrations
    database.dispose()
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    households = Households(100)

    def run(mode: str, total: int) -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(total):
            sqlite3_one_event(conn, households)
        return time.perf_counter() - started, time.process_time() - cpu

    return Target("sqlite3 alone", "sqlite", "WAL, synchronous=FULL, one connection", run, conn.close, ("single",))


def psycopg_target(url: str) -> Target:
    """One-event transactions with psycopg alone: juwei's three statements (the append lock, the version, the
    insert) and the commit, on the server juwei's side uses (same fsync, same synchronous_commit)."""
    database = benchlib.open_database(url)
    database.dispose()
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    households = Households(100)
    insert, version = _DRIVER_INSERT.format("%s"), _DRIVER_VERSION.format("%s")
    lock = "SELECT pg_advisory_xact_lock(%s)"

    def run(mode: str, total: int) -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(total):
            stream = households.next_stream()
            event = households.event(stream)
            with conn.cursor() as cursor:  # psycopg begins the transaction with the first statement
                cursor.execute(lock, (APPEND_LOCK_KEY,))
                current = cursor.execute(version, (stream,)).fetchone()[0]
                row = (new_event_id(), stream, (current or 0) + 1, benchlib.COMPOUND, event.type_name(),
                       event.building_id(), utcnow(), dump_json(payload(event)).decode(), None, None, None)  # fmt: skip
                cursor.execute(insert, row).fetchone()
            conn.commit()
        return time.perf_counter() - started, time.process_time() - cpu

    return Target("psycopg alone", "postgresql", "same server, one connection", run, conn.close, ("single",))


# ------------------------------------------------------------------------------------------------ main


def fmt_ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


MODES = ("single", "batched", "append_many", "one_append")


def mode_label(mode: str, batch_size: int) -> str:
    return {
        "single": "1/txn",
        "batched": f"{batch_size}/txn ({batch_size // PER_APPEND} appends x {PER_APPEND})",
        "append_many": f"{batch_size}/txn (one append_many over {batch_size // PER_APPEND} streams x {PER_APPEND})",
        "one_append": f"{batch_size}/txn (1 append)",
    }[mode]


def targets(
    args: argparse.Namespace, stack: ExitStack, log: Callable[..., None], facts: dict, servers: dict[str, Any]
) -> Iterator[Target]:
    folder = BENCH_HOME / "append"
    streams = 100
    for normal in (False, True) if not args.no_normal else (False,):
        name = "juwei_normal.db" if normal else "juwei.db"
        database = benchlib.open_database(benchlib.fresh_sqlite(folder / name))
        if normal:
            sqlite_synchronous_normal(database)
            database.engine.dispose()  # connections made by the migrations do not have the setting
        config = f"WAL, synchronous={sqlite_synchronous(database)}, pooled"
        config += " (not juwei's setting)" if normal else " (juwei default)"
        yield juwei_target(database, config, args.batch_size, streams)
    if args.before:
        database = benchlib.open_database(benchlib.fresh_sqlite(folder / "juwei_before.db"))
        core_begin(database)
        yield juwei_target(database, "WAL, synchronous=FULL, pooled", args.batch_size, streams, CoreEventStore)
    if args.orm_session:
        database = benchlib.open_database(benchlib.fresh_sqlite(folder / "juwei_orm.db"))
        yield juwei_target(database, "WAL, synchronous=FULL, pooled", args.batch_size, streams, orm=True)
    yield sqlite3_target(folder / "sqlite3_alone.db")
    if not args.no_eventsourcing:
        yield eventsourcing_target(folder / "eventsourcing.db", args.batch_size, streams)
    if not args.no_postgres:
        server = servers["postgres"] = stack.enter_context(benchlib.local_postgres(log))
        database = benchlib.open_database(server.create_database("bench_append"))
        settings = benchlib.postgres_settings(database)
        facts["postgres"] = settings
        config = f"fsync={settings['fsync']}, synchronous_commit={settings['synchronous_commit']}"
        yield juwei_target(database, config, args.batch_size, streams)
        if args.before:
            database = benchlib.open_database(server.create_database("bench_append_before"))
            yield juwei_target(database, config, args.batch_size, streams, CoreEventStore)
        if args.orm_session:
            database = benchlib.open_database(server.create_database("bench_append_orm"))
            yield juwei_target(database, config, args.batch_size, streams, orm=True)
        yield psycopg_target(server.create_database("bench_append_psycopg"))


def main() -> int:
    args = parse_args()
    if args.batch_size % PER_APPEND or args.batched % args.batch_size:
        raise SystemExit(f"--batch-size must be a multiple of {PER_APPEND} and divide --batched")
    console = Console(stderr=args.json, width=None if sys.stdout.isatty() else 120)
    log = console.log
    facts = benchlib.machine()
    made: list[Target] = []
    results: dict[tuple[int, str], Runs] = {}
    extra: dict[str, Any] = {}
    servers: dict[str, Any] = {}
    with ExitStack() as stack:
        try:
            for target in targets(args, stack, log, facts, servers):
                made.append(target)
            for rep in range(args.repeats):
                # Alternate the order so that no configuration always runs first (or last).
                for index in range(len(made)) if rep % 2 == 0 else reversed(range(len(made))):
                    target = made[index]
                    for mode in MODES:
                        if mode not in target.modes or (args.only_single and mode != "single"):
                            continue
                        total = args.single if mode == "single" else args.batched
                        seconds, cpu = target.run(mode, total)
                        runs = results.setdefault((index, mode), Runs(f"{target.system}/{mode}", [], []))
                        runs.events.append(total)
                        runs.seconds.append(seconds)
                        runs.cpu_seconds.append(cpu)
                        log(
                            f"run {rep + 1} {target.system:13s} {target.database:10s} {target.config[:24]:24s} "
                            f"{mode:11s} {total / seconds:>10,.0f} events/s"
                        )
        finally:
            for target in made:
                target.close()
        if args.layers:
            extra["layers_us_sqlite"] = {
                name: {"wall": round(wall, 1), "cpu": round(cpu, 1)}
                for name, (wall, cpu) in layered_units(BENCH_HOME / "append", args.single).items()
            }
        if args.profile:
            urls = {"sqlite": lambda name: benchlib.fresh_sqlite(BENCH_HOME / "append" / f"{name}.db")}
            if "postgres" in servers:
                urls["postgresql"] = servers["postgres"].create_database
            for dialect, url in urls.items():
                database = benchlib.open_database(url("juwei_breakdown"))
                try:
                    extra[f"breakdown_us_{dialect}"] = {
                        k: round(v, 1) for k, v in breakdown_single(database, args.single).items()
                    }
                finally:
                    database.dispose()
                database = benchlib.open_database(url("juwei_profile"))
                try:
                    html = BENCH_HOME / f"append_profile_{dialect}.html"
                    extra[f"profile_text_{dialect}"] = profile_single(database, html, args.single)
                    extra[f"profile_html_{dialect}"] = str(html)
                finally:
                    database.dispose()
            if "postgres" in servers:
                database = benchlib.open_database(servers["postgres"].create_database("bench_append_profile"))
                try:
                    extra["profile_pg_batch"] = profile_batch(database, BENCH_HOME / "append_profile_pg.html")
                finally:
                    database.dispose()

    def medians(system: str, database: str) -> dict[str, Runs]:
        return {m: r for (i, m), r in results.items() if made[i].system == system and made[i].database == database}

    # What juwei is compared with: the raw driver on the same database (the goal, issue 20), and eventsourcing.
    drivers = {"sqlite": medians("sqlite3 alone", "sqlite"), "postgresql": medians("psycopg alone", "postgresql")}
    es = medians("eventsourcing", "sqlite")

    def ratio(runs: Runs, other: Runs | None, cpu: bool = False) -> float | None:
        if other is None:
            return None
        return round(runs.cpu_median / other.cpu_median if cpu else runs.median / other.median, 3)

    rows = []
    for (index, mode), runs in results.items():
        target = made[index]
        ours = target.system.startswith("juwei")
        driver = drivers[target.database].get(mode) if ours else None
        versus_es = es.get(mode) if ours and target.database == "sqlite" else None
        rows.append(
            {
                "system": target.system,
                "database": target.database,
                "config": target.config,
                "mode": mode,
                "events_per_transaction": 1 if mode == "single" else args.batch_size,
                "median_events_per_s": round(runs.median, 1),
                # juwei over the driver alone on the same database, same mode (medians): the goal is ≥ 0.9.
                "ratio_to_driver": ratio(runs, driver),
                # Events per CPU-second of this process (the PostgreSQL server's own CPU is not in it).
                "median_events_per_cpu_s": round(runs.cpu_median, 1),
                "cpu_ratio_to_driver": ratio(runs, driver, cpu=True),
                "ratio_to_eventsourcing": ratio(runs, versus_es),
                "runs": runs.as_json()["runs"],
            }
        )
    if args.json:
        print(json.dumps({"benchmark": "append_rate", "machine": facts, "results": rows, **extra}, indent=2))
        return 0
    order = {"sqlite": 0, "postgresql": 1}
    for mode in MODES:
        shown = [r for r in rows if r["mode"] == mode]
        if not shown:
            continue
        table = Table(title=f"Append rate, {mode_label(mode, args.batch_size)}, median of {args.repeats} runs")
        for name, justify in (
            ("system", "left"),
            ("database", "left"),
            ("config", "left"),
            ("events/s", "right"),
            ("runs", "right"),
            ("÷ driver", "right"),
            ("per CPU-s", "right"),
            ("÷ driver (CPU)", "right"),
            ("÷ es", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row in sorted(
            shown, key=lambda r: (order[r["database"]], not r["system"].startswith("juwei"), r["system"])
        ):
            table.add_row(
                row["system"],
                row["database"],
                row["config"],
                fmt_rate(row["median_events_per_s"]),
                " ".join(fmt_rate(r["events"] / r["seconds"]) for r in row["runs"]),
                fmt_ratio(row["ratio_to_driver"]),
                fmt_rate(row["median_events_per_cpu_s"]),
                fmt_ratio(row["cpu_ratio_to_driver"]),
                fmt_ratio(row["ratio_to_eventsourcing"]),
            )
        console.print(table)
    console.print(
        "÷ driver: juwei over the driver alone (sqlite3; psycopg) doing the same statements with the same durability "
        "on the same database, same mode (medians; goal ≥ 0.9 at 1/txn). per CPU-s: events per CPU-second of this "
        "process (waiting for fsync is not CPU; the PostgreSQL server's CPU is not counted). ÷ es: over eventsourcing."
    )
    if "layers_us_sqlite" in extra:
        layers = extra["layers_us_sqlite"]
        alone = layers["the sqlite3 module on one connection: the statements by hand"]
        title = f"A one-event unit of work on SQLite (WAL, FULL), layer by layer (µs, medians of 3 × {args.single:,})"
        table = Table(title=title)
        for name in ("layer", "wall µs", "CPU µs", "CPU over the driver alone", "driver alone ÷ this (wall)"):
            table.add_column(name, justify="left" if name == "layer" else "right")
        for layer, micros in layers.items():
            table.add_row(
                layer,
                f"{micros['wall']:.0f}",
                f"{micros['cpu']:.0f}",
                f"{micros['cpu'] - alone['cpu']:+.0f}",
                f"{alone['wall'] / micros['wall']:.2f}",
            )
        console.print(table)
    for dialect in ("sqlite", "postgresql"):
        if f"breakdown_us_{dialect}" not in extra:
            continue
        title = f"One one-event unit of work on juwei's {dialect}, step by step (µs, median of {args.single:,})"
        table = Table(title=title)
        table.add_column("step")
        table.add_column("µs", justify="right")
        for step, micros in extra[f"breakdown_us_{dialect}"].items():
            table.add_row(step, f"{micros:.1f}")
        console.print(table)
        console.print(extra[f"profile_text_{dialect}"], markup=False, highlight=False)
        console.print(f"pyinstrument HTML: {extra[f'profile_html_{dialect}']}")
    if "profile_pg_batch" in extra:
        console.print("PostgreSQL, append_many of 100 streams × 5 per unit of work, under pyinstrument:")
        console.print(extra["profile_pg_batch"], markup=False, highlight=False)
    pg = facts.get("postgres", {})
    console.print(
        f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']}, Python {facts['python']}, "
        f"SQLite {sqlite3.sqlite_version}"
        + (f", PostgreSQL {pg.get('server_version')}, wal_sync_method={pg.get('wal_sync_method')}" if pg else "")
        + f"; load average {facts['load']} at the start, {os.getloadavg()[0]:.2f} at the end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
