"""Headless Chromium (Debian's package) for the page tests, spoken to over the DevTools protocol (a websocket).

``Browser`` starts one Chromium with a profile of the test's own and drives its first page: navigate, evaluate
JavaScript, wait for a condition, fill and submit forms, set the viewport (phone or desktop), take screenshots.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from tests.kernel.harness import wait_for

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 360, "height": 780, "deviceScaleFactor": 2, "mobile": True}
DESKTOP = {"width": 1366, "height": 900, "deviceScaleFactor": 1, "mobile": False}


class Browser:
    """Headless Chromium and one page of it."""

    def __init__(self, profile: Path, *, language: str = "zh-CN") -> None:
        assert Path(CHROMIUM).exists(), "apt-get install -y chromium (Debian's package) is needed for this test"
        self.profile = profile
        self.events: list[dict[str, Any]] = []
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                f"--lang={language}",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        wait_for(lambda: port_file.exists() and port_file.read_text().strip(), timeout=30, what="chromium to start")
        port = int(port_file.read_text().splitlines()[0])
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
        self.socket = connect(pages[0]["webSocketDebuggerUrl"], max_size=50 * 1024 * 1024, legacy=True)
        self.ids = itertools.count(1)
        # Headless Chromium sends Accept-Language from --lang only with a head: say it over the protocol.
        agent = self.call("Browser.getVersion")["userAgent"]
        self.call("Network.setUserAgentOverride", userAgent=agent, acceptLanguage=language)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            answer = json.loads(self.socket.recv(timeout=30))
            if answer.get("id") == number:
                assert "error" not in answer, answer
                return answer.get("result", {})
            if "method" in answer:
                # An event of a domain a test enabled (Fetch.requestPaused …): kept for it to read.
                self.events.append(answer)

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def viewport(self, metrics: dict[str, Any]) -> None:
        """Phone (``PHONE``, 360 px) or desktop (``DESKTOP``) width."""
        self.call("Emulation.setDeviceMetricsOverride", **metrics)

    def open(self, url: str, *, ready: str = "document.readyState === 'complete'", timeout: float = 30) -> None:
        """Navigate and wait until the new page is loaded and ``ready`` (a JavaScript expression) holds."""
        self.evaluate("window.__left = true")
        self.call("Page.navigate", url=url)
        self.wait(f"!window.__left && ({ready})", timeout=timeout, what=f"{url} to load")

    def wait(self, expression: str, *, timeout: float = 30, what: str = "the page") -> None:
        """Until ``expression`` is true on the page (a navigation under way counts as not yet)."""

        def holds() -> bool:
            try:
                return bool(self.evaluate(expression))
            except AssertionError:  # the context went away mid-navigation
                return False

        wait_for(holds, timeout=timeout, what=what)

    def fill(self, selector: str, value: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")

    def submit(self, form_selector: str, *, timeout: float = 30) -> None:
        """Submit a form as a person would (its submit button) and wait for the page it leads to."""
        self.evaluate("window.__left = true")
        self.evaluate(f"document.querySelector({json.dumps(form_selector)}).requestSubmit()")
        self.wait("!window.__left && document.readyState === 'complete'", timeout=timeout, what="the next page")

    def text(self, selector: str = "body") -> str:
        return self.evaluate(f"(document.querySelector({json.dumps(selector)}) || {{innerText: ''}}).innerText") or ""

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        shot = self.call("Page.captureScreenshot", **params)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class LiveApp:
    """An ASGI app served by uvicorn in a thread on ``port`` (a browser needs a real socket)."""

    def __init__(self, app: Any, port: int) -> None:
        import threading

        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> LiveApp:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=20, what="uvicorn to start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
