"""Figures for the notify dispatcher: deliveries per second, and latency from announcement to the platform.

Run: ``.venv/bin/python -m tests.notify.measure [sqlite|postgresql-url]``. Not a test; it prints numbers.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from demo.sinks import Platforms
from juwei.auth import issue_key
from juwei.callers import Holder
from services.notify.dispatch import DispatchPolicy
from tests.notify.conftest import close_notify, compound_events, open_notify, receive


def main(url: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="jw-notify-measure-"))
    made = open_notify(url or f"sqlite:///{folder / 'notify.db'}", folder, DispatchPolicy())
    receive(made.runtime, *compound_events("c1", buildings=25, households=2))
    platforms = Platforms().start()
    try:
        for b in range(1, 26):
            for n in range(2):
                made.attach(str(b), "webhook", platforms.config(platforms.bot("webhook", f"h{b}-{n}", "w" * 32)))
        for n in range(40):
            made.announce(f"全小区通知 {n}")
        queued = 40 * 25 * 2
        started = time.perf_counter()
        made.dispatcher.drain(timeout=600)
        elapsed = time.perf_counter() - started
        received = sum(len(bot.received) for bot in platforms.bots.values())
        print(
            f"throughput: {received}/{queued} deliveries in {elapsed:.1f}s = {received / elapsed:.0f}/s "
            f"({made.runtime.database.dialect}, {made.dispatcher.policy.workers} workers)"
        )

        # Latency: the service's own periodic dispatcher (default tick), one announcement every 50 ms.
        live = platforms.bot("webhook", "live", "w" * 32)
        made.attach("1", "webhook", platforms.config(live))
        made.dispatcher.close()
        made.runtime.start_background(relay=False, consumers=False)
        with made.runtime.database.unit_of_work() as session:
            staff = {"X-API-Key": issue_key(session, "committee-staff", "c1", holder=Holder("system", "measure")).key}
        composed: dict[str, float] = {}
        for n in range(200):
            title = f"延迟测试 {n}"
            answer = made.client.post(
                "/compounds/c1/announcements", json={"title": title, "buildings": ["1"]}, headers=staff
            )
            assert answer.status_code == 201
            composed[title] = time.time()
            time.sleep(0.05)
        deadline = time.time() + 60
        while len(live.received) < 200 and time.time() < deadline:
            time.sleep(0.1)
        waits = sorted(entry["at"] - composed[entry["body"]["title"]] for entry in live.received)
        p50 = statistics.median(waits)
        p99 = waits[int(len(waits) * 0.99) - 1]
        print(
            f"latency announcement→platform over {len(waits)} messages: p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms (tick {made.runtime.definition.periodic[0][0]} s)"
        )
        made.runtime.stop()
    finally:
        platforms.stop()
        close_notify(made)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
