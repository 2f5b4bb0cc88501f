"""The seed compound's round: 5,000 residents' results ingested, published and the building groups notified.

The suite runs as processes (``python -m juwei.cli serve testing|notify``) on the bench broker, with one
signed webhook receiver per building group in a process of its own (``bench/sink.py``). Untimed
preparation: the compound of the domain (25 buildings, 5,000 residents) is published onto
``juwei.residents`` and taken in by testing and notify; testing opens six points and round r1; every
resident is sampled, ten to a tube (``--pool-size``); the lab's result for one pool came back positive
earlier and its ten residents have given individual re-test samples.

Measured, from the first result posted: the lab's results for the 5,000 residents — every other pool
(negative, one invalid) and the ten individual re-tests (one positive: a case) — posted through the API by
``--clients`` threads; until

1. every result is recorded (the last answer),
2. testing's relay has published all of it (``/status``: backlog 0),
3. notify's consumer has taken all of it (its group's lag on ``juwei.testing`` is 0),
4. the case's building group has its message at its sink, and nothing is left to send.

    .venv/bin/python bench/seed_round.py                  # 10-in-1 pools: 499 pool results + 10 re-tests
    .venv/bin/python bench/seed_round.py --pool-size 1    # 4,999 single-sample tube results + 1 re-test
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import threading
import time
from typing import Any

import benchlib
import roundlib
from rich.console import Console
from rich.table import Table
from roundlib import ROUND, in_parallel
from stack import add_target_arguments, run_targets, running
from suite import Suite, group_lag

from tests.testing.compound import make_compound

GOAL_SECONDS = 10.0
MILESTONES = {
    "recorded": "every result recorded (last answer)",
    "published": "testing's relay: backlog 0",
    "consumed": "notify's consumer: lag 0 on juwei.testing",
    "notified": "the case's building group: message at its sink",
    "quiet": "notify: nothing left to send",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=5000)
    parser.add_argument("--buildings", type=int, default=25)
    parser.add_argument("--pool-size", type=int, default=10, help="samples per pooled tube (default 10)")
    parser.add_argument("--clients", type=int, default=8, help="client threads posting results (default 8)")
    parser.add_argument("--dispatch-seconds", type=float, default=0.25, help="JUWEI_NOTIFY_DISPATCH_SECONDS")
    add_target_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    return parser.parse_args()


class Milestones:
    """Watches the pipeline on a thread of its own and notes when each stage is done (seconds from ``start``)."""

    def __init__(self, suite: Suite, start: float, case_building: str, compound: str, before: int) -> None:
        self.suite = suite
        self.start = start
        self.case_building = case_building
        self.compound = compound
        self.before = before
        self.recorded: float | None = None  # set by the driver
        self.done: dict[str, float] = {}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._watch, name="milestones", daemon=True)

    def _watch(self) -> None:
        suite = self.suite
        assert suite.sink is not None
        try:
            deadline = time.monotonic() + 600
            while len(self.done) < 4 and time.monotonic() < deadline:
                recorded = self.recorded is not None
                if recorded and "published" not in self.done and suite.relay_backlog("testing") == 0:
                    self.done["published"] = time.time() - self.start
                if (
                    "published" in self.done
                    and "consumed" not in self.done
                    and group_lag(suite.bootstrap, "juwei-notify", "juwei.testing") == 0
                ):
                    self.done["consumed"] = time.time() - self.start
                if "notified" not in self.done:
                    suite.sink.poll()
                    arrived = [
                        e
                        for e in suite.sink.received[self.before :]
                        if e["token"] == roundlib.token(self.compound, self.case_building)
                    ]
                    if arrived:
                        self.done["notified"] = arrived[0]["at"] - self.start
                settling = "consumed" in self.done and "notified" in self.done and "quiet" not in self.done
                if settling and roundlib.notify_unsent(suite) == 0:
                    self.done["quiet"] = time.time() - self.start
                time.sleep(0.02)
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def __enter__(self) -> Milestones:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._thread.join(timeout=650)


def main() -> int:
    title = "The same round on the processes and on the compose stack"
    return run_targets(parse_args(), run, figures, title)


def figures(result: dict[str, Any]) -> list[tuple[str, float]]:
    """What the two targets are compared by: each stage's time, and CPU and memory per service."""
    shown = [(f"{stage} s", result["milestones_s"].get(stage, 0.0)) for stage in MILESTONES]
    for service in ("testing", "notify"):
        shown += [
            (f"CPU s, {service}", result["cpu_seconds"][service]),
            (f"peak RSS MiB, {service}", result["peak_rss_mib"][service]),
        ]
    return shown


