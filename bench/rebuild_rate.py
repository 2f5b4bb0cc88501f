"""Projection rebuild rate (``Projector.rebuild``, what ``juwei replay`` runs) and how it grows with the log.

Three layers, each at three sizes of the log (the same database grows between sizes), on SQLite files as
``juwei.database`` configures them:

* kernel: a projection that takes every event and does nothing with it: what the replay itself costs
  (reading the log in chunks, decoding each row into an ``Envelope``, merging own events with the inbox,
  handing each to the projection, all in one transaction under the append lock);
* counter: one small read model fed by every event, written as juwei's read models are (``apply_many``:
  counts kept in memory for a run, then one upsert per household touched, ``write_many``);
* counter-per-event (only when asked for): the same read model with an UPDATE built and run per event
  (an INSERT the first time), for comparison;
* testing: the testing service's own projections (register, points, rounds, results, cases,
  disinfections) over a round's log: residents' events in the inbox (as its consumer stores them) and
  the round's own events (every resident's SampleCollected, every pool's TubeResulted).

Rates are events replayed per second; "per event" divides the time by the events, so a flat column means
linear growth; the CPU columns (this process's CPU time) are far less disturbed by other load on the
machine than the wall clock. ``--profile`` adds a pyinstrument pass of one rebuild per layer at the middle
size. The goal is 50,000 events/s.

    .venv/bin/python bench/rebuild_rate.py                               # 50k/100k/200k events (~3 min)
    .venv/bin/python bench/rebuild_rate.py --sizes 100000,200000,400000 --testing-residents 10000,20000,40000
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import benchlib
from benchlib import BENCH_HOME
from rich.console import Console
from rich.table import Table
from sqlalchemy import Column, Integer, MetaData, String, func, insert, select, update
from sqlalchemy import Table as SqlTable
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from contracts import testing as testing_events
from juwei.events import Envelope, dump_json, utcnow
from juwei.observability import configure_logging
from juwei.projection import Projection, Projector, write_many
from juwei.service import Runtime
from juwei.session import Session
from juwei.settings import Settings
from juwei.store import events_table, inbox_table
from services.testing.app import service as testing_service
from tests.testing.compound import make_compound

GOAL = 50_000.0
bench_tables = MetaData()
household_counts = SqlTable(
    "bench_household_counts",
    bench_tables,
    Column("household", String(200), primary_key=True),
    Column("deliveries", Integer, nullable=False),
    Column("items", Integer, nullable=False),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50000,100000,200000", help="events in the log (kernel, counter)")
    parser.add_argument(
        "--testing-residents", default="5000,10000,20000", help="residents of the testing round's log (3 sizes)"
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="kernel rebuilds per size, the best kept (the slower layers run once)"
    )
    parser.add_argument(
        "--layers",
        default="kernel,counter,testing",
        help="which layers to run (comma-separated): kernel, counter, counter-per-event, testing",
    )
    parser.add_argument("--profile", action="store_true", help="a pyinstrument pass per layer at the middle size")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    return parser.parse_args()


class Nothing(Projection):
    """Takes every event and keeps nothing: the replay's own cost."""

    name = "bench_nothing"
    tables: ClassVar = ()

    def apply(self, session: Session, envelope: Envelope) -> None:
        return None


# Add a run's counts to a household's row, or start it: one executemany per run (SQLite's dialect, as the bench's).
_ADD_COUNTS = sqlite_insert(household_counts)
_ADD_COUNTS = _ADD_COUNTS.on_conflict_do_update(
    index_elements=["household"],
    set_={
        "deliveries": household_counts.c.deliveries + _ADD_COUNTS.excluded.deliveries,
        "items": household_counts.c["items"] + _ADD_COUNTS.excluded["items"],
    },
)


class Counter(Projection):
    """Deliveries and items per household, as a juwei read model is written: counts kept in memory for a run
    of events (a rebuild's chunk, one unit of work's events live), then one upsert per household touched."""

    name = "bench_counter"
    tables: ClassVar = (household_counts,)
    types = frozenset({benchlib.SupplyDelivered.type_name()})

    def apply(self, session: Session, envelope: Envelope) -> None:
        self.apply_many(session, [envelope])

    def apply_many(self, session: Session, envelopes: Sequence[Envelope]) -> None:
        counts: dict[str, list[int]] = {}
        for envelope in envelopes:
            data = envelope.data  # own events, validated when appended
            household = counts.setdefault(data["household"], [0, 0])
            household[0] += 1
            household[1] += data["items"]
        write_many(
            session,
            _ADD_COUNTS,
            [{"household": key, "deliveries": n, "items": items} for key, (n, items) in counts.items()],
        )


