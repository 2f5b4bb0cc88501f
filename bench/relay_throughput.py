"""Outbox relay throughput against a raw kafka-python producer sending the very same records.

Fills an event store (SQLite, and PostgreSQL with ``--postgres``) with N events through
``EventStore.append``, then alternates, ``--repeats`` times each:

* relay: ``Relay.publish_once()`` in a loop until it returns 0 (backlog 0) → topic A. Each repetition
  uses a new checkpoint name, so it publishes the whole table again. The relay builds its records with
  ``RecordBuilder``.
* relay, record_from_row: the same, with the relay building each record with ``record_from_row`` (the
  per-row path it used before ``RecordBuilder``) → topic C. ``--no-old-builder`` leaves this side out.
* raw:   one ``KafkaProducer`` (same ``producer_config``) sends the records built beforehand from the
  same rows (same key, value and headers), then flushes once → topic B.

Both producers are created and have fetched the topic's metadata before the clock starts, and
``--warmup`` records go to a third topic first so that the broker's JIT is warm for both sides. Reported:
events/s per run, the medians and relay/raw (goal ≥ 0.9); and events per CPU-second of this process (all
its threads: the caller and kafka-python's sender), which other load on the machine disturbs far less.
``--profile`` adds an untimed relay pass under pyinstrument and a pass that times the phases of
``publish_once``. (The ``--what-if`` sides of earlier runs — ten columns, SQLite's time as text — are how
the relay itself reads now.)

Run from the repository root:  .venv/bin/python bench/relay_throughput.py [--events 100000] [--postgres]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import benchlib
from benchlib import SOURCE, Runs, fmt_rate
from kafka import KafkaProducer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from juwei.database import Database
from juwei.relay import RecordBuilder, Relay, producer_config, record_from_row
from juwei.store import events_table

GOAL = 0.9


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events in the table (default 100000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each side, alternating (default 5)")
    parser.add_argument(
        "--warmup", type=int, default=20_000, help="records sent untimed first, to warm up the broker's JIT"
    )
    parser.add_argument("--fill-batch", type=int, default=500, help="events per fill transaction (default 500)")
    parser.add_argument(
        "--relay-batch", type=int, default=None, help="Relay.batch_size (default: the Relay's own default)"
    )
    parser.add_argument("--partitions", type=int, default=6, help="partitions of both topics (default 6)")
    parser.add_argument("--postgres", action="store_true", help="also measure the relay on PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite (use with --postgres)")
    parser.add_argument("--profile", action="store_true", help="add a pyinstrument pass and a phase breakdown")
    parser.add_argument(
        "--no-old-builder",
        action="store_true",
        help="leave out the relay side that builds its records with record_from_row (before RecordBuilder)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    return parser.parse_args()


# ------------------------------------------------------------------------------------------ the sides


def record_from_row_builder(source: str) -> Callable[[Any], Any]:
    """The relay's per-row path before ``RecordBuilder``: ``record_from_row`` (``binary_headers``) for every row."""
    return lambda row: record_from_row(row, source)


def new_relay(
    database: Database, bootstrap: str, topic: str, name: str, batch: int | None, old_builder: bool = False
) -> Relay:
    relay = Relay(database, topic=topic, source=SOURCE, bootstrap=bootstrap, name=name)
    if batch:
        relay.batch_size = batch
    if old_builder:
        relay.build_record = record_from_row_builder(SOURCE)
    # Connect and fetch the topic's metadata before the clock starts (the raw side does the same).
    relay.producer.partitions_for(topic)
    return relay


def drain(relay: Relay) -> int:
    sent = 0
    while True:
        count = relay.publish_once()
        if count == 0:
            return sent
        sent += count


def run_relay(
    database: Database,
    bootstrap: str,
    topic: str,
    name: str,
    batch: int | None,
    old_builder: bool = False,
) -> tuple[int, float, float]:
    """(events, wall seconds, CPU seconds of this process) of one relay draining the whole table."""
    relay = new_relay(database, bootstrap, topic, name, batch, old_builder)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        sent = drain(relay)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        relay.close()
    left = relay.backlog()
    if left:
        raise RuntimeError(f"relay stopped with a backlog of {left}")
    return sent, elapsed, cpu


