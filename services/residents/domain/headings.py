"""Which field each heading of a committee's sheet names, as committees really write them: plain Python, no I/O.

A heading is compared after NFKC (full-width letters, digits and brackets become ordinary ones), without
whitespace, case, ``_``/``-``, a leading or trailing ``*`` and a trailing remark in brackets ("手机号（必填）",
"出生日期(yyyy-mm-dd)"). A mapping chosen by the person importing overrides or extends what is recognised.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["buildings", "residents"]

# Fields a residents sheet may fill; ``age`` and ``relationship`` are read into ``birth_year`` and
# ``representative``, ``unit`` into the building, and ``sex`` and ``note`` are recognised but not kept.
RESIDENT_FIELDS = (
    "building",
    "unit",
    "floor",
    "room",
    "household",
    "resident",
    "name",
    "phone",
    "id_number",
    "birth_year",
    "age",
    "sex",
    "relationship",
    "representative",
    "regular_medication",
    "mobility_impaired",
    "bedridden",
    "pregnant",
    "infant",
    "note",
)
BUILDING_FIELDS = ("building", "number", "floors", "rooms_per_floor", "lifts", "lift_capacity")
NOT_KEPT = frozenset({"sex", "note"})

# Each field with the headings committees use for it (English ones are the field names themselves).
_RESIDENT_HEADINGS: dict[str, tuple[str, ...]] = {
    "building": ("楼号", "楼栋", "楼栋号", "幢", "幢号", "栋", "栋号", "楼", "楼宇", "楼号/栋", "所在楼栋"),
    "unit": ("单元", "单元号"),
    "floor": ("层", "楼层", "层号", "所在楼层"),
    "room": ("房号", "门牌号", "室", "室号", "房间号", "房屋号", "门牌", "房间"),
    "household": ("户编号", "家庭编号"),
    "resident": ("人员编号", "居民编号"),
    "name": ("姓名", "名字", "居民姓名", "人员姓名"),
    "phone": ("手机号", "手机", "手机号码", "联系电话", "电话", "电话号码", "联系方式"),
    "id_number": ("身份证号", "身份证", "身份证号码", "证件号码", "证件号", "公民身份号码"),
    "birth_year": ("出生日期", "出生年月", "出生年份", "生日", "出生年", "birth", "birthday", "dateofbirth"),
    "age": ("年龄",),
    "sex": ("性别", "gender"),
    "relationship": ("与户主关系", "关系"),
    "representative": ("是否户主", "户主", "户代表", "是否户代表", "家庭代表", "群代表"),
    "regular_medication": ("长期服药", "是否长期服药", "慢病用药", "需长期用药", "常用药"),
    "mobility_impaired": ("行动不便", "是否行动不便"),
    "bedridden": ("卧床", "长期卧床", "是否卧床"),
    "pregnant": ("孕妇", "是否孕妇", "怀孕"),
    "infant": ("婴幼儿", "婴儿", "是否婴幼儿"),
    "note": ("备注", "说明", "remark", "remarks", "notes"),
}
_BUILDING_HEADINGS: dict[str, tuple[str, ...]] = {
    "building": ("楼栋编号", "编号", "id"),
    "number": ("楼号", "楼栋", "楼栋号", "幢", "幢号", "栋", "栋号", "楼栋名称", "名称"),
    "floors": ("层数", "总层数", "楼层数", "楼层"),
    "rooms_per_floor": ("每层户数", "每层房间数", "每层户", "户数/层"),
    "lifts": ("电梯", "电梯数", "电梯数量", "电梯部数"),
    "lift_capacity": ("电梯载客", "电梯载客人数", "电梯限乘", "电梯限乘人数", "每梯人数", "电梯容量"),
}
_REMARK = re.compile(r"[(\[【<《][^()\[\]【】<>《》]*[)\]】>》]$")
_NOISE = re.compile(r"[\s_\-*:：※#]")


def heading_key(heading: str) -> str:
    """The form a heading is compared in: "  手机号（必填）*" and "手机号" are the same heading."""
    text = unicodedata.normalize("NFKC", heading).strip().lower()
    while True:
        text = text.strip().strip("*※:：")
        stripped = _REMARK.sub("", text)
        if stripped == text or not stripped.strip():
            break
        text = stripped
    return _NOISE.sub("", text)


def _index(headings: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    index: dict[str, str] = {}
    for name, words in headings.items():
        for word in (name, *words):
            index[heading_key(word)] = name
    return index


_INDEX: dict[str, dict[str, str]] = {"residents": _index(_RESIDENT_HEADINGS), "buildings": _index(_BUILDING_HEADINGS)}


def fields_of(kind: Kind) -> tuple[str, ...]:
    return RESIDENT_FIELDS if kind == "residents" else BUILDING_FIELDS


def recognise(heading: str, kind: Kind) -> str | None:
    """The field a heading names, or None when it is not one committees use."""
    return _INDEX[kind].get(heading_key(heading))


def chinese_headings(kind: Kind) -> dict[str, str]:
    """Each field's first Chinese heading (the template's)."""
    table = _RESIDENT_HEADINGS if kind == "residents" else _BUILDING_HEADINGS
    return {name: words[0] for name, words in table.items()}


# Required fields: each entry is satisfied by any one of its fields.
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "residents": (("building",), ("room",), ("name",), ("birth_year", "age", "id_number")),
    "buildings": (("number",), ("floors",), ("rooms_per_floor",), ("lifts",), ("lift_capacity",)),
}


def required_missing(kind: Kind, present: Iterable[str]) -> list[str]:
    """The required fields no heading fills (of "date of birth, age or ID-card number": the first)."""
    found = set(present)
    return [group[0] for group in REQUIRED[kind] if not any(name in found for name in group)]


@dataclass(frozen=True)
class Heading:
    """One heading of the sheet: its position (1 = column A), its text, and the field it fills (or None)."""

    position: int
    text: str
    field: str | None
    chosen: bool = False  # named by the person's mapping rather than recognised


@dataclass(frozen=True)
class HeadingMap:
    """How a sheet's headings fill the import's fields."""

    kind: Kind
    headings: list[Heading]
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    # Fields named by two headings: the first one is read.
    repeated: list[tuple[str, list[str]]] = field(default_factory=list)
    bad_mapping: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fields(self) -> dict[int, str]:
        """Column index (0-based) → field, the first heading of each field only."""
        taken: dict[int, str] = {}
        seen: set[str] = set()
        for heading in self.headings:
            if heading.field and heading.field not in seen:
                seen.add(heading.field)
                taken[heading.position - 1] = heading.field
        return taken

    @property
    def present(self) -> frozenset[str]:
        return frozenset(self.fields.values())

    @property
    def ready(self) -> bool:
        return not self.missing and not self.bad_mapping


def map_headings(headings: Sequence[str], kind: Kind, mapping: Mapping[str, str | None] | None = None) -> HeadingMap:
    """Recognise each heading, then apply ``mapping`` (sheet heading → field, or None to skip a column).

    A mapping key is matched against the headings as written, then in their compared form; a field name that
    the import does not have is reported in ``bad_mapping``.
    """
    known = fields_of(kind)
    chosen: dict[str, str | None] = {}
    bad: list[tuple[str, str]] = []
    for key, name in (mapping or {}).items():
        if name is not None and name not in known:
            bad.append((key, str(name)))
            continue
        chosen[key] = name
        chosen.setdefault(heading_key(key), name)
    out: list[Heading] = []
    unknown: list[str] = []
    for position, text in enumerate(headings, start=1):
        if not text.strip():
            continue
        if text in chosen or heading_key(text) in chosen:
            name = chosen[text] if text in chosen else chosen[heading_key(text)]
            out.append(Heading(position, text, name, chosen=True))
            continue
        name = recognise(text, kind)
        out.append(Heading(position, text, name))
        if name is None:
            unknown.append(text)
    by_field: dict[str, list[str]] = {}
    for heading in out:
        if heading.field:
            by_field.setdefault(heading.field, []).append(heading.text)
    missing = required_missing(kind, by_field)
    repeated = [(name, texts) for name, texts in by_field.items() if len(texts) > 1]
    return HeadingMap(kind, out, missing, unknown, repeated, bad)
