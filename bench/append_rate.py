"""Append rate of the event store, and of the ``eventsourcing`` library on the same machine in the same run.

Configurations (each on a fresh database, measured ``--repeats`` times in alternating order, median reported):

* juwei / SQLite file, as ``juwei.database`` configures it: WAL, ``synchronous=FULL`` (a commit fsyncs the
  WAL), pooled connections. The like-for-like comparison with eventsourcing, whose SQLite module also
  runs WAL with ``synchronous=FULL`` on pooled connections.
* juwei / SQLite file with ``synchronous=NORMAL`` (a commit does not fsync; the WAL is synced at
  checkpoints): what the durability of each commit costs. Not juwei's configuration.
* eventsourcing / SQLite file: ``Application`` + ``Aggregate`` with PERSISTENCE_MODULE=eventsourcing.sqlite.
* juwei / PostgreSQL (``LocalPostgres``, not fast mode: fsync on, synchronous_commit on). ``--no-postgres``
  skips it.

Modes: ``1/txn`` one event per transaction (``Database.unit_of_work()`` + ``EventStore.append``, or
``app.save(aggregate)``); ``N/txn`` N events per transaction in N/5 appends of 5 events to as many streams;
``N/txn, append_many`` the same N events in one ``EventStore.append_many`` call (one version query, one
insert: the bulk path); ``N/txn, 1 stream`` N events in one append to one stream. Every append checks the
expected version. Building the events is inside the clock on both sides. eventsourcing saves N/5
aggregates with one ``app.save(*aggregates)`` in both batched modes (it has one way to do it).

``--profile`` adds an untimed pass of one-event units of work on juwei's SQLite under pyinstrument, and
a breakdown of one such unit of work (Python's ``perf_counter`` around each of its steps).

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
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import benchlib
from benchlib import BENCH_HOME, Households, Runs, fmt_rate
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from rich.console import Console
from rich.table import Table
from sqlalchemy import event as sa_event
from sqlalchemy import text

import juwei.store
from juwei.database import Database
from juwei.events import dump_json, new_event_id, payload, utcnow
from juwei.store import EventStore

PER_APPEND = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=2000, help="events per run, one per transaction")
    parser.add_argument("--batched", type=int, default=20_000, help="events per run in batched modes")
    parser.add_argument("--batch-size", type=int, default=500, help="events per transaction when batched")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration and mode (default 3)")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-normal", action="store_true", help="skip juwei on SQLite with synchronous=NORMAL")
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


def juwei_target(
    database: Database, config: str, batch_size: int, streams: int, store_class: type[EventStore] = EventStore
) -> Target:
    store = store_class(benchlib.SOURCE, benchlib.registry)
    households = Households(streams)

    def run(mode: str, total: int) -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        if mode == "single":
            for _ in range(total):
                with database.unit_of_work() as session:
                    households.append(store, session, households.next_stream(), 1)
        elif mode == "batched":
            for _ in range(total // batch_size):
                with database.unit_of_work() as session:
                    for _ in range(batch_size // PER_APPEND):
                        households.append(store, session, households.next_stream(), PER_APPEND)
        elif mode == "append_many":
            for _ in range(total // batch_size):
                with database.unit_of_work() as session:
                    batches = []
                    for _ in range(batch_size // PER_APPEND):
                        stream = households.next_stream()
                        events = [households.event(stream) for _ in range(PER_APPEND)]
                        batches.append((stream, events, households.versions[stream], benchlib.COMPOUND))
                        households.versions[stream] += PER_APPEND
                    store.append_many(session, batches)
        else:  # one append of batch_size events to one stream per transaction
            for _ in range(total // batch_size):
                with database.unit_of_work() as session:
                    households.append(store, session, households.next_stream(), batch_size)
        return time.perf_counter() - started, time.process_time() - cpu

    system = "juwei" if store_class is EventStore else "juwei what-if"
    return Target(system, database.dialect, config, run, database.dispose)


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
    """µs per one-event unit of work, step by step (medians), with the time spent inside sqlite3 itself."""
    store = EventStore(benchlib.SOURCE, benchlib.registry)
    households = Households(100)
    steps: dict[str, list[float]] = defaultdict(list)
    in_driver: dict[str, float] = defaultdict(float)
    started_at: list[float] = []

    @sa_event.listens_for(database.engine, "before_cursor_execute")
    def _before(*_args: Any) -> None:
        started_at.append(time.perf_counter())

    @sa_event.listens_for(database.engine, "after_cursor_execute")
    def _after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        kind = statement.split(None, 1)[0].upper()
        kind = "SELECT max(version)" if kind == "SELECT" else kind
        in_driver[kind] += time.perf_counter() - started_at.pop()

    original_version = store.stream_version
    original_row = juwei.store._row
    inner: dict[str, float] = defaultdict(float)

    def timed_version(session: Any, stream_id: str) -> int:
        t = time.perf_counter()
        try:
            return original_version(session, stream_id)
        finally:
            inner["version"] += time.perf_counter() - t

    def timed_row(envelope: Any, actor: Any) -> dict[str, Any]:
        t = time.perf_counter()
        try:
            return original_row(envelope, actor)
        finally:
            inner["row"] += time.perf_counter() - t

    store.stream_version = timed_version  # type: ignore[method-assign]
    juwei.store._row = timed_row  # type: ignore[assignment]
    try:
        for _ in range(appends):
            inner.clear()
            stream = households.next_stream()
            t0 = time.perf_counter()
            unit = database.unit_of_work()
            session = unit.__enter__()
            t1 = time.perf_counter()
            session.connection()  # pool checkout and BEGIN IMMEDIATE (append would do it on its first statement)
            t2 = time.perf_counter()
            new = [households.event(stream)]
            t3 = time.perf_counter()
            store.append(session, stream, new, expected_version=households.versions[stream], compound="c-bench")
            households.versions[stream] += 1
            t4 = time.perf_counter()
            unit.__exit__(None, None, None)
            t5 = time.perf_counter()
            steps["1 Session()"].append(t1 - t0)
            steps["2 pool checkout + BEGIN IMMEDIATE"].append(t2 - t1)
            steps["3 build the event (pydantic)"].append(t3 - t2)
            steps["4a append: SELECT max(version)"].append(inner["version"])
            steps["4b append: envelope, uuid4, dump_json (_row)"].append(inner["row"])
            steps["4c append: INSERT … RETURNING, with_position, hooks"].append(
                (t4 - t3) - inner["version"] - inner["row"]
            )
            steps["5 before-commit hooks, COMMIT (fsync), close"].append(t5 - t4)
            steps["total"].append(t5 - t0)
    finally:
        store.stream_version = original_version  # type: ignore[method-assign]
        juwei.store._row = original_row  # type: ignore[assignment]
        sa_event.remove(database.engine, "before_cursor_execute", _before)
        sa_event.remove(database.engine, "after_cursor_execute", _after)
    result = {step: statistics.median(values) * 1e6 for step, values in sorted(steps.items())}
    for kind, seconds in sorted(in_driver.items()):
        result[f"inside sqlite3: {kind} (mean)"] = seconds / appends * 1e6
    return result


def sqlite3_floor(path: Path, appends: int = 2000) -> float:
    """One-event transactions with the sqlite3 module alone: the same two statements, WAL, FULL; events/s.

    The floor any Python layer on this file can reach: what is left above it is juwei's (and SQLAlchemy's).
    """
    benchlib.fresh_sqlite(path)
    database = benchlib.open_database(f"sqlite:///{path}")  # the same schema, made by the migrations
    database.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    households = Households(100)
    insert = (
        "INSERT INTO juwei_events (id, stream_id, version, compound, type, building, time, data, private, "
        "traceparent, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING position"
    )
    started = time.perf_counter()
    for _ in range(appends):
        stream = households.next_stream()
        event = households.event(stream)
        conn.execute("BEGIN IMMEDIATE")
        current = conn.execute("SELECT max(version) FROM juwei_events WHERE stream_id = ?", (stream,)).fetchone()[0]
        conn.execute(
            insert,
            (
                new_event_id(),
                stream,
                (current or 0) + 1,
                "c-bench",
                event.type_name(),
                event.building_id(),
                str(utcnow().replace(tzinfo=None)),
                dump_json(payload(event)).decode(),
                None,
                None,
                None,
            ),
        ).fetchone()
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return appends / elapsed


# ------------------------------------------------------------------------------------------------ main


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
    yield eventsourcing_target(folder / "eventsourcing.db", args.batch_size, streams)
    if not args.no_postgres:
        server = servers["postgres"] = stack.enter_context(benchlib.local_postgres(log))
        database = benchlib.open_database(server.create_database("bench_append"))
        settings = benchlib.postgres_settings(database)
        facts["postgres"] = settings
        config = f"fsync={settings['fsync']}, synchronous_commit={settings['synchronous_commit']}"
        yield juwei_target(database, config, args.batch_size, streams)


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
        extra["sqlite3_floor_single"] = round(sqlite3_floor(BENCH_HOME / "append" / "sqlite3_floor.db"), 1)
        log(f"sqlite3 module alone, 1/txn: {extra['sqlite3_floor_single']:,.0f} events/s")
        if args.profile:
            database = benchlib.open_database(benchlib.fresh_sqlite(BENCH_HOME / "append" / "juwei_breakdown.db"))
            try:
                extra["breakdown_us"] = {k: round(v, 1) for k, v in breakdown_single(database).items()}
            finally:
                database.dispose()
            database = benchlib.open_database(benchlib.fresh_sqlite(BENCH_HOME / "append" / "juwei_profile.db"))
            try:
                html = BENCH_HOME / "append_profile.html"
                extra["profile_text"] = profile_single(database, html)
                extra["profile_html"] = str(html)
            finally:
                database.dispose()
            if "postgres" in servers:
                database = benchlib.open_database(servers["postgres"].create_database("bench_append_profile"))
                try:
                    extra["profile_pg_batch"] = profile_batch(database, BENCH_HOME / "append_profile_pg.html")
                finally:
                    database.dispose()

    es = {mode: runs.median for (index, mode), runs in results.items() if made[index].system == "eventsourcing"}
    es_cpu = {mode: runs.cpu_median for (index, mode), runs in results.items() if made[index].system == "eventsourcing"}
    rows = []
    for (index, mode), runs in results.items():
        target = made[index]
        comparable = target.system.startswith("juwei") and target.database == "sqlite"
        rows.append(
            {
                "system": target.system,
                "database": target.database,
                "config": target.config,
                "mode": mode,
                "events_per_transaction": 1 if mode == "single" else args.batch_size,
                "median_events_per_s": round(runs.median, 1),
                # juwei on SQLite against eventsourcing on SQLite, same mode (PostgreSQL is not comparable).
                "ratio_to_eventsourcing": round(runs.median / es[mode], 3) if comparable else None,
                # Events per CPU-second of this process (the PostgreSQL server's own CPU is not in it).
                "median_events_per_cpu_s": round(runs.cpu_median, 1),
                "cpu_ratio_to_eventsourcing": round(runs.cpu_median / es_cpu[mode], 3) if comparable else None,
                "runs": runs.as_json()["runs"],
            }
        )
    if args.json:
        print(json.dumps({"benchmark": "append_rate", "machine": facts, "results": rows, **extra}, indent=2))
        return 0
    order = {"sqlite": 0, "postgresql": 1}
    for mode in MODES:
        table = Table(title=f"Append rate, {mode_label(mode, args.batch_size)}, median of {args.repeats} runs")
        for name, justify in (
            ("system", "left"),
            ("database", "left"),
            ("config", "left"),
            ("events/s", "right"),
            ("runs", "right"),
            ("÷ eventsourcing", "right"),
            ("per CPU-s", "right"),
            ("÷ es (CPU)", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row in sorted(
            (r for r in rows if r["mode"] == mode),
            key=lambda r: (order[r["database"]], r["system"] == "eventsourcing", r["system"]),
        ):
            ratio = row["ratio_to_eventsourcing"]
            table.add_row(
                row["system"],
                row["database"],
                row["config"],
                fmt_rate(row["median_events_per_s"]),
                " ".join(fmt_rate(r["events"] / r["seconds"]) for r in row["runs"]),
                "" if ratio is None else f"{ratio:.2f}",
                fmt_rate(row["median_events_per_cpu_s"]),
                "" if row["cpu_ratio_to_eventsourcing"] is None else f"{row['cpu_ratio_to_eventsourcing']:.2f}",
            )
        console.print(table)
    console.print(
        "÷ eventsourcing: juwei on SQLite over eventsourcing on SQLite, same mode (medians). per CPU-s: events per "
        "CPU-second of this process (waiting for fsync is not CPU; the PostgreSQL server's CPU is not counted)."
    )
    console.print(
        f"sqlite3 module alone (same two statements, WAL, FULL), 1/txn: {extra['sqlite3_floor_single']:,.0f} events/s"
    )
    if "breakdown_us" in extra:
        table = Table(title="One one-event unit of work on juwei's SQLite, step by step (µs, median of 2,000)")
        table.add_column("step")
        table.add_column("µs", justify="right")
        for step, micros in extra["breakdown_us"].items():
            table.add_row(step, f"{micros:.1f}")
        console.print(table)
        console.print(extra["profile_text"], markup=False, highlight=False)
        console.print(f"pyinstrument HTML: {extra['profile_html']}")
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
