"""What an import says about a sheet, in English and in Chinese: each stable code with its wording in both.

The console shows ``reason`` to the person importing; it switches on ``code``. Plain Python, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

Language = Literal["en", "zh"]

# Each field as the committee's sheet names it (the template's headings) and in English.
FIELD_NAMES: dict[str, tuple[str, str]] = {
    "building": ("building", "楼号"),
    "unit": ("unit", "单元"),
    "floor": ("floor", "楼层"),
    "room": ("room", "房号"),
    "household": ("household", "户编号"),
    "resident": ("resident", "人员编号"),
    "name": ("name", "姓名"),
    "phone": ("phone", "手机号"),
    "id_number": ("ID-card number", "身份证号"),
    "birth_year": ("birth year (or date of birth)", "出生日期"),
    "age": ("age", "年龄"),
    "sex": ("sex", "性别"),
    "relationship": ("relationship to the head of household", "与户主关系"),
    "representative": ("representative", "是否户主"),
    "regular_medication": ("regular medication", "长期服药"),
    "mobility_impaired": ("mobility impaired", "行动不便"),
    "bedridden": ("bedridden", "卧床"),
    "pregnant": ("pregnant", "孕妇"),
    "infant": ("infant", "婴幼儿"),
    "note": ("note", "备注"),
    "number": ("building number", "楼号"),
    "floors": ("floors", "层数"),
    "rooms_per_floor": ("rooms per floor", "每层户数"),
    "lifts": ("lifts", "电梯数"),
    "lift_capacity": ("lift capacity", "电梯载客人数"),
}

_SAYINGS: dict[str, tuple[str, str]] = {
    # the file
    "xls-file": (
        "this is an Excel 97-2003 .xls file: save it as .xlsx (File > Save As > Excel Workbook) and import again",
        "这是 Excel 97-2003 的 .xls 文件：请另存为 .xlsx（文件 > 另存为 > Excel 工作簿）后再导入",
    ),
    "not-a-sheet": (
        "this file is not a spreadsheet we can read ({what}): save it as .xlsx or .csv and import again",
        "无法读取此文件（{what}）：请保存为 .xlsx 或 .csv 后再导入",
    ),
    "unreadable-xlsx": (
        "not a readable XLSX workbook ({what}): open it in Excel or WPS, save it as .xlsx and import again",
        "无法读取此 XLSX 工作簿（{what}）：请用 Excel 或 WPS 打开，另存为 .xlsx 后再导入",
    ),
    "not-text": (
        "the file is neither UTF-8 nor GB18030 text, nor an XLSX workbook",
        "文件既不是 UTF-8 或 GB18030 编码的文本，也不是 XLSX 工作簿",
    ),
    "bad-csv": ("line {line}: not valid CSV ({what})", "第 {line} 行：CSV 格式有误（{what}）"),
    "file-too-large": ("the file is larger than {limit} bytes", "文件超过 {limit} 字节"),
    "too-many-rows": ("the file has more than {limit} rows; split it", "文件超过 {limit} 行，请拆分后导入"),
    "too-many-lines": (
        "the sheet goes on past line {limit}: delete the empty rows at its end, or split it",
        "表格超过第 {limit} 行：请删除末尾的空行，或拆分后导入",
    ),
    "empty-file": ("the file is empty", "文件是空的"),
    "no-sheet": ("the workbook has no sheet", "工作簿中没有工作表"),
    "empty-sheet": ("the first sheet is empty", "第一个工作表是空的"),
    "no-rows": ("the sheet has a header but no rows", "表格只有标题行，没有数据"),
    # the headings
    "column-missing": ("column missing from the header: {field}", "标题行缺少此列：{field}"),
    "headings-missing": (
        "the sheet has no column for {fields}; unknown headings: {unknown}. Map them (the `mapping` field) or "
        "rename them",
        "表格缺少这些列：{fields}；无法识别的标题：{unknown}。请在导入时对应这些列（mapping），或修改标题",
    ),
    "mapping-unknown-field": (
        "the mapping names {field!r} for {heading!r}, which the import does not have",
        "对应关系中“{heading}”对应的“{field}”不是可导入的字段",
    ),
    "bad-mapping": (
        "mapping must be a JSON object of sheet heading → field name (or null)",
        "mapping 须为 JSON 对象：表格标题 → 字段名（或 null）",
    ),
    "extra-cells": ("the row has more cells than the header", "此行的单元格比标题行多"),
    # cells
    "required": ("{field} is required", "{field}必须填写"),
    "id-format": ("use 1-64 letters, digits, '_', '.', ':' or '-'", "请使用 1-64 个字母、数字或 _ . : -"),
    "local-id": (
        "use 1-40 letters, digits, '_' or '-' (the id appears in web addresses)",
        "请使用 1-40 个字母、数字、_ 或 -（编号会出现在网址中）",
    ),
    "name-too-long": ("longer than 100 characters", "超过 100 个字符"),
    "phone-invalid": ("a mobile number has 11 digits and starts with 1", "手机号应为以 1 开头的 11 位数字"),
    "id-number-format": (
        "an ID-card number has 17 digits and a check digit (0-9 or X)",
        "身份证号应为 17 位数字加 1 位校验码（0-9 或 X）",
    ),
    "id-number-date": (
        "the ID-card number's birth date (characters 7-14) is not a date",
        "身份证号中的出生日期（第 7-14 位）不是有效日期",
    ),
    "id-number-check": ("the ID-card number's check digit is wrong", "身份证号校验码不正确"),
    "birth-year-required": (
        "give a date of birth, an age or an ID-card number",
        "出生日期、年龄、身份证号至少填写一项",
    ),
    "birth-year-range": ("must be between {low} and {high}", "出生年份应在 {low} 到 {high} 之间"),
    "birth-year-unreadable": (
        "not a year or a date: {value!r} (write 1985 or 1985-03-02)",
        "无法识别的出生日期：“{value}”（请写作 1985 或 1985-03-02）",
    ),
    "age-unreadable": ("not an age in years: {value!r}", "无法识别的年龄：“{value}”"),
    "birth-year-id-mismatch": (
        "does not match the ID-card number's birth year {id_year}",
        "与身份证号中的出生年份 {id_year} 不一致",
    ),
    "flag-unreadable": (
        "use yes/no, true/false, 1/0 or 是/否, not {value!r}",
        "请填写 是/否（或 1/0），而不是“{value}”",
    ),
    "not-a-whole-number": ("not a whole number: {value!r}", "不是整数：“{value}”"),
    "must-be-positive": ("must be 1 or more", "应为 1 或以上"),
    "out-of-range": ("must be between {low} and {high}", "应在 {low} 到 {high} 之间"),
    # flats and buildings
    "floor-not-a-number": ("the floor {value!r} is not a number", "楼层“{value}”不是数字"),
    "room-without-floor": (
        "room {room!r} does not say its floor: write 1502 for floor 15 room 02, or add a floor column",
        "房号“{room}”看不出楼层：请写作 1502（15 层 02 室），或增加“楼层”列",
    ),
    "room-notation": (
        "room {room!r} cannot be read: write 1502, 15-02 or 15层02室 (floor 15, room 02)",
        "无法识别房号“{room}”：请写作 1502、15-02 或 15层02室（15 层 02 室）",
    ),
    "room-floor-mismatch": (
        "room {room!r} is on floor {room_floor}, but the floor column says {floor}",
        "房号“{room}”在 {room_floor} 层，但楼层列写的是 {floor} 层",
    ),
    "floor-below-one": ("room {room!r} has no floor (floor 0)", "房号“{room}”的楼层为 0"),
    "room-below-one": ("room {room!r} has room number 00", "房号“{room}”的室号为 00"),
    "floor-above-top": (
        "building {building} has floors 1-{floors}; room {flat} is on floor {floor}",
        "{building}只有 1-{floors} 层，{flat} 室在 {floor} 层",
    ),
    "room-above-last": (
        "building {building} has rooms 01-{rooms:02d} on each floor; room {flat} is room {room:02d}",
        "{building}每层只有 01-{rooms:02d} 室，{flat} 是第 {room:02d} 室",
    ),
    "building-unknown": (
        "building {building} is not registered: import the buildings first",
        "{building}尚未登记：请先导入楼栋",
    ),
    "building-id-needed": (
        "building {number!r} needs an id column (letters and digits) as its number is not a plain number",
        "楼号“{number}”不是数字，请增加“楼栋编号”列（字母和数字）",
    ),
    "household-id-too-long": (
        "the household id {household} would be longer than 40 characters: give shorter building ids",
        "户编号 {household} 超过 40 个字符：请使用更短的楼栋编号",
    ),
    # the sheet against itself and the register
    "resident-repeated": (
        "resident {resident} is already on line {first}",
        "人员编号 {resident} 已在第 {first} 行出现",
    ),
    "id-number-repeated": ("the same ID-card number is already on line {first}", "相同的身份证号已在第 {first} 行出现"),
    "household-elsewhere": (
        "household {household} is in building {building} floor {floor} room {room} on line {first}",
        "户 {household} 在第 {first} 行登记为 {building} {floor} 层 {room} 室",
    ),
    "representative-repeated": (
        "household {household} already has its representative on line {first}",
        "户 {household} 的户主已在第 {first} 行填写",
    ),
    "building-repeated": ("building {building} is already on line {first}", "{building} 已在第 {first} 行出现"),
    "number-too-long": ("longer than 40 characters", "超过 40 个字符"),
    "lift-capacity-needed": (
        "a building with lifts needs a lift capacity of at least 1",
        "有电梯的楼栋，电梯载客人数至少为 1",
    ),
    "building-registered-differently": (
        "building {building} is registered with {field} {value}; a registered building cannot be changed by import",
        "{building}登记的{field}为 {value}；已登记的楼栋不能通过导入修改",
    ),
    "household-registered-elsewhere": (
        "household {household} is registered in building {building} floor {floor} room {room}; move its residents "
        "instead",
        "户 {household} 已登记在 {building} {floor} 层 {room} 室；请改为迁移其成员",
    ),
    "resident-erased": ("resident {resident} was erased: use a new id", "人员 {resident} 的信息已删除：请使用新的编号"),
    "birth-year-registered": (
        "resident {resident} is registered with birth year {year}; an import cannot change it",
        "人员 {resident} 登记的出生年份为 {year}，导入不能修改",
    ),
    "import-rejected": (
        "{lines} {rows} errors; nothing was imported",
        "{lines} 行有错误，未导入任何数据",
    ),
}


_BARE_BUILDING = re.compile(r"[A-Za-z]{0,2}\d+(?:-\d+)?")


def language_of(accept_language: str | None) -> Language:
    """Chinese when the request's first language it names that we speak is Chinese (zh, zh-CN …), else English."""
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate((accept_language or "").split(",")):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((-weight, order, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


def field_name(name: str, language: Language) -> str:
    english, chinese = FIELD_NAMES.get(name, (name, name))
    return chinese if language == "zh" else english


def say(code: str, language: Language = "en", params: Mapping[str, object] | None = None) -> str:
    """The wording of ``code`` in ``language``, its facts filled in; field names are put in that language."""
    facts = dict(params or {})
    if code == "import-rejected":
        facts["rows"] = "row has" if facts.get("lines") == 1 else "rows have"
    if isinstance(facts.get("field"), str):
        facts["field"] = field_name(str(facts["field"]), language)
    if language == "zh" and _BARE_BUILDING.fullmatch(str(facts.get("building", ""))):
        facts["building"] = f"{facts['building']} 号楼"  # "12" is read as "12 号楼"; "12号楼" stays as written
    english, chinese = _SAYINGS.get(code, (code, code))
    try:
        return (chinese if language == "zh" else english).format(**facts)
    except (KeyError, IndexError, ValueError):
        return english if language == "en" else chinese
