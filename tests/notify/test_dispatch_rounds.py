"""How the dispatcher's rounds go: woken by what queues deliveries, leases kept between rounds, webhooks in bulk."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select

from juwei.events import utcnow
from juwei.service import create_app
from services.notify import dispatch
from services.notify.app import service
from services.notify.views import attempts, channel_state, channels, deliveries
from tests.conftest import both_databases
from tests.kernel.harness import wait_for
from tests.notify.conftest import FAST, Notify, compound_events, make_notify, open_notify, receive

HOUR = 3600.0


def _statuses(notify: Notify) -> Counter[str]:
    with notify.runtime.database.reading() as session:
        return Counter(session.execute(select(deliveries.c.status)).scalars())


def _lease_owner(notify: Notify, channel: str) -> str | None:
    with notify.runtime.database.reading() as session:
        return session.execute(
            select(channel_state.c.lease_owner).where(channel_state.c.channel.like(f"%{channel}"))
        ).scalar()


@both_databases
def test_queued_deliveries_wake_the_dispatcher_without_waiting_for_its_tick(
    new_database, tmp_path: Path, platforms
) -> None:
    hourly = replace(service, periodic=[(HOUR, dispatch.job(FAST))])  # the tick alone would send nothing here
    runtime = make_notify(new_database("notify"), tmp_path, definition=hourly)
    with TestClient(create_app(runtime, background=False)) as client:
        made = Notify(client, runtime, dispatch.dispatcher_of(runtime, FAST))
        receive(runtime, *compound_events("c1"))
        hook = platforms.bot("webhook", "wake-hook", "w" * 32)
        wecom = platforms.bot("wecom", "wake-wecom")
        made.attach("1", "webhook", platforms.config(hook))
        made.attach("1", "wecom", platforms.config(wecom))
        runtime.start_background(relay=False, consumers=False)
        made.announce("今晚停水", buildings=["1"])
        wait_for(
            lambda: len(hook.received) == 1 and len(wecom.received) == 1,
            timeout=30,
            what="the announcement to reach both channels",
        )
        made.announce("明早恢复供水", buildings=["1"])
        wait_for(
            lambda: len(hook.received) == 2 and len(wecom.received) == 2, timeout=30, what="the second announcement"
        )
        assert wecom.texts == ["今晚停水", "明早恢复供水"]
        runtime.stop()
    assert _statuses(made) == Counter(sent=4)


@both_databases
def test_a_lease_is_kept_between_rounds_and_no_second_dispatcher_serves_the_channel_meanwhile(
    notify: Notify, platforms
) -> None:
    first = notify.dispatcher
    second = dispatch.Dispatcher(notify.runtime, FAST)
    hook = platforms.bot("webhook", "lease-hook", "w" * 32)
    wecom = platforms.bot("wecom", "lease-wecom")
    hook_channel = notify.attach("1", "webhook", platforms.config(hook))
    wecom_channel = notify.attach("1", "wecom", platforms.config(wecom))
    try:
        notify.announce("第一条", buildings=["1"])
        assert first.drain() == 2
        for channel in (hook_channel, wecom_channel):
            assert _lease_owner(notify, channel) == first.owner  # kept after the round

        notify.announce("第二条", buildings=["1"])
        assert second.due_channels() == []
        assert second.run_once() == 0  # the channels are the first dispatcher's while its lease stands
        assert _statuses(notify)["pending"] == 2
        assert first.drain() == 2

        first.close()  # a stopping dispatcher hands its leases back at once
        for channel in (hook_channel, wecom_channel):
            assert _lease_owner(notify, channel) is None
        notify.announce("第三条", buildings=["1"])
        assert second.drain() == 2
        assert _lease_owner(notify, hook_channel) == second.owner
    finally:
        second.close()
    assert wecom.texts == ["第一条", "第二条", "第三条"]
    assert [entry["text"].split("\n")[0] for entry in hook.received] == ["第一条", "第二条", "第三条"]
    assert _statuses(notify) == Counter(sent=6)


@both_databases
def test_webhook_deliveries_claimed_together_and_never_recorded_are_sent_again_by_the_next_holder(
    new_database, tmp_path: Path, platforms
) -> None:
    crashed = open_notify(new_database("notify"), tmp_path)
    receive(crashed.runtime, *compound_events("c1"))
    hooks = [platforms.bot("webhook", f"bulk-{b}", "w" * 32) for b in (1, 2, 3)]
    for building, hook in zip(("1", "2", "3"), hooks, strict=True):
        crashed.attach(building, "webhook", platforms.config(hook))
    for n in range(4):
        crashed.announce(f"通知 {n}")

    def dies_before_recording(*_: Any) -> None:
        raise SystemError("the process dies between sending and recording")

    crashed.dispatcher._record_together = dies_before_recording  # type: ignore[method-assign]
    crashed.dispatcher.run_once()
    assert _statuses(crashed) == Counter(sending=12)  # all three channels' deliveries, claimed in one go
    assert all(len(hook.received) == 4 for hook in hooks)  # and sent

    # Another notify process, once the dead one's leases have run out.
    later = dispatch.Dispatcher(
        crashed.runtime, FAST, clock=lambda: utcnow() + timedelta(seconds=FAST.lease_seconds + 1)
    )
    try:
        assert later.drain() == 12  # sent again: the receivers dedupe on the delivery id
    finally:
        later.close()
        crashed.dispatcher.close()
    assert _statuses(crashed) == Counter(sent=12)
    for hook in hooks:
        assert sorted(entry["body"]["title"] for entry in hook.received) == [f"通知 {n}" for n in range(4)]
    with crashed.runtime.database.reading() as session:
        logged = Counter(session.execute(select(attempts.c.code)).scalars())
    assert logged["orphaned"] == 12
    crashed.client.__exit__(None, None, None)
    crashed.runtime.database.dispose()


@both_databases
def test_a_chat_bot_delivery_a_dead_process_left_in_flight_is_uncertain_and_counted_for_the_alert(
    new_database, tmp_path: Path, platforms
) -> None:
    crashed = open_notify(new_database("notify"), tmp_path)
    receive(crashed.runtime, *compound_events("c1"))
    wecom = platforms.bot("wecom", "orphaned-bot")
    crashed.attach("1", "wecom", platforms.config(wecom))
    crashed.announce("晚上停电", buildings=["1"])

    def dies_before_recording(*_: Any) -> None:
        raise SystemError("the process dies between sending and recording")

    crashed.dispatcher._record = dies_before_recording  # type: ignore[method-assign]
    with contextlib.suppress(SystemError):  # the round ends with the "death"
        crashed.dispatcher.run_once()
    assert _statuses(crashed) == Counter(sending=1) and wecom.texts == ["晚上停电"]
    before = REGISTRY.get_sample_value("notify_deliveries_undelivered_total", {"kind": "wecom", "outcome": "uncertain"})
    later = dispatch.Dispatcher(
        crashed.runtime, FAST, clock=lambda: utcnow() + timedelta(seconds=FAST.lease_seconds + 1)
    )
    try:
        later.drain()
    finally:
        later.close()
        crashed.dispatcher.close()
    assert _statuses(crashed) == Counter(uncertain=1) and wecom.texts == ["晚上停电"]  # never sent twice
    after = REGISTRY.get_sample_value("notify_deliveries_undelivered_total", {"kind": "wecom", "outcome": "uncertain"})
    assert after == before + 1
    crashed.client.__exit__(None, None, None)
    crashed.runtime.database.dispose()


@both_databases
def test_a_dispatcher_whose_lease_was_taken_over_claims_nothing_though_it_thinks_it_holds_it(
    notify: Notify, platforms
) -> None:
    first = notify.dispatcher
    hook = platforms.bot("webhook", "stolen-hook", "w" * 32)
    wecom = platforms.bot("wecom", "stolen-wecom")
    hook_channel = notify.attach("1", "webhook", platforms.config(hook))
    wecom_channel = notify.attach("1", "wecom", platforms.config(wecom))
    notify.announce("第一条", buildings=["1"])
    assert first.drain() == 2
    # The first dispatcher stalls past its lease; another process takes both channels over and serves them.
    second = dispatch.Dispatcher(
        notify.runtime, FAST, clock=lambda: utcnow() + timedelta(seconds=FAST.lease_seconds + 1)
    )
    try:
        notify.announce("第二条", buildings=["1"])
        assert second.drain() == 2
        notify.announce("第三条", buildings=["1"])
        assert first.run_once() == 0  # its own note says the lease is fresh; the database says otherwise
        with notify.runtime.database.reading() as session:
            full = dict(session.execute(select(channels.c.kind, channels.c.channel)).all())
        # Even between its read of what is due and its claim (served directly here), it claims nothing.
        assert first.serve_together([full["webhook"]]) == 0
        assert first.serve(full["wecom"]) == 0
        assert _statuses(notify)["pending"] == 2
        for channel in (hook_channel, wecom_channel):
            assert _lease_owner(notify, channel) == second.owner
        assert second.drain() == 2
    finally:
        second.close()
    assert wecom.texts == ["第一条", "第二条", "第三条"]
    assert len(hook.received) == 3
