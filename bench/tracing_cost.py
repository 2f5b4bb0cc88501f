"""What tracing costs the append, the hottest place a span is made: without an OTLP endpoint and with one.

Issue 18 asks that traces cost nothing when no endpoint is configured. Each configuration runs in a process
of its own (OpenTelemetry's tracer provider is global and cannot be removed once installed), on a fresh
SQLite file as ``juwei.database`` configures it, ``--repeats`` times in alternating order:

* **off**: no ``OTEL_EXPORTER_OTLP_ENDPOINT``, as the compose file ships. ``juwei.tracing`` installs no
  provider and every helper returns before it touches OpenTelemetry.
* **on**: the endpoint set to an OTLP/HTTP receiver in this script that answers 200 and drops the spans;
  the SDK's ``BatchSpanProcessor`` exports from its own thread, as in a service.

Each run appends ``--events`` events, one per ``EventStore.append`` (so one ``append`` span each), in
transactions of ``--per-transaction``. Measured: events per CPU second of the process (every thread,
the exporter's too) and per wall second; the ratios are on / off. The CPU figure is the one to read on a
loaded machine: the wall figure includes the disk's fsyncs and other sessions' work.

    .venv/bin/python bench/tracing_cost.py [--events 5000] [--repeats 5] [--json]

Nothing asserts a timing; the script prints what it measured.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import timeit
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from benchlib import Households, Runs, fill, fresh_sqlite, machine, new_store, open_database

MODES = ("off", "on")


class _DroppingReceiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that reads each export, counts its bytes and answers 200."""

    received = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _DroppingReceiver.received += len(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:  # quiet: the script's output is the figures
        return


def child(events: int, per_transaction: int) -> None:
    """One measured run in this process; prints {"events", "seconds", "cpu_seconds", "exporting"} as JSON."""
    from juwei import tracing

    exporting = tracing.configure_tracing("bench")
    folder = Path(tempfile.mkdtemp(prefix="tracing-cost-", dir=Path(".local/bench").resolve()))
    database = open_database(fresh_sqlite(folder / "events.db"))
    store = new_store()
    households = Households(max(1, events // 50))
    # Warm: connections, statements, the first span's set-up.
    fill(database, store, 200, per_transaction=per_transaction, per_append=1, households=households)
    wall, cpu = time.perf_counter(), time.process_time()
    fill(database, store, events, per_transaction=per_transaction, per_append=1, households=households)
    tracing.ending()  # the spans still queued are part of the cost
    seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    # What "off" leaves in the append: one call that reads a global (timed alone, many times).
    check_ns = timeit.timeit(tracing.exporting, number=1_000_000) * 1000
    measured = {"events": events, "seconds": seconds, "cpu_seconds": cpu_seconds, "exporting": exporting}
    print(json.dumps({**measured, "check_ns": round(check_ns, 1)}))


def measure(mode: str, events: int, per_transaction: int, receiver: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if mode == "on":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver
    command = [sys.executable, __file__, "--child", "--events", str(events), "--per-transaction", str(per_transaction)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["exporting"] != (mode == "on"):
        raise SystemExit(f"mode {mode}: the child's tracing was {'on' if result['exporting'] else 'off'}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--per-transaction", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    Path(".local/bench").mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args.events, args.per_transaction)
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DroppingReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver = f"http://127.0.0.1:{server.server_address[1]}"
    runs = {mode: Runs(f"tracing {mode}", [], [], []) for mode in MODES}
    checks: list[float] = []
    for repeat in range(args.repeats):
        for mode in MODES if repeat % 2 == 0 else reversed(MODES):
            result = measure(mode, args.events, args.per_transaction, receiver)
            runs[mode].events.append(result["events"])
            runs[mode].seconds.append(result["seconds"])
            runs[mode].cpu_seconds.append(result["cpu_seconds"])
            if mode == "off":
                checks.append(result["check_ns"])
            print(f"{mode}: {result['events'] / result['cpu_seconds']:,.0f} events/CPU s", file=sys.stderr)
    server.shutdown()
    off, on = runs["off"], runs["on"]
    summary = {
        "machine": machine(),
        "events": args.events,
        "per_transaction": args.per_transaction,
        "runs": [off.as_json(), on.as_json()],
        "cpu_ratio_on_off": round(on.cpu_median / off.cpu_median, 3),
        "wall_ratio_on_off": round(on.median / off.median, 3),
        "cpu_us_per_append": {
            "off": round(1e6 / off.cpu_median, 1),
            "on": round(1e6 / on.cpu_median, 1),
        },
        "exported_bytes": _DroppingReceiver.received,
        "check_ns": statistics.median(checks),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"machine: {summary['machine']['nproc']} cores, load {summary['machine']['load']}")
    for label, measured in (("off", off), ("on", on)):
        print(
            f"tracing {label:>3}: {measured.cpu_median:>9,.0f} events/CPU s  {measured.median:>9,.0f} events/s"
            f"  ({statistics.median(measured.cpu_seconds):.2f} CPU s a run)"
        )
    cpu_ratio, wall_ratio = summary["cpu_ratio_on_off"], summary["wall_ratio_on_off"]
    print(f"on / off: {cpu_ratio:.2f}x per CPU second, {wall_ratio:.2f}x per wall second")
    print(f"off, the check each append makes (tracing.exporting()): {summary['check_ns']} ns")
    print(f"CPU per append: {summary['cpu_us_per_append']['off']} µs off, {summary['cpu_us_per_append']['on']} µs on")


if __name__ == "__main__":
    main()
