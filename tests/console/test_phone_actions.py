"""The phones' action endpoint and pages over plain HTTP, against the real services: CSRF, role and building
checked before any service is called; a command sent twice is done once (the service's Idempotency-Key); a
household already delivered is a conflict with the service's detail; a household's self-report with a photo."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from console import sessions
from tests.access.seed import png
from tests.conftest import both_databases
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


@dataclass
class Crew:
    delivery: Delivery
    keys: dict[str, str]  # role -> key


@pytest.fixture(scope="module")
def crew(committee: Committee) -> Crew:
    enlist_logistics(committee)
    delivery = dispatch(committee, f"B{uuid.uuid4().hex[:8]}")
    committee.ok("POST", "testing", "/rounds", {"round": "AV1", "kind": "antigen", "starts_at": "2022-05-02T08:00"})
    wait_for(
        lambda: bool(committee.ok("GET", "testing", "/rounds/AV1/households/h1-101/antigen")["members"]),
        timeout=90,
        what="testing to learn the household over Kafka",
    )
    return Crew(delivery, {})


def phone(console: ConsoleUnderTest, token: str) -> TestClient:
    client = TestClient(console.app, base_url="http://console.test")
    client.cookies.set(sessions.COOKIE, token)
    return client


def csrf_of(page_text: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', page_text) or re.search(r'name="csrf" value="([^"]+)"', page_text)
    assert found, page_text
    return found.group(1)


@pytest.fixture
def volunteer(committee: Committee, console: ConsoleUnderTest, crew: Crew) -> Iterator[TestClient]:
    role = "logistics-volunteer"
    if role not in crew.keys:
        crew.keys[role] = issue_key(console, committee.compound, role, volunteer=crew.delivery.volunteer)
    token = session_for(console, committee.compound, role, "volunteer", crew.delivery.volunteer, crew.keys[role], ["1"])
    with phone(console, token) as client:
        yield client


@both_databases
def test_an_action_is_checked_then_done_once_and_a_second_confirmation_is_a_conflict(
    committee: Committee, console: ConsoleUnderTest, crew: Crew, volunteer: TestClient
) -> None:
    page = volunteer.get("/phone/deliveries/1")
    assert (
        page.status_code == 200 and 'id="deliveries"' in page.text and 'data-action="delivery.delivered"' in page.text
    )
    csrf = csrf_of(page.text)
    household = crew.delivery.households[0]
    # A batch of this run's own (the module's compound serves both databases' runs).
    batch = f"B{uuid.uuid4().hex[:8]}"
    assert crew.delivery.volunteer in send_out(committee, batch)["volunteers"]
    params = {"batch": batch, "building": "1", "household": household}
    command = str(uuid.uuid4())
    body = {"command_id": command, "kind": "delivery.delivered", "params": params}

    # Refused by the console before any service sees it.
    with TestClient(console.app, base_url="http://console.test") as stranger:
        gone = stranger.post("/api/actions", json=body, headers={"X-CSRF-Token": csrf})
        assert gone.status_code == 401 and gone.json()["status"] == "signed-out"
    forged = volunteer.post("/api/actions", json=body, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403 and forged.json()["status"] == "refused"
    assert "表单已过期" in forged.json()["problem"]["detail"] or forged.json()["problem"]["detail"]
    other = {**body, "params": {**params, "building": "2"}}
    refused = volunteer.post("/api/actions", json=other, headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403 and refused.json()["problem"]["detail"] == "这栋楼不归您负责。"
    wrong_kind = {**body, "kind": "round.call_next", "params": {"round": "R1", "point": "p1"}}
    assert volunteer.post("/api/actions", json=wrong_kind, headers={"X-CSRF-Token": csrf}).status_code == 403
    for bad in ({**body, "command_id": "not-a-uuid"}, {**body, "params": {**params, "extra": "x"}}, [1, 2]):
        assert volunteer.post("/api/actions", json=bad, headers={"X-CSRF-Token": csrf}).status_code == 400
    assert confirmations(committee, batch, household) == []

    # Done, then the same command again (the phone never saw the answer): the service's answer, once.
    done = volunteer.post("/api/actions", json=body, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done" and done.json()["replayed"] is False
    again = volunteer.post("/api/actions", json=body, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "done" and again.json()["replayed"] is True
    assert again.json()["answer"] == done.json()["answer"]
    wait_for(
        lambda: len(confirmations(committee, batch, household)) == 1,
        timeout=60,
        what="the confirmation in supplies' feed",
    )

    # A new tap for a household already confirmed: the service's conflict, kept with its detail.
    second = {**body, "command_id": str(uuid.uuid4())}
    conflict = volunteer.post("/api/actions", json=second, headers={"X-CSRF-Token": csrf})
    assert conflict.status_code == 409 and conflict.json()["status"] == "conflict"
    assert conflict.json()["problem"]["detail"]
    assert len(confirmations(committee, batch, household)) == 1
    # Every household of the batch delivered: it leaves the open checklist.
    shown = volunteer.get("/phone/deliveries/1").text
    assert f'data-batch="{batch}"' not in shown and f'data-batch="{crew.delivery.batch}"' in shown


def test_a_volunteer_sees_only_their_own_building_and_role(
    committee: Committee, console: ConsoleUnderTest, volunteer: TestClient
) -> None:
    other = volunteer.get("/phone/deliveries/2")
    assert other.status_code == 403 and "这栋楼不归您负责" in other.text
    assert volunteer.get("/phone/home").status_code == 403
    assert volunteer.get("/phone/point").status_code == 403
    mine = volunteer.get("/phone/deliveries", follow_redirects=False)
    assert mine.status_code == 303 and mine.headers["location"] == "/phone/deliveries/1"
    worker = volunteer.get("/sw.js")
    assert worker.status_code == 200 and worker.headers["service-worker-allowed"] == "/"


def test_a_household_reports_its_antigen_result_with_a_photo_once(
    committee: Committee, console: ConsoleUnderTest, crew: Crew
) -> None:
    key = household_key(committee, "h1-101")
    token = session_for(console, committee.compound, "household", "household", "h1-101", key, ["1"])
    with phone(console, token) as client:
        page = client.get("/phone/home")
        assert page.status_code == 200 and 'id="zone"' in page.text and 'id="antigen-form"' in page.text
        form = {
            "csrf": csrf_of(page.text),
            "command_id": re.search(r'name="command_id" value="([^"]+)"', page.text).group(1),  # type: ignore[union-attr]
            "round": "AV1",
            "resident": "r1",
            "result": "negative",
        }
        photo = {"photo": ("test.png", png(), "image/png")}
        sent = client.post("/phone/home/self-report", data=form, files=photo, follow_redirects=False)
        assert sent.status_code == 303 and sent.headers["location"] == "/phone/home?reported=1"
        # The same form again (a second tap on a slow network): recorded once, the same way.
        resent = client.post("/phone/home/self-report", data=form, files=photo, follow_redirects=False)
        assert resent.status_code == 303
        after = client.get("/phone/home?reported=1")
        assert 'id="reported"' in after.text and "已上报" in after.text
        reports = committee.ok("GET", "testing", "/rounds/AV1/households/h1-101/antigen")
        member = next(m for m in reports["members"] if m["resident"] == "r1")
        assert member["result"] == "negative" and member["photo"]
        # Not a picture: refused in Chinese, nothing sent.
        bad = {**form, "command_id": str(uuid.uuid4()), "resident": "r1"}
        wrong = client.post("/phone/home/self-report", data=bad, files={"photo": ("x.txt", b"hello", "text/plain")})
        assert wrong.status_code == 422 and "照片须为" in wrong.text
        # A household's page for a volunteer's role is refused.
        assert client.get("/phone/deliveries/1").status_code == 403


def test_the_sampling_point_calls_the_next_floors_once_and_the_officer_sees_who_is_untested(
    committee: Committee, console: ConsoleUnderTest
) -> None:
    committee.ok("POST", "testing", "/points", {"point": "pv", "name": "东门", "location": "gate", "throughput": 4})
    committee.ok("PUT", "testing", "/points/pv/buildings", {"buildings": ["1", "2", "3"]})
    committee.ok("POST", "testing", "/rounds", {"round": "RV", "starts_at": "2022-05-01T07:00", "points": ["pv"]})
    wait_for(
        lambda: any(p["calls"] for p in committee.ok("POST", "testing", "/rounds/RV/plan")["points"]),
        timeout=90,
        what="testing to learn the residents over Kafka",
    )
    for volunteer, building, role in (("sv", "1", None), ("ov", "1", "information_officer")):
        committee.ok("POST", "residents", "/volunteers", {"volunteer": volunteer, "building": building, "skills": []})
        if role:
            committee.ok("PUT", "residents", f"/buildings/{building}/roles/{volunteer}", {"role": role})
    wait_for(
        lambda: committee.call("POST", "testing", "/points/pv/keys", {"volunteer": "sv"}).status_code == 201,
        timeout=90,
        what="testing to learn the volunteer over Kafka",
    )
    key = committee.ok("POST", "testing", "/points/pv/keys", {"volunteer": "sv"})["key"]
    token = session_for(console, committee.compound, "sampling-volunteer", "volunteer", "sv", key, ["1"])
    with phone(console, token) as sampler:
        page = sampler.get("/phone/point")
        assert page.status_code == 200 and 'data-point="pv"' in page.text and "叫下一批楼层" in page.text
        body = {"command_id": str(uuid.uuid4()), "kind": "round.call_next", "params": {"round": "RV", "point": "pv"}}
        headers = {"X-CSRF-Token": csrf_of(page.text)}
        first = sampler.post("/api/actions", json=body, headers=headers)
        assert first.status_code == 200 and first.json()["replayed"] is False, first.text
        again = sampler.post("/api/actions", json=body, headers=headers)
        assert again.status_code == 200 and again.json()["replayed"] is True
        assert again.json()["answer"]["call"] == first.json()["answer"]["call"]
        shown = sampler.get("/phone/point").text
        assert shown.count('data-called="yes"') == 1
        assert sampler.get("/phone/deliveries/1").status_code == 403
    officer_key = issue_key(console, committee.compound, "information-officer", volunteer="ov")
    token = session_for(console, committee.compound, "information-officer", "volunteer", "ov", officer_key, ["1"])
    with phone(console, token) as officer:
        page = officer.get("/phone/untested/1")
        assert page.status_code == 200 and "第 RV 轮未检测" in page.text and 'data-household="h1-101"' in page.text
        assert officer.get("/phone/untested/2").status_code == 403
        # The follow-up list of deliveries is the officer's too (supplies admits the building's officer to it).
        assert 'id="follow-ups"' in page.text