def run(args: argparse.Namespace, target: str, console: Console) -> dict[str, Any]:
    """One whole round on ``target``; prints its table unless --json."""
    log = console.log
    facts = benchlib.machine()
    compound = make_compound(f"seed{os.getpid() % 10000}", buildings=args.buildings, residents=args.residents)
    c = compound.compound
    people = roundlib.residents_by_building(compound)
    pools = roundlib.pools(people, args.pool_size)
    positive_tube, retested = pools[min(6, len(pools) - 1)]
    case_resident = retested[0]
    case_building = compound.residents[case_resident][0]
    invalid_tube = pools[min(12, len(pools) - 1)][0] if len(pools) > 13 else None
    env = {"JUWEI_TODAY": "2022-04-12", "JUWEI_NOTIFY_DISPATCH_SECONDS": str(args.dispatch_seconds)}
    log(f"target: {target}")
    tokens = roundlib.tokens(compound)
    with running(
        target, ["testing", "notify"], sink_tokens=tokens, env=env, engine_home=args.engine_home, log=log
    ) as suite:
        roundlib.publish_residents(suite, compound, log)
        roundlib.attach_sinks(suite, compound)
        roundlib.open_round(suite, compound.compound, pool_size=args.pool_size)
        started = time.perf_counter()
        roundlib.sample(suite, compound.compound, pools)
        roundlib.tube_results(suite, compound.compound, [(positive_tube, "positive")])
        singles = [(f"S{n + 1:03d}", [person]) for n, person in enumerate(retested)]
        roundlib.sample(suite, compound.compound, singles)
        log(
            f"prepared: {len(people):,} residents sampled in {len(pools):,} tubes, pool {positive_tube} positive, "
            f"its {len(retested)} residents re-sampled ({time.perf_counter() - started:.1f} s)"
        )
        assert suite.sink is not None
        suite.wait(
            "preparation published, consumed and sent",
            lambda: (
                suite.relay_backlog("testing") == 0
                and group_lag(suite.bootstrap, "juwei-notify", "juwei.testing") == 0
                and roundlib.notify_unsent(suite) == 0
            ),
            timeout=600,
            every=0.5,
        )
        suite.sink.poll()
        before = len(suite.sink.received)
        head_before = suite.status("testing")["head_position"]
        load_start = os.getloadavg()[0]
        cpu_start = {name: service.process.cpu_seconds() for name, service in suite.services.items()}

        tube_work = [
            (tube, "invalid" if tube == invalid_tube else "negative") for tube, _ in pools if tube != positive_tube
        ]
        individual_work = [(person, "positive" if person == case_resident else "negative") for person in retested]
        work: list[tuple[str, str, str]] = [("tube", t, r) for t, r in tube_work] + [
            ("individual", p, r) for p, r in individual_work
        ]
        answers: dict[str, Any] = {}

        def post(item: tuple[str, str, str]) -> None:
            kind, name, result = item
            if kind == "tube":
                answers[name] = suite.post("testing", f"/compounds/{c}/tubes/{name}/result", {"result": result})
            else:
                answers[name] = suite.post(
                    "testing", f"/compounds/{c}/rounds/{ROUND}/residents/{name}/result", {"result": result}
                )

        start = time.time()
        with Milestones(suite, start, case_building, c, before) as milestones:
            in_parallel(post, work, workers=args.clients)
            milestones.recorded = time.time() - start
        if milestones.error is not None:
            raise milestones.error
        load_end = os.getloadavg()[0]
        head_after = suite.status("testing")["head_position"]
        suite.sink.poll()
        arrived = suite.sink.received[before:]
        peaks = {name: round(service.process.peak_mib(), 1) for name, service in suite.services.items()}
        cpu = {name: round(s.process.cpu_seconds() - cpu_start[name], 2) for name, s in suite.services.items()}
    cases = [a["case"] for a in answers.values() if a.get("case")]
    to_case_building = [e for e in arrived if e["token"] == roundlib.token(c, case_building)]
    results_covered = sum(len(people_in) for tube, people_in in pools if tube != positive_tube) + len(retested)
    done = {"recorded": milestones.recorded, **milestones.done}
    total = max(v for v in done.values() if v is not None)
    result = {
        "benchmark": "seed_round",
        "target": target,
        "machine": facts,
        "residents": len(people),
        "pool_size": args.pool_size,
        "requests": len(work),
        "results_covered": results_covered,
        "testing_events": head_after - head_before,
        "milestones_s": {k: round(v, 3) for k, v in done.items() if v is not None},
        "total_s": round(total, 3),
        "cases": cases,
        "messages_at_sinks": len(arrived),
        "messages_to_case_building": [e["title"] for e in to_case_building],
        "peak_rss_mib": peaks,
        "cpu_seconds": cpu,
        "load_average": [load_start, load_end],
        "dispatch_seconds": args.dispatch_seconds,
        "folder": str(suite.folder),
    }
    if args.json:
        return result
    table = Table(title=f"Seed compound round: {results_covered:,} residents' results in {len(work):,} requests")
    table.add_column("stage done")
    table.add_column("s from the first result", justify="right")
    for key, label in MILESTONES.items():
        table.add_row(label, f"{done[key]:.2f}" if done.get(key) is not None else "—")
    console.print(table)
    verdict = "met" if total < GOAL_SECONDS else f"missed by {total - GOAL_SECONDS:.1f} s ({total / GOAL_SECONDS:.1f}×)"
    console.print(
        f"goal < {GOAL_SECONDS:.0f} s: {verdict} ({total:.2f} s). {len(work) / done['recorded']:,.0f} requests/s, "
        f"{results_covered / done['recorded']:,.0f} results/s, {head_after - head_before:,} testing events; "
        f"cases {cases}; the case's group got {[e['title'] for e in to_case_building]}; "
        f"{len(arrived)} messages at the sinks in all; peak RSS {peaks}; dispatcher tick {args.dispatch_seconds} s; "
        f"load average {load_start:.2f} → {load_end:.2f}"
    )
    console.print(
        f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']}, Python {facts['python']}, "
        f"Kafka {facts['kafka']}; data in {suite.folder}"
    )
    return result


if __name__ == "__main__":
    sys.exit(main())
