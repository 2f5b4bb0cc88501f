"""Latency from "result recorded" (testing API) to "message at the building group's sink", at a sustained rate.

The suite runs as processes (``python -m juwei.cli serve testing|notify``) on the bench broker, with one
signed webhook receiver per building group in a process of its own (``bench/sink.py``). Untimed
preparation: a compound of 25 buildings is published onto ``juwei.residents``; testing opens six points
and round r1; ``rate × seconds`` residents are sampled ten to a tube, every one of those pools comes back
positive, and each of their residents gives an individual re-test sample.

Measured: the lab's individual results, all positive, posted at ``--rate`` per second for ``--seconds``
(open loop: request i is sent at start + i / rate whatever the earlier ones are doing, from a pool of
client threads). Each is one ``POST .../residents/<r>/result`` → testing appends IndividualResultRecorded,
CaseConfirmed and CloseContactsIsolated → its relay publishes them → notify's consumer composes "one new
positive case in building N" for that building's group and queues a delivery → notify's dispatcher (every
``JUWEI_NOTIFY_DISPATCH_SECONDS``) sends it to the group's webhook, which stamps its arrival.

A message is matched to its result exactly: the sink receives the message id, notify's ``notify_messages``
names its cause (the CaseConfirmed event's id), testing's log gives that event's case, and the result's
answer named the case. Latency = arrival at the sink − the moment the result's answer came back (the result
is committed then). Where the time goes comes from the timestamps the services store on the way: the event's
time in testing's log, the inbox row's ``received_at`` in notify, the delivery's ``created_at``,
``claimed_at`` and ``sent_at``.

    .venv/bin/python bench/result_latency.py                        # 200/s for 30 s, dispatcher tick 0.05 s
    .venv/bin/python bench/result_latency.py --dispatch-seconds 0.25  # notify's default tick
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import benchlib
import roundlib
from rich.console import Console
from rich.table import Table
from roundlib import ROUND, stored_time, summary_ms
from stack import add_target_arguments, run_targets, running
from suite import Suite, group_lag, profile_summary

from tests.testing.compound import Compound, make_compound

GOAL_P99_MS = 250.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="results per second (default 200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the rate is held (default 30)")
    parser.add_argument("--buildings", type=int, default=25)
    parser.add_argument(
        "--dispatch-seconds", type=float, default=0.05, help="JUWEI_NOTIFY_DISPATCH_SECONDS (notify's default 0.25)"
    )
    parser.add_argument("--clients", type=int, default=48, help="client threads sending the results (default 48)")
    parser.add_argument(
        "--profile", action="store_true", help="run testing and notify under py-spy; print where their time went"
    )
    add_target_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    return parser.parse_args()


@dataclass
class Sent:
    resident: str
    building: str
    scheduled: float
    sent: float = 0.0
    answered: float = 0.0
    case: str | None = None
    error: str | None = None


def prepare(suite: Suite, compound: Compound, people: list[str], log: Any) -> None:
    """Pools of ten, all positive, then one individual re-test sample for each of ``people``."""
    pools = roundlib.pools(people, 10)
    started = time.perf_counter()
    roundlib.sample(suite, compound.compound, pools)
    roundlib.tube_results(suite, compound.compound, [(tube, "positive") for tube, _ in pools])
    singles = [(f"S{n + 1:06d}", [person]) for n, person in enumerate(people)]
    roundlib.sample(suite, compound.compound, singles)
    log(
        f"prepared {len(pools)} positive pools and {len(singles)} individual re-test samples "
        f"in {time.perf_counter() - started:.1f} s"
    )


def drive(suite: Suite, compound: Compound, plan: list[Sent], rate: float, clients: int) -> float:
    """Send every planned result at its time (open loop); returns the seconds the sending took."""
    c = compound.compound

    def one(entry: Sent) -> None:
        entry.sent = time.time()
        try:
            answer = suite.post(
                "testing", f"/compounds/{c}/rounds/{ROUND}/residents/{entry.resident}/result", {"result": "positive"}
            )
            entry.case = answer["case"]
        except Exception as exc:  # recorded and reported: a lost result must show, not stop the run
            entry.error = repr(exc)[:300]
        entry.answered = time.time()

    start = time.time() + 0.5
    for number, entry in enumerate(plan):
        entry.scheduled = start + number / rate
    with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="bench-lab") as pool:
        for entry in plan:
            pause = entry.scheduled - time.time()
            if pause > 0:
                time.sleep(pause)
            pool.submit(one, entry)
    return max(e.answered for e in plan) - start


def matched(suite: Suite, compound: Compound, plan: list[Sent]) -> list[dict[str, float]]:
    """Per result: its send, answer, event, inbox, delivery and sink times (POSIX seconds), matched by case."""
    c = compound.compound
    by_case = {f"{c}:{e.case}": e for e in plan if e.case}
    events = {
        event_id: ((json.loads(data) if isinstance(data, str) else data)["case"], stored_time(moment))
        for event_id, data, moment in suite.rows(
            "testing",
            "SELECT id, data, time FROM juwei_events WHERE type = 'juwei.testing.CaseConfirmed.v2' AND compound = ?",
            c,
        )
    }
    inbox = {
        event_id: stored_time(at)
        for event_id, at in suite.rows(
            "notify",
            "SELECT event_id, received_at FROM juwei_inbox WHERE type = 'juwei.testing.CaseConfirmed.v2'",
        )
    }
    messages = {
        message: cause
        for message, cause in suite.rows(
            "notify",
            "SELECT message, cause FROM notify_messages WHERE template = 'case_confirmed' AND compound = ?",
            c,
        )
    }
    deliveries = {
        message: (stored_time(created), stored_time(claimed) if claimed else None, stored_time(sent) if sent else None)
        for message, created, claimed, sent in suite.rows(
            "notify",
            "SELECT message, created_at, claimed_at, sent_at FROM notify_deliveries WHERE message IS NOT NULL",
        )
    }
    assert suite.sink is not None
    rows = []
    for entry in suite.sink.received:
        cause = messages.get(entry["message"])
        if cause is None or cause not in events:
            continue
        case, event_time = events[cause]
        sent = by_case.get(case)
        if sent is None:
            continue
        created, claimed, delivered = deliveries.get(entry["message"], (None, None, None))
        rows.append(
            {
                "scheduled": sent.scheduled,
                "sent": sent.sent,
                "answered": sent.answered,
                "event": event_time,
                "inbox": inbox.get(cause, float("nan")),
                "queued": created or float("nan"),
                "claimed": claimed or float("nan"),
                "sink": entry["at"],
                "recorded_sent": delivered or float("nan"),
            }
        )
    return rows


def main() -> int:
    title = "The same run on the processes and on the compose stack"
    return run_targets(parse_args(), run, figures, title)


def figures(result: dict[str, Any]) -> list[tuple[str, float]]:
    """What the two targets are compared by."""
    shown = [
        ("results/s sent", result["rate_sent"]),
        ("p50 ms (answer → sink)", result["latency_ms"].get("p50", 0.0)),
        ("p99 ms (answer → sink)", result["latency_ms"].get("p99", 0.0)),
    ]
    for service in ("testing", "notify"):
        shown += [
            (f"CPU ms per result, {service}", result["cpu_ms_per_result"][service]),
            (f"peak RSS MiB, {service}", result["peak_rss_mib"][service]),
        ]
    return shown


def run(args: argparse.Namespace, target: str, console: Console) -> dict[str, Any]:
    """One whole run on ``target``; prints its tables unless --json."""
    log = console.log
    facts = benchlib.machine()
    count = int(args.rate * args.seconds)
    # Enough residents for every result to be a different person (each opens a case of its own).
    residents = max(5000, int(count * 1.25))
    compound = make_compound(f"lat{os.getpid() % 10000}", buildings=args.buildings, residents=residents)
    people = roundlib.residents_by_building(compound)[:count]
    building_of = {r: compound.residents[r][0] for r in people}
    env = {"JUWEI_TODAY": "2022-04-12", "JUWEI_NOTIFY_DISPATCH_SECONDS": str(args.dispatch_seconds)}
    profile = ["testing", "notify"] if args.profile else []
    log(f"target: {target}")
    with running(
        target,
        ["testing", "notify"],
        sink_tokens=roundlib.tokens(compound),
        env=env,
        profile=profile,
        engine_home=args.engine_home,
        log=log,
    ) as suite:
        roundlib.publish_residents(suite, compound, log)
        roundlib.attach_sinks(suite, compound)
        roundlib.open_round(suite, compound.compound)
        prepare(suite, compound, people, log)
        assert suite.sink is not None
        sink = suite.sink
        suite.wait(
            "preparation published and consumed",
            lambda: (
                suite.relay_backlog("testing") == 0
                and group_lag(suite.bootstrap, "juwei-notify", "juwei.testing") == 0
                and roundlib.notify_unsent(suite) == 0
            ),
            timeout=600,
            every=0.5,
        )
        sink.poll()
        before = len(sink.received)
        log(f"settled: {before} messages at the sinks so far (the round announced, sampling progress per building)")
        plan = [Sent(person, building_of[person], 0.0) for person in people]
        load_start = os.getloadavg()[0]
        # CPU per result of each process: contention stretches wall time but leaves this almost alone.
        processes = {name: service.process for name, service in suite.services.items()} | {"sink": sink.process}
        cpu_start = {name: process.cpu_seconds() for name, process in processes.items()}
        sending = drive(suite, compound, plan, args.rate, args.clients)
        errors = [e for e in plan if e.error]
        log(f"sent {len(plan) - len(errors):,} results in {sending:.1f} s ({len(errors)} failed)")

        def all_arrived() -> bool:
            sink.poll()
            return len(sink.received) - before >= len(plan) - len(errors)

        waited = suite.wait("every message at its sink", all_arrived, timeout=900, every=0.1)
        drained = max(e["at"] for e in sink.received[before:]) - min(e.scheduled for e in plan)
        log(f"last message arrived {waited:.1f} s after the last answer")
        load_end = os.getloadavg()[0]
        cpu = {name: process.cpu_seconds() - cpu_start[name] for name, process in processes.items()}
        pids = {name: service.process.pid for name, service in suite.services.items()}
        peaks = {name: round(service.process.peak_mib(), 1) for name, service in suite.services.items()}
        rows = matched(suite, compound, plan)  # before the stack goes down with its database
    profiles = {name: profile_summary(suite.folder / f"{name}.pyspy.txt") for name in profile}
    sent_at = [e.sent for e in plan]
    actual_rate = len(plan) / (max(sent_at) - min(sent_at)) if len(plan) > 1 else 0.0
    latency = [r["sink"] - r["answered"] for r in rows]
    from_scheduled = [r["sink"] - r["scheduled"] for r in rows]
    stages = {
        "API: scheduled → answer": [r["answered"] - r["scheduled"] for r in rows],
        "  of which waiting for a client thread": [r["sent"] - r["scheduled"] for r in rows],
        "answer → inbox row in notify (relay, Kafka, consumer)": [r["inbox"] - r["answered"] for r in rows],
        "event appended → inbox row (testing's clock → notify's)": [r["inbox"] - r["event"] for r in rows],
        "inbox row → delivery queued (compose, same txn)": [r["queued"] - r["inbox"] for r in rows],
        "queued → claimed by the dispatcher": [r["claimed"] - r["queued"] for r in rows],
        "claimed → at the sink (HTTP)": [r["sink"] - r["claimed"] for r in rows],
        "at the sink → outcome recorded": [r["recorded_sent"] - r["sink"] for r in rows],
    }
    windows = []
    if rows:
        first = min(r["scheduled"] for r in rows)
        span = 5.0
        for index in range(int((max(r["scheduled"] for r in rows) - first) // span) + 1):
            chosen = [
                r["sink"] - r["answered"]
                for r in rows
                if first + index * span <= r["scheduled"] < first + (index + 1) * span
            ]
            if chosen:
                windows.append({"from_s": index * span, "results": len(chosen), **summary_ms(chosen)})
    result = {
        "benchmark": "result_latency",
        "target": target,
        "machine": facts,
        "rate_target": args.rate,
        "rate_sent": round(actual_rate, 1),
        "results": len(plan),
        "failed": len(errors),
        "matched": len(rows),
        "dispatch_seconds": args.dispatch_seconds,
        "latency_ms": summary_ms(latency),
        "latency_from_schedule_ms": summary_ms(from_scheduled),
        "stages_ms": {name: summary_ms([v for v in values if v == v]) for name, values in stages.items()},
        "windows": windows,
        "first_send_to_last_arrival_s": round(drained, 1),
        "peak_rss_mib": peaks,
        "cpu_ms_per_result": {name: round(1000 * seconds / max(1, len(plan)), 2) for name, seconds in cpu.items()},
        "pids": pids,
        "load_average": [load_start, load_end],
        "errors": [e.error for e in errors[:5]],
        "profiles": profiles,
        "folder": str(suite.folder),
    }
    if args.json:
        return result
    table = Table(title=f"Result → building group's sink, {len(rows):,} messages, {actual_rate:.0f} results/s")
    for name in ("measured from", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms"):
        table.add_column(name, justify="left" if name == "measured from" else "right")
    for label, stats in (
        ("the result's answer (recorded)", result["latency_ms"]),
        ("the result's scheduled send", result["latency_from_schedule_ms"]),
    ):
        table.add_row(label, *(f"{stats.get(k, float('nan')):,.1f}" for k in ("p50", "p90", "p99", "max", "mean")))
    console.print(table)
    stages_table = Table(title="Where the time goes (per message)")
    stages_table.add_column("stage")
    for name in ("p50 ms", "p90 ms", "p99 ms", "max ms"):
        stages_table.add_column(name, justify="right")
    for name, stats in result["stages_ms"].items():
        stages_table.add_row(name, *(f"{stats.get(k, float('nan')):,.1f}" for k in ("p50", "p90", "p99", "max")))
    console.print(stages_table)
    windows_table = Table(title="Latency from the answer, by 5-second window of sending")
    for name in ("from s", "results", "p50 ms", "p99 ms", "max ms"):
        windows_table.add_column(name, justify="right")
    for w in windows:
        windows_table.add_row(
            f"{w['from_s']:.0f}", str(w["results"]), f"{w['p50']:,.1f}", f"{w['p99']:,.1f}", f"{w['max']:,.1f}"
        )
    console.print(windows_table)
    p99 = result["latency_ms"].get("p99", float("inf"))
    verdict = "met" if p99 < GOAL_P99_MS else f"missed by {p99 - GOAL_P99_MS:,.0f} ms ({p99 / GOAL_P99_MS:.1f}×)"
    console.print(
        f"goal p99 < {GOAL_P99_MS:.0f} ms: {verdict}. Target {args.rate:.0f}/s, sent {actual_rate:.1f}/s, "
        f"{len(errors)} failed; first send → last arrival {drained:.1f} s; dispatcher tick {args.dispatch_seconds} s; "
        f"peak RSS {peaks}; CPU ms per result {result['cpu_ms_per_result']};"
        f" load average {load_start:.2f} → {load_end:.2f}; data in {suite.folder}"
    )
    for name, text in profiles.items():
        console.print(f"{name} under py-spy (the profiler slows it: these figures are not the benchmark's):")
        console.print(text, markup=False, highlight=False)
    console.print(
        f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']}, Python {facts['python']}, "
        f"Kafka {facts['kafka']}"
    )
    return result


if __name__ == "__main__":
    sys.exit(main())
