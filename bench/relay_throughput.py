"""Outbox relay throughput against a raw kafka-python producer sending the very same records.

Fills an event store (SQLite, and PostgreSQL with ``--postgres``) with N events through
``EventStore.append``, then alternates, ``--repeats`` times each:

* relay: ``Relay.publish_once()`` in a loop until it returns 0 (backlog 0) → topic A. Each repetition
  uses a new checkpoint name, so it publishes the whole table again.
* raw:   one ``KafkaProducer`` (same ``producer_config``) sends the records that ``record_from_row``
  built beforehand from the same rows (same key, value and headers), then flushes once → topic B.

Both producers are created and have fetched the topic's metadata before the clock starts, and
``--warmup`` records go to a third topic first so that the broker's JIT is warm for both sides. Reported:
events/s per run, the medians and relay/raw (goal ≥ 0.9). ``--profile`` adds an untimed relay pass
under pyinstrument and a pass that times the phases of ``publish_once``.

Run from the repository root:  .venv/bin/python bench/relay_throughput.py [--events 100000] [--postgres]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from operator import attrgetter
from typing import Any

import benchlib
from benchlib import SOURCE, Runs, fmt_rate
from kafka import KafkaProducer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

import juwei.relay
from juwei.database import Database
from juwei.events import CONTENT_TYPE, SPEC_VERSION, iso_time
from juwei.relay import Relay, producer_config, record_from_row
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
        "--proposed-builder",
        action="store_true",
        help="also measure, interleaved, the relay building its records with ProposedRecordBuilder (a what-if)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    return parser.parse_args()


# ------------------------------------------------------------------------------------------ the sides


def new_relay(database: Database, bootstrap: str, topic: str, name: str, batch: int | None) -> Relay:
    relay = Relay(database, topic=topic, source=SOURCE, bootstrap=bootstrap, name=name)
    if batch:
        relay.batch_size = batch
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


def run_relay(database: Database, bootstrap: str, topic: str, name: str, batch: int | None) -> tuple[int, float]:
    relay = new_relay(database, bootstrap, topic, name, batch)
    try:
        started = time.perf_counter()
        sent = drain(relay)
        elapsed = time.perf_counter() - started
    finally:
        relay.close()
    left = relay.backlog()
    if left:
        raise RuntimeError(f"relay stopped with a backlog of {left}")
    return sent, elapsed


def run_raw(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> float:
    producer = KafkaProducer(**producer_config(bootstrap))
    producer.partitions_for(topic)
    try:
        started = time.perf_counter()
        futures = [producer.send(topic, key=key, value=value, headers=headers) for key, value, headers in records]
        producer.flush()
        elapsed = time.perf_counter() - started
        for future in futures:
            future.get(timeout=0)  # outside the clock: only proves that every send succeeded
    finally:
        producer.close()
    return elapsed


# ------------------------------------------------------------------------------------ a proposed fix

_ROW_FIELDS = attrgetter(
    "position", "id", "stream_id", "version", "compound", "type", "building", "time", "data", "traceparent"
)


class ProposedRecordBuilder:
    """``record_from_row`` for a stream of rows, with byte-identical output (checked before every run).

    Encodes the constant headers once, fetches the row's fields with one ``attrgetter`` call, builds the
    extension headers inline (no dict, no generator, no ``str()`` of strings) and reuses the previous row's
    ``ce_time`` when the time is the same (every event of one append shares its time).
    """

    def __init__(self, source: str) -> None:
        self.spec = ("ce_specversion", SPEC_VERSION.encode())
        self.source = ("ce_source", source.encode())
        self.content_type = ("content-type", CONTENT_TYPE.encode())
        self.last_time: Any = None
        self.last_iso = b""

    def __call__(self, row: Any) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        position, id_, stream_id, version, compound, type_, building, moment, data, traceparent = _ROW_FIELDS(row)
        if moment != self.last_time:
            self.last_time, self.last_iso = moment, iso_time(moment).encode()
        headers = [
            self.spec,
            ("ce_id", id_.encode()),
            self.source,
            ("ce_type", type_.encode()),
            ("ce_subject", stream_id.encode()),
            ("ce_time", self.last_iso),
            self.content_type,
            ("ce_compound", compound.encode()),
            ("ce_streamversion", str(version).encode()),
            ("ce_position", str(position).encode()),
        ]
        if building is not None:
            headers.append(("ce_building", building.encode()))
        if traceparent is not None:
            headers.append(("ce_traceparent", traceparent.encode()))
        return (building or stream_id).encode(), data.encode(), headers


def proposed_record_from_row(rows: list[Any], records: list[Any]) -> Callable[[Any, str], Any]:
    """A drop-in for ``record_from_row`` backed by ProposedRecordBuilder, after proving identical output."""
    if [ProposedRecordBuilder(SOURCE)(row) for row in rows] != records:
        raise RuntimeError("ProposedRecordBuilder does not reproduce record_from_row")
    builders: dict[str, ProposedRecordBuilder] = {}

    def build(row: Any, source: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        builder = builders.get(source)
        if builder is None:
            builder = builders[source] = ProposedRecordBuilder(source)
        return builder(row)

    return build


@contextmanager
def relay_records_built_by(build: Callable[[Any, str], Any]) -> Iterator[None]:
    """Make ``Relay.publish_once`` (which looks ``record_from_row`` up in its module) call ``build``."""
    original = juwei.relay.record_from_row
    juwei.relay.record_from_row = build  # type: ignore[assignment]
    try:
        yield
    finally:
        juwei.relay.record_from_row = original


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
    totals["2 record_from_row + send + future.get"] = total - sum(totals.values())
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
    started = time.perf_counter()
    records = [record_from_row(row, SOURCE) for row in rows]
    build_seconds = time.perf_counter() - started
    proposed = proposed_record_from_row(rows, records) if args.proposed_builder else None
    value_bytes = sum(len(v) for _, v, _ in records) / len(records)
    header_bytes = sum(len(k) + len(v) for _, _, h in records for k, v in h) / len(records)

    run_id = uuid.uuid4().hex[:8]
    sides = ["relay", "raw"] + (["relay+proposed"] if proposed else [])
    topics = {side: f"juwei-bench-{side.replace('+', '-')}-{backend}-{run_id}" for side in sides}
    topic_w = f"juwei-bench-warmup-{backend}-{run_id}"
    benchlib.create_topics(bootstrap, [*topics.values(), topic_w], partitions=args.partitions)
    runs = {side: Runs(side, [], []) for side in sides}
    extra: dict[str, Any] = {}
    try:
        if args.warmup:
            seconds = run_raw(bootstrap, topic_w, records[: args.warmup])
            log(f"{backend}: warm-up {min(args.warmup, len(records)):,} records ({seconds:.2f} s, not counted)")
        for rep in range(args.repeats):
            for side in sides if rep % 2 == 0 else sides[::-1]:
                if side == "raw":
                    sent, seconds = len(records), run_raw(bootstrap, topics[side], records)
                elif side == "relay":
                    sent, seconds = run_relay(database, bootstrap, topics[side], f"bench-{rep}", args.relay_batch)
                else:
                    assert proposed is not None
                    with relay_records_built_by(proposed):
                        name = f"bench-proposed-{rep}"
                        sent, seconds = run_relay(database, bootstrap, topics[side], name, args.relay_batch)
                runs[side].events.append(sent)
                runs[side].seconds.append(seconds)
                log(f"{backend}: run {rep + 1} {side:14s} {sent / seconds:>10,.0f} events/s ({seconds:.2f} s)")
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
        "record_build_seconds": round(build_seconds, 3),
        "avg_value_bytes": round(value_bytes, 1),
        "avg_header_bytes": round(header_bytes, 1),
        "relay": relay_runs.as_json(),
        "raw": raw_runs.as_json(),
        "ratio_relay_over_raw": round(ratio, 3),
        "relay_batch_size": args.relay_batch or Relay.batch_size,
        **(
            {
                "relay_proposed": runs["relay+proposed"].as_json(),
                "ratio_relay_proposed_over_raw": round(runs["relay+proposed"].median / raw_runs.median, 3),
            }
            if proposed
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
    table.add_column("runs (events/s)", justify="right")
    for r in results:
        raw_median = r["raw"]["median_events_per_s"]
        for key, side in (("relay", "relay"), ("relay_proposed", "relay + ProposedRecordBuilder"), ("raw", "raw")):
            if key not in r:
                continue
            median = r[key]["median_events_per_s"]
            ratio = median / raw_median
            colour = "" if key == "raw" else ("green" if ratio >= GOAL else "red")
            table.add_row(
                r["backend"],
                side,
                fmt_rate(median),
                f"[{colour}]{ratio:.2f}[/]" if colour else f"{ratio:.2f}",
                " ".join(fmt_rate(x["events"] / x["seconds"]) for x in r[key]["runs"]),
            )
    console.print(table)
    for r in results:
        console.print(
            f"{r['backend']}: fill {r['fill_seconds']} s; record_from_row for all rows {r['record_build_seconds']} s "
            f"(outside the raw clock); value {r['avg_value_bytes']} B, headers {r['avg_header_bytes']} B per record; "
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
        f"Kafka {facts['kafka']}"
        + (f", PostgreSQL {describe_postgres(facts['postgres'])}" if "postgres" in facts else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
