"""Staff sign in with their own account: good and bad passwords, CSRF refused, idle and absolute expiry, sign-out.

Against the four real services (processes on the test broker); the console's own database is SQLite and
PostgreSQL in turn.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from console.tables import sessions
from tests.conftest import both_databases
from tests.console.conftest import Committee, ConsoleUnderTest

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


@both_databases
def test_staff_sign_in_see_the_overview_and_sign_out(committee: Committee, console: ConsoleUnderTest) -> None:
    said = console.add_staff(committee.compound)
    assert "wang" in said and "jw_" not in said  # the key itself is never printed: it lives sealed in the account
    signed = console.sign_in()
    assert signed.status_code == 303 and signed.headers["location"] == "/overview"
    cookie = signed.headers["set-cookie"]
    assert "console_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = console.client.get("/overview")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "总览" in page.text and page.headers["content-language"] == "zh-CN"
    for number in ("1", "2", "3"):
        assert f'data-building="{number}"' in page.text
    assert "missing" not in page.text.split('id="overview"')[0]  # every service answered
    first_row = page.text.split('data-building="1"')[1].split("</tr>")[0]
    assert 'data-figure="open_questions">1<' in first_row  # the question asked from building 1
    token = console.client.cookies.get("console_session")
    out = console.client.post("/signout", data={"csrf": console.csrf()}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    console.client.cookies.set("console_session", token or "")  # the old cookie, kept by someone: dead
    again = console.client.get("/overview", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/signin")


def test_a_wrong_password_or_name_gets_no_session(committee: Committee, console: ConsoleUnderTest) -> None:
    console.add_staff(committee.compound)
    wrong = console.sign_in(password="not the password")
    assert wrong.status_code == 401 and "用户名或密码不正确" in wrong.text
    assert "console_session" not in wrong.headers.get("set-cookie", "")
    nobody = console.sign_in(username="li")
    assert nobody.status_code == 401
    assert console.client.get("/overview", follow_redirects=False).status_code == 303


def test_forms_without_the_csrf_token_are_refused(committee: Committee, console: ConsoleUnderTest) -> None:
    console.add_staff(committee.compound)
    console.client.get("/signin")
    forged = console.client.post(
        "/signin", data={"username": "wang", "password": "correct horse 7", "csrf": "forged"}, follow_redirects=False
    )
    assert forged.status_code == 403 and "console_session" not in forged.headers.get("set-cookie", "")
    assert console.sign_in().status_code == 303
    refused = console.client.post("/signout", data={"csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403 and "表单已过期" in refused.text
    assert console.client.post("/signout", data={}, follow_redirects=False).status_code == 403
    assert console.client.get("/overview").status_code == 200  # still signed in: nothing was done


def test_sessions_end_when_idle_too_long_and_at_their_absolute_end(
    committee: Committee, console: ConsoleUnderTest
) -> None:
    console.add_staff(committee.compound)
    database = console.app.state.console.database
    assert console.sign_in().status_code == 303
    with database.unit_of_work() as session:  # unused for longer than the idle time
        past = datetime.now(UTC) - timedelta(seconds=console.settings.staff_idle_seconds + 5)
        session.execute(update(sessions).values(last_seen_at=past))
    assert console.client.get("/overview", follow_redirects=False).status_code == 303
    assert console.sign_in().status_code == 303
    assert console.client.get("/overview").status_code == 200
    with database.unit_of_work() as session:  # active, but past its absolute end
        session.execute(update(sessions).where(sessions.c.ended_at.is_(None)).values(expires_at=datetime.now(UTC)))
    ended = console.client.get("/overview", follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"] == "/signin?next=%2Foverview"


def test_english_on_request_and_by_the_switch(committee: Committee, console: ConsoleUnderTest) -> None:
    page = console.client.get("/signin", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Username" in page.text and 'lang="en"' in page.text
    switched = console.client.get("/language/zh_CN?next=/signin")
    assert "用户名" in switched.text
    assert "用户名" in console.client.get("/signin", headers={"Accept-Language": "en"}).text  # the cookie wins
    outside = console.client.get("/language/en?next=//evil.example/", follow_redirects=False)
    assert outside.headers["location"] == "/"  # never a redirect to another site
