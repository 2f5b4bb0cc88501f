"""The staff pages against the real services: the questions inbox answers a group once for every building that
asked; the round and supplies pages say plainly when there is nothing yet; a service's refusal is shown in
the person's language; a staff page is refused to no one signed in."""

from __future__ import annotations

import re

import pytest

from tests.console.conftest import Committee, ConsoleUnderTest
from tests.kernel.harness import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]
QUESTION = "快递能不能送到楼下的架子上？"


def test_the_questions_inbox_answers_every_building_that_asked_once(
    committee: Committee, console: ConsoleUnderTest
) -> None:
    for building in ("2", "3"):
        asked = committee.call("POST", "notify", f"/buildings/{building}/questions", {"text": QUESTION})
        assert asked.status_code == 201, asked.text
    console.add_staff(committee.compound)
    assert console.sign_in().status_code == 303
    inbox = console.client.get("/questions")
    assert inbox.status_code == 200
    group = re.search(r'data-group="([^"]+)">\s*<h2>' + re.escape(QUESTION), inbox.text)
    assert group, inbox.text
    number = group.group(1)
    card = inbox.text.split(f'data-group="{number}"')[1].split("</article>")[0]
    assert "被问了2次" in card and "2号楼" in card and "3号楼" in card
    empty = console.client.post(
        f"/questions/{number}/answer", data={"csrf": console.csrf("/questions"), "question": QUESTION, "answer": ""}
    )
    assert empty.status_code == 422 and "请填写答复" in empty.text
    answered = console.client.post(
        f"/questions/{number}/answer",
        data={
            "csrf": console.csrf("/questions"),
            "question": QUESTION,
            "answer": "可以，物资组每天下午统一转运。",
            "policy_points": "快递放一楼架子\n每天下午统一送上楼",
        },
        follow_redirects=False,
    )
    assert answered.status_code == 303 and answered.headers["location"] == "/questions?answered=2"
    assert "答复已发送到2栋楼" in console.client.get(answered.headers["location"]).text
    assert f'data-group="{number}"' not in console.client.get("/questions").text
    wait_for(
        lambda: f'data-group="{number}"' in console.client.get("/questions?status=answered").text,
        timeout=30,
        what="the group among the answered",
    )
    again = console.client.post(
        f"/questions/{number}/answer",
        data={"csrf": console.csrf("/questions"), "question": QUESTION, "answer": "再答一次"},
    )
    assert again.status_code == 409 and 'class="error"' in again.text  # notify refuses a second answer


def test_round_and_supplies_pages_say_when_there_is_nothing_yet(
    committee: Committee, console: ConsoleUnderTest
) -> None:
    assert console.client.get("/round", follow_redirects=False).status_code == 303  # not signed in
    console.add_staff(committee.compound)
    assert console.sign_in().status_code == 303
    round_page = console.client.get("/round")
    assert round_page.status_code == 200 and "还没有安排检测" in round_page.text
    supplies = console.client.get("/supplies")
    assert supplies.status_code == 200
    assert "还没有发出的批次" in supplies.text and "所有医保卡都在家中" in supplies.text
    console.client.cookies.set("console_lang", "en")
    english = console.client.get("/supplies")
    assert "No batch has been dispatched yet." in english.text
    console.client.cookies.set("console_lang", "zh_CN")
    missing = console.client.get("/round?round=nope")
    assert missing.status_code == 200 and "还没有安排检测" in missing.text
