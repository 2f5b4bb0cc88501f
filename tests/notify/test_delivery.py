"""Delivery that holds: every channel kind, rate limits with digests, retries, dead letters, quiet hours."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import REGISTRY
from sqlalchemy import select

from juwei.store import events_table
from services.notify.views import deliveries
from tests.conftest import both_databases
from tests.notify.conftest import Notify, compound_events, envelope, receive

STAFF = "committee-staff"


def _log(notify: Notify, message: str) -> list[dict[str, Any]]:
    answer = notify.client.get(f"/compounds/c1/messages/{message}", headers=notify.key(STAFF))
    assert answer.status_code == 200, answer.text
    return answer.json()["delivery_log"]


def _events(notify: Notify, name: str) -> list[dict[str, Any]]:
    with notify.runtime.database.reading() as session:
        rows = session.execute(
            select(events_table.c.data).where(events_table.c.type == f"juwei.notify.{name}.v1")
        ).scalars()
        return [json.loads(row) for row in rows]


@both_databases
def test_an_announcement_reaches_every_kind_of_channel_signed_and_logged(notify: Notify, platforms, mailbox) -> None:
    wecom = platforms.bot("wecom", "wk")
    ding = platforms.bot("dingtalk", "dt", "SEC0123456789abcdef")
    feishu = platforms.bot("feishu", "fs", "feishu-secret")
    hook = platforms.bot("webhook", "wh", "w" * 32)
    for bot in (wecom, ding, feishu, hook):
        notify.attach("1", bot.kind, platforms.config(bot))
    notify.attach("1", "email", mailbox.config(["group-1@example.org"]))
    notify.attach("2", "wecom", platforms.config(platforms.bot("wecom", "other")))

    sent = notify.announce("明日全员核酸", buildings=["1"], priority="important", body="7:00 起按楼层分批下楼。")
    assert sent["deliveries"] == 5  # building 2's channel is not among them
    assert notify.dispatcher.drain() == 5
    for bot in (wecom, ding, feishu):
        assert bot.texts == ["【重要】明日全员核酸\n7:00 起按楼层分批下楼。"], bot.kind
        assert not bot.refusals  # signatures accepted
    assert hook.received[0]["body"]["priority"] == "important" and hook.received[0]["delivery"]
    assert mailbox.texts()[0].startswith("明日全员核酸\n7:00 起按楼层分批下楼。")
    assert mailbox.messages[0][0] == ["group-1@example.org"]
    assert platforms.bots[("wecom", "other")].texts == []
    log = _log(notify, sent["message"])
    assert {entry["kind"] for entry in log} == {"wecom", "dingtalk", "feishu", "webhook", "email"}
    assert all(entry["status"] == "sent" and [a["outcome"] for a in entry["log"]] == ["sent"] for entry in log)
    assert len(_events(notify, "DeliverySent")) == 5
    assert notify.dispatcher.drain() == 0  # nothing twice


@both_databases
def test_over_the_rate_limit_the_overflow_is_merged_into_one_digest_and_the_limit_holds(
    notify: Notify, platforms
) -> None:
    wecom = platforms.bot("wecom", "wk")
    ding = platforms.bot("dingtalk", "dt", "SECabc")
    feishu = platforms.bot("feishu", "fs", "fsecret")
    for bot in (wecom, ding, feishu):
        notify.attach("1", bot.kind, platforms.config(bot))
    titles = [f"通知第{n}号" for n in range(1, 31)]
    for title in titles:
        notify.announce(title, buildings=["1"])
    notify.dispatcher.drain(timeout=60)
    for bot in (wecom, ding):
        assert len(bot.received) == 20, bot.kind  # 19 alone + 1 digest: the whole minute's budget
        assert bot.most_in_window(60) <= 20 and not bot.refusals
        alone, digest = bot.texts[:19], bot.texts[19]
        assert alone == titles[:19]
        assert digest.startswith("【通知汇总】以下 11 条通知合并发送")
        assert all(title in digest for title in titles[19:])  # merged, not dropped
    # Feishu takes 100 a minute but only 5 a second: all 30 go one by one, paced.
    assert feishu.texts == titles and not feishu.refusals
    assert feishu.most_in_window(1.0) <= 5
    with notify.runtime.database.reading() as session:
        statuses = session.execute(select(deliveries.c.status)).scalars().all()
    assert statuses.count("digested") == 22 and statuses.count("sent") == 19 * 2 + 2 + 30
    digested = _log(notify, next(iter(_message_ids(notify, titles[-1]))))
    wecom_entry = next(entry for entry in digested if entry["kind"] == "wecom")
    assert wecom_entry["status"] == "digested" and wecom_entry["digest"]
    assert [a["outcome"] for a in wecom_entry["log"]] == ["digested", "sent"]  # the digest's own attempt
    assert len(_events(notify, "DigestComposed")) == 2


def _message_ids(notify: Notify, title: str) -> list[str]:
    listed = notify.client.get("/compounds/c1/messages", params={"limit": 500}, headers=notify.key(STAFF)).json()
    return [m["message"] for m in listed["messages"] if m["title"] == title]


@both_databases
def test_a_rate_limit_answer_is_retried_later_with_backoff(notify: Notify, platforms) -> None:
    bots = [platforms.bot("wecom", "wk"), platforms.bot("dingtalk", "dt"), platforms.bot("feishu", "fs")]
    for bot, code in zip(bots, (45009, 130101, 11232), strict=True):
        bot.script.extend([code, code])
        notify.attach("1", bot.kind, platforms.config(bot))
    sent = notify.announce("消杀通知", buildings=["1"])
    notify.dispatcher.drain(timeout=30)
    assert all(bot.texts == ["消杀通知"] for bot in bots)
    for entry in _log(notify, sent["message"]):
        outcomes = [(a["outcome"], a["code"]) for a in entry["log"]]
        assert [o for o, _ in outcomes] == ["rate_limited", "rate_limited", "sent"], entry
        first, second = (datetime.fromisoformat(a["at"]) for a in entry["log"][:2])
        assert (second - first).total_seconds() >= 0.9  # the platform's pause (1 s in these tests) was kept
    failed = _events(notify, "DeliveryFailed")
    assert {f["reason"] for f in failed} == {"rate_limited"} and len(failed) == 6
    assert {f["code"] for f in failed} == {"45009", "130101", "11232"}


@both_databases
def test_a_permanent_error_dead_letters_alerts_and_a_bad_signature_pauses_the_channel_until_fixed(
    notify: Notify, platforms
) -> None:
    wecom = platforms.bot("wecom", "wk")
    wecom.script.append(40035)  # refuses this one message
    ding = platforms.bot("dingtalk", "dt", "SECright")
    config = platforms.config(ding)
    notify.attach("1", "wecom", platforms.config(wecom))
    channel = notify.attach("1", "dingtalk", {**config, "secret": "SECwrong"})
    first = notify.announce("第一条", buildings=["1"])
    alerts: list[dict[str, Any]] = []
    notify.dispatcher.on_alert.append(alerts.append)
    notify.dispatcher.drain()
    second = notify.announce("第二条", buildings=["1"])
    notify.dispatcher.drain()
    assert wecom.texts == ["第二条"]  # a message-level refusal does not stop the channel
    assert ding.texts == [] and [code for _, code in ding.refusals] == [310000]  # paused after the bad sign
    dead = _events(notify, "DeliveryDeadLettered")
    assert {(d["code"], d["channel_broken"]) for d in dead} == {("40035", False), ("310000", True)}
    assert {a["code"] for a in alerts} == {"40035", "310000"}
    staff = notify.key(STAFF)
    listed = notify.client.get("/compounds/c1/groups/1/channels", headers=staff).json()
    broken = next(c for c in listed if c["channel"] == channel)
    assert broken["broken"].startswith("310000") and broken["pending"] == 1 and broken["dead"] == 1
    letters = notify.client.get("/compounds/c1/deliveries", headers=staff).json()["deliveries"]
    assert {(d["kind"], d["status"]) for d in letters} == {("wecom", "dead"), ("dingtalk", "dead")}

    # The operator fixes the secret: the held message goes, and the dead letter can be sent again.
    fixed = notify.client.put(f"/compounds/c1/groups/1/channels/{channel}", json={"config": config}, headers=staff)
    assert fixed.status_code == 200 and fixed.json()["broken"] is None
    notify.dispatcher.drain()
    assert ding.texts == ["第二条"]
    letter = next(d for d in letters if d["kind"] == "dingtalk")
    again = notify.client.post(f"/compounds/c1/deliveries/{letter['delivery']}/requeue", headers=staff)
    assert again.status_code == 200, again.text
    notify.dispatcher.drain()
    assert ding.texts == ["第二条", "第一条"]
    outcomes = [a["outcome"] for e in _log(notify, first["message"]) if e["kind"] == "dingtalk" for a in e["log"]]
    assert outcomes == ["permanent", "requeued", "sent"]
    assert (
        notify.client.post(f"/compounds/c1/deliveries/{letter['delivery']}/requeue", headers=staff).status_code == 409
    )
    assert _log(notify, second["message"])


@both_databases
def test_unreachable_platforms_are_retried_then_given_up_and_unreadable_answers_are_not_resent(
    notify: Notify, platforms
) -> None:
    notify.attach("1", "wecom", {"url": "http://127.0.0.1:9/cgi-bin/webhook/send?key=nobody"})  # port 9: refused
    sent = notify.announce("水电维修通知", buildings=["1"])
    notify.dispatcher.drain(timeout=30)
    entry = _log(notify, sent["message"])[0]
    assert entry["status"] == "dead"
    assert [a["outcome"] for a in entry["log"]] == ["transient"] * 4  # max_attempts in these tests
    assert _events(notify, "DeliveryDeadLettered")[0]["code"].startswith("gave-up:http:ConnectError")


class _HtmlAnswers:
    """A platform behind a captive portal: every send answers 200 with a page, so whether it arrived is unknown."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                page = b"<html><body>please sign in to the network</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/webhook/send?key=portal"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@both_databases
