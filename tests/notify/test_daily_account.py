"""The daily account against the real Kafka: a day's activity of two compounds, the account on demand for one and
at the set hour for the other, each building group hearing exactly one account with its figures, in Chinese and
English, nothing identifying; a repeat trigger and a restarted notify send nothing new.

Notify runs in-process with its consumer and periodic jobs (the dispatcher, the daily account) on topics of its
own; the other services' events are produced to Kafka as they would publish them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from kafka import KafkaProducer
from sqlalchemy import func, select

from contracts.supplies import (
    CardCollected,
    CardHolder,
    DeliveryConfirmed,
    DeliveryFailed,
    DonationAccepted,
    DonationItem,
    DonationRefused,
    FollowUpResolved,
    MedicineAndCardReturned,
    MedicinePurchased,
    MedicineRequested,
)
from contracts.testing import BuildingTestingProgress, IndividualResultRecorded, SampleCollected, TubeResulted
from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.consumer import dead_letter_topic
from juwei.events import DomainEvent, Envelope
from juwei.service import Runtime, create_app
from juwei.settings import Settings
from juwei.store import inbox_table
from services.notify import dispatch
from services.notify.account import sending
from services.notify.app import service as notify
from tests.conftest import both_databases
from tests.kernel.harness import wait_for
from tests.notify.conftest import FAST, compound_events, envelope

DAY = date(2022, 4, 12)
NOON = datetime(2022, 4, 12, 4, 0, tzinfo=UTC)  # noon in Shanghai: the day the events count for


def _notify(url: str, data_dir: Path, kafka: str, suffix: str, at: time | None) -> Runtime:
    variant = replace(
        notify,
        name=f"notify_{suffix}",
        consumes=[f"accounttest.{suffix}.{name}" for name in ("residents", "testing", "supplies")],
        periodic=[(0.05, dispatch.job(FAST)), (0.1, sending.job(at))],
    )
    runtime = Runtime(variant, Settings(kafka_bootstrap=kafka, today=DAY, data_dir=data_dir), database_url=url)
    runtime.migrate()
    return runtime


@contextmanager
def _running(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as client:  # consumer and periodic jobs in the background
        yield client
    runtime.database.dispose()


def _at_noon(event: DomainEvent, compound: str, service: str) -> Envelope:
    return replace(envelope(event, compound, service, subject=f"s-{id(event)}"), time=NOON)


def _activity(c: str) -> tuple[list[Envelope], list[Envelope]]:
    """Compound ``c``'s day: testing's and supplies' events (building 1 busy, building 2 less so)."""
    b1, b2 = f"{c}:1", f"{c}:2"
    at = NOON

    def sample(resident: str, building: str, tube: str) -> SampleCollected:
        return SampleCollected(
            round=f"{c}:r",
            tube=tube,
            resident=f"{c}:{resident}",
            household=f"{c}:h{resident[1:]}",
            building=building,
            kind="pooled",
            attempt=1,
            collected_at=at,
        )

    testing = [
        sample("r1-1", b1, "T-1001"),
        sample("r1-2", b1, "T-1001"),
        sample("r1-3", b1, "T-1002"),
        sample("r2-1", b2, "T-1003"),
        BuildingTestingProgress(round=f"{c}:r", building=b1, tested=3, residents=8, milestone=30),
        TubeResulted(
            round=f"{c}:r", tube="T-1001", result="positive", residents=[f"{c}:r1-1", f"{c}:r1-2"], resulted_at=at
        ),
        IndividualResultRecorded(
            round=f"{c}:r",
            tube="T-1003",
            resident=f"{c}:r2-1",
            household=f"{c}:h2-1",
            building=b2,
            result="negative",
            resulted_at=at,
        ),
    ]
    staff = CardHolder(kind="staff", id="s-1")
    family = CardHolder(kind="household", id=f"{c}:h2-2")
    supplies = [
        DeliveryConfirmed(batch="B-1", building=b1, household=f"{c}:h1-1", floor=1, delivered=1, households=4),
        DeliveryConfirmed(batch="B-1", building=b1, household=f"{c}:h1-2", floor=2, delivered=2, households=4),
        DeliveryFailed(batch="B-1", building=b1, household=f"{c}:h1-3", floor=3, reason="no_one_home", attempt=1),
        FollowUpResolved(batch="B-1", building=b1, household=f"{c}:h1-3", resolution="redelivered"),
        DeliveryConfirmed(batch="B-1", building=b2, household=f"{c}:h2-1", floor=1, delivered=1, households=4),
        MedicineRequested(
            request="M-1", card="K-1", resident=f"{c}:r2-2", household=f"{c}:h2-2", building=b2, requested_on=DAY
        ),
        CardCollected(
            card="K-1", resident=f"{c}:r2-2", building=b2, giver=family, receiver=staff, requests=["M-1"], at=at
        ),
        MedicinePurchased(request="M-1", card="K-1", resident=f"{c}:r2-2", building=b2, by=staff, at=at),
        MedicineAndCardReturned(
            card="K-1",
            resident=f"{c}:r2-2",
            building=b2,
            giver=staff,
            receiver=family,
            fulfilled=["M-1"],
            still_open=[],
            at=at,
        ),
        DonationAccepted(
            donation="D-1",
            donor="donor-7",
            received_on=DAY,
            items=[DonationItem(item="口罩", category="防疫物资", quantity=500)],
        ),
        DonationRefused(
            donation="D-2",
            donor="donor-8",
            received_on=DAY,
            items=[DonationItem(item="零食", category="食品", quantity=20)],
            reason="非防疫物资",
        ),
    ]
    return (
        [_at_noon(event, c, "testing") for event in testing],
        [_at_noon(event, c, "supplies") for event in supplies],
    )


