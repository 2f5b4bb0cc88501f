"""The phone pages in a real headless Chromium at 360 px, against the real services.

A logistics volunteer opens the checklist once; the network goes (the phone offline and the console stopped);
the page opens again from the service worker's copy; a tap is kept as waiting; the network comes back and the
outbox sends it, but its answer is lost on the way (the DevTools Fetch domain fails the response); the page is
loaded again and sends it a second time: the service answers "replayed" and has exactly one confirmation.
A household delivered by someone else meanwhile is shown as not done, with the service's detail, and stays.
Another building's page is refused. A household sends its antigen self-report with a photo.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console import sessions
from demo.sinks import free_port
from tests.access.seed import png
from tests.browser import PHONE, Browser, LiveApp
from tests.console.conftest import Committee, ConsoleUnderTest
from tests.console.phone_people import (
    Delivery,
    confirmations,
    dispatch,
    enlist_logistics,
    household_key,
    issue_key,
    own_compound,
    send_out,
    session_for,
)
from tests.kernel.harness import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def committee(committee: Committee) -> Committee:
    """This module's own compound on the session's suite (the console fixture calls it as this one)."""
    return own_compound(committee)


READY = "!!document.getElementById('outbox') && document.getElementById('outbox').dataset.ready === '1'"


class Phone(Browser):
    """The browser with what the offline test does to it: events awaited, the network cut, a session's cookie."""

    def next_event(self, method: str, timeout: float = 60) -> dict[str, Any]:
        def arrived() -> bool:
            if not any(e["method"] == method for e in self.events):
                try:
                    message = json.loads(self.socket.recv(timeout=1))
                except TimeoutError:
                    return False
                if "method" in message:
                    self.events.append(message)
            return any(e["method"] == method for e in self.events)

        wait_for(arrived, timeout=timeout, what=f"the browser's {method}")
        found = next(e for e in self.events if e["method"] == method)
        self.events.remove(found)
        return found

    def awaited(self, expression: str) -> Any:
        answer = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        return answer["result"].get("value")

    def network(self, *, offline: bool) -> None:
        self.call(
            "Network.emulateNetworkConditions", offline=offline, latency=0, downloadThroughput=-1, uploadThroughput=-1
        )

    def sign_in_as(self, url: str, token: str) -> None:
        self.call("Network.enable")
        self.call("Network.setCookie", name=sessions.COOKIE, value=token, url=url, httpOnly=True)
        self.call("Network.setCookie", name="console_lang", value="zh_CN", url=url)  # as the language switch sets it


@pytest.fixture(scope="module")
def deliveries(committee: Committee) -> Iterator[tuple[Delivery, str]]:
    enlist_logistics(committee)
    run = uuid.uuid4().hex[:6]
    delivery = dispatch(committee, f"B{run}")
    second = f"C{run}"
    send_out(committee, second)
    yield delivery, second


def tap(browser: Phone, action: str, key: str) -> None:
    selector = f'button[data-action="{action}"][data-key="{key}"]'
    assert browser.evaluate(f"!!document.querySelector({json.dumps(selector)})"), selector
    browser.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


