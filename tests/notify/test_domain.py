"""Notify's rules as plain Python: rate windows, what is digested, backoff, quiet hours, signatures, templates."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import urllib.parse
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from juwei.aggregate import DomainRuleViolation
from services.notify.app import service as notify_service
from services.notify.channels import DINGTALK, FEISHU, WECOM, Outgoing, dingtalk_signature, feishu_signature, plain_text
from services.notify.domain import (
    PLATFORM_LIMITS,
    Channel,
    DigestItem,
    Due,
    Message,
    QuietHours,
    QuietWindow,
    Texts,
    backoff,
    building_label,
    digest_text,
    plan_batch,
)
from services.notify.rules import RULES, render

NOW = datetime(2022, 4, 10, 8, 0, tzinfo=UTC)


def test_platform_windows_count_what_was_sent_recently() -> None:
    wecom, feishu = PLATFORM_LIMITS["wecom"], PLATFORM_LIMITS["feishu"]
    sent = [NOW - timedelta(seconds=s) for s in range(0, 70, 5)]  # 14 requests, 12 within the last minute
    assert wecom.budget(sent, NOW) == 8 and wecom.long_budget(sent, NOW) == 8
    burst = [NOW - timedelta(milliseconds=100 * i) for i in range(5)]
    assert feishu.budget(burst, NOW) == 0 and feishu.long_budget(burst, NOW) == 95
    assert feishu.next_slot(burst, NOW) == burst[-1] + timedelta(seconds=1)
    assert PLATFORM_LIMITS["webhook"].budget(sent, NOW) is None


def test_a_backlog_over_the_room_left_sends_the_most_urgent_alone_and_digests_the_rest() -> None:
    due = [Due(i, "critical" if i == 9 else "normal", i) for i in range(1, 11)]
    alone, merged = plan_batch(due, 4)
    assert [d.id for d in alone] == [9, 1, 2] and [d.id for d in merged] == [3, 4, 5, 6, 7, 8, 10]
    assert plan_batch(due, 10) == (sorted(due, key=lambda d: d.rank), [])
    assert plan_batch(due, 0) == ([], [])
    assert plan_batch(due[:2], 1)[1] == due[:2]  # two into one digest
    assert plan_batch(due, None)[1] == []


def test_backoff_grows_exponentially_with_jitter_up_to_a_cap() -> None:
    rng = random.Random(7)
    waits = [backoff(n, 2.0, 60.0, rng) for n in range(1, 9)]
    for n, wait in enumerate(waits, start=1):
        ceiling = min(60.0, 2.0 * 2 ** (n - 1))
        assert ceiling / 2 <= wait <= ceiling
    assert len({round(w, 3) for w in waits}) == len(waits)


def test_quiet_hours_span_midnight() -> None:
    window = QuietWindow.parse("22:00", "07:00")
    assert window is not None and window.covers(time(23, 30)) and window.covers(time(6, 59))
    assert not window.covers(time(7, 0)) and not window.covers(time(12, 0))
    shanghai = ZoneInfo("Asia/Shanghai")
    assert window.ends_after(datetime(2022, 4, 10, 23, 0, tzinfo=shanghai)) == datetime(
        2022, 4, 11, 7, 0, tzinfo=shanghai
    )
    assert QuietWindow.parse(None, None) is None
    hours = QuietHours("c1")
    with pytest.raises(DomainRuleViolation):
        hours.set("22:00", None)
    hours.set("22:00", "07:00")
    hours.set("22:00", "07:00")
    assert len(hours.pending()) == 1


def test_a_digest_keeps_every_title_and_cuts_bodies_to_fit() -> None:
    items = [DigestItem(f"通知{n}", "内容" * 200, "normal") for n in range(12)]
    texts = digest_text(items, "zh", 1800, "https://juwei.example/boards/x")
    assert len((texts.title_zh + texts.body_zh).encode()) <= 1800
    assert all(f"{n}. 通知{n - 1}" in texts.body_zh for n in range(1, 13))
    assert texts.body_zh.endswith("完整内容请看楼栋公告栏: https://juwei.example/boards/x")
    small = digest_text(items[:2], "en", 100_000)
    assert small.title_en == "[Digest] 2 notices sent together" and "内容内容" in small.body_en
    long = Outgoing("d", "标题", "字" * 3000, "normal", "zh", "c1", "1")
    assert len(plain_text(long, 2000).encode()) <= 2000 and plain_text(long, 2000).endswith("（全文见楼栋公告栏）")


def test_signatures_match_the_platforms_documented_recipes() -> None:
    secret, stamp_ms = "SEC000", 1649577600000
    digest = hmac.new(secret.encode(), f"{stamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    assert urllib.parse.unquote_plus(dingtalk_signature(secret, stamp_ms)) == base64.b64encode(digest).decode()
    stamp_s = 1649577600
    expected = base64.b64encode(hmac.new(f"{stamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
    assert feishu_signature(secret, stamp_s) == expected


@pytest.mark.parametrize(
    ("codes", "body", "kind", "broken"),
    [
        (WECOM, {"errcode": 0, "errmsg": "ok"}, "sent", False),
        (WECOM, {"errcode": 45009, "errmsg": "api freq out of limit"}, "rate_limited", False),
        (WECOM, {"errcode": 93000, "errmsg": "invalid webhook url"}, "permanent", True),
        (DINGTALK, {"errcode": 130101, "errmsg": "send too fast"}, "rate_limited", False),
        (DINGTALK, {"errcode": 310000, "errmsg": "sign not match"}, "permanent", True),
        (FEISHU, {"code": 11232, "msg": "frequency limited"}, "rate_limited", False),
        (FEISHU, {"code": 19021, "msg": "sign match fail"}, "permanent", True),
        (FEISHU, {"code": 9499, "msg": "Bad Request"}, "permanent", False),
        (FEISHU, {"StatusCode": 0, "StatusMessage": "success"}, "sent", False),
    ],
)
def test_http_200_bodies_are_read_not_trusted(codes, body, kind, broken) -> None:
    outcome = codes.outcome(httpx.Response(200, json=body))
    assert (outcome.kind, outcome.channel_broken) == (kind, broken)


def test_other_answers() -> None:
    assert WECOM.outcome(httpx.Response(200, text="<html>")).kind == "uncertain"
    assert WECOM.outcome(httpx.Response(503)).kind == "transient"
    assert WECOM.outcome(httpx.Response(429, headers={"Retry-After": "7"})).retry_after == 7.0
    assert WECOM.outcome(httpx.Response(404)).channel_broken


def test_aggregates_refuse_what_makes_no_sense() -> None:
    channel = Channel("c1:ch-1")
    with pytest.raises(DomainRuleViolation):
        channel.reconfigure("sealed")
    with pytest.raises(DomainRuleViolation):
        channel.attach("c1:1", "pager", "zh", "", "sealed")
    message = Message("c1:m-1")
    with pytest.raises(DomainRuleViolation):
        message.compose("announcement", "normal", [], Texts("t", "b"))
    message.compose("announcement", "normal", ["c1:2", "c1:1", "c1:1"], Texts("t", "b"))
    assert message.buildings == ["c1:1", "c1:2"]
    with pytest.raises(DomainRuleViolation):
        message.compose("announcement", "normal", ["c1:1"], Texts("t", "b"))


def test_building_labels_never_carry_odd_text() -> None:
    assert building_label("12", "c1:12") == "12"
    assert building_label("A座", "c1:a") == "A座"
    assert building_label("13912345678", "c1:7") == "7"
    assert building_label("王秀英 的楼", "c1:7") == "7"


def test_every_rule_names_a_catalogued_type_and_renders_in_both_languages() -> None:
    # The rules are keyed by event class (issue 16): each is a class of the consumed catalogue.
    assert set(RULES) <= set(notify_service.catalogue.classes.values())
    title, body = render(
        "zone_status_changed",
        {
            "place": "12",
            "zone": "controlled",
            "previous": "sealed",
            "on": date(2022, 4, 17),
            "days": 7,
            "next_zone": "precaution",
            "next_change_on": date(2022, 4, 24),
            "by_authority": False,
        },
        "zh",
    )
    assert title == "12号楼防控状态：管控区"
    assert "距最近一例阳性已 7 天" in body and "预计 2022-04-24 起转为防范区" in body
    title, body = render("case_confirmed", {"place": "12", "on": date(2022, 4, 10)}, "en")
    assert title == "One new positive case in building 12"
