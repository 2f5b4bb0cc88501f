"""The console against the real services: the four of them as processes on the test broker (``serve_suite``),
a compound registered through their APIs, and the console app in this process with a database of its own.

A staff account is made the operator's way, ``juwei console add-staff`` (a child process on the same data
folder: it issues the staff member's key in every service's database).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from console.app import create_app
from console.settings import ConsoleSettings
from tests.e2e.conftest import RunningSuite, serve_suite, start_groups_at_the_end
from tests.kernel.harness import ROOT, wait_for

PASSWORD = "correct horse 7"
BUILDINGS = ("1", "2", "3")


@dataclass
class Committee:
    """The running suite with one registered compound: three buildings, a household each, staff s1, volunteer v1.

    One for the whole session (starting the suite is the slow part): a test that changes the compound keeps
    to what no other test reads (its own question, its own building)."""

    suite: RunningSuite
    compound: str

    def call(self, method: str, service: str, path: str, json: Any = None, key: str | None = None) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.suite.urls[service]}/compounds/{self.compound}{path}",
            json=json,
            headers={"X-API-Key": key or self.suite.key},
            timeout=30,
        )

    def ok(self, method: str, service: str, path: str, json: Any = None) -> Any:
        answer = self.call(method, service, path, json)
        assert answer.status_code < 300, (method, service, path, answer.status_code, answer.text)
        return answer.json() if answer.content else None


def _register(committee: Committee) -> None:
    for number in BUILDINGS:
        committee.ok(
            "POST", "residents", "/buildings",
            {"building": number, "number": number, "floors": 3, "rooms_per_floor": 2, "lifts": 0, "lift_capacity": 0},
        )  # fmt: skip
        household = f"h{number}-101"
        committee.ok(
            "POST", "residents", "/households", {"household": household, "building": number, "floor": 1, "room": 1}
        )
        committee.ok(
            "POST", "residents", f"/households/{household}/residents",
            {"resident": f"r{number}", "name": f"住户{number}", "birth_year": 1960, "representative": True},
        )  # fmt: skip
    committee.ok("PUT", "residents", "/staff/s1/buildings", {"buildings": []})
    committee.ok("POST", "residents", "/volunteers", {"volunteer": "v1", "building": "1"})
    # Notify learns the buildings over Kafka: a question from building 1 is accepted once it has.
    wait_for(
        lambda: (
            committee.call("POST", "notify", "/buildings/1/questions", {"text": "什么时候可以下楼？"}).status_code
            == 201
        ),
        timeout=90,
        what="notify to learn the register over Kafka",
    )


# Package-scoped: its services stop with the console's tests, before other suites run on the same broker.
@pytest.fixture(scope="package")
def committee(tmp_path_factory: pytest.TempPathFactory, kafka: str, broker: Any) -> Iterator[Committee]:
    # Consumer groups of its own: this suite lives the whole session, beside the other suites of the tests.
    groups = f"console-{uuid.uuid4().hex[:8]}"
    start_groups_at_the_end(kafka, broker, groups)
    with serve_suite(tmp_path_factory.mktemp("suite"), kafka, JUWEI_CONSUMER_GROUP_PREFIX=groups) as running:
        found = Committee(running, f"cc{uuid.uuid4().hex[:8]}")
        _register(found)
        yield found


@dataclass
class ConsoleUnderTest:
    app: FastAPI
    client: TestClient
    settings: ConsoleSettings
    env: dict[str, str]

    def add_staff(self, compound: str, staff: str = "s1", username: str = "wang", password: str = PASSWORD) -> str:
        """``juwei console add-staff`` as the operator runs it; returns what it said."""
        done = subprocess.run(
            [sys.executable, "-m", "juwei.cli", "console", "add-staff", "--compound", compound, "--staff", staff,
             "--username", username],
            cwd=ROOT, env={**os.environ, **self.env, "JUWEI_CONSOLE_PASSWORD": password},
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stderr

    def sign_in(self, username: str = "wang", password: str = PASSWORD) -> httpx.Response:
        self.client.get("/signin")
        return self.client.post(
            "/signin",
            data={"username": username, "password": password, "csrf": self.client.cookies.get("console_pre", "")},
            follow_redirects=False,
        )

    def csrf(self, path: str = "/overview") -> str:
        """The session's CSRF token, as a page's forms carry it."""
        page = self.client.get(path)
        marker = 'name="csrf" value="'
        start = page.text.index(marker) + len(marker)
        return page.text[start : page.text.index('"', start)]


@pytest.fixture
def console(committee: Committee, new_database: Callable[[str], str], tmp_path: Path) -> Iterator[ConsoleUnderTest]:
    url = new_database("console")
    secret = "console-test-secret-" + uuid.uuid4().hex
    settings = ConsoleSettings(database_url=url, secret=secret, service_urls=committee.suite.urls)
    env = {**committee.suite.env, "JUWEI_CONSOLE_DATABASE_URL": url, "JUWEI_CONSOLE_SECRET": secret}
    app = create_app(settings)
    with TestClient(app, base_url="http://console.test") as client:
        yield ConsoleUnderTest(app, client, settings, env)
    app.state.console.database.dispose()
