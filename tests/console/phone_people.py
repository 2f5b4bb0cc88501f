"""The people of the phone tests: a building-1 logistics group on both shifts with a dispatched batch, keys issued
the operator's way (``juwei keys create``, or testing's point key), and a console session of that person.

The session row is what an opened invitation makes (``console.sessions.start`` with the key sealed to its row),
written here so these tests need no invitation round trip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from console import sessions
from demo.sinks import free_port
from tests.browser import PHONE, Browser, LiveApp
from tests.console.conftest import Committee, ConsoleUnderTest, _register
from tests.kernel.harness import ROOT, wait_for

SHIFTS = {"A": "la", "B": "lb"}  # one logistics volunteer of building 1 on each shift


@dataclass
class Delivery:
    """A batch dispatched to building 1: who is on the called shift, and its households there."""

    batch: str
    volunteer: str
    households: list[str]


def own_compound(shared: Committee) -> Committee:
    """A compound of its own on the session's running suite, registered like the shared one: the other console
    tests read theirs as they left it (no batch, no round), and these add batches, rounds and points."""
    mine = Committee(shared.suite, f"cv{uuid.uuid4().hex[:8]}")
    _register(mine)
    return mine


def issue_key(console: ConsoleUnderTest, compound: str, role: str, **who: str) -> str:
    """``juwei keys create`` as the operator runs it (``who``: volunteer=..., household=...)."""
    named = [f"--{kind}={value}" for kind, value in who.items()]
    done = subprocess.run(
        [sys.executable, "-m", "juwei.cli", "keys", "create", "--role", role, "--compound", compound, *named],
        cwd=ROOT, env={**os.environ, **console.env}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def session_for(
    console: ConsoleUnderTest, compound: str, role: str, kind: str, holder: str, key: str, buildings: list[str]
) -> str:
    """A console session of this person acting with ``key``; returns the cookie's token."""
    runtime = console.app.state.console
    key_id = key.split("_")[1]
    with runtime.database.unit_of_work() as session:
        return sessions.start(
            session,
            compound=compound,
            role=role,
            holder_kind=kind,
            holder=f"{compound}:{holder}",
            buildings=buildings,
            key_id=key_id,
            sealed_key=runtime.seal.seal(key, key_id),
            username=None,
            idle=timedelta(hours=1),
            lasts=timedelta(hours=2),
        )


def household_key(committee: Committee, household: str) -> str:
    """A household's key the way testing issues it (bound to the household there), stored as the same key in
    residents through the kernel's key route, so the zone and the self-report both answer to it."""
    key = committee.ok("POST", "testing", f"/households/{household}/keys")["key"]
    holder = {"kind": "household", "id": household}
    committee.ok("POST", "residents", "/keys", {"key": key, "role": "household", "holder": holder})
    return key


def enlist_logistics(committee: Committee) -> None:
    """Once for the session's compound (other test modules share it): enlisted already is fine."""
    for shift, volunteer in SHIFTS.items():
        made = committee.call(
            "POST", "residents", "/volunteers", {"volunteer": volunteer, "building": "1", "skills": []}
        )
        assert made.status_code in (201, 409), made.text
        committee.ok(
            "PUT", "residents", f"/buildings/1/roles/{volunteer}",
            {"role": "logistics", "shift": shift, "leader": shift == "A"},
        )  # fmt: skip


def send_out(committee: Committee, batch: str) -> dict[str, Any]:
    """A batch for the whole compound, shared equally and sent out: building 1's line of the dispatch."""
    committee.ok(
        "POST", "supplies", "/batches",
        {"batch": batch, "source": "government", "whole_compound": True,
         "items": [{"item": "rice", "quantity": 30, "unit": "bag"}]},
    )  # fmt: skip
    wait_for(
        lambda: (
            committee.call("POST", "supplies", f"/batches/{batch}/allocation", {"method": "equal"}).status_code
            in (200, 201)
        ),
        timeout=90,
        what="supplies to learn the households over Kafka",
    )
    sent = committee.ok("POST", "supplies", f"/batches/{batch}/dispatch", {})
    return next(b for b in sent["calls"] if b["building"] == "1")


def dispatch(committee: Committee, batch: str) -> Delivery:
    """A batch sent out once supplies knows building 1's logistics group (over Kafka): earlier batches are sent
    until one calls a volunteer by name, so the volunteer of the called shift may report its deliveries."""
    probes = iter(range(1000))
    wait_for(
        lambda: bool(send_out(committee, f"{batch}-probe{next(probes)}")["volunteers"]),
        timeout=90,
        what="supplies to learn the logistics group over Kafka",
    )
    line = send_out(committee, batch)
    volunteer = SHIFTS[line["shifts"][0]]
    tasks = committee.ok("GET", "supplies", "/buildings/1/deliveries")
    mine = next(d for d in tasks["deliveries"] if d["batch"] == batch)
    households = [h["household"] for floor in mine["floors"] for h in floor["households"]]
    return Delivery(batch, volunteer, households)


def confirmations(committee: Committee, batch: str, household: str) -> list[dict[str, Any]]:
    """The DeliveryConfirmed events of supplies for this household and batch (its feed, as the operator)."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = httpx.get(
            f"{committee.suite.urls['supplies']}/events",
            params={"after": after, "limit": 1000},
            headers={"X-API-Key": committee.suite.key},
            timeout=30,
        ).json()
        for event in page["events"]:
            data = event.get("data") or {}
            if (
                event["type"].rsplit(".", 1)[0] == "juwei.supplies.DeliveryConfirmed"  # its type ends in .v1
                and data.get("household") == f"{committee.compound}:{household}"
                and data.get("batch") == f"{committee.compound}:{batch}"
            ):
                found.append(event)
        after = page["next_after"]
        if not page["has_more"]:
            return found


def csrf_of(page: str) -> str:
    """The form token of a console page (every form carries it)."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


@contextmanager
def on_a_phone(console: ConsoleUnderTest, token: str, path: str, ready: str, folder: Path) -> Iterator[Browser]:
    """``path`` of the console served for real, open in headless Chromium at a phone's width, signed in."""
    with LiveApp(console.app, free_port()) as live, Browser(folder) as browser:
        try:
            browser.call("Network.enable")
            browser.call("Network.setCookie", name=sessions.COOKIE, value=token, url=live.url, httpOnly=True)
            browser.viewport(PHONE)
            browser.open(f"{live.url}{path}", ready=ready)
            yield browser
        finally:
            shutil.rmtree(folder, ignore_errors=True)
