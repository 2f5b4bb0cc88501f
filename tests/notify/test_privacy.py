"""A name, a phone number and an ID number pushed into every field of the events never reach a building group.

The events are the real catalogues' classes; identity goes into every free-text and id field they have
(ids, reasons, labels, donors, facilities, areas). Every message rule fires; nothing identifying comes out of
any channel — the bots, the webhook, e-mail, the board — nor out of notify's own published events.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from contracts import supplies as supplies
from contracts import testing as testing
from contracts.residents import ZoneStatusChanged
from juwei.store import events_table
from services.notify.views import messages
from tests.conftest import both_databases
from tests.notify.conftest import Notify, envelope, receive

NAME, PHONE, ID_NUMBER = "王秀英", "13912345678", "310101195003071234"
WHO = f"{NAME} {PHONE} {ID_NUMBER}"
AT = datetime(2022, 4, 10, 6, 0, tzinfo=UTC)


def _events() -> list:
    b = "c1:1"
    return [
        envelope(
            ZoneStatusChanged(
                scope="building",
                building=b,
                zone="sealed",
                previous="precaution",
                reason=WHO,
                days_since_last_case=0,
                next_zone="controlled",
                next_change_on=date(2022, 4, 17),
            ),
            "c1",
        ),
        envelope(
            testing.SamplingPointOpened(
                point="c1:p1", name=f"会所 {PHONE} {ID_NUMBER}", location=WHO, throughput=2.0, volunteers=[WHO]
            ),
            "c1",
            "testing",
        ),
        envelope(
            testing.RoundScheduled(
                round=f"c1:{NAME}",
                kind="pcr",
                on=date(2022, 4, 11),
                starts_at=AT,
                points=["c1:p1"],
                mode="floor",
                floors_per_call=2,
                floor_order="down",
                pool_size=10,
                slot_minutes=10,
                window_minutes=120,
                lift_trip_minutes=2,
                walk_floors=3,
                auto_advance=True,
            ),
            "c1",
            "testing",
        ),
        envelope(
            testing.UnitCalled(
                round=f"c1:{NAME}",
                point="c1:p1",
                call=1,
                building=b,
                lowest_floor=3,
                highest_floor=5,
                rooms=[1, 2],
                people=24,
                planned_at=AT,
                called_at=AT,
                called_by="volunteer",
            ),
            "c1",
            "testing",
        ),
        envelope(
            testing.CaseConfirmed(
                case=f"c1:{WHO}",
                resident=f"c1:{WHO}",
                household=f"c1:{ID_NUMBER}",
                building=b,
                confirmed_on=date(2022, 4, 10),
            ),
            "c1",
            "testing",
        ),
        envelope(testing.TransferScheduled(case=f"c1:{WHO}", building=b, scheduled_at=AT), "c1", "testing"),
        envelope(
            testing.CaseTransferred(case=f"c1:{WHO}", building=b, transferred_at=AT, facility=WHO), "c1", "testing"
        ),
        envelope(
            testing.DisinfectionRecorded(
                disinfection="c1:d1", building=b, done_at=AT, areas=["电梯", WHO], photos=[], case=f"c1:{WHO}"
            ),
            "c1",
            "testing",
        ),
        envelope(
            supplies.BatchArrived(
                batch=f"c1:{NAME}",
                source="government",
                label=WHO,
                arrived_on=date(2022, 4, 10),
                items=[supplies.SupplyItem(item=f"大米 {PHONE}", quantity=200, unit="袋")],
                buildings=[b],
                orders=[supplies.GroupOrder(order=WHO, household=f"c1:{WHO}", items={"大米": 1})],
            ),
            "c1",
            "supplies",
        ),
        envelope(supplies.BatchDispatched(batch=f"c1:{NAME}", on=date(2022, 4, 10), buildings=[b]), "c1", "supplies"),
        envelope(
            supplies.ShiftCalled(
                batch=f"c1:{NAME}",
                building=b,
                on=date(2022, 4, 10),
                shift_on_duty="A",
                shifts=["A", "B"],
                both=True,
                reason=WHO,
                volunteers=[WHO],
                households=40,
                items=400,
            ),
            "c1",
            "supplies",
        ),
        envelope(
            supplies.DeliveryConfirmed(
                batch=f"c1:{NAME}",
                building=b,
                household=f"c1:{WHO}",
                floor=3,
                by=WHO,
                delivered=2,
                households=4,
                follow_ups=1,
            ),
            "c1",
            "supplies",
        ),
        envelope(
            supplies.BuildingDelivered(batch=f"c1:{NAME}", building=b, delivered=4, households=4), "c1", "supplies"
        ),
        envelope(
            supplies.DonationAccepted(
                donation=f"c1:{NAME}",
                donor=WHO,
                received_on=date(2022, 4, 10),
                items=[supplies.DonationItem(item="口罩", category="防疫", quantity=1000)],
                donor_name=WHO,
            ),
            "c1",
            "supplies",
        ),
        envelope(
            supplies.DonationRefused(
                donation=f"c1:{PHONE}",
                donor=WHO,
                received_on=date(2022, 4, 10),
                items=[supplies.DonationItem(item="盒饭", category="食品", quantity=7)],
                reason=WHO,
            ),
            "c1",
            "supplies",
        ),
    ]


@both_databases
def test_identity_in_any_event_field_never_reaches_a_channel(notify: Notify, platforms, mailbox) -> None:
    bots = [
        platforms.bot("wecom", "wk"),
        platforms.bot("dingtalk", "dt", "SECx"),
        platforms.bot("feishu", "fs", "y"),
        platforms.bot("webhook", "wh", "w" * 32),
    ]
    for bot in bots:
        notify.attach("1", bot.kind, platforms.config(bot), language="en" if bot.kind == "feishu" else "zh")
    notify.attach("1", "email", mailbox.config(["group-1@example.org"]))
    events = _events()
    receive(notify.runtime, *events)
    notify.dispatcher.drain(timeout=60)

    with notify.runtime.database.reading() as session:
        composed = session.execute(select(messages.c.template)).scalars().all()
        published = session.execute(select(events_table.c.data)).scalars().all()
    assert set(composed) == {
        "zone_status_changed",
        "round_scheduled",
        "unit_called",
        "case_confirmed",
        "transfer_scheduled",
        "case_transferred",
        "disinfection_recorded",
        "batch_arrived",
        "batch_dispatched",
        "both_shifts_called",
        "delivery_progress",
        "building_delivered",
        "donation_ledger",
    }
    assert len(bots[0].texts) == len(composed)  # every message went out (these are under the rate limit)
    token = notify.client.get("/compounds/c1/buildings/1/board", headers=notify.key("committee-staff")).json()["url"]
    board = notify.client.get(token).text
    listed = notify.client.get(
        "/compounds/c1/messages", params={"limit": 100}, headers=notify.key("committee-staff")
    ).text
    everything = "\n".join([platforms.everything_received(), *mailbox.texts(), board, listed, *published])
    for secret in (NAME, PHONE, ID_NUMBER):
        assert secret not in everything, secret
    assert "1号楼新增 1 例阳性病例" in everything and "3–5 层" in everything and "口罩 1000" in everything
    assert "会所" in everything and "电梯、其他公共区域" in everything  # places stay, with numbers masked
