"""How committees write a flat, a building, a birth date and a yes: plain Python, no I/O.

A flat is written 1502 (floor 15, room 02), 302, "15-02", "15层02室", "1502室", or as a room beside a floor
column. A building as "12", "12号楼", "12栋", "十二号楼" or its register id. Each reader answers the value or a
``Refusal`` (a stable code and the facts to word it with).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Refusal:
    """Why a cell cannot be read: ``code`` is stable, ``params`` fill the wording in either language."""

    code: str
    params: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, code: str, **params: object) -> Refusal:
        return cls(code, tuple(params.items()))


def plain(text: str) -> str:
    """Full-width characters as ordinary ones, without any whitespace."""
    if not text.isascii():  # NFKC changes no ASCII text: most cells skip it
        text = unicodedata.normalize("NFKC", text)
    return "".join(text.split())


_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def chinese_number(text: str) -> int | None:
    """一 … 九十九 as a number (building and unit numbers are written so), else None."""
    if not text or any(c not in _DIGITS and c != "十" for c in text):
        return None
    if "十" not in text:
        return _DIGITS[text] if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    if len(tens) > 1 or len(ones) > 1:
        return None
    return (_DIGITS[tens] if tens else 1) * 10 + (_DIGITS[ones] if ones else 0)


_BUILDING_WORDS = re.compile(r"(号楼|号楼栋|栋|幢|号|楼|座|单元)$")


def building_label(text: str) -> str:
    """The part of "12号楼" / "第12栋" / "十二幢" / "B12" that names the building, in one form ("12", "b12")."""
    label = plain(text).lower()
    label = label.removeprefix("第")
    while (shorter := _BUILDING_WORDS.sub("", label)) != label and shorter:
        label = shorter
    number = chinese_number(label)
    return str(number) if number is not None else label.lstrip("0") or label


_FLOOR_ROOM = re.compile(r"^(\d{1,3})(?:层|楼|f|-|—|–|_|/|\.|·)(\d{1,3})$")
_ROOM_WORDS = re.compile(r"(室|号|房|户)$")
_FLOOR_WORDS = re.compile(r"(层|楼|f)$")
_AGE_WORDS = re.compile(r"(周岁|岁)$")


def read_floor(text: str) -> int | Refusal:
    value = _FLOOR_WORDS.sub("", plain(text).lower().removeprefix("第"))
    if not value.isdigit():
        return Refusal.of("floor-not-a-number", value=text.strip())
    return int(value)


def read_flat(room: str, floor: str | None = None) -> tuple[int, int] | Refusal:
    """Floor and room of a flat from its room cell and, when the sheet has one, its floor cell.

    1502 → (15, 2); 302 → (3, 2); "15-02", "15层02室", "1502室" too. A room of one or two digits is read with
    the floor column; three or more digits carry the floor in front of the last two.
    """
    written = room.strip()
    value = _ROOM_WORDS.sub("", plain(room).lower())
    floor_given: int | None = None
    if floor is not None and floor.strip():
        read = read_floor(floor)
        if isinstance(read, Refusal):
            return read
        floor_given = read
    if match := _FLOOR_ROOM.match(value):
        at, number = int(match[1]), int(match[2])
    elif value.isdigit():
        if len(value) <= 2:
            if floor_given is None:
                return Refusal.of("room-without-floor", room=written)
            at, number = floor_given, int(value)
        else:
            at, number = int(value[:-2]), int(value[-2:])
    else:
        return Refusal.of("room-notation", room=written)
    if floor_given is not None and at != floor_given:
        return Refusal.of("room-floor-mismatch", room=written, floor=floor_given, room_floor=at)
    if at < 1:
        return Refusal.of("floor-below-one", room=written)
    if number < 1:
        return Refusal.of("room-below-one", room=written)
    return at, number


def flat_name(floor: int, room: int) -> str:
    """The flat as the committee writes it: floor 15 room 2 → 1502."""
    return f"{floor}{room:02d}"


_YEAR = re.compile(r"^(\d{4})(?:$|[-/.年]|\d{2}$|\d{4}$|t)")


def read_birth_year(text: str) -> int | Refusal:
    """1985, 1985-03-02, 1985/3/2, 1985年3月, 198503, 19850302 or 1985-03-02T00:00:00 → 1985."""
    value = plain(text).lower()
    if match := _YEAR.match(value):
        return int(match[1])
    return Refusal.of("birth-year-unreadable", value=text.strip())


def read_age(text: str, today: date) -> int | Refusal:
    """A birth year from an age in years ("70", "70岁"), as committees count it: this year minus the age."""
    value = _AGE_WORDS.sub("", plain(text))
    if not value.isdigit() or int(value) > 120:
        return Refusal.of("age-unreadable", value=text.strip())
    return today.year - int(value)


YES = frozenset({"yes", "y", "true", "1", "是", "有", "√", "✓", "✔", "对"})
NO = frozenset({"no", "n", "false", "0", "否", "无", "不是", "没有", "-", "/", "×"})
_FLAGS = {word: True for word in YES} | {word: False for word in NO} | {"": False}
# What "与户主关系" says of the household's representative (户主) themself.
SELF = frozenset({"本人", "户主", "自己", "本身", "户主本人"})


def read_flag(text: str) -> bool | None:
    """Yes, no, or None when the cell says neither; an empty cell is no (sheets leave flags blank)."""
    value = text.lower()
    if value in _FLAGS:
        return _FLAGS[value]
    value = plain(value)
    if not value:
        return False
    if value in YES:
        return True
    if value in NO:
        return False
    return None