def run_raw(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one producer sending every record."""
    producer = KafkaProducer(**producer_config(bootstrap))
    producer.partitions_for(topic)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        futures = [producer.send(topic, key=key, value=value, headers=headers) for key, value, headers in records]
        producer.flush()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        for future in futures:
            future.get(timeout=0)  # outside the clock: only proves that every send succeeded
    finally:
        producer.close()
    return elapsed, cpu


# ------------------------------------------------------------------------------------ record builders


def builder_costs(rows: list[Any], repeats: int = 3) -> dict[str, float]:
    """µs per row of each way to build the records, in a hot loop over every row (best of ``repeats``)."""
    costs: dict[str, float] = {}
    for label, make in (
        ("RecordBuilder", lambda: RecordBuilder(SOURCE)),
        ("record_from_row", lambda: record_from_row_builder(SOURCE)),
    ):
        best = float("inf")
        for _ in range(repeats):
            build = make()
            started = time.perf_counter()
            for row in rows:
                build(row)
            best = min(best, time.perf_counter() - started)
        costs[label] = best / len(rows) * 1e6
    return costs


# ---------------------------------------------------------------------------------------- profiling


def profile_relay(database: Database, bootstrap: str, topic: str, batch: int | None, out: Path) -> str:
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument is not installed: .venv/bin/pip install pyinstrument"
    relay = new_relay(database, bootstrap, topic, f"bench-profile-{uuid.uuid4().hex[:6]}", batch)
    profiler = Profiler(interval=0.0005)
    try:
        profiler.start()
        drain(relay)
        profiler.stop()
    finally:
        relay.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(profiler.output_html())
    return profiler.output_text(unicode=True, color=False, show_all=False)


@contextmanager
def _timed(totals: dict[str, float], phase: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        totals[phase] += time.perf_counter() - started


def phase_breakdown(database: Database, bootstrap: str, topic: str, batch: int | None) -> dict[str, float]:
    """One relay pass with ``reading``/``flush``/``unit_of_work`` wrapped in timers (no profiler overhead)."""
    relay = new_relay(database, bootstrap, topic, f"bench-phases-{uuid.uuid4().hex[:6]}", batch)
    totals: dict[str, float] = defaultdict(float)
    producer = relay.producer
    original_flush = producer.flush
    original_reading, original_uow = database.reading, database.unit_of_work

    def wrap(fn: Callable[..., Any], phase: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with _timed(totals, phase):
                return fn(*args, **kwargs)

        return timed

    @contextmanager
    def reading() -> Iterator[Any]:
        with _timed(totals, "1 read batch (SELECT + fetch rows)"), original_reading() as session:
            yield session

    @contextmanager
    def unit_of_work() -> Iterator[Any]:
        with _timed(totals, "4 write checkpoint (commit)"), original_uow() as session:
            yield session

    producer.flush = wrap(original_flush, "3 flush (wait for acks)")  # type: ignore[method-assign]
    database.reading = reading  # type: ignore[method-assign]
    database.unit_of_work = unit_of_work  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        drain(relay)
        total = time.perf_counter() - started
    finally:
        database.reading, database.unit_of_work = original_reading, original_uow  # type: ignore[method-assign]
        producer.flush = original_flush  # type: ignore[method-assign]
        relay.close()
    totals["2 build records + send + future.get"] = total - sum(totals.values())
    totals["total"] = total
    return dict(sorted(totals.items()))


# -------------------------------------------------------------------------------------------- main


def measure_backend(
    backend: str, database: Database, bootstrap: str, args: argparse.Namespace, log: Callable[..., None]
) -> dict[str, Any]:
    store = benchlib.new_store()
    fill_seconds = benchlib.fill(database, store, args.events, per_transaction=args.fill_batch)
    log(f"{backend}: filled {args.events:,} events in {fill_seconds:.1f} s ({args.events / fill_seconds:,.0f}/s)")
    with database.reading() as session:
        count = session.execute(select(func.count()).select_from(events_table)).scalar()
        rows = session.execute(select(events_table).order_by(events_table.c.position)).all()
    if count != args.events:
        raise RuntimeError(f"{backend}: table holds {count} events, expected {args.events}")
    build = RecordBuilder(SOURCE)
    records = [build(row) for row in rows]
    if records != [record_from_row(row, SOURCE) for row in rows]:
        raise RuntimeError("RecordBuilder does not reproduce record_from_row")
    costs = builder_costs(rows)
    log(f"{backend}: building one record: " + ", ".join(f"{k} {v:.2f} µs" for k, v in costs.items()))
    value_bytes = sum(len(v) for _, v, _ in records) / len(records)
    header_bytes = sum(len(k) + len(v) for _, _, h in records for k, v in h) / len(records)

    run_id = uuid.uuid4().hex[:8]
    sides = ["relay"] + ([] if args.no_old_builder else ["relay-old"])
    sides += ["raw"]
    topics = {side: f"juwei-bench-{side}-{backend}-{run_id}" for side in sides}
    topic_w = f"juwei-bench-warmup-{backend}-{run_id}"
    benchlib.create_topics(bootstrap, [*topics.values(), topic_w], partitions=args.partitions)
    runs = {side: Runs(side, [], []) for side in sides}
    extra: dict[str, Any] = {}
    try:
        if args.warmup:
            seconds, _cpu = run_raw(bootstrap, topic_w, records[: args.warmup])
            log(f"{backend}: warm-up {min(args.warmup, len(records)):,} records ({seconds:.2f} s, not counted)")
        for rep in range(args.repeats):
            for side in sides if rep % 2 == 0 else sides[::-1]:
                if side == "raw":
                    sent, (seconds, cpu) = len(records), run_raw(bootstrap, topics[side], records)
                else:
                    old = side == "relay-old"
                    name = f"bench-{side}-{rep}"
                    sent, seconds, cpu = run_relay(database, bootstrap, topics[side], name, args.relay_batch, old)
                runs[side].events.append(sent)
                runs[side].seconds.append(seconds)
                runs[side].cpu_seconds.append(cpu)
                log(
                    f"{backend}: run {rep + 1} {side:9s} {sent / seconds:>8,.0f} events/s ({seconds:.2f} s), "
                    f"{sent / cpu:>8,.0f} events per CPU-second"
                )
        for side, topic in topics.items():
            size = benchlib.topic_size(bootstrap, topic)
            if size != sum(runs[side].events):
                raise RuntimeError(f"{topic} holds {size} records, expected {sum(runs[side].events)}")
        relay_runs, raw_runs = runs["relay"], runs["raw"]
        ratio = relay_runs.median / raw_runs.median
        if args.profile:
            log(f"{backend}: phase breakdown pass")
            phases = phase_breakdown(database, bootstrap, topics["relay"], args.relay_batch)
            extra["phases_seconds"] = {k: round(v, 3) for k, v in phases.items()}
            log(f"{backend}: pyinstrument pass")
            html = benchlib.BENCH_HOME / f"relay_profile_{backend}.html"
            extra["profile_text"] = profile_relay(database, bootstrap, topics["relay"], args.relay_batch, html)
            extra["profile_html"] = str(html)
    finally:
        benchlib.delete_topics(bootstrap, [*topics.values(), topic_w])
    return {
        "backend": backend,
        "events": args.events,
        "fill_seconds": round(fill_seconds, 2),
        "record_build_us": {k: round(v, 3) for k, v in costs.items()},
        "avg_value_bytes": round(value_bytes, 1),
        "avg_header_bytes": round(header_bytes, 1),
        "relay": relay_runs.as_json(),
        "raw": raw_runs.as_json(),
        "ratio_relay_over_raw": round(ratio, 3),
        "cpu_ratio_relay_over_raw": round(relay_runs.cpu_median / raw_runs.cpu_median, 3),
        "relay_batch_size": args.relay_batch or Relay.batch_size,
        **(
            {
                "relay_old": runs["relay-old"].as_json(),
                "ratio_relay_old_over_raw": round(runs["relay-old"].median / raw_runs.median, 3),
                "cpu_ratio_relay_old_over_raw": round(runs["relay-old"].cpu_median / raw_runs.cpu_median, 3),
            }
            if "relay-old" in runs
            else {}
        ),
        **extra,
    }


def describe_postgres(settings: dict[str, str]) -> str:
    return (
        f"{settings['server_version']} ({', '.join(f'{k}={v}' for k, v in settings.items() if k != 'server_version')})"
    )


def main() -> int:
    args = parse_args()
    console = Console(stderr=args.json, width=None if sys.stdout.isatty() else 120)
    log = console.log
    results: list[dict[str, Any]] = []
    facts = benchlib.machine()
    with ExitStack() as stack:
        bootstrap = stack.enter_context(benchlib.kafka_bootstrap(log))
        targets: list[tuple[str, Callable[[], str]]] = []
        if not args.no_sqlite:
            targets.append(("sqlite", lambda: benchlib.fresh_sqlite(benchlib.BENCH_HOME / "relay" / "events.db")))
        if args.postgres:
            server = stack.enter_context(benchlib.local_postgres(log))
            targets.append(("postgresql", lambda: server.create_database("bench_relay")))
        for backend, make_url in targets:
            database = benchlib.open_database(make_url())
            try:
                if backend == "postgresql":
                    facts["postgres"] = benchlib.postgres_settings(database)
                results.append(measure_backend(backend, database, bootstrap, args, log))
            finally:
                database.dispose()

    if args.json:
        print(json.dumps({"benchmark": "relay_throughput", "machine": facts, "results": results}, indent=2))
        return 0
    table = Table(title=f"Relay vs raw KafkaProducer, {args.events:,} events, median of {args.repeats}")
    table.add_column("database")
    table.add_column("side")
    table.add_column("events/s", justify="right")
    table.add_column("÷ raw", justify="right")
    table.add_column("events per CPU-s", justify="right")
    table.add_column("÷ raw (CPU)", justify="right")
    table.add_column("runs (events/s)", justify="right")
    for r in results:
        raw_median = r["raw"]["median_events_per_s"]
        raw_cpu = r["raw"]["median_events_per_cpu_s"]
        for key, side in (
            ("relay", "relay (RecordBuilder)"),
            ("relay_old", "relay, record_from_row"),
            ("raw", "raw"),
        ):
            if key not in r:
                continue
            median = r[key]["median_events_per_s"]
            ratio = median / raw_median
            cpu_median = r[key]["median_events_per_cpu_s"]
            colour = "" if key == "raw" else ("green" if ratio >= GOAL else "red")
            table.add_row(
                r["backend"],
                side,
                fmt_rate(median),
                f"[{colour}]{ratio:.2f}[/]" if colour else f"{ratio:.2f}",
                fmt_rate(cpu_median),
                f"{cpu_median / raw_cpu:.2f}",
                " ".join(fmt_rate(x["events"] / x["seconds"]) for x in r[key]["runs"]),
            )
    console.print(table)
    for r in results:
        console.print(
            f"{r['backend']}: fill {r['fill_seconds']} s; one record built in "
            + ", ".join(f"{k} {v:.2f} µs" for k, v in r["record_build_us"].items())
            + f" (hot loop); value {r['avg_value_bytes']} B, headers {r['avg_header_bytes']} B per record; "
            f"relay batch {r['relay_batch_size']}"
        )
        if "phases_seconds" in r:
            phases = Table(title=f"{r['backend']}: where one relay pass spends its time")
            phases.add_column("phase")
            phases.add_column("seconds", justify="right")
            phases.add_column("share", justify="right")
            total = r["phases_seconds"]["total"]
            for phase, seconds in r["phases_seconds"].items():
                phases.add_row(phase, f"{seconds:.3f}", f"{seconds / total:.0%}")
            console.print(phases)
        if "profile_text" in r:
            console.print(r["profile_text"], markup=False, highlight=False)
            console.print(f"pyinstrument HTML: {r['profile_html']}")
    console.print(
        f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']}, Python {facts['python']}, "
        f"Kafka {facts['kafka']}, load average {facts['load']} at the start, {os.getloadavg()[0]:.2f} at the end"
        + (f", PostgreSQL {describe_postgres(facts['postgres'])}" if "postgres" in facts else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
