"""The console's overview of a 25-building, 5,000-resident compound, timed as a signed-in staff member loads it,
side by side with the same figures fetched from the services one building at a time, in series.

Everything runs on this machine as ``juwei run`` runs it: the bench broker (or ``JUWEI_KAFKA_BOOTSTRAP``), the
four services and the console, each a process (``python -m juwei.cli serve <service>``, ``... console serve``).
Untimed preparation, through the services' APIs: the demo's compound (``demo.compound``, 25 buildings, 5,000
residents) by the residents import; staff s1 of every building; six sampling points and today's PCR round with
its call plan, half the buildings sampled (tubes of ten); a batch for the whole compound, allocated and
dispatched, a few households not reached; open questions from a few buildings. Staff s1 gets a console
account (``juwei console add-staff``).

Measured:

* **console**: ``GET /overview`` (signed in), ``--runs`` loads one after another: median and p95. The console
  asks the services at once (``console.figures``: two rounds of concurrent calls).
* **per building, in series**: the same figures asked the way a page without the concurrent client would,
  building by building (zone, tested counts, the round's calls, follow-ups, cards), then the compound-wide
  lists (rounds, batches and their progress, medicine outstanding, open questions), each call waiting for
  the last: median and p95 of ``--serial-runs`` passes. The ratio is serial / console (medians).

    .venv/bin/python bench/console_overview.py                     # 5,000 residents, 30 loads
    .venv/bin/python bench/console_overview.py --residents 1000 --runs 10

Nothing asserts a timing (the goal of issue 17 is under 1 s); the script prints what it measured.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
from suite import Suite, free_port, running_suite, spawn

from demo.compound import Size, make_compound

SERVICES = ("residents", "supplies", "testing", "notify")
TODAY = "2022-04-12"
COMPOUND = "c1"
PASSWORD = "bench console 1"
C = f"/compounds/{COMPOUND}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=25)
    parser.add_argument("--residents", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=30, help="overview loads through the console")
    parser.add_argument("--serial-runs", type=int, default=10, help="passes of the one-building-at-a-time calls")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def stats(times: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(times) * 1000, 1),
        "p95_ms": round(percentile(times, 0.95) * 1000, 1),
        "min_ms": round(min(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
    }


def seed(suite: Suite, buildings: int, residents: int, log: Callable[[str], None]) -> list[str]:
    """The compound and a day's work in every service (untimed); the buildings' ids."""
    from datetime import date

    made = make_compound(COMPOUND, Size(buildings=buildings, residents=residents), today=date.fromisoformat(TODAY))
    csv_type = {"content-type": "text/csv"}
    suite.request("residents", "POST", f"{C}/import", params={"kind": "buildings"}, content=made.buildings_csv(),
                  headers=csv_type)  # fmt: skip
    suite.request("residents", "POST", f"{C}/import", params={"kind": "residents"}, content=made.residents_csv(),
                  headers=csv_type)  # fmt: skip
    suite.request("residents", "PUT", f"{C}/staff/s1/buildings", json={"buildings": []})
    names = [b.building for b in made.buildings]
    log(f"seed: {len(names)} buildings, {len(made.people)} residents, {len(made.households)} households imported")
    points = [f"p{n}" for n in range(1, 7)]
    for index, point in enumerate(points):
        suite.post("testing", f"{C}/points", {"point": point, "name": point, "location": "gate", "throughput": 40})
        served = names[index :: len(points)]
        suite.request("testing", "PUT", f"{C}/points/{point}/buildings", json={"buildings": served})
    suite.post("testing", f"{C}/rounds", {"round": "R1", "starts_at": f"{TODAY}T07:00", "points": points})
    suite.wait(
        "testing to hear of every resident",
        lambda: (
            sum(b["residents"] for b in suite.get("testing", f"{C}/rounds/R1/counts")["buildings"]) == len(made.people)
        ),
        timeout=600,
        every=1,
    )
    suite.post("testing", f"{C}/rounds/R1/plan")
    sampled = [p for p in made.people if int(p.building) % 2 == 1]
    tubes = [sampled[i : i + 10] for i in range(0, len(sampled), 10)]
    for start in range(0, len(tubes), 100):
        upload = [{"tube": f"T{start + n:05d}", "residents": [p.resident for p in tube]}
                  for n, tube in enumerate(tubes[start : start + 100])]  # fmt: skip
        suite.post("testing", f"{C}/rounds/R1/tubes", {"point": "p1", "tubes": upload})
    log(f"seed: round R1 planned, {len(sampled)} residents sampled")
    rice = [{"item": "rice", "quantity": 5 * len(made.households), "unit": "bag"}]
    suite.post("supplies", f"{C}/batches", {"batch": "B1", "source": "government", "whole_compound": True,
                                            "items": rice})  # fmt: skip
    suite.wait(
        "supplies to hear of every household",
        lambda: suite.client.post(f"{suite.services['supplies'].url}{C}/batches/B1/allocation",
                                  json={"method": "equal"}, headers={"X-API-Key": suite.key()}).status_code < 300,
        timeout=600, every=1,
    )  # fmt: skip
    suite.post("supplies", f"{C}/batches/B1/dispatch", {})
    homes = made.households
    for building in names[:5]:
        missed = [h for h, (b, _f, _r) in sorted(homes.items()) if b == building][:3]
        suite.post("supplies", f"{C}/batches/B1/buildings/{building}/outcomes",
                   {"outcomes": [{"household": h, "outcome": "no_one_home"} for h in missed]})  # fmt: skip
    for building in names[:8]:
        suite.wait(
            f"notify to hear of building {building}",
            lambda b=building: suite.client.post(f"{suite.services['notify'].url}{C}/buildings/{b}/questions",
                                                 json={"text": "什么时候可以下楼？"},
                                                 headers={"X-API-Key": suite.key()}).status_code == 201,
            timeout=300, every=1,
        )  # fmt: skip
    log(
        f"seed: batch B1 dispatched (3 households not reached in {len(names[:5])} buildings), "
        f"{len(names[:8])} buildings asked a question"
    )
    return names


def start_console(suite: Suite, log: Callable[[str], None]) -> tuple[str, Any]:
    folder = suite.folder
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUWEI_")}
    env.update({
        "JUWEI_DATA_DIR": str(folder), "JUWEI_KAFKA_BOOTSTRAP": suite.bootstrap, "JUWEI_LOG_LEVEL": "WARNING",
        "JUWEI_CONSOLE_PORT": str(port), "JUWEI_CONSOLE_DATABASE_URL": f"sqlite:///{folder / 'console.db'}",
        "JUWEI_CONSOLE_SECRET": "bench-console-secret", "JUWEI_TODAY": TODAY,
        **{f"JUWEI_{s.upper()}_URL": suite.services[s].url for s in SERVICES},
    })  # fmt: skip
    made = subprocess.run(
        [sys.executable, "-m", "juwei.cli", "console", "add-staff", "--compound", COMPOUND, "--staff", "s1",
         "--username", "bench"],
        env={**env, "JUWEI_CONSOLE_PASSWORD": PASSWORD}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if made.returncode != 0:
        raise RuntimeError(f"add-staff failed: {made.stderr}")
    process = spawn("console", [sys.executable, "-m", "juwei.cli", "console", "serve", "--port", str(port)], env,
                    folder)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    suite.wait("the console", lambda: _answers(f"{url}/healthz"), timeout=120, every=0.2)
    log(f"console: {url} (pid {process.pid})")
    return url, process


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def time_console(url: str, runs: int) -> tuple[list[float], int]:
    with httpx.Client(base_url=url, timeout=60) as http:
        http.get("/signin")
        form = {"username": "bench", "password": PASSWORD, "csrf": http.cookies.get("console_pre", "")}
        signed = http.post("/signin", data=form, follow_redirects=True)
        if signed.status_code != 200:
            raise RuntimeError(f"sign-in failed: {signed.status_code}")
        for _ in range(3):  # warm: connections, templates, the services' caches
            http.get("/overview")
        times = []
        rows = 0
        for _ in range(runs):
            started = time.perf_counter()
            page = http.get("/overview")
            times.append(time.perf_counter() - started)
            if page.status_code != 200 or 'id="missing"' in page.text:
                raise RuntimeError(f"the overview was incomplete: {page.status_code}")
            rows = page.text.count("data-building=")
    return times, rows


def serial_pass(suite: Suite, buildings: list[str]) -> float:
    """The overview's figures, one building at a time and one call at a time (operator key, same endpoints)."""
    http, headers = suite.client, {"X-API-Key": suite.keys[0]}

    def get(service: str, path: str, **params: Any) -> Any:
        answer = http.get(f"{suite.services[service].url}{C}{path}", params=params, headers=headers)
        answer.raise_for_status()
        return answer.json()

    started = time.perf_counter()
    for building in buildings:
        get("residents", f"/buildings/{building}/zone")
        get("testing", "/rounds/R1/counts", building=building)
        get("testing", "/rounds/R1/plan", building=building)
        get("supplies", "/follow-ups", building=building)
        get("supplies", "/cards", building=building, out="true")
    get("residents", "/zones")
    get("testing", "/rounds")
    for batch in get("supplies", "/batches")["batches"]:
        get("supplies", f"/batches/{batch['batch']}/progress")
    get("supplies", "/medicine/outstanding")
    get("notify", "/question-groups", status="open", limit=500)
    return time.perf_counter() - started


def main() -> int:
    options = parse_args()
    log = (lambda _m: None) if options.json else (lambda m: print(m, file=sys.stderr, flush=True))
    with running_suite(SERVICES, env={"JUWEI_TODAY": TODAY}, log=log) as suite:
        buildings = seed(suite, options.buildings, options.residents, log)
        url, console = start_console(suite, log)
        try:
            times, rows = time_console(url, options.runs)
            serial = [serial_pass(suite, buildings) for _ in range(options.serial_runs + 1)][1:]
        finally:
            console.stop()
    result = {
        "buildings": rows,
        "residents": options.residents,
        "console_overview": {"runs": options.runs, **stats(times)},
        "per_building_in_series": {"runs": options.serial_runs, "calls": len(buildings) * 5 + 6, **stats(serial)},
        "ratio_serial_to_console": round(statistics.median(serial) / statistics.median(times), 2),
    }
    print(json.dumps(result, indent=None if options.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
