"""The building groups' webhook sink for the end-to-end benchmarks, in a process of its own.

``demo.sinks.Platforms`` (the platform imitations of the notify tests and the demo) with one signed webhook
receiver per token. It checks every signature, dedupes on the delivery id, and stamps each accepted message
with ``time.time()`` as it arrives; this process copies those entries to a JSON-lines file as they come
(``{"token", "at", "delivery", "message", "building", "title"}``) so that the benchmark, in another process,
can read them without sharing its interpreter (and its GIL) with the receiver.

    python bench/sink.py <spec.json>      # {"tokens": [...], "secret": "...", "out": "<file>"}

Writes the port it listens on to ``<spec folder>/sink.port``; runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from http.server import BaseHTTPRequestHandler

from demo.sinks import Platforms

# Keep-alive, as the real platforms' HTTPS endpoints do: HTTP/1.0 made every message a new TCP connection
# (a connect in notify, a thread in this process), a cost of the imitation rather than of notify. Without
# Nagle: the handler writes headers and body apart, and on a kept connection the body then waited for the
# client's delayed ACK (44 ms a request instead of 0.4 ms; 1.8 ms with a connection per request).
BaseHTTPRequestHandler.protocol_version = "HTTP/1.1"
BaseHTTPRequestHandler.disable_nagle_algorithm = True


def main() -> None:
    spec_path = Path(sys.argv[1])
    spec = json.loads(spec_path.read_text())
    platforms = Platforms(host=spec.get("host", "127.0.0.1")).start()
    bots = [platforms.bot("webhook", token, spec["secret"]) for token in spec["tokens"]]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    copied = dict.fromkeys(range(len(bots)), 0)
    (spec_path.parent / "sink.port").write_text(str(platforms.port))
    try:
        with open(spec["out"], "a", encoding="utf-8") as out:
            while True:
                stopping = stop.wait(0.02)
                lines = []
                with platforms.lock:
                    for index, bot in enumerate(bots):
                        fresh = bot.received[copied[index] :]
                        copied[index] += len(fresh)
                        for entry in fresh:
                            body = entry["body"]
                            lines.append(
                                {
                                    "token": bot.token,
                                    "at": entry["at"],
                                    "delivery": entry.get("delivery"),
                                    "message": body.get("message"),
                                    "building": body.get("building"),
                                    "title": body.get("title"),
                                }
                            )
                if lines:
                    out.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
                    out.flush()
                if stopping:
                    break
    finally:
        platforms.stop()


if __name__ == "__main__":
    main()
