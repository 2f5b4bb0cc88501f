"""A district-sized round: residents' events ingested, the round's samples and results ingested, all published.

A Shanghai district is about 700,000 residents: here 140 compounds of 5,000 (25 buildings each, built by
``tests.testing.compound`` from the residents service's published catalogue). The testing service runs as
a process (``python -m juwei.cli serve testing``) on the bench broker, on SQLite as it ships. Stages:

1. register: every compound's residents' events go onto ``juwei.residents`` (a producer configured like
   the residents relay) and testing's consumer takes them in (inbox row + register projection per event);
   done when its group's lag is 0;
2. round: compound after compound, six points and round r1 are opened, every resident is sampled ten to
   a tube and every tube's result is posted, by ``--clients`` threads; testing's relay publishes all the
   while. ``--mode batch`` (the default): each point uploads its tubes 100 to a request
   (``POST .../rounds/r1/tubes``) and the lab posts plates of 96 (``POST .../plates/<p>/results``);
   ``--mode per-tube``: a request per tube (``POST .../samples``, ``POST .../tubes/<t>/result``);
   ``--mode both``: compounds alternate between the two, and each mode's seconds per resident is reported;
3. published: testing's relay backlog is 0.

Memory is sampled every half second (``VmRSS`` of testing, of this process and of the broker) to show
whether it stays flat; the peaks are reported with the kernel's own high-water mark (``VmHWM``).

    .venv/bin/python bench/district_round.py                       # 10,000 residents (2 compounds), ~2 min
    .venv/bin/python bench/district_round.py --residents 700000    # the district (see bench/README.md)
    .venv/bin/python bench/district_round.py --residents 20000 --mode both   # batch vs per tube in one run
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import time
from typing import Any

import benchlib
import roundlib
from rich.console import Console
from rich.table import Table
from suite import Publisher, RssSampler, group_lag, profile_summary, running_suite

from tests.testing.compound import make_compound

GOAL_SECONDS = 600.0
PER_COMPOUND = 5000
DISTRICT = 700_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=10_000, help="residents in the district (default 10000)")
    parser.add_argument("--clients", type=int, default=8, help="client threads posting samples and results")
    parser.add_argument("--pool-size", type=int, default=10, help="samples per pooled tube (default 10)")
    parser.add_argument(
        "--mode",
        choices=("batch", "per-tube", "both"),
        default="batch",
        help="batch: uploads of 100 tubes and plates of 96; per-tube: a request per tube; both: alternate compounds",
    )
    parser.add_argument(
        "--profile", action="store_true", help="run testing under py-spy and print where its time went (slower)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    return parser.parse_args()


def compound_sizes(residents: int) -> list[int]:
    full, rest = divmod(residents, PER_COMPOUND)
    return [PER_COMPOUND] * full + ([rest] if rest else [])


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (all its threads); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    try:
        return int((benchlib.KAFKA_HOME / "broker.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def main() -> int:
    args = parse_args()
    console = Console(stderr=args.json, width=None if sys.stdout.isatty() else 130)
    log = console.log
    facts = benchlib.machine()
    sizes = compound_sizes(args.residents)
    tag = f"{os.getpid() % 10000}"
    names = [f"d{tag}c{n + 1:03d}" for n in range(len(sizes))]
    stages: dict[str, float] = {}
    counts: dict[str, int] = {"residents_events": 0, "sample_requests": 0, "result_requests": 0}
    modes = [("per-tube" if n % 2 == 0 else "batch") if args.mode == "both" else args.mode for n in range(len(sizes))]
    by_mode: dict[str, dict[str, float]] = {}  # seconds and residents of the round stage per mode
    env = {"JUWEI_TODAY": "2022-04-12"}
    profile = ["testing"] if args.profile else []
    with running_suite(["testing"], env=env, profile=profile, log=log) as suite:
        watched = {"testing": suite.services["testing"].process.pid, "bench": os.getpid()}
        if broker_pid():
            watched["broker"] = broker_pid()  # type: ignore[assignment]
        # Per compound, only its residents' ids in tube order are kept between the stages (memory stays flat).
        people_of: dict[str, list[str]] = {}
        load_start = os.getloadavg()[0]
        # CPU seconds of each process at each stage's end: time per process, stage by stage.
        cpu_at: dict[str, dict[str, float]] = {"start": {name: cpu_seconds(pid) for name, pid in watched.items()}}
        with RssSampler(watched) as rss:
            started = time.perf_counter()
            publisher = Publisher(suite.bootstrap)
            try:
                for name, size in zip(names, sizes, strict=True):
                    compound = make_compound(name, buildings=25, residents=size, seed=len(people_of) + 1)
                    counts["residents_events"] += publisher.send(compound.envelopes)
                    people_of[name] = roundlib.residents_by_building(compound)
                    del compound
                publisher.flush()
            finally:
                publisher.close()
            stages["register: published"] = time.perf_counter() - started
            log(f"register: {counts['residents_events']:,} residents events published")
            suite.wait(
                "register taken in",
                lambda: group_lag(suite.bootstrap, "juwei-testing", "juwei.residents") == 0,
                timeout=24 * 3600,
                every=1.0,
            )
            stages["register: taken in by testing"] = time.perf_counter() - started
            cpu_at["register"] = {name: cpu_seconds(pid) for name, pid in watched.items()}
            register_samples = len(rss.samples)
            log(f"register: taken in after {stages['register: taken in by testing']:.1f} s")

            round_started = time.perf_counter()
            for number, (name, size, mode) in enumerate(zip(names, sizes, modes, strict=True), start=1):
                compound_started = time.perf_counter()
                roundlib.open_round(suite, name, pool_size=args.pool_size)
                tubes = roundlib.pools(people_of.pop(name), args.pool_size)
                results = [(tube, "negative") for tube, _ in tubes]
                if mode == "batch":
                    counts["sample_requests"] += roundlib.upload(suite, name, tubes, workers=args.clients)
                    counts["result_requests"] += roundlib.plates(suite, name, results, workers=args.clients)
                else:
                    roundlib.sample(suite, name, tubes, workers=args.clients)
                    counts["sample_requests"] += len(tubes)
                    roundlib.tube_results(suite, name, results, workers=args.clients)
                    counts["result_requests"] += len(tubes)
                spent = by_mode.setdefault(mode, {"seconds": 0.0, "residents": 0.0})
                spent["seconds"] += time.perf_counter() - compound_started
                spent["residents"] += size
                if number % 5 == 0 or number == len(names):
                    resident_set = rss.samples[-1][1]["testing"] if rss.samples else 0.0
                    log(
                        f"round: {number}/{len(names)} compounds sampled and resulted "
                        f"({time.perf_counter() - round_started:.0f} s, testing at {resident_set:.0f} MiB)"
                    )
            stages["round: samples and results recorded"] = time.perf_counter() - started
            suite.wait("round published", lambda: suite.relay_backlog("testing") == 0, timeout=3600, every=0.2)
            stages["round: published (relay backlog 0)"] = time.perf_counter() - started
            cpu_at["round"] = {name: cpu_seconds(pid) for name, pid in watched.items()}
            status = suite.status("testing")
        load_end = os.getloadavg()[0]
        peaks = {"testing": suite.services["testing"].process.peak_mib()}
    total = stages["round: published (relay backlog 0)"]
    register_seconds = stages["register: taken in by testing"]
    round_seconds = total - register_seconds
    result: dict[str, Any] = {
        "benchmark": "district_round",
        "machine": facts,
        "residents": args.residents,
        "compounds": len(names),
        "counts": {**counts, "testing_events": status["head_position"]},
        "stages_s": {k: round(v, 1) for k, v in stages.items()},
        "total_s": round(total, 1),
        "rates": {
            "residents_events_per_s_taken_in": round(counts["residents_events"] / register_seconds, 1),
            "requests_per_s_round": round(
                (counts["sample_requests"] + counts["result_requests"]) / (round_seconds or 1), 1
            ),
            "residents_per_s_round": round(args.residents / (round_seconds or 1), 1),
        },
        "rss_peak_mib": {name: round(rss.peak(name), 1) for name in watched}
        | {"testing_vmhwm": round(peaks["testing"], 1)},
        "rss_series_mib": {name: rss.series(name) for name in watched},
        # Per process and stage: CPU seconds used, and the resident set's peak among that stage's samples.
        "per_process": {
            name: {
                "cpu_s_register": round(cpu_at["register"][name] - cpu_at["start"][name], 1),
                "cpu_s_round": round(cpu_at["round"][name] - cpu_at["register"][name], 1),
                "rss_peak_mib_register": round(
                    max((v.get(name, 0.0) for _t, v in rss.samples[:register_samples]), default=0.0), 1
                ),
                "rss_peak_mib_round": round(
                    max((v.get(name, 0.0) for _t, v in rss.samples[register_samples:]), default=0.0), 1
                ),
            }
            for name in watched
        },
        "load_average": [load_start, load_end],
        "mode": args.mode,
        "round_by_mode": {
            mode: {
                "seconds": round(spent["seconds"], 1),
                "residents": int(spent["residents"]),
                "ms_per_resident": round(spent["seconds"] / spent["residents"] * 1000, 3),
            }
            for mode, spent in by_mode.items()
        },
        "folder": str(suite.folder),
    }
    if args.profile:
        result["profile"] = profile_summary(suite.folder / "testing.pyspy.txt")
    per_resident = total / args.residents
    result["extrapolated_district_s"] = round(per_resident * DISTRICT, 0)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    table = Table(title=f"District round: {args.residents:,} residents in {len(names)} compounds")
    table.add_column("stage done")
    table.add_column("s from the start", justify="right")
    for label, seconds in stages.items():
        table.add_row(label, f"{seconds:,.1f}")
    console.print(table)
    memory = Table(title="Resident set (MiB) while it ran: (seconds, MiB) samples")
    memory.add_column("process")
    memory.add_column("peak", justify="right")
    memory.add_column("samples")
    for name in watched:
        series = " ".join(f"{t:.0f}s:{m:.0f}" for t, m in result["rss_series_mib"][name])
        memory.add_row(name, f"{result['rss_peak_mib'][name]:,.0f}", series)
    console.print(memory)
    per_process = Table(title="Per process: CPU seconds and peak resident set (MiB), stage by stage")
    for column in ("process", "CPU s, register", "CPU s, round", "peak MiB, register", "peak MiB, round"):
        per_process.add_column(column, justify="left" if column == "process" else "right")
    for name, row in result["per_process"].items():
        per_process.add_row(name, *(f"{value:,.1f}" for value in row.values()))
    console.print(per_process)
    verdict = (
        "met" if total < GOAL_SECONDS else f"missed by {total - GOAL_SECONDS:,.0f} s ({total / GOAL_SECONDS:.1f}×)"
    )
    console.print(
        f"{counts['residents_events']:,} residents events taken in at "
        f"{result['rates']['residents_events_per_s_taken_in']:,.0f}/s; "
        f"round ({args.mode}): {counts['sample_requests']:,} sample and {counts['result_requests']:,} result "
        f"requests at "
        f"{result['rates']['requests_per_s_round']:,.0f}/s; {status['head_position']:,} testing events published. "
        f"Goal < {GOAL_SECONDS:.0f} s for this size: {verdict} ({total:,.1f} s). At this rate {DISTRICT:,} residents "
        f"would take {result['extrapolated_district_s']:,.0f} s. Load average {load_start:.2f} → {load_end:.2f}."
    )
    for mode, spent in result["round_by_mode"].items():
        console.print(
            f"round, {mode}: {spent['residents']:,} residents sampled and resulted in {spent['seconds']:,.1f} s "
            f"({spent['ms_per_resident']:.3f} ms per resident, register not included)"
        )
    if "profile" in result:
        console.print("testing under py-spy (these figures are slowed by the profiler):")
        console.print(result["profile"], markup=False, highlight=False)
    console.print(
        f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']}, Python {facts['python']}, "
        f"Kafka {facts['kafka']}; data in {suite.folder}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
