"""The console's overview of a whole compound, timed as a signed-in staff member loads it.

Against a running suite and console with the seed compound (25 buildings, 5,000 residents at scale 1.0):

    make run-detached && .venv/bin/juwei demo --scale 1.0
    .venv/bin/juwei console add-staff --compound c1 --staff <a staff id of the demo> --username bench
    JUWEI_CONSOLE_PASSWORD=... .venv/bin/python bench/console_overview.py --username bench

It signs in once, loads /overview ``--runs`` times one after another and prints the times (the goal of
issue 17: under 1 s). The services are asked at once (``console.figures``), so the page costs about its
slowest service call, not their sum.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import httpx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--console", default="http://127.0.0.1:8005")
    parser.add_argument("--username", required=True)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    password = os.environ.get("JUWEI_CONSOLE_PASSWORD")
    if not password:
        sys.exit("set JUWEI_CONSOLE_PASSWORD to the account's password")
    with httpx.Client(base_url=options.console, timeout=30, follow_redirects=True) as http:
        http.get("/signin")
        signed = http.post(
            "/signin",
            data={"username": options.username, "password": password, "csrf": http.cookies.get("console_pre", "")},
        )
        if signed.status_code != 200 or 'id="overview"' not in signed.text:
            sys.exit(f"sign-in failed: {signed.status_code}")
        buildings = signed.text.count("data-building=")
        times = []
        for _ in range(options.runs):
            started = time.perf_counter()
            page = http.get("/overview")
            times.append(time.perf_counter() - started)
            if page.status_code != 200 or 'id="missing"' in page.text:
                sys.exit(f"the overview was incomplete: {page.status_code}")
    result = {
        "buildings": buildings,
        "runs": options.runs,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "p95_ms": round(sorted(times)[max(0, int(len(times) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
    }
    print(json.dumps(result) if options.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
