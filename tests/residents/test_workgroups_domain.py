"""Work groups, availability and who fits a task: the rules as plain Python."""

from __future__ import annotations

import pytest

from juwei.aggregate import Conflict, Invalid, NotFound
from services.residents.domain import Volunteer
from services.residents.domain.workgroups import Candidate, WorkGroup, cover, day_of, slots, suggest


def test_availability_is_kept_as_sorted_one_day_slots() -> None:
    made = slots([(["wed", "mon"], "08:00", "12:00"), (["周一"], "14:00", "24:00"), (["7"], "09:30", "10:00")])
    assert made == ["mon 08:00-12:00", "mon 14:00-24:00", "wed 08:00-12:00", "sun 09:30-10:00"]
    assert day_of("星期三") == "wed" and day_of("1") == "mon"


@pytest.mark.parametrize(
    ("entries", "says"),
    [
        ([(["mon"], "8:00", "12:00")], "不是 HH:MM"),
        ([(["mon"], "08:00", "25:00")], "不是 HH:MM"),
        ([(["mon"], "12:00", "08:00")], "须晚于"),
        ([(["moonday"], "08:00", "12:00")], "不是星期几"),
        ([([], "08:00", "12:00")], "至少要有一天"),
        ([(["mon"], "08:00", "12:00"), (["mon"], "11:00", "13:00")], "重叠"),
        ([(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], f"{h:02d}:00", f"{h:02d}:30") for h in range(5)], "最多"),
    ],
)
def test_malformed_availability_is_refused_in_chinese(entries: list, says: str) -> None:
    with pytest.raises(Invalid) as refused:
        slots(entries)
    assert refused.value.code == "availability-invalid" and says in str(refused.value)


def test_a_volunteer_sets_availability_once_and_a_stood_down_one_cannot() -> None:
    volunteer = Volunteer("c1:v1")
    volunteer.enlist("c1:3", ["writing"])
    assert volunteer.set_availability(["mon 08:00-12:00"]) is True
    assert volunteer.set_availability(["mon 08:00-12:00"]) is False  # nothing new, nothing recorded
    assert [type(e).__name__ for e in volunteer.pending()] == ["VolunteerEnlisted", "VolunteerAvailabilitySet"]
    volunteer.stand_down()
    with pytest.raises(NotFound):
        volunteer.set_availability([])
    with pytest.raises(NotFound):
        Volunteer("c1:v9").set_availability([])


def test_a_work_group_is_named_then_joined_by_serving_volunteers() -> None:
    group = WorkGroup("c1:data-entry")
    with pytest.raises(NotFound) as unknown:
        group.join("c1:v1", "c1:3", serving=True)
    assert unknown.value.code == "group-unknown" and "尚未设立" in str(unknown.value)
    group.rename("数据录入", "spreadsheets")
    group.rename("数据录入", "spreadsheets")  # the same again records nothing
    assert group.join("c1:v1", "c1:3", serving=True) is True
    assert group.join("c1:v1", "c1:3", serving=True) is False
    with pytest.raises(NotFound) as stranger:
        group.join("c1:v9", None, serving=False)
    assert stranger.value.code == "volunteer-unknown" and "未登记" in str(stranger.value)
    with pytest.raises(Conflict) as retired:
        group.join("c1:v2", "c1:4", serving=False)
    assert retired.value.code == "volunteer-stood-down"
    group.leave("c1:v1", "back at work")
    with pytest.raises(Conflict):
        group.leave("c1:v1")
    with pytest.raises(Invalid):
        WorkGroup("c1:x").rename("  ")
    kinds = [type(e).__name__ for e in group.pending()]
    assert kinds == ["WorkGroupNamed", "VolunteerJoinedWorkGroup", "VolunteerLeftWorkGroup"]


def test_cover_is_the_share_of_the_task_hours_free() -> None:
    free = ["mon 08:00-10:00", "mon 11:00-12:00"]
    assert cover(free, "mon", 8 * 60, 12 * 60) == 0.75
    assert cover(free, "tue", 8 * 60, 12 * 60) == 0


def test_suggestions_rank_by_skill_match_then_free_hours() -> None:
    people = [
        Candidate("a", "1", ["spreadsheets"], [], ["mon 08:00-12:00"]),  # skill, free all morning
        Candidate("b", "2", ["spreadsheets"], [], ["mon 08:00-10:00"]),  # skill, half free
        Candidate("c", "3", ["spreadsheets"], [], []),  # skill, never said
        Candidate("d", "4", ["spreadsheets"], [], ["tue 08:00-12:00"]),  # skill, not free that day: left out
        Candidate("e", "5", ["excel spreadsheets"], [], ["mon 08:00-12:00"]),  # near skill, free
        Candidate("f", "6", ["writing"], ["data-entry"], ["mon 08:00-12:00"]),  # in the group, free
        Candidate("g", "7", ["publicity"], [], ["mon 08:00-12:00"]),  # neither: left out
    ]
    ranked = suggest(people, skill="Spreadsheets", group="data-entry", day="mon", start="08:00", end="12:00")
    assert [f.volunteer for f in ranked] == ["a", "f", "b", "e", "c"]
    assert ranked[0].availability == 1.0 and ranked[2].availability == 0.5 and ranked[4].availability is None
    assert ranked[1].reasons == ["group:data-entry"] and ranked[3].skill_match == 1
    assert [f.volunteer for f in suggest(people, skill="spreadsheets", limit=2)] == ["a", "b"]


@pytest.mark.parametrize(
    "task",
    [
        {},
        {"skill": "writing", "day": "mon"},
        {"skill": "writing", "day": "mon", "start": "12:00", "end": "08:00"},
        {"skill": "writing", "day": "someday", "start": "08:00", "end": "12:00"},
    ],
)
def test_a_task_badly_described_is_refused(task: dict) -> None:
    with pytest.raises(Invalid):
        suggest([Candidate("a", "1", ["writing"])], **task)