def test_a_delivery_confirmed_offline_is_sent_once_when_the_network_returns(
    committee: Committee, console: ConsoleUnderTest, deliveries: tuple[Delivery, str], tmp_path: Path
) -> None:
    delivery, second = deliveries
    household = delivery.households[0]
    key = issue_key(console, committee.compound, "logistics-volunteer", volunteer=delivery.volunteer)
    token = session_for(console, committee.compound, "logistics-volunteer", "volunteer", delivery.volunteer, key, ["1"])
    port = free_port()
    live = LiveApp(console.app, port).__enter__()
    page = f"{live.url}/phone/deliveries/1"
    try:
        with Phone(tmp_path / "chromium") as browser:
            browser.sign_in_as(live.url, token)
            browser.viewport(PHONE)
            browser.open(page, ready=READY)
            browser.wait("navigator.serviceWorker.controller !== null", what="the service worker to take the page")
            browser.open(page, ready=READY)  # through the worker now: it keeps this page's copy
            assert browser.evaluate("document.documentElement.scrollWidth") <= 360
            heights = browser.evaluate(
                "Array.from(document.querySelectorAll('button[data-action]'))"
                ".map(b => b.getBoundingClientRect().height)"
            )
            assert heights and min(heights) >= 44
            browser.screenshot(tmp_path / "deliveries-phone.png")

            # The network goes: the phone is offline and the console itself is stopped.
            browser.network(offline=True)
            live.__exit__()
            browser.open(page, ready=READY)
            assert browser.evaluate("navigator.onLine") is False
            assert "没有网络" in browser.text("#network")
            tap(browser, "delivery.delivered", f"{delivery.batch}/{household}")
            browser.wait("!!document.querySelector('#outbox-list li[data-status=pending]')", what="the tap kept")
            assert "等待发送" in browser.text("#outbox-list")
            assert confirmations(committee, delivery.batch, household) == []

            # The network returns; the outbox sends at once, but the answer never reaches the phone.
            live = LiveApp(console.app, port).__enter__()
            browser.call("Fetch.enable", patterns=[{"urlPattern": "*/api/actions", "requestStage": "Response"}])
            browser.network(offline=False)
            paused = browser.next_event("Fetch.requestPaused")
            assert paused["params"]["responseStatusCode"] == 200
            browser.call("Fetch.failRequest", requestId=paused["params"]["requestId"], errorReason="ConnectionReset")
            browser.call("Fetch.disable")
            wait_for(
                lambda: len(confirmations(committee, delivery.batch, household)) == 1,
                timeout=60,
                what="the confirmation in supplies' feed",
            )
            stored = browser.awaited("juweiOutbox.list()")
            assert [a["status"] for a in stored] == ["pending"]

            # Loaded again: the outbox sends it again, and the service answers with its first answer.
            browser.open(page, ready=READY)
            browser.wait("!!document.querySelector('#outbox-list li[data-status=done]')", what="the action sent")
            stored = browser.awaited("juweiOutbox.list()")
            assert len(stored) == 1 and stored[0]["status"] == "done" and stored[0]["replayed"] is True
            assert "已发送" in browser.text("#outbox-list")
            # Replayed once more from the phone's store: still the one confirmation.
            assert browser.awaited("juweiOutbox.list().then(a => juweiOutbox.send({...a[0], status: 'pending'}))")

            # Someone else delivers the second batch to the household while the page shows it waiting: a conflict.
            committee.ok(
                "POST", "supplies", f"/batches/{second}/buildings/1/outcomes",
                {"outcomes": [{"household": household, "outcome": "delivered"}]},
            )  # fmt: skip
            tap(browser, "delivery.delivered", f"{second}/{household}")
            browser.wait("!!document.querySelector('#outbox-list li[data-status=conflict]')", what="the conflict")
            assert browser.text("#outbox-list li[data-status=conflict] .detail").strip()
            assert "未完成" in browser.text("#outbox-list li[data-status=conflict]")
            browser.open(page, ready=READY)
            assert browser.evaluate("document.querySelectorAll('#outbox-list li[data-status=conflict]').length") == 1
            # The feed has the later confirmation of the second batch: a resend's event would be there too.
            wait_for(
                lambda: len(confirmations(committee, second, household)) == 1,
                timeout=60,
                what="the second batch in the feed",
            )
            assert len(confirmations(committee, delivery.batch, household)) == 1
            browser.screenshot(tmp_path / "outbox-phone.png")

            # Another building's checklist: refused, in Chinese.
            browser.open(f"{live.url}/phone/deliveries/2")
            assert "这栋楼不归您负责" in browser.text(".problem")
    finally:
        live.__exit__()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)


def test_a_household_sends_its_self_test_with_a_photo_from_the_phone(
    committee: Committee, console: ConsoleUnderTest, tmp_path: Path
) -> None:
    committee.ok("POST", "testing", "/rounds", {"round": "AV9", "kind": "antigen", "starts_at": "2022-05-03T08:00"})
    wait_for(
        lambda: bool(committee.ok("GET", "testing", "/rounds/AV9/households/h2-101/antigen")["members"]),
        timeout=90,
        what="testing to learn the household over Kafka",
    )
    key = household_key(committee, "h2-101")
    token = session_for(console, committee.compound, "household", "household", "h2-101", key, ["2"])
    photo = tmp_path / "antigen.png"
    photo.write_bytes(png(8, 8))
    with LiveApp(console.app, free_port()) as live, Phone(tmp_path / "chromium") as browser:
        try:
            browser.sign_in_as(live.url, token)
            browser.viewport(PHONE)
            browser.open(f"{live.url}/phone/home", ready="!!document.getElementById('antigen-form')")
            assert browser.evaluate("document.getElementById('zone').dataset.zone")
            assert browser.evaluate("document.documentElement.scrollWidth") <= 360
            browser.evaluate("document.querySelector('input[name=resident][value=r2]').checked = true")
            browser.evaluate("document.querySelector('input[name=result][value=negative]').checked = true")
            found = browser.call("Runtime.evaluate", expression="document.querySelector('input[name=photo]')")
            browser.call("DOM.setFileInputFiles", files=[str(photo)], objectId=found["result"]["objectId"])
            assert browser.evaluate("document.querySelector('input[name=photo]').files.length") == 1
            browser.submit("#antigen-form")
            assert browser.evaluate("location.pathname + location.search") == "/phone/home?reported=1"
            assert "已提交" in browser.text("#reported")
            browser.screenshot(tmp_path / "self-test-phone.png")
        finally:
            shutil.rmtree(tmp_path / "chromium", ignore_errors=True)
    reports = committee.ok("GET", "testing", "/rounds/AV9/households/h2-101/antigen")
    member = next(m for m in reports["members"] if m["resident"] == "r2")
    assert member["result"] == "negative" and member["photo"]
