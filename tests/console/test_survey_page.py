"""The information officer's survey lists on the phone, against the real services: whom to ask about medicine
this week (an "asked" takes them off the list), the households not yet reached in the current round, and only
the officer's own building."""

from __future__ import annotations

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


def test_the_officer_asks_about_medicine_and_sees_the_unreached(
    committee: Committee, console: ConsoleUnderTest, tmp_path: Path
) -> None:
    committee.ok("POST", "residents", "/households", {"household": "h1-201", "building": "1", "floor": 2, "room": 1})
    for resident, born, medication in (("ra", 1940, False), ("rb", 1985, True)):
        body = {"resident": resident, "name": "住户", "birth_year": born, "regular_medication": medication}
        committee.ok("POST", "residents", "/households/h1-201/residents", body)
    committee.ok("POST", "residents", "/volunteers", {"volunteer": "ov", "building": "1", "skills": []})
    committee.ok("PUT", "residents", "/buildings/1/roles/ov", {"role": "information_officer"})
    committee.ok("POST", "testing", "/points", {"point": "ps", "name": "北门", "location": "gate", "throughput": 4})
    committee.ok("PUT", "testing", "/points/ps/buildings", {"buildings": ["1", "2", "3"]})
    committee.ok("POST", "testing", "/rounds", {"round": "RS", "starts_at": "2022-04-01T07:00", "points": ["ps"]})
    wait_for(
        lambda: any(
            h["household"] == "h1-201"
            for b in committee.ok("GET", "testing", "/unreached-households?building=1")["buildings"]
            for h in b["households"]
        ),
        timeout=90,
        what="testing to learn the new household over Kafka",
    )
    key = issue_key(console, committee.compound, "information-officer", volunteer="ov")
    token = session_for(console, committee.compound, "information-officer", "volunteer", "ov", key, ["1"])
    with TestClient(console.app, base_url="http://console.test") as officer:
        officer.cookies.set(sessions.COOKIE, token)
        assert officer.get("/phone/survey", follow_redirects=False).headers["location"] == "/phone/survey/1"
        page = officer.get("/phone/survey/1")
        assert page.status_code == 200, page.text
        assert 'data-resident="ra"' in page.text and 'data-resident="rb"' in page.text
        assert "长期服药" in page.text and "尚未询问用药" in page.text
        assert "第 RS 轮尚未联系到的住户" in page.text and 'data-household="h1-201"' in page.text
        asked = officer.post(
            "/phone/survey/1/asked", data={"csrf": csrf_of(page.text), "resident": "ra"}, follow_redirects=True
        )
        assert asked.status_code == 200 and 'id="asked-done"' in asked.text
        assert 'data-resident="ra"' not in asked.text and 'data-resident="rb"' in asked.text
        stale = officer.post("/phone/survey/1/asked", data={"csrf": "forged", "resident": "rb"})
        assert stale.status_code == 403
        assert 'data-resident="rb"' in officer.get("/phone/survey/1").text  # the forged form recorded nothing
        assert officer.get("/phone/survey/2").status_code == 403
    # The same on a phone in a real headless Chromium: the officer taps "asked" for rb, and the list empties.
    with on_a_phone(
        console, token, "/phone/survey/1", "!!document.querySelector('#survey')", tmp_path / "chromium"
    ) as browser:
        shown = browser.evaluate("Array.from(document.querySelectorAll('#medicine li')).map(li => li.dataset.resident)")
        assert shown == ["rb"]
        assert browser.evaluate("document.documentElement.scrollWidth") <= 360
        browser.submit("#medicine li[data-resident='rb'] form")
        browser.wait("!!document.querySelector('#asked-done')", what="the list after asking")
        assert browser.evaluate("document.querySelectorAll('#medicine li').length") == 0
        assert "本周都已询问" in browser.text("#medicine")
        assert "h1-201" in browser.text("#unreached")
