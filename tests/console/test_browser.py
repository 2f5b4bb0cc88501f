"""The console in a real headless Chromium: a staff member signs in on a 360 px phone and reads the overview,
then on a desktop in English; the page fits the phone's width (no sideways scrolling)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from demo.sinks import free_port
from tests.browser import DESKTOP, PHONE, Browser, LiveApp
from tests.console.conftest import PASSWORD, Committee, ConsoleUnderTest

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


def test_sign_in_and_the_overview_in_chromium_on_a_phone_and_a_desktop(
    committee: Committee, console: ConsoleUnderTest, tmp_path: Path
) -> None:
    console.add_staff(committee.compound)
    with LiveApp(console.app, free_port()) as live, Browser(tmp_path / "chromium") as browser:
        try:
            browser.viewport(PHONE)
            browser.open(f"{live.url}/overview", ready="!!document.querySelector('#signin')")
            assert browser.evaluate("location.pathname") == "/signin"  # not signed in: sent to sign in
            assert browser.evaluate("document.documentElement.lang") == "zh-CN"
            browser.fill("input[name=username]", "wang")
            browser.fill("input[name=password]", "wrong password")
            browser.submit("#signin")
            assert "用户名或密码不正确" in browser.text(".error")
            browser.fill("input[name=password]", PASSWORD)
            browser.submit("#signin")
            browser.wait("!!document.querySelector('#overview')", what="the overview")
            assert browser.evaluate("location.pathname") == "/overview"
            buildings = browser.evaluate(
                "Array.from(document.querySelectorAll('#overview tbody tr')).map(r => r.dataset.building)"
            )
            assert buildings == ["1", "2", "3"]
            questions = browser.text("#overview tr[data-building='1'] [data-figure=open_questions]")
            assert questions.strip() == "1"
            assert browser.evaluate("document.documentElement.scrollWidth") <= 360
            browser.screenshot(tmp_path / "overview-phone.png")
            browser.viewport(DESKTOP)
            browser.open(f"{live.url}/language/en?next=/overview", ready="!!document.querySelector('#overview')")
            assert "Deliveries pending" in browser.text("#overview thead")
            browser.screenshot(tmp_path / "overview-desktop.png")
            browser.submit("form[action='/signout']")
            assert browser.evaluate("location.pathname") == "/signin"
        finally:
            shutil.rmtree(tmp_path / "chromium", ignore_errors=True)
