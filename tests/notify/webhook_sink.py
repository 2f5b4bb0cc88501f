"""A real HTTP receiver for webhook subscriptions: records every request and checks its Standard Webhooks signature.

The check is written here from the spec (standardwebhooks.com), not imported from notify: base64 HMAC-SHA256,
keyed by the bytes after ``whsec_``, over ``{webhook-id}.{webhook-timestamp}.{body}``, in a ``v1,<sig>`` entry of
``webhook-signature`` (space-separated entries).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for entry in headers.get("webhook-signature", "").split():
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


@dataclass
class Received:
    webhook_id: str
    timestamp: int
    event: dict[str, Any]
    valid: bool
    status: int
    replay: str | None


@dataclass
class Sink:
    """``answer(event, times this webhook-id was seen before) -> status`` decides each answer (200 by default)."""

    answer: Callable[[dict[str, Any], int], int] = lambda _event, _seen: 200
    secret: str = ""
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook?token=t0ken"

    def start(self) -> Sink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                event = json.loads(body)
                with sink._lock:
                    seen = sum(1 for r in sink.received if r.webhook_id == headers["webhook-id"])
                    status = sink.answer(event, seen)
                    sink.received.append(
                        Received(
                            headers["webhook-id"],
                            int(headers["webhook-timestamp"]),
                            event,
                            bool(sink.secret) and verified(sink.secret, headers, body),
                            status,
                            headers.get("juwei-replay"),
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]
