"""How long a batch for a whole compound takes: allocation, dispatch, delivery floor by floor, follow-ups.

The compound of the domain: 25 buildings × 18 floors × 4 rooms (1,800 households), 5,000 residents,
a logistics group of six per building. Its residents events go in through the consumer's path (inbox
row + handler + projections, as from Kafka, without the broker), then every step runs over HTTP
in-process (FastAPI TestClient: the real routes, units of work and projections; no network):

    python bench/supplies_batch.py              # SQLite (the embedded default)
    python bench/supplies_batch.py --postgres   # the bench PostgreSQL (real fsync), started if not running
    python bench/supplies_batch.py --postgres --postgres-port 25532 --postgres-home /tmp/pg   # another one

Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import benchlib  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from contracts import roles as r  # noqa: E402
from juwei.auth import issue_key  # noqa: E402
from juwei.callers import Holder  # noqa: E402
from juwei.local_postgres import LocalPostgres  # noqa: E402
from juwei.service import Runtime, create_app  # noqa: E402
from juwei.settings import Settings  # noqa: E402
from services.supplies.app import service  # noqa: E402
from services.supplies.domain import HouseholdFacts, allocate  # noqa: E402
from tests.supplies.seed import SeededCompound, feed  # noqa: E402

COMPOUND = "c-bench"
BUILDINGS, FLOORS, ROOMS = 25, 18, 4


def timed(label: str, results: list[tuple[str, float, str]], fn: Callable[[], Any], note: str = "") -> Any:
    started = time.perf_counter()
    value = fn()
    results.append((label, time.perf_counter() - started, note))
    return value


def pure_allocation(seed: SeededCompound, residents: int) -> float:
    """The domain alone: the plan for 1,800 households, no database."""
    members: dict[str, list[frozenset[str]]] = {}
    homes = seed.households()
    for n in range(residents):
        b, f, room = homes[n % len(homes)]
        members.setdefault(seed.household(b, f, room), []).append(frozenset())
    facts = [
        HouseholdFacts(seed.household(b, f, room), str(b), f, room, tuple(members.get(seed.household(b, f, room), ())))
        for b, f, room in homes
    ]
    started = time.perf_counter()
    allocate("bench", {"rice": residents, "vegetables": 1800, "masks": 10_000}, facts, "household_size")
    return time.perf_counter() - started


def run(database_url: str, residents: int, failure_every: int) -> list[tuple[str, float, str]]:
    results: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        runtime = Runtime(
            service, Settings(kafka_bootstrap="127.0.0.1:1", data_dir=Path(data_dir)), database_url=database_url
        )
        runtime.migrate()
        seed = SeededCompound(COMPOUND, BUILDINGS, FLOORS, ROOMS, residents).build()
        timed(
            "register: residents events in",
            results,
            lambda: feed(runtime, seed.envelopes),
            f"{len(seed.envelopes):,} events, one transaction",
        )
        with runtime.database.unit_of_work() as session:
            staff = {"X-API-Key": issue_key(session, r.COMMITTEE_STAFF, COMPOUND, holder=Holder("system", "bench")).key}
            logistics = {
                "X-API-Key": issue_key(session, r.LOGISTICS_VOLUNTEER, COMPOUND, holder=Holder("system", "bench")).key
            }
        url = f"/compounds/{COMPOUND}"
        results.append(("allocation: domain only", pure_allocation(seed, residents), "3 items, 1,800 households"))
        with TestClient(create_app(runtime, background=False)) as client:

            def post(path: str, body: Any, headers: dict[str, str]) -> Any:
                answer = client.post(path, json=body, headers=headers)
                if answer.status_code >= 300:
                    raise RuntimeError(f"{path}: {answer.status_code} {answer.text}")
                return answer.json()

            batch = {
                "batch": "gov-1",
                "source": "government",
                "items": [
                    {"item": "rice", "quantity": residents},
                    {"item": "vegetables", "quantity": 1800},
                    {"item": "masks", "quantity": 10_000},
                ],
                "whole_compound": True,
            }
            timed("batch arrived", results, lambda: post(f"{url}/batches", batch, staff))
            plan = timed(
                "allocation planned (HTTP)",
                results,
                lambda: post(f"{url}/batches/gov-1/allocation", {"method": "household_size"}, staff),
                "facts read, plan, 25 events, 1,800 share rows",
            )
            timed(
                "dispatched: shifts called",
                results,
                lambda: post(f"{url}/batches/gov-1/dispatch", {}, staff),
                f"{BUILDINGS} buildings, {plan['households']:,} tasks",
            )
            latencies: list[float] = []
            failed: list[tuple[int, str]] = []

            def deliver() -> None:
                for b in range(1, BUILDINGS + 1):
                    for floor in range(1, FLOORS + 1):
                        outcomes = []
                        for room in range(1, ROOMS + 1):
                            household = seed.household(b, floor, room)
                            n = (b * 1000 + floor * 10 + room) % failure_every
                            outcome = "no_one_home" if n == 0 else "delivered"
                            if outcome != "delivered":
                                failed.append((b, household))
                            outcomes.append({"household": household, "outcome": outcome})
                        started = time.perf_counter()
                        post(
                            f"{url}/batches/gov-1/buildings/{b}/outcomes",
                            {"volunteer": seed.volunteer(b, 2), "outcomes": outcomes},
                            logistics,
                        )
                        latencies.append(time.perf_counter() - started)

            timed("delivered floor by floor", results, deliver, f"{BUILDINGS * FLOORS} floor reports")

            def follow_up() -> None:
                for b, household in failed:
                    post(
                        f"{url}/batches/gov-1/buildings/{b}/outcomes",
                        {
                            "volunteer": seed.volunteer(b, 5),
                            "outcomes": [{"household": household, "outcome": "delivered"}],
                        },
                        logistics,
                    )

            timed("follow-ups delivered", results, follow_up, f"{len(failed)} households, one request each")
            progress = timed(
                "progress read", results, lambda: client.get(f"{url}/batches/gov-1/progress", headers=staff).json()
            )
            if not all(b["complete"] for b in progress["buildings"]):
                raise RuntimeError("the batch did not complete")
            quantiles = statistics.quantiles(latencies, n=20)
            results.append(("  per floor report: p50", statistics.median(latencies), "4 households"))
            results.append(("  per floor report: p95", quantiles[18], ""))
            # What the in-process HTTP client costs by itself: subtract it to see the service's own share.
            baseline = []
            for _ in range(100):
                started = time.perf_counter()
                client.get("/healthz")
                baseline.append(time.perf_counter() - started)
            results.append(("  client round trip alone: p50", statistics.median(baseline), "GET /healthz"))
        runtime.database.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="the bench PostgreSQL instead of SQLite")
    parser.add_argument("--postgres-home", type=Path, default=benchlib.POSTGRES_HOME, help="its cluster folder")
    parser.add_argument("--postgres-port", type=int, default=benchlib.POSTGRES_PORT)
    parser.add_argument("--residents", type=int, default=5000)
    parser.add_argument("--failure-every", type=int, default=41, help="about one household in N is not at home")
    args = parser.parse_args()
    facts = benchlib.machine()
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"machine: {facts['cpu']} × {facts['nproc']}, {facts['memory']}, Python {facts['python']}, load {load}")
    if args.postgres:
        server = LocalPostgres(args.postgres_home, port=args.postgres_port)
        was_running = server.is_running()
        if not was_running:
            print(f"postgres: starting a local server on port {server.port} (home {server.home})")
            server.start()
        name = f"bench_supplies_{int(time.time())}"
        try:
            url = server.create_database(name)
            try:
                results = run(url, args.residents, args.failure_every)
            finally:
                server.drop_database(name)
        finally:
            if not was_running:
                server.stop()
        where = f"PostgreSQL (local server on port {server.port}, fsync on)"
    else:
        with tempfile.TemporaryDirectory() as folder:
            results = run(f"sqlite:///{Path(folder) / 'supplies.db'}", args.residents, args.failure_every)
        where = "SQLite (WAL, synchronous=NORMAL)"
    print(
        f"\nsupplies: one batch for {args.residents:,} residents in {BUILDINGS * FLOORS * ROOMS:,} households — {where}"
    )
    for label, seconds, note in results:
        print(f"  {label:<34} {seconds * 1000:>10.1f} ms   {note}")
    total = sum(s for label, s, _ in results if not label.startswith(("  ", "register", "allocation: domain")))
    print(f"  {'arrival to last follow-up':<34} {total:>10.2f} s")


if __name__ == "__main__":
    main()