def test_deliveries_given_up_or_uncertain_are_counted_for_the_operators_alert(notify: Notify, platforms) -> None:
    """notify_deliveries_undelivered_total{kind, outcome}: deploy/prometheus/alerts.yml pages on its increase."""
    portal = _HtmlAnswers()
    try:
        notify.attach("1", "wecom", {"url": "http://127.0.0.1:9/cgi-bin/webhook/send?key=nobody"})  # refused
        notify.attach("2", "wecom", {"url": portal.url})
        notify.attach("2", "webhook", platforms.config(platforms.bot("webhook", "wh", "w" * 32)))
        before = {key: _undelivered(*key) for key in UNDELIVERED_KEYS}
        notify.announce("停水通知", buildings=["1", "2"])
        notify.dispatcher.drain(timeout=30)
    finally:
        portal.close()
    counted = {key: _undelivered(*key) - before[key] for key in UNDELIVERED_KEYS}
    # Building 1's bot given up after its retries, building 2's answered with a page; the webhook was sent.
    assert counted == {("wecom", "dead"): 1, ("wecom", "uncertain"): 1, ("webhook", "dead"): 0,
                       ("webhook", "uncertain"): 0}  # fmt: skip
    statuses = {entry["status"] for entry in notify.client.get("/compounds/c1/deliveries",
                headers=notify.key(STAFF)).json()["deliveries"]}  # fmt: skip
    assert statuses == {"dead", "uncertain"}


