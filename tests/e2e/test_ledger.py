"""The demo's accounts of the building groups, on their own: texts traced back to messages, events read as rules."""

from __future__ import annotations

from collections import Counter

from demo.compound import Size, cover, id_check_char, make_compound
from demo.ledger import Composed, Directory, GroupAccount, account, implied, notices

ANSWER = Composed("m-3", "answer", "答疑：什么时候转运？", "今天 14:00。\n政策要点：\n1. 统一调度\n2. 当天消杀")
CALL = Composed("m-1", "unit_called", "请3号楼 10–12 层居民现在下楼采样", "请3号楼 10–12 层的居民现在下楼。")
SENT = Composed("m-2", "batch_dispatched", "3号楼物资开始分送", "4月12日 的物资已发往3号楼。")
AGAIN = Composed("m-4", "batch_dispatched", SENT.title, SENT.body)  # a second batch the same day reads the same
MESSAGES = [CALL, SENT, ANSWER, AGAIN]


def test_a_direct_text_is_traced_to_its_message_whatever_its_priority_mark() -> None:
    found, unknown, digest = notices("【紧急】" + CALL.title, CALL.body, MESSAGES)
    assert found == [CALL] and not unknown and not digest
    found, unknown, _ = notices("注意：不是我们发的", "", MESSAGES)
    assert found == [] and unknown


def test_a_digest_is_taken_apart_even_when_a_body_has_numbered_lines() -> None:
    body = "\n".join(f"{n}. {m.title}：{m.body}" for n, m in enumerate([ANSWER, CALL, SENT], start=1))
    found, unknown, digest = notices("【通知汇总】以下 3 条通知合并发送", body, MESSAGES)
    assert found == [ANSWER, CALL, SENT] and not unknown and digest
    titles_only = "1. " + ANSWER.title + "\n2. " + CALL.title + "\n完整内容请看楼栋公告栏"
    found, _, _ = notices("【通知汇总】以下 2 条通知合并发送", titles_only, MESSAGES)
    assert found == [ANSWER, CALL]


def test_two_messages_that_read_the_same_are_both_counted_and_a_third_copy_is_a_double() -> None:
    texts = [(CALL.title, CALL.body), (SENT.title, SENT.body), (SENT.title, SENT.body), (ANSWER.title, ANSWER.body)]
    channel = account("wecom", texts, MESSAGES)
    assert channel.received == Counter({"m-1": 1, "m-2": 1, "m-4": 1, "m-3": 1})
    group = GroupAccount("3", Counter(unit_called=1, batch_dispatched=2, answer=1), MESSAGES, [channel])
    assert group.ok
    doubled = account("email", [*texts, (CALL.title, CALL.body)], MESSAGES)
    assert "missing 0, doubled 1, extra 0" in GroupAccount("3", group.implied, MESSAGES, [doubled]).problems()[0]
    short = account("email", texts[:2], MESSAGES)
    assert "missing 2" in GroupAccount("3", group.implied, MESSAGES, [short]).problems()[0]


def test_events_are_read_with_the_groups_rules() -> None:
    directory = Directory(["1", "2", "3"], {"h3-0101": "3"})
    feed = [
        {"type": "juwei.testing.RoundScheduled.v1", "data": {}},
        {"type": "juwei.testing.UnitCalled.v1", "data": {"building": "c1:3"}},
        {"type": "juwei.testing.TubeResulted.v1", "data": {"tube": "c1:T1"}},  # no rule: nothing to send
        {"type": "juwei.residents.ZoneStatusChanged.v1", "data": {"scope": "building", "building": "c1:3"}},
        {"type": "juwei.residents.ZoneStatusChanged.v1", "data": {"scope": "compound", "building": None}},
        {"type": "juwei.supplies.BatchArrived.v1", "data": {"buildings": [], "households": ["c1:h3-0101"]}},
        {"type": "juwei.supplies.ShiftCalled.v1", "data": {"building": "c1:2", "both": False}},
        {"type": "juwei.supplies.ShiftCalled.v1", "data": {"building": "c1:3", "both": True}},
        *({"type": "juwei.supplies.DeliveryConfirmed.v1", "data": {"building": "c1:3", "households": 5,
                                                                   "delivered": n}} for n in range(1, 6)),
        {"type": "juwei.notify.QuestionsAnswered.v1", "data": {"buildings": ["c1:1", "c1:3"]}},
    ]  # fmt: skip
    wanted = implied(feed, directory)
    assert wanted["1"] == Counter(round_scheduled=1, zone_status_changed=1, answer=1)
    assert wanted["2"] == Counter(round_scheduled=1, zone_status_changed=1)
    assert wanted["3"] == Counter(round_scheduled=1, unit_called=1, zone_status_changed=2, batch_arrived=1,
                                  both_shifts_called=1, delivery_progress=1, answer=1)  # fmt: skip


def test_the_seed_compound_is_the_one_of_the_domain() -> None:
    compound = make_compound("c1")
    assert len(compound.buildings) == 25 and len(compound.people) == 5000
    assert 1900 <= len(compound.households) <= 2200
    assert all(4 <= len(b) <= 5 for b in compound.staff.values()) and len(compound.staff) == 7
    assert {b for theirs in compound.staff.values() for b in theirs} == {b.building for b in compound.buildings}
    for person in compound.people:
        assert id_check_char(person.id_number[:17]) == person.id_number[17]
        assert int(person.id_number[6:10]) == person.birth_year
    assert len({p.id_number for p in compound.people}) == 5000
    elderly = [p for p in compound.people if compound.elderly(p)]
    assert 0.1 < len(elderly) / 5000 < 0.25 and all(p.bedridden <= compound.elderly(p) for p in compound.people)
    assert sum(p.representative for p in compound.people) == len(compound.households)
    assert make_compound("c1").residents_csv() == compound.residents_csv()  # the same seed, the same compound
    small = Size.at(0.16)
    assert (small.buildings, small.residents, small.points) == (4, 800, 2)
    assert cover(["1", "2", "3"], 2) == {"s1": ["1", "2", "3"], "s2": ["3", "1", "2"]}
