"""The live building board: SSE that resumes from Last-Event-ID, and the page in a real headless Chromium.

The browser test drives Debian's ``chromium`` through the DevTools protocol (a websocket): it opens the
board as a phone would, waits until the page says it is live, publishes an announcement, and reads the
page until the message is there; then it drops the server, starts it again on the same port, and checks
that the page reconnected by itself and shows the next message once.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from demo.sinks import free_port
from juwei.service import create_app
from tests.browser import Browser
from tests.kernel.harness import wait_for
from tests.notify.conftest import Notify


class LiveServer:
    """The notify app served by uvicorn in a thread, on a fixed port (so that it can come back on it)."""

    def __init__(self, notify: Notify, port: int) -> None:
        config = uvicorn.Config(
            create_app(notify.runtime, background=False, migrate_on_start=False),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=20, what="uvicorn to start")
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _sse(lines: Iterator[str], count: int) -> list[dict[str, str]]:
    """The next ``count`` events of an SSE stream (comments and pings skipped)."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in current and current.get("event") == "notice":
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
            continue
        name, _, value = line.partition(":")
        if name:
            current[name] = value.lstrip(" ")
    return events


def _board_url(notify: Notify, building: str = "1") -> str:
    answer = notify.client.get(f"/compounds/c1/buildings/{building}/board", headers=notify.key("committee-staff"))
    assert answer.status_code == 200, answer.text
    return answer.json()["url"]


def test_the_board_stream_resumes_after_the_last_event_id(notify: Notify) -> None:
    for n in range(3):
        notify.announce(f"通知{n}", buildings=["1"])
    notify.announce("别楼的通知", buildings=["2"])
    url = _board_url(notify)
    assert notify.client.get("/boards/nonsense").status_code == 404
    with LiveServer(notify, free_port()) as live, httpx.Client(base_url=live.url, timeout=10) as http:
        page = http.get(url)
        assert page.status_code == 200 and "1号楼公告栏" in page.text and "通知2" in page.text
        assert "别楼的通知" not in page.text
        with http.stream("GET", f"{url}/stream") as stream:
            first = _sse(stream.iter_lines(), 3)
        assert [json.loads(e["data"])["title"] for e in first] == ["通知0", "通知1", "通知2"]
        notify.announce("通知3", buildings=["1"], priority="critical")
        notify.announce("通知4", buildings=["1", "2"])
        with http.stream("GET", f"{url}/stream", headers={"Last-Event-ID": first[-1]["id"]}) as stream:
            resumed = _sse(stream.iter_lines(), 2)
        notices = [json.loads(e["data"]) for e in resumed]
        assert [(n["title"], n["priority"]) for n in notices] == [("通知3", "critical"), ("通知4", "normal")]
        assert int(resumed[0]["id"]) > int(first[-1]["id"])
        # A resume point beyond 64 bits is the client's mistake: a problem, not a 500 mid-stream.
        beyond = http.get(f"{url}/stream", headers={"Last-Event-ID": str(2**64)})
        assert beyond.status_code == 400 and beyond.headers["content-type"] == "application/problem+json"
        assert http.get(f"{url}/stream", params={"after": 2**63}).status_code == 422
        english = http.get(f"{url}?lang=en")
        assert "Building 1 board" in english.text
        rotated = notify.client.post("/compounds/c1/buildings/1/board/rotate", headers=notify.key("committee-staff"))
        assert rotated.json()["url"] != url and http.get(url).status_code == 404


def test_the_board_in_headless_chromium_shows_a_message_published_after_it_loaded_and_survives_a_drop(
    notify: Notify, tmp_path: Path
) -> None:
    notify.announce("已有的通知", buildings=["1"])
    url = _board_url(notify)
    port = free_port()
    browser = Browser(tmp_path / "chromium")
    try:
        browser.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
        with LiveServer(notify, port) as live:
            browser.call("Page.navigate", url=f"{live.url}{url}")
            wait_for(
                lambda: browser.evaluate("document.body && document.body.dataset.state") == "live",
                timeout=30,
                what="the board to connect",
            )
            assert "已有的通知" in browser.evaluate("document.getElementById('messages').innerText")
            notify.announce(
                "今晚 20:00 楼道消杀，请关好门窗",
                buildings=["1"],
                priority="important",
                body="消杀后一小时内请勿开窗。",
            )
            wait_for(
                lambda: "今晚 20:00 楼道消杀" in browser.evaluate("document.getElementById('messages').innerText"),
                timeout=20,
                what="the new message on the page",
            )
        # The server went away: the page says so, and comes back by itself when the server does.
        wait_for(
            lambda: browser.evaluate("document.body.dataset.state") == "reconnecting",
            timeout=20,
            what="the page to notice the drop",
        )
        notify.announce("恢复连接后的通知", buildings=["1"])
        with LiveServer(notify, port):
            wait_for(
                lambda: "恢复连接后的通知" in browser.evaluate("document.getElementById('messages').innerText"),
                timeout=30,
                what="the page to resume after the drop",
            )
            titles = browser.evaluate("Array.from(document.querySelectorAll('article h2')).map(h => h.innerText)")
            assert titles == ["恢复连接后的通知", "重要今晚 20:00 楼道消杀，请关好门窗", "已有的通知"]  # once each
            shot = browser.call("Page.captureScreenshot", format="png")
            (tmp_path / "board.png").write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.close()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)
    time.sleep(0)  # nothing left running