def _accounts(bot) -> list[str]:
    return [text for text in bot.texts if "工作日报" in text or "Daily account" in text]


@both_databases
def test_each_building_group_hears_the_days_account_once_on_demand_or_at_the_set_hour(
    new_database, tmp_path: Path, kafka: str, broker, suffix: str, platforms, monkeypatch
) -> None:
    monkeypatch.setenv("JUWEI_TODAY", str(DAY))  # notify's own events (questions) happen now: on the pinned day
    topic = {name: f"accounttest.{suffix}.{name}" for name in ("residents", "testing", "supplies")}
    if broker is not None:
        broker.create_topics([*topic.values(), *map(dead_letter_topic, topic.values())])
    early, late = f"a{suffix}", f"b{suffix}"  # the account on demand; the account at the set hour
    url = new_database("notify")
    produced = [*compound_events(early, buildings=2, households=3), *compound_events(late, buildings=2, households=3)]
    residents = list(produced)
    activity = {c: _activity(c) for c in (early, late)}
    producer = KafkaProducer(bootstrap_servers=kafka)
    for records, name in [(residents, "residents")] + [
        (batch, name) for c in (early, late) for batch, name in zip(activity[c], ("testing", "supplies"), strict=True)
    ]:
        for env in records:
            key, value, headers = env.to_kafka()
            producer.send(topic[name], key=key, value=value, headers=headers)
        if name != "residents":
            produced.extend(records)
    producer.flush()
    producer.close()

    runtime = _notify(url, tmp_path, kafka, suffix, at=None)  # no set hour: only on demand
    bots = {}
    with _running(runtime) as client:
        wait_for(lambda: _received(runtime) == len(produced), timeout=60, what="notify to take every event")
        with runtime.database.unit_of_work() as session:
            staff = {
                c: {"X-API-Key": issue_key(session, "committee-staff", c, holder=Holder("system", "staff")).key}
                for c in (early, late)
            }
            officer = issue_key(session, "information-officer", early, ["1"], holder=Holder("system", "officer")).key
            building_staff = issue_key(session, "committee-staff", early, ["1"], holder=Holder("system", "b1")).key
        for c in (early, late):
            for b in ("1", "2"):
                for kind, language in (("wecom", "zh"), ("feishu", "en")):
                    bot = bots[(c, b, language)] = platforms.bot(kind, f"{c}-{b}-{kind}")
                    answer = client.post(
                        f"/compounds/{c}/groups/{b}/channels",
                        json={"kind": kind, "config": platforms.config(bot), "language": language},
                        headers=staff[c],
                    )
                    assert answer.status_code == 201, answer.text
        # Two questions from building 1 of the early compound, answered together; a third not yet.
        for text in ("明天还做核酸吗？", "明天还要做核酸吗"):
            asked = client.post(
                f"/compounds/{early}/buildings/1/questions", json={"text": text}, headers={"X-API-Key": officer}
            )
            assert asked.status_code == 201, asked.text
        groups = client.get(f"/compounds/{early}/question-groups", headers=staff[early]).json()["groups"]
        answered = client.post(
            f"/compounds/{early}/question-groups/{groups[0]['question_group']}/answer",
            json={"question": "明天还做核酸吗？", "answer": "明天上午继续。"},
            headers=staff[early],
        )
        assert answered.status_code == 201, answered.text

        # Bad asks: a building's key, a day to come, a malformed day; nothing is sent.
        url_of = f"/compounds/{early}/daily-account"
        assert client.post(url_of, json={}, headers={"X-API-Key": building_staff}).status_code == 403
        assert client.post(url_of, json={}, headers={"X-API-Key": officer}).status_code == 403
        future = client.post(url_of, json={"on": str(DAY + timedelta(days=1))}, headers=staff[early])
        assert future.status_code == 422 and future.json()["code"] == "account-future", future.text
        assert client.post(url_of, json={"on": "12 April"}, headers=staff[early]).status_code == 422

        sent = client.post(url_of, json={}, headers=staff[early])
        assert sent.status_code == 200, sent.text
        assert sent.json() == {"day": str(DAY), "buildings": ["1", "2"], "composed": 2}
        wait_for(
            lambda: all(len(_accounts(bots[(early, b, lang)])) == 1 for b in ("1", "2") for lang in ("zh", "en")),
            timeout=30,
            what="every group of the early compound to hear its account",
        )
        again = client.post(url_of, json={"on": str(DAY)}, headers=staff[early])
        assert again.json()["composed"] == 0  # a repeat trigger composes nothing
        assert not any(_accounts(bots[(late, b, lang)]) for b in ("1", "2") for lang in ("zh", "en"))

    # Restarted with the set hour passed (00:00): the late compound's accounts go out; the early one's do not again.
    runtime = _notify(url, tmp_path, kafka, suffix, at=time(0, 0))
    with _running(runtime) as client:
        wait_for(
            lambda: all(len(_accounts(bots[(late, b, lang)])) == 1 for b in ("1", "2") for lang in ("zh", "en")),
            timeout=30,
            what="every group of the late compound to hear its account at the set hour",
        )
        assert client.post(f"/compounds/{late}/daily-account", json={}, headers=staff[late]).json()["composed"] == 0

    for (c, b, language), bot in bots.items():
        (text,) = _accounts(bot)  # exactly one account per group and channel
        _no_identity(text, c)
        if language == "zh":
            assert f"4月12日工作日报：{b}号楼" in text
        else:
            assert f"Daily account for 12 Apr 2022: building {b}" in text
    zh = {(c, b): _accounts(bots[(c, b, "zh")])[0] for c in (early, late) for b in ("1", "2")}
    en = {(c, b): _accounts(bots[(c, b, "en")])[0] for c in (early, late) for b in ("1", "2")}
    early1, early2 = _sections(zh[(early, "1")]), _sections(zh[(early, "2")])
    assert "采样 3 人次，还有 5 人未采，出结果 2 份" in early1[0]
    assert "送达 2 户，未送达待跟进 1 户，跟进完成 1 户" in early1[0]
    assert "登记 0 份，取卡 0 张，买到药 0 份，药和卡送回 0 张" in early1[0]
    assert "收到提问 2 条，已答复 2 条" in early1[0]
    assert "采样 1 人次，出结果 1 份" in early2[0]  # building 2's missing samples are not known
    assert "登记 1 份，取卡 1 张，买到药 1 份，药和卡送回 1 张" in early2[0]
    assert "收到提问 0 条，已答复 0 条" in early2[0]
    for whole in (early1[1], early2[1]):  # the compound's part is the same in every group
        assert "采样 4 人次，还有 5 人未采，出结果 3 份" in whole
        assert "送达 3 户，未送达待跟进 1 户，跟进完成 1 户" in whole
        assert "登记 1 份，取卡 1 张，买到药 1 份，药和卡送回 1 张" in whole
        assert "收到提问 2 条，已答复 2 条" in whole and "捐赠：接收 1 批，谢绝 1 批" in whole
    assert "3 samples taken, 5 residents not yet sampled, 2 results back" in en[(early, "1")]
    assert "Donations: 1 accepted, 1 refused" in en[(early, "2")]
    late1 = _sections(zh[(late, "1")])
    assert "采样 3 人次，还有 5 人未采，出结果 2 份" in late1[0] and "收到提问 0 条" in late1[1]


def _received(runtime: Runtime) -> int:
    with runtime.database.reading() as session:
        return int(session.execute(select(func.count()).select_from(inbox_table)).scalar() or 0)


def _sections(text: str) -> tuple[str, str]:
    building, _, compound = text.partition("【全小区】")
    assert compound, text
    return building, compound


def _no_identity(text: str, compound: str) -> None:
    """Counts only: no id of a resident, household, tube, card, donor or compound; no result; no question."""
    for needle in (compound, "T-100", "K-1", "M-1", "donor-", "s-1", "阳性", "positive", "negative", "明天", "口罩"):
        assert needle not in text, (needle, text)
    assert not re.search(r"r\d-\d|h\d-\d", text), text