UNDELIVERED_KEYS = [(kind, outcome) for kind in ("wecom", "webhook") for outcome in ("dead", "uncertain")]


def _undelivered(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("notify_deliveries_undelivered_total", {"kind": kind, "outcome": outcome})
    assert value is not None, f"no series for {kind}/{outcome}: the alert would miss the first one"
    return value


@both_databases
def test_quiet_hours_hold_everything_but_critical_messages_to_phones(notify: Notify, platforms) -> None:
    wecom = platforms.bot("wecom", "wk")
    hook = platforms.bot("webhook", "wh", "w" * 32)
    notify.attach("1", "wecom", platforms.config(wecom))
    notify.attach("1", "webhook", platforms.config(hook))
    staff = notify.key(STAFF)
    assert (
        notify.client.put(
            "/compounds/c1/quiet-hours", json={"start": "22:00", "end": "07:00"}, headers=staff
        ).status_code
        == 200
    )
    assert notify.client.put("/compounds/c1/quiet-hours", json={"start": "22:00"}, headers=staff).status_code == 422
    shanghai = ZoneInfo("Asia/Shanghai")
    tomorrow = datetime.now(shanghai).date() + timedelta(days=1)
    night = datetime.combine(tomorrow, time(23, 30), shanghai).astimezone(UTC)
    notify.dispatcher.clock = lambda: night
    notify.announce("明早领取物资", buildings=["1"])
    notify.announce("立即关窗，楼道消杀", buildings=["1"], priority="critical")
    notify.dispatcher.drain()
    assert wecom.texts == ["【紧急】立即关窗，楼道消杀"]  # the normal one waits for the morning
    assert len(hook.received) == 2  # machines do not sleep
    morning = datetime.combine(tomorrow + timedelta(days=1), time(7, 1), shanghai).astimezone(UTC)
    notify.dispatcher.clock = lambda: morning
    notify.dispatcher.drain()
    assert wecom.texts == ["【紧急】立即关窗，楼道消杀", "明早领取物资"]
    held = next(e for e in _log(notify, _message_ids(notify, "明早领取物资")[0]) if e["kind"] == "wecom")
    assert [a["outcome"] for a in held["log"]] == ["deferred", "sent"]
    seven = datetime.combine(tomorrow + timedelta(days=1), time(7, 0), shanghai).astimezone(UTC)
    assert seven.isoformat() in held["log"][0]["detail"]


@both_databases
def test_a_redelivered_event_queues_nothing_twice(notify: Notify, platforms) -> None:
    from contracts.residents import ZoneStatusChanged

    wecom = platforms.bot("wecom", "wk")
    notify.attach("2", "wecom", platforms.config(wecom))
    change = envelope(
        ZoneStatusChanged(
            scope="building",
            building="c1:2",
            zone="sealed",
            previous="precaution",
            reason="case",
            days_since_last_case=0,
            next_zone="controlled",
            next_change_on="2022-04-17",
        ),
        "c1",
    )
    receive(notify.runtime, change)
    # The same event again under a new inbox row (re-produced by hand after the inbox was cleaned, say).
    with notify.runtime.database.unit_of_work() as session:
        from juwei.consumer import Delivery

        notify.runtime.definition.on_received(notify.runtime, session, Delivery(change, 10_000, "juwei.residents"))
    with notify.runtime.database.reading() as session:
        assert len(session.execute(select(deliveries.c.id)).all()) == 1
    notify.dispatcher.drain()
    notify.dispatcher.drain()
    assert len(wecom.texts) == 1 and wecom.texts[0].startswith("【重要】2号楼防控状态：封控区")


def test_channels_are_checked_before_they_are_sealed(notify: Notify) -> None:
    staff = notify.key(STAFF)
    bad = [
        ("wecom", {"url": "ftp://x"}),
        ("webhook", {"url": "https://example.org/h", "secret": "short"}),
        ("email", {"host": "smtp.example.org", "sender": "x", "recipients": ["a@example.org"]}),
        ("email", {"host": "smtp.example.org", "sender": "s@example.org", "recipients": []}),
        ("pager", {"url": "https://example.org"}),
    ]
    for kind, config in bad:
        answer = notify.client.post(
            "/compounds/c1/groups/1/channels", json={"kind": kind, "config": config}, headers=staff
        )
        assert answer.status_code == 422, (kind, answer.text)
    unknown = notify.client.post(
        "/compounds/c1/groups/99/channels",
        json={"kind": "wecom", "config": {"url": "https://x.example/?key=1"}},
        headers=staff,
    )
    assert unknown.status_code == 404
    officer = notify.key("information-officer", buildings=["1"])
    assert (
        notify.client.post(
            "/compounds/c1/groups/1/channels", json={"kind": "wecom", "config": {"url": "https://x"}}, headers=officer
        ).status_code
        == 403
    )
    assert (
        notify.client.post(
            "/compounds/c2/groups/1/channels", json={"kind": "wecom", "config": {"url": "https://x"}}, headers=staff
        ).status_code
        == 403
    )


def test_groups_follow_the_residents_register(notify: Notify) -> None:
    from contracts.residents import ResidentErased, ResidentMoved

    staff = notify.key(STAFF)
    listed = notify.client.get("/compounds/c1/groups", headers=staff).json()["groups"]
    assert [(g["building"], g["households"], g["members"]) for g in listed] == [("1", 4, 4), ("2", 4, 4), ("3", 4, 4)]
    receive(
        notify.runtime,
        envelope(ResidentErased(resident="c1:r1-1", household="c1:h1-1", building="c1:1"), "c1"),
        envelope(
            ResidentMoved(
                resident="c1:r1-2",
                from_household="c1:h1-2",
                from_building="c1:1",
                to_household="c1:h2-1",
                building="c1:2",
                floor=1,
                room=1,
            ),
            "c1",
        ),
        *compound_events("c2", buildings=1, households=1),
    )
    group = notify.client.get("/compounds/c1/groups/1", headers=staff).json()
    assert group["without_representative"] == 2
    assert [m["household"] for m in group["members"]] == ["h1-3", "h1-4"]
    assert all(set(m) == {"household", "representative"} for m in group["members"])  # ids only
    assert len(notify.client.get("/compounds/c1/groups", headers=staff).json()["groups"]) == 3
