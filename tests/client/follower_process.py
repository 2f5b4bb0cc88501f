"""A follower as its own process, for the kill-and-restart test: it follows a service's feed from a position
file and records each event it handled (its position, one line each) in an output file.

``--die-at N``: on the event that would be the output's line N+1, SIGKILL itself inside the handler, before
recording it (the position of that event is never saved). ``--stop-at M``: stop once the output has M lines.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from juwei_client import Event, FilePosition, Follower, Residents


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("position")
    parser.add_argument("output")
    parser.add_argument("--page-size", type=int, default=2)
    parser.add_argument("--die-at", type=int)
    parser.add_argument("--stop-at", type=int)
    options = parser.parse_args()
    output = Path(options.output)
    recorded = len(output.read_text().splitlines()) if output.exists() else 0
    residents = Residents(options.url, options.key)

    def handle(event: Event) -> None:
        nonlocal recorded
        if options.die_at is not None and recorded == options.die_at:
            os.kill(os.getpid(), signal.SIGKILL)  # dies mid-handler: this event's position is not saved
        with output.open("a") as file:
            file.write(f"{event.position} {event.type}\n")
            file.flush()
            os.fsync(file.fileno())
        recorded += 1
        if options.stop_at is not None and recorded >= options.stop_at:
            follower.stop()

    follower = Follower(residents.feed, handle, FilePosition(options.position), page_size=options.page_size)
    follower.run()


if __name__ == "__main__":
    main()
