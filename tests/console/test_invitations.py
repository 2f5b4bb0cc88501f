"""Staff invite a volunteer: the link (and its QR code) opens a session once; the person sees their building
and no other, no staff page; signing out revokes their key in every service.

Needs the kernel's ``POST /compounds/{c}/keys`` and ``DELETE .../keys/{id}`` in the services.
"""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from console.tables import sessions
from tests.conftest import both_databases
from tests.console.conftest import Committee, ConsoleUnderTest

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


def invite(console: ConsoleUnderTest, committee: Committee, **fields: str) -> httpx.Response:
    console.add_staff(committee.compound)
    assert console.sign_in().status_code == 303
    form = {"role": "logistics-volunteer", "holder": "v1", "buildings": "", "label": "", **fields}
    return console.client.post("/invitations", data={**form, "csrf": console.csrf("/invitations/new")})


def held_key(console: ConsoleUnderTest) -> str:
    """The key of the one invited person's session, opened as the console opens it."""
    runtime = console.app.state.console
    with runtime.database.reading() as session:
        row = session.execute(select(sessions).where(sessions.c.username.is_(None))).mappings().one()
    return runtime.seal.open(row["sealed_key"], row["key_id"])


def link_of(page: httpx.Response) -> str:
    found = re.search(r'id="invitation-link">([^<]+)<', page.text)
    assert found, page.text
    return found.group(1).replace("http://console.test", "")


@both_databases
def test_an_invitation_opens_one_session_once_for_the_persons_own_building(
    committee: Committee, console: ConsoleUnderTest
) -> None:
    made = invite(console, committee)
    assert made.status_code == 201, made.text
    assert "<svg" in made.text  # the QR code, inline
    link = link_of(made)
    with TestClient(console.app, base_url="http://console.test") as phone:
        preview = phone.get(link)  # what a chat app's link preview does: the link still works afterwards
        assert preview.status_code == 200 and "物资志愿者" in preview.text
        assert phone.get(link).status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', preview.text).group(1)  # type: ignore[union-attr]
        opened = phone.post(link, data={"csrf": csrf}, follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/me"
        mine = phone.get("/me")
        assert mine.status_code == 200 and "1号楼" in mine.text and 'data-zone="' in mine.text
        # Another building's page, and a staff page: refused in the person's language.
        other = phone.get("/buildings/2")
        assert other.status_code == 403 and "这栋楼不归您负责" in other.text
        staff_page = phone.get("/overview")
        assert staff_page.status_code == 403 and "您的角色不能访问此页面" in staff_page.text
        phone.cookies.set("console_lang", "en")
        english = phone.get("/buildings/2")
        assert english.status_code == 403 and "This building is not yours." in english.text
        phone.cookies.set("console_lang", "zh_CN")
        # The key the console holds for them is the volunteer's own in every service, and ends at sign-out.
        key = held_key(console)
        for url in committee.suite.urls.values():
            me = httpx.get(f"{url}/whoami", headers={"X-API-Key": key}, timeout=10).json()
            assert (me["role"], me["buildings"], me["holder"]) == (
                "logistics-volunteer",
                ["1"],
                {"kind": "volunteer", "id": f"{committee.compound}:v1"},
            )
        csrf_page = phone.get("/buildings/1").text
        token = re.search(r'name="csrf" value="([^"]+)"', csrf_page).group(1)  # type: ignore[union-attr]
        out = phone.post("/signout", data={"csrf": token}, follow_redirects=False)
        assert out.status_code == 303
        for url in committee.suite.urls.values():
            assert httpx.get(f"{url}/whoami", headers={"X-API-Key": key}, timeout=10).status_code == 401
    with TestClient(console.app, base_url="http://console.test") as second:
        used = second.get(link)
        assert used.status_code == 410 and "已被使用或已过期" in used.text
        assert second.post(link, data={"csrf": "x"}, follow_redirects=False).status_code in (303, 410)
        assert second.get("/me", follow_redirects=False).status_code == 303  # no session for them


def test_an_invitation_the_services_refuse_is_not_made(committee: Committee, console: ConsoleUnderTest) -> None:
    refused = invite(console, committee, holder="v404")  # no such volunteer in the register
    assert refused.status_code == 422 and 'id="form-error"' in refused.text
    assert "invitation-link" not in refused.text
    wrong = console.client.post(
        "/invitations", data={"role": "committee-staff", "holder": "s1", "csrf": console.csrf("/invitations/new")}
    )
    assert wrong.status_code == 422 and "请选择角色" in wrong.text


def test_a_sampling_volunteer_is_invited_with_the_points_own_key(
    committee: Committee, console: ConsoleUnderTest
) -> None:
    point = {"point": "pv1", "name": "Point V", "location": "north gate", "throughput": 4}
    created = committee.call("POST", "testing", "/points", point)
    assert created.status_code in (201, 409), created.text  # 409: made by this test on the other database
    without = invite(console, committee, role="sampling-volunteer", point="")
    assert without.status_code == 422 and "采样点" in without.text and "invitation-link" not in without.text
    made = invite(console, committee, role="sampling-volunteer", point="pv1")
    assert made.status_code == 201, made.text
    with TestClient(console.app, base_url="http://console.test") as phone:
        link = link_of(made)
        csrf = re.search(r'name="csrf" value="([^"]+)"', phone.get(link).text).group(1)  # type: ignore[union-attr]
        assert phone.post(link, data={"csrf": csrf}, follow_redirects=False).status_code == 303
        # Testing's point key (bound to pv1), stored as the same key in every other service.
        key = held_key(console)
        for url in committee.suite.urls.values():
            me = httpx.get(f"{url}/whoami", headers={"X-API-Key": key}, timeout=10).json()
            assert (me["role"], me["holder"]) == (
                "sampling-volunteer",
                {"kind": "volunteer", "id": f"{committee.compound}:v1"},
            )
        assert phone.get("/phone/point").status_code == 200
        token = re.search(r'name="csrf" value="([^"]+)"', phone.get("/phone/point").text).group(1)  # type: ignore[union-attr]
        assert phone.post("/signout", data={"csrf": token}, follow_redirects=False).status_code == 303
        for url in committee.suite.urls.values():
            assert httpx.get(f"{url}/whoami", headers={"X-API-Key": key}, timeout=10).status_code == 401
