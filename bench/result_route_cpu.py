"""CPU per individual positive result on testing's route, in process (TestClient, SQLite, no Kafka).

Untimed: a compound of 10 buildings taken in, two points and round r1 opened, ``n`` residents sampled ten to a
tube, every pool positive, then one individual re-test sample each. Measured: ``n - 20`` positive individual
results posted one after another (the first 20 warm up), as the process's CPU time (all threads: the client,
the app's loop and its worker threads) per result. The client's share is the same on both sides of a
comparison, so run two trees side by side (issue 20: ``bench/README.md``); absolute figures are not
``result_latency.py``'s.

    .venv/bin/python bench/result_route_cpu.py 150 > /dev/null   # the figure is on stderr
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os
import tempfile
import time

from fastapi.testclient import TestClient

from juwei.service import create_app
from tests.testing.compound import make_compound
from tests.testing.conftest import Testing, make_testing, open_points, receive

WARM = 20


def measure(n: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per result over ``n - WARM`` results."""
    folder = Path(tempfile.mkdtemp(prefix="result-route-"))
    runtime = make_testing(f"sqlite:///{folder}/testing.db", folder)
    compound = make_compound("c1", buildings=10, residents=max(300, int(n * 1.3)), seed=7)
    with TestClient(create_app(runtime, background=False)) as client:
        testing = Testing(client, runtime)
        receive(runtime, compound.envelopes)
        open_points(testing, 2)
        testing.ok("POST", "/assignment/proposal")
        testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1", "p2"]})
        volunteer = testing.point_key("p1")
        people = list(compound.residents)[:n]
        for start in range(0, n, 10):
            pool = {"tube": f"T{start}", "residents": people[start : start + 10]}
            testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json=pool)
            testing.ok("POST", f"/tubes/T{start}/result", json={"result": "positive"})
        for number, person in enumerate(people):
            single = {"tube": f"S{number}", "residents": [person]}
            testing.ok("POST", "/rounds/r1/samples", headers=volunteer, json=single)
        for person in people[:WARM]:
            testing.ok("POST", f"/rounds/r1/residents/{person}/result", json={"result": "positive"})
        cpu, wall = time.process_time(), time.perf_counter()
        for person in people[WARM:]:
            testing.ok("POST", f"/rounds/r1/residents/{person}/result", json={"result": "positive"})
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    runtime.database.dispose()
    count = n - WARM
    return 1000 * cpu / count, 1000 * wall / count


if __name__ == "__main__":
    results = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    cpu_ms, wall_ms = measure(results)
    load = os.getloadavg()[0]
    print(
        f"CPU {cpu_ms:.2f} ms/result, wall {wall_ms:.2f} ms/result, {results - WARM} results, load {load:.1f}",
        file=sys.stderr,
    )
