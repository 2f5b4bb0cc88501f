"""The information officer's call list on the phone, against the real services: a household marked as having no
smartphone is listed when an urgent message goes out (a round called for the compound), with what to say; the
officer marks it told, and the list empties. Only the officer's own building."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console import sessions
from tests.console.conftest import Committee, ConsoleUnderTest
from tests.console.phone_people import csrf_of, issue_key, on_a_phone, own_compound, session_for
from tests.kernel.harness import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def committee(committee: Committee) -> Committee:
    return own_compound(committee)


def test_the_officer_calls_the_household_without_a_smartphone_and_marks_it_told(
    committee: Committee, console: ConsoleUnderTest, tmp_path: Path
) -> None:
    for household, floor in (("h1-201", 2), ("h1-301", 3)):
        committee.ok("POST", "residents", "/households", {"household": household, "building": "1", "floor": floor,
                                                          "room": 1})  # fmt: skip
    committee.ok("PUT", "residents", "/households/h1-301/unreachable", {"reason": "no_smartphone"})
    committee.ok("PUT", "residents", "/households/h1-201/unreachable", {"reason": "not_in_group"})
    committee.ok("POST", "residents", "/volunteers", {"volunteer": "oc", "building": "1", "skills": []})
    committee.ok("PUT", "residents", "/buildings/1/roles/oc", {"role": "information_officer"})
    key = issue_key(console, committee.compound, "information-officer", volunteer="oc")
    token = session_for(console, committee.compound, "information-officer", "volunteer", "oc", key, ["1"])
    with TestClient(console.app, base_url="http://console.test") as officer:
        officer.cookies.set(sessions.COOKIE, token)
        assert officer.get("/phone/calls", follow_redirects=False).headers["location"] == "/phone/calls/1"
        before = officer.get("/phone/calls/1")
        assert before.status_code == 200 and 'id="no-calls"' in before.text  # nothing urgent has gone out yet

        # An urgent message: the round is called for every building, and notify lists the two households.
        committee.ok("POST", "testing", "/points", {"point": "pc", "name": "北门", "location": "gate", "throughput": 4})
        committee.ok("PUT", "testing", "/points/pc/buildings", {"buildings": ["1", "2"]})
        committee.ok("POST", "testing", "/rounds", {"round": "RC", "starts_at": "2022-04-01T07:00", "points": ["pc"]})
        wait_for(
            lambda: committee.ok("GET", "notify", "/buildings/1/calls")["open"] == 2,
            timeout=120,
            what="notify to list the households without a group for the round",
        )
        page = officer.get("/phone/calls/1")
        assert page.status_code == 200, page.text
        assert 'data-household="h1-301"' in page.text and 'data-household="h1-201"' in page.text
        assert "没有智能手机" in page.text and "家中无人在群里" in page.text and "检测安排" in page.text
        first = re.search(r'data-call="([^"]+)" data-household="h1-301"', page.text)
        assert first, page.text
        told = officer.post(
            "/phone/calls/1/done", data={"csrf": csrf_of(page.text), "call": first.group(1)}, follow_redirects=True
        )
        assert told.status_code == 200 and 'id="call-done"' in told.text
        assert 'data-household="h1-301"' not in told.text and 'data-household="h1-201"' in told.text
        forged = officer.post("/phone/calls/1/done", data={"csrf": "forged", "call": first.group(1)})
        assert forged.status_code == 403
        # A call id that is a path ("../…") stays one segment of notify's done route: an unknown call, nothing marked.
        climbed = officer.post("/phone/calls/1/done", data={"csrf": csrf_of(told.text), "call": "../../calls/overdue"})
        assert climbed.status_code == 404, climbed.text
        assert officer.get("/phone/calls/2").status_code == 403  # another building's list
    assert committee.ok("GET", "notify", "/buildings/1/calls")["open"] == 1

    # The same on a phone in a real headless Chromium: the officer taps "told" for the last one, the list empties.
    with on_a_phone(
        console, token, "/phone/calls/1", "!!document.querySelector('#calls')", tmp_path / "chromium"
    ) as browser:
        shown = browser.evaluate("Array.from(document.querySelectorAll('#calls li')).map(li => li.dataset.household)")
        assert shown == ["h1-201"]
        assert browser.evaluate("document.documentElement.scrollWidth") <= 360
        browser.submit("#calls li[data-household='h1-201'] form")
        browser.wait("!!document.querySelector('#call-done')", what="the list after telling")
        assert browser.evaluate("document.querySelectorAll('#calls li').length") == 0
        assert "每户都已告知" in browser.text("#calls")
    assert committee.ok("GET", "notify", "/buildings/1/calls")["open"] == 0
