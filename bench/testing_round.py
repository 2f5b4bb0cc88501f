"""Planning and ingesting a mass PCR round for 25 buildings and 5,000 residents (testing service).

Stages, each timed:
  ingest     residents' events (25 buildings, ~1,750 households, 5,000 residents) published to
             ``juwei.residents`` on a real broker and consumed into testing's register (inbox, projection)
  plan       the call planner alone (plain Python, median of repeated runs), then ``POST .../plan`` (read
             model → planner → one CallPlanMade per point and the door-to-door lists → projections)
  call       every "call next" of the six points, through the API
  sample     5,000 swabs ten to a tube (``POST .../samples``), door-to-door included
  result     every tube's result, one positive pool re-tested one by one, one invalid pool re-called
  relay      testing's own events (calls, samples, results) published to ``juwei.testing``

    python bench/testing_round.py              # SQLite (the default deployment)
    python bench/testing_round.py --postgres   # the bench PostgreSQL (real fsync)

Prints the figures; asserts nothing. JUWEI_KAFKA_BOOTSTRAP points it at a running broker.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import benchlib

sys.path.insert(0, str(benchlib.ROOT))  # the round is driven by the same code as the integration test

from fastapi.testclient import TestClient

from contracts.ids import global_id
from juwei.service import create_app
from services.testing.domain import CallRules, plan_round
from services.testing.views import capacities_of, layouts_of
from tests.testing.compound import make_compound
from tests.testing.conftest import Testing, make_testing
from tests.testing.mass_round import MassRound, consume_register, join_at_the_end, publish


def quiet() -> None:
    """The service logs every request as JSON: thousands of lines that would bury the figures (and cost time)."""
    os.environ["JUWEI_LOG_LEVEL"] = "WARNING"
    logging.disable(logging.WARNING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true", help="run on the bench PostgreSQL instead of SQLite")
    parser.add_argument("--plan-runs", type=int, default=20, help="repetitions of the planner alone")
    args = parser.parse_args()
    facts = benchlib.machine()
    print(f"# testing round bench — {facts['date']}")
    print(f"machine: {facts['nproc']} cpu ({facts['cpu']}), {facts['memory']}, Python {facts['python']}")
    compound_id = f"b{uuid.uuid4().hex[:8]}"
    with benchlib.kafka_bootstrap() as kafka, tempfile.TemporaryDirectory(prefix="jw-testing-bench-") as scratch:
        benchlib.create_topics(kafka, ["juwei.residents", "juwei.testing", "juwei.residents.dlq"])
        if args.postgres:
            with benchlib.local_postgres() as server:
                url = server.create_database(f"bench_testing_{compound_id}")
                try:
                    run(kafka, url, Path(scratch), compound_id, args.plan_runs, "postgresql")
                finally:
                    server.drop_database(f"bench_testing_{compound_id}")
        else:
            run(
                kafka, f"sqlite:///{Path(scratch) / 'testing.db'}", Path(scratch), compound_id, args.plan_runs, "sqlite"
            )


def run(kafka: str, url: str, data_dir: Path, compound_id: str, plan_runs: int, dialect: str) -> None:
    quiet()
    compound = make_compound(compound_id, buildings=25, residents=5000)
    print(
        f"database: {dialect}; compound {compound_id}: 25 buildings, {len(compound.residents)} residents, "
        f"{len(compound.envelopes)} residents events"
    )

    runtime = make_testing(url, data_dir, kafka=kafka)
    consumer = join_at_the_end(runtime, f"testing-bench-{compound_id}")
    started = time.perf_counter()
    publish(kafka, "juwei.residents", compound.envelopes, granted=runtime)
    published = time.perf_counter() - started
    ingest = consume_register(consumer, runtime, compound_id, expected=5000, timeout=600)
    events = len(compound.envelopes)
    print(f"publish residents events   {published:7.2f} s  ({events / published:8,.0f} events/s)")
    print(f"ingest into the register   {ingest:7.2f} s  ({events / ingest:8,.0f} events/s, inbox + projection)")

    with TestClient(create_app(runtime, background=False)) as client:
        testing = Testing(client, runtime, compound=compound_id)
        mass = MassRound(testing, compound)
        plan = mass.prepare()
        calls = sum(len(p["calls"]) for p in plan["points"])
        print(
            f"plan via API               {mass.figures.seconds['plan']:7.2f} s  ({calls} calls over 6 points, "
            f"{plan['door_to_door']} door-to-door; peak queues "
            f"{[p['peak_queue'] for p in plan['points']]} of {plan['points'][0]['queue_limit']})"
        )
        with runtime.database.reading() as session:
            layouts = layouts_of(session, compound_id)
            capacities = capacities_of(session, compound_id, [global_id(compound_id, f"p{n}") for n in range(1, 7)])
        rules = CallRules(mode="floor", floors_per_call=3, window_minutes=15)
        alone = []
        for _ in range(plan_runs):
            started = time.perf_counter()
            plan_round(datetime(2022, 4, 12, 7, tzinfo=UTC), rules, capacities, layouts)
            alone.append(time.perf_counter() - started)
        print(
            f"plan alone (planner)       {statistics.median(alone) * 1000:7.1f} ms median of {plan_runs} "
            f"(min {min(alone) * 1000:.1f} ms)"
        )
        finishes = max(p["finishes_at"] for p in plan["points"])
        print(f"  the round would end at {finishes} (starts 07:00, 4 swabs a minute per point)")

        mass.call_and_sample()
        result_started = time.perf_counter()
        mass.result()
        resulted = time.perf_counter() - result_started
    seconds = mass.figures.seconds
    print(
        f"call next ×{mass.figures.calls:<5}          {seconds['call']:7.2f} s  "
        f"({mass.figures.calls / seconds['call']:8,.0f} calls/s)"
    )
    print(
        f"samples ×{mass.figures.samples} in {mass.figures.tubes} tubes {seconds['sample']:7.2f} s  "
        f"({mass.figures.samples / seconds['sample']:8,.0f} samples/s, {mass.figures.tubes / seconds['sample']:,.0f}"
        " requests/s)"
    )
    print(
        f"tube results ×{mass.figures.tubes:<5}       {seconds['result']:7.2f} s  "
        f"({mass.figures.tubes / seconds['result']:8,.0f} tubes/s); with re-tests and re-call {resulted:.2f} s"
    )
    relay = runtime.make_relay()
    started = time.perf_counter()
    published_own = 0
    try:
        while True:
            batch = relay.publish_once()
            if not batch:
                break
            published_own += batch
    finally:
        relay.close()
    relayed = time.perf_counter() - started
    print(
        f"relay testing's events     {relayed:7.2f} s  ({published_own} events, "
        f"{published_own / relayed:8,.0f} events/s)"
    )
    runtime.database.dispose()


if __name__ == "__main__":
    main()
