"""The seed compound's day, end to end: the demo's scenario at a small scale against the four services as
processes on the real broker, through their HTTP APIs only; then the outcomes, asked of the services again.

- every household tested, or listed (with the residents not tested) for the information officers;
- the case's building sealed, by residents hearing testing's CaseConfirmed over Kafka;
- both logistics shifts called for the large batch, in every building;
- every medical-insurance card back with its owner, each step of its way recorded;
- the refused donation on the public ledger, with its reason;
- each building's group received exactly the messages that concern it, once each: counted at the sinks
  (WeCom or DingTalk, and e-mail), traced to notify's messages, and compared with what the events imply.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rich.console import Console

from demo.compound import Size
from demo.scenario import Options, Outcome, run_demo
from tests.e2e.conftest import RunningSuite, serve_suite, start_groups_at_the_end

# The suite starting and the whole day run in the first test's setup.
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]

SMALL = Size(buildings=4, residents=160, staff=1, points=2, medicine_cards=6)
TODAY = "2022-04-12"


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, kafka: str, broker) -> Iterator[RunningSuite]:
    start_groups_at_the_end(kafka, broker)
    with serve_suite(tmp_path_factory.mktemp("suite"), kafka, JUWEI_TODAY=TODAY) as running:
        yield running


@pytest.fixture(scope="module")
def day(suite: RunningSuite, kafka: str) -> Outcome:
    options = Options(
        urls=suite.urls,
        key=suite.key,
        compound="c1",
        size=SMALL,
        seed=7,
        kafka=kafka,
        role_keys="cli",
        cli_env=suite.env,
        delivery_timeout=240,
    )
    try:
        return run_demo(options, Console(stderr=True, width=150))
    except Exception as exc:
        raise AssertionError(f"the day stopped: {exc}\n{suite.logs()}") from exc


class Api:
    def __init__(self, suite: RunningSuite) -> None:
        self.suite = suite

    def get(self, service: str, path: str, **params: Any) -> Any:
        answer = httpx.get(
            f"{self.suite.urls[service]}/compounds/c1{path}",
            params=params,
            headers={"X-API-Key": self.suite.key},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="module")
def api(suite: RunningSuite) -> Api:
    return Api(suite)


def test_the_roles_acted_with_keys_made_by_juwei_keys_create(day: Outcome) -> None:
    assert day.keys == {"staff": "cli", "officer": "cli", "logistics": "cli", "subdistrict": "cli"}
    assert day.figures["residents"] == SMALL.residents and day.figures["buildings"] == SMALL.buildings


def test_every_household_is_tested_or_listed_missing(day: Outcome, api: Api) -> None:
    members = day.compound.members()
    counts = api.get("testing", f"/rounds/{day.round}/counts")
    assert counts["residents"] == SMALL.residents
    assert counts["tested"] == SMALL.residents - len(day.absent) and day.absent
    coverage = api.get("testing", f"/rounds/{day.round}/coverage")
    listed = {h["household"]: h for b in coverage["buildings"] for f in b["floors"] for h in f["households"]}
    absent_homes = {h for h, people in members.items() if any(p.resident in day.absent for p in people)}
    assert set(listed) == absent_homes
    assert sorted(r for h in listed.values() for r in h["not_tested"]) == day.absent
    tested_homes = set(members) - absent_homes
    assert tested_homes | set(listed) == set(members) and not day.households_unaccounted
    assert day.figures["door_to_door"] == sum(p.bedridden for p in day.compound.people)


def test_the_case_building_is_sealed_through_kafka(day: Outcome, api: Api) -> None:
    assert day.case and day.case_building
    zone = api.get("residents", f"/buildings/{day.case_building}/zone")
    assert zone["zone"] == "sealed" and zone["last_case_on"] == TODAY and not zone["decided_by_authority"]
    zones = api.get("residents", "/zones")
    assert zones["compound"]["zone"] == "sealed"  # the compound follows its strictest building
    others = [b for b in zones["buildings"] if b["building"] != day.case_building]
    assert all(b["last_case_on"] is None for b in others)
    cases = api.get("testing", f"/buildings/{day.case_building}/cases")
    assert [c["status"] for c in cases["cases"]] == ["transferred"]
    disinfected = api.get("testing", f"/buildings/{day.case_building}/disinfections")["disinfections"]
    assert len(disinfected) == 1 and len(disinfected[0]["photos"]) == 1 and disinfected[0]["after_case"]


def test_both_shifts_were_called_and_every_delivery_followed_up(day: Outcome, api: Api) -> None:
    assert len(day.shift_calls) == SMALL.buildings
    assert all(call["both"] and call["shifts"] == ["A", "B"] for call in day.shift_calls)
    assert all(len(call["volunteers"]) == 6 for call in day.shift_calls)  # the whole logistics group
    progress = api.get("supplies", f"/batches/{day.batch}/progress")
    assert progress["households"] == len(day.compound.households) and progress["follow_ups"] == 0
    assert all(b["complete"] and b["shifts"] == ["A", "B"] for b in progress["buildings"])
    assert day.figures["delivery_failures"] > 0
    assert api.get("supplies", "/follow-ups")["count"] == 0


def test_every_card_is_back_with_its_owner(day: Outcome, api: Api) -> None:
    assert len(day.cards) == SMALL.medicine_cards
    homes = {p.resident: p.household for p in day.compound.people}
    cards = {c["card"]: c for c in api.get("supplies", "/cards")["cards"]}
    assert set(cards) == set(day.cards)
    for resident in day.cards:
        assert cards[resident]["holder"] == {"kind": "household", "id": homes[resident]}
        steps = api.get("supplies", f"/cards/{resident}/history")["history"]
        way = [(s["step"], s["giver"] and s["giver"]["kind"], s["receiver"] and s["receiver"]["kind"]) for s in steps]
        assert way == [
            ("requested", None, None),
            ("collected", "household", "volunteer"),  # the logistics leader, door to door
            ("handed_over", "volunteer", "subdistrict"),
            ("purchased", "subdistrict", None),  # bought with the card, by whoever holds it
            ("handed_over", "subdistrict", "volunteer"),
            ("returned", "volunteer", "household"),
        ]
        assert steps[-1]["receiver"]["id"] == homes[resident]
    assert api.get("supplies", "/cards", out="true")["cards"] == []
    outstanding = api.get("supplies", "/medicine/outstanding")["buildings"]
    assert not any(b["open_requests"] or b["bought_not_home"] or b["cards_out"] for b in outstanding)


def test_the_refused_donation_is_on_the_public_ledger(day: Outcome, api: Api) -> None:
    ledger = api.get("supplies", "/ledger")
    refused = {d["donation"]: d for d in ledger["refused"]}
    assert [i["item"] for i in refused["d-meals"]["items"]] == ["staff_lunch"]
    assert "meals" in refused["d-meals"]["reason"]
    accepted = {d["donation"]: d for d in ledger["accepted"]}
    masks = accepted["d-masks"]["items"][0]
    assert masks["allocated"] == masks["quantity"] and masks["batches"][0]["batch"] == day.donation_batch


def test_each_group_received_exactly_what_concerns_it_once(day: Outcome) -> None:
    assert len(day.groups) == SMALL.buildings
    for group in day.groups:
        assert group.problems() == [], (group.building, group.problems())
        wanted = sum(group.implied.values())
        assert {ch.channel for ch in group.channels} == {
            "email",
            "dingtalk" if int(group.building) % 2 == 0 else "wecom",
        }
        for channel in group.channels:
            assert sum(channel.received.values()) == wanted  # every message once, none twice
            assert not channel.unknown
    by = {g.building: g.composed_templates for g in day.groups}
    for building, templates in by.items():
        assert templates["round_scheduled"] == 1 and templates["unit_called"] >= 1
        assert 1 <= templates["testing_progress"] <= 4  # a quarter, half, three quarters, everyone sampled
        assert templates["batch_arrived"] >= 1 and templates["both_shifts_called"] >= 1
        assert templates["building_delivered"] >= 1 and templates["donation_ledger"] == 2
        case_news = Counter(
            {
                k: templates[k]
                for k in ("case_confirmed", "transfer_scheduled", "case_transferred", "disinfection_recorded")
            }
        )
        if building == day.case_building:
            assert case_news == Counter(
                case_confirmed=1, transfer_scheduled=1, case_transferred=1, disinfection_recorded=1
            )
            assert templates["zone_status_changed"] == 2  # the building, and the compound
        else:
            assert not +case_news and templates["zone_status_changed"] == 1
    answered = {b for _theme, buildings in day.figures["answers"] for b in buildings}
    assert answered and all(by[b]["answer"] >= 1 for b in answered)
    assert day.ok


def test_what_reached_the_sinks_names_nobody(day: Outcome) -> None:
    """Building groups are semi-public: no name, phone or ID-card number of any resident reaches them."""
    texts = "\n".join(
        f"{title}\n{body}"
        for channels in day.texts.values()
        for received in channels.values()
        for title, body in received
    )
    assert "阳性" in texts
    for person in day.compound.people:
        assert person.id_number not in texts
        assert not person.phone or person.phone not in texts
        assert len(person.name) < 3 or person.name not in texts  # two characters may make an ordinary word