class CounterPerEvent(Projection):
    """The same read model written the naive way: an UPDATE built per event (an INSERT the first time)."""

    name = "bench_counter_per_event"
    tables: ClassVar = (household_counts,)
    types = frozenset({benchlib.SupplyDelivered.type_name()})

    def apply(self, session: Session, envelope: Envelope) -> None:
        household, items = envelope.data["household"], envelope.data["items"]
        changed = session.execute(
            update(household_counts)
            .where(household_counts.c.household == household)
            .values(deliveries=household_counts.c.deliveries + 1, items=household_counts.c["items"] + items)
        ).rowcount
        if not changed:
            session.execute(insert(household_counts).values(household=household, deliveries=1, items=items))


def household_rows(database: Any) -> list[tuple[Any, ...]]:
    """The counter's read model, to check that both ways of writing it agree."""
    with database.reading() as session:
        return [tuple(row) for row in session.execute(select(household_counts).order_by(household_counts.c.household))]


def peak_rss_mib() -> float:
    """This process's high-water mark of resident memory so far (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed_rebuild(projector: Projector, repeats: int) -> tuple[int, float, float]:
    """(events replayed, wall seconds, CPU seconds) of the best of ``repeats`` rebuilds (by wall time)."""
    best, best_cpu = float("inf"), float("inf")
    replayed = 0
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        replayed = projector.rebuild()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if elapsed < best:
            best, best_cpu = elapsed, cpu
    return replayed, best, best_cpu


def profile(projector: Projector, out: Path) -> str:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument is not installed: .venv/bin/pip install pyinstrument"
    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        projector.rebuild()
    finally:
        profiler.stop()
    out.write_text(profiler.output_html())
    return profiler.output_text(unicode=True, color=False, show_all=False)


# ------------------------------------------------------------------------------------------ the testing log


def testing_log(runtime: Runtime, residents: int, compound_id: str) -> int:
    """Residents' events into the inbox and a round's own events into the log, without projecting them."""
    compound = make_compound(compound_id, buildings=max(25, residents // 200), residents=residents, seed=residents)
    base = utcnow() - timedelta(days=1)
    with runtime.database.unit_of_work() as session:
        rows = [
            {
                "consumer": runtime.group,
                "event_id": envelope.id,
                "type": envelope.type,
                "envelope": dump_json(envelope.to_cloudevent()).decode(),
                "received_at": base + timedelta(microseconds=n),
            }
            for n, envelope in enumerate(compound.envelopes)
        ]
        session.execute(insert(inbox_table), rows)
    c = compound.compound
    hooks, runtime.store.on_append = runtime.store.on_append, []  # fill the log only: rebuild projects it
    try:
        people = list(compound.residents.items())
        tubes = [people[start : start + 10] for start in range(0, len(people), 10)]
        round_id, at = f"{c}:r1", utcnow()
        for first in range(0, len(tubes), 100):
            batches = []
            for number, tube in enumerate(tubes[first : first + 100], start=first + 1):
                tube_id = f"{c}:T{number:06d}"
                events: list[Any] = [
                    testing_events.SampleCollected(
                        round=round_id,
                        tube=tube_id,
                        point=f"{c}:p{number % 6 + 1}",
                        resident=f"{c}:{resident}",
                        household=f"{c}:{household}",
                        building=f"{c}:{building}",
                        kind="pooled",
                        attempt=1,
                        collected_at=at,
                    )
                    for resident, (building, household, _floor, _bedridden) in tube
                ]
                events.append(
                    testing_events.TubeResulted(
                        round=round_id,
                        tube=tube_id,
                        result="negative",
                        residents=[f"{c}:{resident}" for resident, _ in tube],
                        resulted_at=at,
                    )
                )
                batches.append((f"tube-{tube_id}", events, 0, c))
            with runtime.database.unit_of_work() as session:
                runtime.store.append_many(session, batches)
    finally:
        runtime.store.on_append = hooks
    with runtime.database.reading() as session:
        own = session.execute(select(func.count()).select_from(events_table)).scalar() or 0
        received = session.execute(select(func.count()).select_from(inbox_table)).scalar() or 0
    return int(own) + int(received)


# -------------------------------------------------------------------------------------------------- main


def main() -> int:
    args = parse_args()
    configure_logging("WARNING")  # one line per rebuild would interleave with the figures
    console = Console(stderr=args.json, width=None if sys.stdout.isatty() else 130)
    log = console.log
    facts = benchlib.machine()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    testing_sizes = sorted(int(x) for x in args.testing_residents.split(","))
    folder = BENCH_HOME / "rebuild"
    folder.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    profiles: dict[str, str] = {}

    chosen = set(args.layers.split(","))
    database = benchlib.open_database(benchlib.fresh_sqlite(folder / "log.db"))
    try:
        bench_tables.create_all(database.engine)
        store = benchlib.new_store()
        layers: list[tuple[str, Callable[[], Projector]]] = [
            ("kernel", lambda: Projector(database, store, [Nothing()])),
            ("counter", lambda: Projector(database, store, [Counter()])),
            ("counter-per-event", lambda: Projector(database, store, [CounterPerEvent()])),
        ]
        projectors = {name: make() for name, make in layers if name in chosen}
        households = benchlib.Households(4000)
        filled = 0
        for index, size in enumerate(sizes if projectors else []):
            fill_seconds = benchlib.fill(database, store, size - filled, households=households)
            log(f"log: {size:,} events ({fill_seconds:.1f} s to append the last {size - filled:,})")
            filled = size
            counted: dict[str, list[tuple[Any, ...]]] = {}
            for name, projector in projectors.items():
                replayed, seconds, cpu = timed_rebuild(projector, args.repeats if name == "kernel" else 1)
                if name.startswith("counter"):
                    counted[name] = household_rows(database)
                    if len(set(map(tuple, counted.values()))) > 1:
                        raise SystemExit(f"the counter's layers disagree at {size:,} events")
                row = {"layer": name, "events": replayed, "seconds": round(seconds, 3), "cpu": round(cpu, 3)}
                results.append({**row, "peak_rss_mib": round(peak_rss_mib())})
                log(
                    f"{name:17s} {replayed:>9,} events in {seconds:6.2f} s = {replayed / seconds:>9,.0f} events/s "
                    f"({replayed / cpu:,.0f} per CPU-second)"
                )
                if args.profile and index == len(sizes) // 2:
                    profiles[name] = profile(projector, folder / f"rebuild_{name}.html")
    finally:
        database.dispose()

    testing_db = folder / "testing.db"
    benchlib.fresh_sqlite(testing_db)
    runtime = Runtime(
        testing_service,
        Settings(data_dir=folder, kafka_bootstrap="127.0.0.1:1"),
        database_url=f"sqlite:///{testing_db}",
    )
    try:
        runtime.migrate()
        previous = 0
        for index, residents in enumerate(testing_sizes if "testing" in chosen else []):
            testing_log(runtime, residents - previous, f"rb{index}")
            previous = residents
            replayed, seconds, cpu = timed_rebuild(runtime.projector, 1)
            row = {"layer": "testing", "events": replayed, "seconds": round(seconds, 3), "cpu": round(cpu, 3)}
            results.append({**row, "residents": residents, "peak_rss_mib": round(peak_rss_mib())})
            log(
                f"{'testing':17s} {replayed:>9,} events in {seconds:6.2f} s = {replayed / seconds:>9,.0f} events/s "
                f"({replayed / cpu:,.0f} per CPU-second)"
            )
            if args.profile and index == len(testing_sizes) // 2:
                profiles["testing"] = profile(runtime.projector, folder / "rebuild_testing.html")
    finally:
        runtime.database.dispose()

    if args.json:
        print(json.dumps({"benchmark": "rebuild_rate", "machine": facts, "results": results}, indent=2))
        return 0
    table = Table(title=f"Projection rebuild (Projector.rebuild); kernel: best of {args.repeats}")
    columns = (
        "layer",
        "events",
        "seconds",
        "events/s",
        "÷ goal",
        "µs per event",
        "CPU µs per event",
        "per CPU-s",
        "peak RSS MiB",
    )
    for name in columns:
        table.add_column(name, justify="left" if name == "layer" else "right")
    for row in results:
        rate = row["events"] / row["seconds"]
        table.add_row(
            row["layer"] + (f" ({row['residents']:,} residents)" if "residents" in row else ""),
            f"{row['events']:,}",
            f"{row['seconds']:.2f}",
            f"{rate:,.0f}",
            f"{rate / GOAL:.2f}",
            f"{row['seconds'] / row['events'] * 1e6:.1f}",
            f"{row['cpu'] / row['events'] * 1e6:.1f}",
            f"{row['events'] / row['cpu']:,.0f}",
            f"{row['peak_rss_mib']:,}",
        )
    console.print(table)
    for name, text in profiles.items():
        console.print(f"pyinstrument, {name}:")
        console.print(text, markup=False, highlight=False)
    console.print(
        f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']}, Python {facts['python']}; "
        f"load average {facts['load']} at the start, {os.getloadavg()[0]:.2f} at the end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
