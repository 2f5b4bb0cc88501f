"""Append rate of the event store, and of the ``eventsourcing`` library on the same machine in the same run.

Configurations (each on a fresh database, measured ``--repeats`` times, median reported):

* juwei / SQLite file, as ``juwei.database`` configures it: WAL, ``synchronous=NORMAL`` (a commit does not
  fsync; the WAL is synced at checkpoints).
* juwei / SQLite file, WAL with ``synchronous=FULL`` (a commit fsyncs the WAL, as eventsourcing's SQLite
  module leaves it): the like-for-like comparison with eventsourcing.
* juwei / PostgreSQL (``LocalPostgres``, not fast mode: fsync on, synchronous_commit on). ``--no-postgres``
  skips it.
* eventsourcing / SQLite file: ``Application`` + ``Aggregate`` with PERSISTENCE_MODULE=eventsourcing.sqlite.

Modes: ``1/txn`` one event per transaction (``Database.unit_of_work()`` + ``EventStore.append``, or
``app.save(aggregate)``); ``N/txn`` N events per transaction spread over N/5 streams (5 events each, like
a bulk import); ``N/txn, 1 stream`` N events in one append to one stream. Every append checks the
expected version. Building the events is inside the clock on both sides.

Run from the repository root:  .venv/bin/python bench/append_rate.py [--json]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import time
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

from juwei.database import Database
from juwei.store import EventStore

PER_APPEND = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=2000, help="events per run, one per transaction")
    parser.add_argument("--batched", type=int, default=20_000, help="events per run in batched modes")
    parser.add_argument("--batch-size", type=int, default=500, help="events per transaction when batched")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration and mode (default 3)")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
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
    """Something to append to: ``run(mode, events)`` returns the seconds it took."""

    system: str
    database: str
    config: str
    run: Callable[[str, int], float]
    close: Callable[[], None]


def juwei_target(database: Database, config: str, batch_size: int, streams: int) -> Target:
    store = EventStore(benchlib.SOURCE, benchlib.registry)
    households = Households(streams)

    def run(mode: str, total: int) -> float:
        started = time.perf_counter()
        if mode == "single":
            for _ in range(total):
                with database.unit_of_work() as session:
                    households.append(store, session, households.next_stream(), 1)
        elif mode == "batched":
            for _ in range(total // batch_size):
                with database.unit_of_work() as session:
                    for _ in range(batch_size // PER_APPEND):
                        households.append(store, session, households.next_stream(), PER_APPEND)
        else:  # one append of batch_size events to one stream per transaction
            for _ in range(total // batch_size):
                with database.unit_of_work() as session:
                    households.append(store, session, households.next_stream(), batch_size)
        return time.perf_counter() - started

    return Target("juwei", database.dialect, config, run, database.dispose)


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

    def run(mode: str, total: int) -> float:
        started = time.perf_counter()
        if mode == "single":
            for _ in range(total):
                app.save(deliver(households.next_stream()))
        elif mode == "batched":
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
        return time.perf_counter() - started

    def close() -> None:
        app.close()

    return Target("eventsourcing", "sqlite", "WAL, synchronous=FULL (library default)", run, close)


def sqlite_synchronous_full(database: Database) -> None:
    """Make every new write connection fsync its commits (runs after juwei's own connect hook)."""

    @sa_event.listens_for(database.engine, "connect")
    def _full(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=FULL")


def sqlite_synchronous(database: Database) -> str:
    with database.unit_of_work() as session:
        value = session.execute(text("PRAGMA synchronous")).scalar()
    return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(value, str(value))


# ------------------------------------------------------------------------------------------------ main


MODES = ("single", "batched", "one_append")


def mode_label(mode: str, batch_size: int) -> str:
    return {
        "single": "1/txn",
        "batched": f"{batch_size}/txn ({batch_size // PER_APPEND} streams x {PER_APPEND})",
        "one_append": f"{batch_size}/txn (1 append)",
    }[mode]


def keep_connection_open(database: Database) -> Callable[[], None]:
    """Hold one idle connection to the file for the whole run; returns its closer.

    Not juwei's configuration: it shows what a connection that outlives the units of work changes. With
    ``NullPool`` every unit of work opens and closes the only connection, and SQLite checkpoints the WAL
    into the database file (with fsync) and deletes it whenever the last connection closes.
    """
    keeper = database.read_engine.raw_connection()
    keeper.cursor().execute("SELECT count(*) FROM juwei_events").fetchall()
    return keeper.close


def targets(args: argparse.Namespace, stack: ExitStack, log: Callable[..., None], facts: dict) -> Iterator[Target]:
    folder = BENCH_HOME / "append"
    streams = 100
    for full, keep in ((False, False), (True, False), (False, True), (True, True)):
        name = f"juwei_{'full' if full else 'normal'}{'_keep' if keep else ''}.db"
        database = benchlib.open_database(benchlib.fresh_sqlite(folder / name))
        if full:
            sqlite_synchronous_full(database)  # NullPool: every unit of work opens a new connection, which gets it
        config = f"WAL, synchronous={sqlite_synchronous(database)}"
        config += ", + 1 idle connection held open" if keep else (" (juwei default)" if not full else "")
        target = juwei_target(database, config, args.batch_size, streams)
        if keep:
            close_keeper, dispose = keep_connection_open(database), target.close
            target.close = lambda c=close_keeper, d=dispose: (c(), d())  # type: ignore[misc]
        yield target
    yield eventsourcing_target(folder / "eventsourcing.db", args.batch_size, streams)
    if not args.no_postgres:
        server = stack.enter_context(benchlib.local_postgres(log))
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
    with ExitStack() as stack:
        try:
            for target in targets(args, stack, log, facts):
                made.append(target)
            for rep in range(args.repeats):
                # Alternate the order so that no configuration always runs first (or last).
                for index in range(len(made)) if rep % 2 == 0 else reversed(range(len(made))):
                    target = made[index]
                    for mode in MODES:
                        total = args.single if mode == "single" else args.batched
                        seconds = target.run(mode, total)
                        runs = results.setdefault((index, mode), Runs(f"{target.system}/{mode}", [], []))
                        runs.events.append(total)
                        runs.seconds.append(seconds)
                        log(
                            f"run {rep + 1} {target.system:13s} {target.database:10s} {target.config[:24]:24s} "
                            f"{mode:10s} {total / seconds:>10,.0f} events/s"
                        )
        finally:
            for target in made:
                target.close()

    es = {mode: runs.median for (index, mode), runs in results.items() if made[index].system == "eventsourcing"}
    rows = []
    for (index, mode), runs in results.items():
        target = made[index]
        comparable = target.system == "juwei" and target.database == "sqlite"
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
                "runs": runs.as_json()["runs"],
            }
        )
    if args.json:
        print(json.dumps({"benchmark": "append_rate", "machine": facts, "results": rows}, indent=2))
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
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row in sorted(
            (r for r in rows if r["mode"] == mode), key=lambda r: (order[r["database"]], r["system"] != "juwei")
        ):
            ratio = row["ratio_to_eventsourcing"]
            table.add_row(
                row["system"],
                row["database"],
                row["config"],
                fmt_rate(row["median_events_per_s"]),
                " ".join(fmt_rate(r["events"] / r["seconds"]) for r in row["runs"]),
                "" if ratio is None else f"{ratio:.2f}",
            )
        console.print(table)
    console.print("÷ eventsourcing: juwei on SQLite over eventsourcing on SQLite, same mode (medians).")
    pg = facts.get("postgres", {})
    console.print(
        f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']}, Python {facts['python']}"
        + (f", PostgreSQL {pg.get('server_version')}, wal_sync_method={pg.get('wal_sync_method')}" if pg else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
