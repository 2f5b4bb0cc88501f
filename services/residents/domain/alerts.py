"""A zone change as a public alert (OASIS CAP 1.2): how urgent it is, when it ends, and what it says in Chinese
and in English. Plain Python, no I/O: ``services/residents/api/cap.py`` writes it as XML.

Only what the building board already shows goes in: the zone, the day of the last case and the day count.
Never who, and never the free text of an authority decision (staff write it; it could name someone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo

# A ZoneStatusChanged event's id is the alert's: a re-read, a replay or a restore gives the same alert.
IDENTIFIER_PREFIX = "zone-"
IDENTIFIER_PATTERN = r"^zone-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
LANGUAGES = ("zh-CN", "en")
# CAP 1.2, 3.2.1: sender, identifier and references may hold no spaces, commas, '<' or '&'.
_RESTRICTED = re.compile(r"[\s,<&]")


def identifier_of(event_id: str) -> str:
    return f"{IDENTIFIER_PREFIX}{event_id}"


class Sender:
    """Who the alerts say sent them: ``JUWEI_CAP_SENDER`` (set by the app's wiring), ``{compound}`` filled in."""

    template = "juwei:residents:{compound}"

    @classmethod
    def check(cls, template: str) -> str:
        """The template, if every sender it makes is one CAP allows; a deployment's mistake stops the start."""
        if not template.strip() or _RESTRICTED.search(template.replace("{compound}", "c")):
            raise ValueError(f"JUWEI_CAP_SENDER may hold no spaces, commas, '<' or '&': {template!r}")
        return template

    @classmethod
    def of(cls, compound: str) -> str:
        return cls.template.replace("{compound}", compound)


@dataclass(frozen=True)
class Grading:
    """CAP's urgency, severity and certainty of a zone, and what residents are asked to do."""

    urgency: str
    severity: str
    certainty: str
    response: str


# Sealed: stay at home now. Controlled: stay inside the compound. Precaution: the least of the three.
# Certainty is "Observed" for all: a zone is decided from confirmed cases or by the authorities, not forecast.
GRADING = {
    "sealed": Grading("Immediate", "Severe", "Observed", "Shelter"),
    "controlled": Grading("Expected", "Moderate", "Observed", "Avoid"),
    "precaution": Grading("Future", "Minor", "Observed", "Monitor"),
}

ZONE_NAMES = {
    "sealed": ("封控区", "sealed zone"),
    "controlled": ("管控区", "controlled zone"),
    "precaution": ("防范区", "precaution zone"),
}

INSTRUCTIONS = {
    "sealed": (
        "封控区：足不出户，上门服务。请留在家中，生活物资由楼栋物流组送到门口；核酸检测请按通知分楼层下楼，不要聚集。",
        "Sealed zone: stay at home. The building's logistics group brings supplies to your door; come down for "
        "testing only when your floor is called, and do not crowd.",
    ),
    "controlled": (
        "管控区：人不出小区，严禁聚集。请按通知参加核酸检测。",
        "Controlled zone: do not leave the compound and do not gather. Take part in testing when called.",
    ),
    "precaution": (
        "防范区：强化社会面管控，严格限制聚集。外出请做好个人防护。",
        "Precaution zone: you may go out within the area; avoid gatherings and protect yourself when you go out.",
    ),
}

_BARE_NUMBER = re.compile(r"[A-Za-z]{0,2}\d+(?:-\d+)?")


@dataclass(frozen=True)
class ZoneAlert:
    """One change of a building's or the compound's zone, as the alert that announces it."""

    identifier: str
    compound: str
    building: str | None  # local id; None: the compound's own zone
    building_number: str | None  # as registered ("12"), for the area's description
    sent: datetime  # when the change was recorded (aware)
    zone: str
    previous: str
    last_case_on: date | None
    days_since_last_case: int | None
    next_zone: str | None
    next_change_on: date | None
    decided_by_authority: bool
    # The alert of the same building (or of the compound) this one supersedes: its identifier and sent time.
    supersedes: tuple[str, datetime] | None

    @property
    def msg_type(self) -> str:
        return "Update" if self.supersedes else "Alert"

    def expires(self, where: tzinfo) -> datetime | None:
        """The start of the day the zone rules move it on (7 days after the last case to controlled, 14 to
        precaution); None where the zone has no end of its own (precaution, or an authority decision)."""
        if self.decided_by_authority or self.next_change_on is None:
            return None
        return datetime.combine(self.next_change_on, time(0), where)

    def grading(self) -> Grading:
        return GRADING[self.zone]


@dataclass(frozen=True)
class Wording:
    """One ``info`` block's words, in one language."""

    language: str
    event: str
    sender_name: str
    headline: str
    description: str
    instruction: str
    area: str


def _building_zh(number: str) -> str:
    return f"{number}号楼" if _BARE_NUMBER.fullmatch(number) else number


def wording(alert: ZoneAlert, language: str) -> Wording:
    """What the alert says in ``language`` (``zh-CN`` or ``en``), from its facts alone."""
    zh_zone, en_zone = ZONE_NAMES[alert.zone]
    zh_previous, en_previous = ZONE_NAMES[alert.previous]
    zh_next, en_next = ZONE_NAMES[alert.next_zone] if alert.next_zone else ("", "")
    number = alert.building_number or alert.building
    last = alert.last_case_on.isoformat() if alert.last_case_on else ""
    days = alert.days_since_last_case
    following = alert.next_change_on.isoformat() if alert.next_change_on else ""
    zh_instruction, en_instruction = INSTRUCTIONS[alert.zone]
    if language == "zh-CN":
        place = f"{alert.compound} 小区" + (f" {_building_zh(number)}" if number else "")
        area = place if number else f"{place}（全部楼栋）"
        if alert.decided_by_authority:
            said = f"根据上级部门决定，{place}列为{zh_zone}，直至出现新增确诊病例。"
        elif alert.last_case_on is None:
            said = f"{place}未发现确诊病例，列为{zh_zone}。"
        elif alert.zone == "sealed":
            said = f"{place}于 {last} 有确诊病例，列为{zh_zone}。"
        else:
            said = f"{place}自 {last} 起已连续 {days} 天无新增确诊病例，列为{zh_zone}。"
        if following and zh_next:
            said += f"如无新增确诊病例，将于 {following} 转为{zh_next}。"
        if alert.previous != alert.zone:
            said += f"（此前为{zh_previous}。）"
        return Wording(
            "zh-CN", zh_zone, f"{alert.compound} 小区居委会", f"{place}为{zh_zone}", said, zh_instruction, area
        )
    place = (f"building {number}, compound " if number else "compound ") + alert.compound
    opening = place[:1].upper() + place[1:]  # the same place at the start of a sentence
    area = opening if number else f"{opening} (all buildings)"
    if alert.decided_by_authority:
        said = f"{opening} is a {en_zone} by decision of the authorities, until the next confirmed case."
    elif alert.last_case_on is None:
        said = f"No case has been confirmed in {place}: it is a {en_zone}."
    elif alert.zone == "sealed":
        said = f"A case was confirmed on {last}: {place} is a {en_zone}."
    else:
        said = f"No new case confirmed for {days} days since {last}: {place} is a {en_zone}."
    if following and en_next:
        said += f" If no new case is confirmed, it becomes a {en_next} on {following}."
    if alert.previous != alert.zone:
        said += f" (It was a {en_previous}.)"
    return Wording(
        "en",
        en_zone[:1].upper() + en_zone[1:],
        f"Residents' committee of compound {alert.compound}",
        f"{opening}: {en_zone}",
        said,
        en_instruction,
        area,
    )
