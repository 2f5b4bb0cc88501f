"""Compound-wide work groups (data entry, writing, statistics, publicity, or any the committee names), when each
volunteer can work, and who fits a task by skill and availability. Plain Python, no I/O.

Availability is kept as slots of one day each, ``"mon 08:00-12:00"``, in the compound's own time; a task is a
day and a span of hours on it. Problems are said in Chinese first (a volunteer or the committee reads them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from contracts.residents import VolunteerJoinedWorkGroup, VolunteerLeftWorkGroup, WorkGroupNamed
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound
from services.residents.domain.teams import normalise_skill

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES_ZH = dict(zip(DAYS, ("周一", "周二", "周三", "周四", "周五", "周六", "周日"), strict=True))
MAX_SLOTS = 28  # four a day is plenty; more is a form gone wrong
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_SLOT = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun) (\d\d:\d\d)-(\d\d:\d\d)$")

# --- availability -------------------------------------------------------------------------------------------


def minutes(time: str, what: str = "时间") -> int:
    """``"08:30"`` → 510; ``"24:00"`` (the end of a day) → 1440."""
    if not isinstance(time, str) or not _TIME.match(time.strip()):
        raise Invalid(
            f"{what} {time!r} 不是 HH:MM 格式的时间（如 08:30）(not a time HH:MM)", code="availability-invalid"
        )
    hours, _, mins = time.strip().partition(":")
    return int(hours) * 60 + int(mins)


def day_of(day: str) -> str:
    """A day of the week as the slots name it (``mon``…``sun``, or 1-7 from Monday, or 周一…周日)."""
    text = str(day).strip().lower()
    if text in DAYS:
        return text
    if text.isdigit() and 1 <= int(text) <= 7:
        return DAYS[int(text) - 1]
    for key, name in DAY_NAMES_ZH.items():
        if text in (name, name.replace("周", "星期")):
            return key
    raise Invalid(f"{day!r} 不是星期几（mon…sun 或 周一…周日）(not a day of the week)", code="availability-invalid")


def span(start: str, end: str) -> tuple[int, int]:
    low, high = minutes(start, "开始时间"), minutes(end, "结束时间")
    if high <= low:
        raise Invalid(
            f"结束时间 {end} 须晚于开始时间 {start} (the end must come after the start)", code="availability-invalid"
        )
    return low, high


def slots(entries: Iterable[tuple[Iterable[str], str, str]]) -> list[str]:
    """Availability from (days, start, end) entries, as sorted one-day slots; overlapping slots are refused."""
    made: list[tuple[int, int, int]] = []
    for days, start, end in entries:
        chosen = [day_of(d) for d in days]
        if not chosen:
            raise Invalid("每段可用时间至少要有一天 (each slot names at least one day)", code="availability-invalid")
        low, high = span(start, end)
        made.extend((DAYS.index(d), low, high) for d in dict.fromkeys(chosen))
    if len(made) > MAX_SLOTS:
        raise Invalid(f"可用时间最多 {MAX_SLOTS} 段，收到 {len(made)} 段 (too many slots)", code="availability-invalid")
    made.sort()
    for (day, _, high), (next_day, next_low, _) in pairwise(made):
        if day == next_day and next_low < high:
            raise Invalid(
                f"{DAY_NAMES_ZH[DAYS[day]]}的可用时间有重叠 (slots overlap on {DAYS[day]})", code="availability-invalid"
            )
    return [f"{DAYS[d]} {_clock(low)}-{_clock(high)}" for d, low, high in made]


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_slot(slot: str) -> tuple[str, int, int]:
    found = _SLOT.match(slot)
    if found is None:
        raise Invalid(f"可用时间 {slot!r} 应形如 mon 08:00-12:00", code="availability-invalid")
    return found.group(1), minutes(found.group(2)), minutes(found.group(3))


def cover(availability: Sequence[str], day: str, start: int, end: int) -> float:
    """The share (0..1) of a task's span on ``day`` that the volunteer's slots cover."""
    covered = 0
    for slot in availability:
        slot_day, low, high = parse_slot(slot)
        if slot_day == day:
            covered += max(0, min(high, end) - max(low, start))
    return min(1.0, covered / (end - start))


# --- work groups --------------------------------------------------------------------------------------------


class WorkGroup(Aggregate):
    """A work group of the whole compound (the aggregate's id is ``<compound>:<group>``), named by the committee;
    any serving volunteer of the compound may join it, whatever their building."""

    stream_prefix = "workgroup"

    @classmethod
    def unknown(cls, id: str) -> NotFound:
        compound, _, group = id.partition(":")
        return NotFound(f"工作组 {group} 尚未设立 (no work group {group} in compound {compound})", code="group-unknown")

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name = ""
        self.description = ""
        self.members: dict[str, str] = {}  # volunteer → their building

    def rename(self, name: str, description: str = "") -> None:
        """Name the group (the first time sets it up); the same name and description again records nothing."""
        clean, about = " ".join(name.split()), description.strip()
        if not clean:
            raise Invalid("工作组需要一个名称 (a work group needs a name)", code="invalid-group")
        if self.exists and (clean, about) == (self.name, self.description):
            return
        self.record(WorkGroupNamed(group=self.id, label=clean, description=about))

    def join(self, volunteer: str, building: str | None, *, serving: bool) -> bool:
        """Add a serving volunteer (``building``: where they are enlisted); False when they already belong."""
        if not self.exists:
            raise self.unknown(self.id)
        if building is None:
            raise NotFound(f"志愿者 {_local(volunteer)} 未登记 (volunteer not enlisted)", code="volunteer-unknown")
        if not serving:
            raise Conflict(f"志愿者 {_local(volunteer)} 已退出服务 (volunteer stood down)", code="volunteer-stood-down")
        if volunteer in self.members:
            return False
        self.record(VolunteerJoinedWorkGroup(group=self.id, volunteer=volunteer, building=building))
        return True

    def leave(self, volunteer: str, reason: str = "") -> None:
        if volunteer not in self.members:
            raise Conflict(
                f"志愿者 {_local(volunteer)} 不在工作组 {_local(self.id)} 中 (not a member)", code="not-a-member"
            )
        self.record(
            VolunteerLeftWorkGroup(
                group=self.id, volunteer=volunteer, building=self.members[volunteer], reason=reason.strip()
            )
        )

    def on_WorkGroupNamed(self, event: WorkGroupNamed) -> None:
        self.name, self.description = event.label, event.description

    def on_VolunteerJoinedWorkGroup(self, event: VolunteerJoinedWorkGroup) -> None:
        self.members[event.volunteer] = event.building

    def on_VolunteerLeftWorkGroup(self, event: VolunteerLeftWorkGroup) -> None:
        self.members.pop(event.volunteer, None)


def _local(id: str) -> str:
    return id.partition(":")[2] or id


# --- who fits a task ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    volunteer: str
    building: str
    skills: Sequence[str] = ()
    groups: Sequence[str] = ()
    availability: Sequence[str] = ()


@dataclass(frozen=True)
class Fit:
    volunteer: str
    building: str
    skill_match: int  # 2: the skill itself or a member of the group; 1: a skill that contains the words asked
    availability: float | None  # share of the task's hours covered; None: the volunteer has not said
    reasons: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.skill_match + (0.5 if self.availability is None else 2 * self.availability)


def suggest(
    candidates: Iterable[Candidate],
    *,
    skill: str | None = None,
    group: str | None = None,
    day: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: int = 10,
) -> list[Fit]:
    """Who fits a task: volunteers with the skill or in the group, free on the day (those whose slots miss the
    task entirely are left out; those who never said when they are free come after those who are),
    best first: skill match plus the share of the task's hours they are free, ties by volunteer id."""
    if not skill and not group:
        raise Invalid("请说明任务需要的技能或工作组 (name a skill or a work group)", code="task-invalid")
    wanted = normalise_skill(skill) if skill else None
    window: tuple[str, int, int] | None = None
    if day is not None or start is not None or end is not None:
        if day is None or start is None or end is None:
            raise Invalid("任务时间须同时给出星期、开始和结束时间 (day, start and end together)", code="task-invalid")
        window = (day_of(day), *span(start, end))
    found: list[Fit] = []
    for person in candidates:
        reasons: list[str] = []
        match = 0
        if group is not None and group in person.groups:
            match, reasons = 2, [f"group:{_local(group)}"]
        if wanted is not None:
            mine = [normalise_skill(s) for s in person.skills]
            if wanted in mine:
                match = 2
                reasons.append(f"skill:{wanted}")
            elif any(wanted in s for s in mine):
                match = max(match, 1)
                reasons.append(f"skill~{next(s for s in mine if wanted in s)}")
        if match == 0:
            continue
        free: float | None = None
        if window is not None and person.availability:
            free = cover(person.availability, *window)
            if free == 0:
                continue
        found.append(Fit(person.volunteer, person.building, match, free, reasons))
    found.sort(key=lambda fit: (-fit.score, -fit.skill_match, fit.volunteer))
    return found[:limit]
