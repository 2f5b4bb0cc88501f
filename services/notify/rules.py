"""From events to messages: which building groups hear of an event, and in which words.

A rule reads a consumed event and returns notices: a template, the buildings it concerns and a priority.
A rule copies into the template's parameters only non-identifying facts it names one by one (a building's
number, a zone, a date, a count); ids, free text written elsewhere (a reason, a note) and anything that
could name a person never reach a template. Types without a rule produce no message. Templates are
jinja2 files under ``templates/<language>/``: the first line is the title, the rest the body.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from contracts.residents import ZoneStatusChanged
from contracts.supplies import (
    BatchArrived,
    BatchDispatched,
    BuildingDelivered,
    DeliveryConfirmed,
    DonationAccepted,
    DonationAllocated,
    DonationRefused,
    ShiftCalled,
)
from contracts.testing import (
    LINK_SECRET,
    BuildingTestingProgress,
    CaseConfirmed,
    CaseTransferred,
    DisinfectionRecorded,
    RoundScheduled,
    TransferScheduled,
    UnitCalled,
    disinfection_photo_path,
)
from juwei.events import DomainEvent, Envelope
from juwei.settings import settings
from juwei.signed_links import signed_query
from services.notify.domain import Texts, redact

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("zh", "en")

ZONE_NAMES = {
    "zh": {"sealed": "封控区", "controlled": "管控区", "precaution": "防范区"},
    "en": {"sealed": "sealed zone", "controlled": "controlled zone", "precaution": "precaution zone"},
}
# What each zone means for residents (Shanghai, April 2022).
ZONE_RULES = {
    "zh": {
        "sealed": "封控区：足不出户，服务上门。",
        "controlled": "管控区：人不出小区，严禁聚集。",
        "precaution": "防范区：强化社会面管控，严格限制聚集。",
    },
    "en": {
        "sealed": "Sealed zone: stay at home; services come to your door.",
        "controlled": "Controlled zone: stay inside the compound; no gatherings.",
        "precaution": "Precaution zone: you may move about, but gatherings stay restricted.",
    },
}


class Directory(Protocol):
    """What a rule may ask about the compound: its building groups and their numbers."""

    def label(self, building: str) -> str: ...

    def buildings_of(self, compound: str) -> list[str]: ...

    def buildings_of_households(self, households: list[str]) -> list[str]: ...

    def point_name(self, point: str) -> str | None: ...

    def has_lifts(self, building: str) -> bool: ...


class Localized(dict):
    """A parameter whose words differ by language: ``Localized(zh=..., en=...)``."""


def place_text(text: str | None, limit: int = 30) -> str:
    """A place named by staff (a sampling point, an area): one short line, phone and ID numbers masked."""
    return redact(" ".join(str(text or "").split()))[:limit]


def moment(value: datetime, timezone: str = "Asia/Shanghai") -> Localized:
    local = value.astimezone(ZoneInfo(timezone))
    return Localized(zh=f"{local.month}月{local.day}日 {local:%H:%M}", en=f"{local:%d %b %H:%M}")


def day(value: date) -> Localized:
    return Localized(zh=f"{value.month}月{value.day}日", en=f"{value:%d %b %Y}")


@dataclass(frozen=True)
class Notice:
    """A message a rule wants sent: ``params`` are the only values its template sees."""

    template: str
    buildings: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    priority: str = "normal"


Rule = Callable[[Any, Envelope, Directory], list[Notice]]
# Which rule reads each event, by its class: an older version is read as the current one (upcast).
RULES: dict[type[DomainEvent], Rule] = {}


def rule(*classes: type[DomainEvent]) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for cls in classes:
            RULES[cls] = fn
        return fn

    return register


def notices_for(event: DomainEvent, envelope: Envelope, directory: Directory) -> list[Notice]:
    fn = RULES.get(type(event))
    return fn(event, envelope, directory) if fn is not None else []


def local_date(moment: datetime, timezone: str = "Asia/Shanghai") -> date:
    return moment.astimezone(ZoneInfo(timezone)).date()


# --- residents ------------------------------------------------------------------------------------------


@rule(ZoneStatusChanged)
def zone_status_changed(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    """A building's zone changed (that group hears it), or the compound's (every group hears it)."""
    if event.scope == "building" and event.building:
        buildings, place = [event.building], directory.label(event.building)
    else:
        buildings, place = directory.buildings_of(envelope.compound), None
    if not buildings:
        return []
    params = {
        "place": place,
        "zone": event.zone,
        "previous": event.previous,
        "on": day(local_date(envelope.time)),
        "days": event.days_since_last_case,
        "next_zone": event.next_zone,
        "next_change_on": day(event.next_change_on) if event.next_change_on else None,
        "by_authority": event.decided_by_authority,
    }
    priority = "important" if event.zone == "sealed" else "normal"
    return [Notice("zone_status_changed", buildings, params, priority)]


# --- testing --------------------------------------------------------------------------------------------


@rule(CaseConfirmed)
def case_confirmed(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    """ "One new positive case in building 12" — never who, never which floor."""
    params = {"place": directory.label(event.building), "on": day(event.confirmed_on)}
    return [Notice("case_confirmed", [event.building], params, "important")]


@rule(BuildingTestingProgress)
def testing_progress(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    """ "Building 7: 150 of 200 tested" at a quarter, half, three quarters and everyone: counts only."""
    params = {
        "place": directory.label(event.building),
        "tested": int(event.tested),
        "residents": int(event.residents),
        "remaining": max(0, int(event.residents) - int(event.tested)),
    }
    return [Notice("testing_progress", [event.building], params, "normal")]


TEST_KINDS = {
    "pcr": Localized(zh="全员核酸", en="PCR testing"),
    "antigen": Localized(zh="抗原自测", en="Antigen self-tests"),
}
CALL_MODES = {
    "building": Localized(zh="按楼栋分批下楼", en="building by building"),
    "half_building": Localized(zh="按半个楼栋分批下楼", en="half a building at a time"),
    "floor": Localized(zh="按楼层分批下楼", en="floor by floor"),
    "auto": Localized(zh="按楼层分批下楼", en="floor by floor"),
}


@rule(RoundScheduled)
def round_scheduled(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    """A testing round for the whole compound: every group hears when and how (floor by floor, not a crowd)."""
    buildings = directory.buildings_of(envelope.compound)
    if not buildings:
        return []
    params = {
        "on": day(event.on),
        "start": event.starts_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M"),
        "kind_name": TEST_KINDS.get(event.kind, TEST_KINDS["pcr"]),
        "mode_text": CALL_MODES.get(event.mode, CALL_MODES["floor"]),
    }
    return [Notice("round_scheduled", buildings, params, "important")]


@rule(UnitCalled)
def unit_called(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    """Floors called down to a sampling point now: time-bound, so it rings even in quiet hours."""
    low, high = event.lowest_floor, event.highest_floor
    floors = Localized(
        zh=f" {low} 层" if low == high else f" {low}–{high} 层",
        en=f"floor {low}" if low == high else f"floors {low}–{high}",
    )
    rooms = [int(r) for r in event.rooms]
    room_text = Localized(
        zh=("（仅 " + "、".join(f"{r} 室" for r in rooms) + "）") if rooms else "",
        en=(" (rooms " + ", ".join(str(r) for r in rooms) + " only)") if rooms else "",
    )
    params = {
        "place": directory.label(event.building),
        "floors": floors,
        "rooms": room_text,
        "point": place_text(directory.point_name(event.point)),
        "people": int(event.people),
        "lift": directory.has_lifts(event.building),
    }
    return [Notice("unit_called", [event.building], params, "critical")]


@rule(TransferScheduled)
def transfer_scheduled(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    params = {"place": directory.label(event.building), "at": moment(event.scheduled_at)}
    return [Notice("transfer_scheduled", [event.building], params, "important")]


@rule(CaseTransferred)
def case_transferred(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    """Where the case went (the facility) is left out: the group needs to know only that it happened."""
    params = {"place": directory.label(event.building), "at": moment(event.transferred_at)}
    return [Notice("case_transferred", [event.building], params, "normal")]


# Common areas by the words staff use; anything else is "other common areas" (free text is never copied).
AREAS = {
    "电梯": "lifts",
    "电梯厅": "lift lobby",
    "楼道": "corridors",
    "走廊": "corridors",
    "楼梯": "stairs",
    "大堂": "lobby",
    "门厅": "entrance hall",
    "单元门": "entrance door",
    "垃圾房": "bin room",
    "信箱": "mailboxes",
    "扶手": "handrails",
    "车库": "garage",
    "地下车库": "underground garage",
    "公共区域": "common areas",
}


def _areas(areas: list[str]) -> Localized:
    known = [a.strip() for a in areas if a.strip() in AREAS]
    other = len(known) < len([a for a in areas if a.strip()])
    zh = list(dict.fromkeys(known)) + (["其他公共区域"] if other else [])
    en = list(dict.fromkeys(AREAS[a] for a in known)) + (["other common areas"] if other else [])
    return Localized(zh="、".join(zh), en=", ".join(en))


PHOTO_BASE_URL = os.environ.get("JUWEI_NOTIFY_PHOTO_BASE_URL", "").rstrip("/")


def photo_links(
    compound: str, disinfection: str, photos: list[str], signed_at: datetime, lifetime: int | None = None
) -> list[str]:
    """Links a resident opens without a key: signed, good for ``lifetime`` seconds (JUWEI_PHOTO_LINK_DAYS)."""
    if not PHOTO_BASE_URL:
        return []
    config = settings()
    secret, lifetime = config.shared_key(LINK_SECRET), lifetime or config.photo_link_days * 86400
    links = []
    for photo in photos:
        path = disinfection_photo_path(compound, disinfection, photo)
        links.append(f"{PHOTO_BASE_URL}{path}?{signed_query(secret, path, signed_at.timestamp(), lifetime)}")
    return links


@rule(DisinfectionRecorded)
def disinfection_recorded(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    """Photos of disinfection build trust (item 7): the count always, signed links where the photos are served."""
    disinfection = str(event.disinfection).split(":", 1)[-1]
    # Counted from the event, not from when it is read: the same event always gives the same links.
    links = photo_links(envelope.compound, disinfection, [p.photo for p in event.photos], envelope.time)
    params = {
        "place": directory.label(event.building),
        "areas": _areas(event.areas),
        "at": moment(event.done_at),
        "photos": len(event.photos),
        "links": links,
    }
    return [Notice("disinfection_recorded", [event.building], params, "normal")]


# --- supplies -------------------------------------------------------------------------------------------

SOURCES = {
    "government": Localized(zh="政府保供物资", en="government supplies"),
    "group_purchase": Localized(zh="团购物资", en="group purchase"),
    "donation": Localized(zh="捐赠物资", en="donated supplies"),
}


UNITS_ZH = {"piece": "件", "box": "箱", "bag": "袋", "kg": "公斤", "bottle": "瓶", "pack": "包", "case": "箱"}


def _items(pairs: list[tuple[str, int, str]]) -> Localized:
    """Goods and counts ("大米 200 袋"); names are goods, cut short, numbers masked like any text."""
    shown = pairs[:12]
    more = len(pairs) - len(shown)
    zh = "、".join(
        f"{place_text(name, 16)} {count} {UNITS_ZH.get(unit, place_text(unit, 6))}".rstrip()
        for name, count, unit in shown
    )
    en = ", ".join(f"{place_text(name, 16)} × {count} {place_text(unit, 6)}".rstrip() for name, count, unit in shown)
    return Localized(zh=zh + (f" 等 {len(pairs)} 种" if more else ""), en=en + (f" and {more} more" if more else ""))


@rule(BatchArrived)
def batch_arrived(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    buildings = sorted(set(event.buildings) | set(directory.buildings_of_households(list(event.households))))
    if not buildings:
        return []
    params = {
        "source_name": SOURCES.get(event.source, SOURCES["government"]),
        "on": day(event.arrived_on),
        "items": _items([(i.item, i.quantity, i.unit) for i in event.items]),
    }
    return [Notice("batch_arrived", buildings, params, "normal")]


@rule(BatchDispatched)
def batch_dispatched(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    return [
        Notice("batch_dispatched", [building], {"place": directory.label(building), "on": day(event.on)})
        for building in sorted(set(event.buildings))
    ]


@rule(ShiftCalled)
def shift_called(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    """Only the large batches that call out both shifts are news for the group; the rota is the volunteers'."""
    if not event.both:
        return []
    params = {"place": directory.label(event.building), "households": int(event.households), "items": int(event.items)}
    return [Notice("both_shifts_called", [event.building], params, "normal")]


@rule(DeliveryConfirmed)
def delivery_progress(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    """Progress once, when half the building has its supplies (every door would flood the group)."""
    if not event.households or event.delivered != (event.households + 1) // 2 or event.households < 4:
        return []
    params = {
        "place": directory.label(event.building),
        "delivered": int(event.delivered),
        "households": int(event.households),
        "follow_ups": int(event.follow_ups),
    }
    return [Notice("delivery_progress", [event.building], params, "normal")]


@rule(BuildingDelivered)
def building_delivered(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    params = {
        "place": directory.label(event.building),
        "delivered": int(event.delivered),
        "households": int(event.households),
        "follow_ups": int(event.follow_ups),
    }
    return [Notice("building_delivered", [event.building], params, "normal")]


@rule(DonationAccepted, DonationRefused)
def donation_ledger(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    """The public record of what came in (item 9): goods and counts, never the donor, never the reason."""
    buildings = directory.buildings_of(envelope.compound)
    if not buildings:
        return []
    accepted = isinstance(event, DonationAccepted)
    params = {
        "accepted": accepted,
        "verdict": Localized(
            zh="收到防疫物资捐赠" if accepted else "谢绝一笔捐赠",
            en="epidemic-prevention supplies donated" if accepted else "a donation declined",
        ),
        "on": day(event.received_on),
        "items": _items([(i.item, i.quantity, i.unit) for i in event.items]),
    }
    return [Notice("donation_ledger", buildings, params, "normal")]


@rule(DonationAllocated)
def donation_allocated(event: Any, envelope: Envelope, directory: Directory) -> list[Notice]:
    buildings = directory.buildings_of(envelope.compound)
    if not buildings:
        return []
    items = _items([(name, count, "") for name, count in sorted(event.items.items())])
    return [Notice("donation_allocated", buildings, {"items": items}, "normal")]


# --- rendering ------------------------------------------------------------------------------------------


def _place(label: str | None, language: str) -> str:
    if label is None:
        return "本小区" if language == "zh" else "the compound"
    if language == "zh":
        return f"{label}号楼" if label[-1:].isdigit() or label[-1:].isascii() else label
    return f"building {label}"


@cache
def _environment(language: str) -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES / language),
        undefined=StrictUndefined,
        autoescape=False,  # plain text for chat bots and e-mail; the board escapes on display
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,  # templates ship with the code: no stat of the file for every message rendered
    )


def render(template: str, params: Mapping[str, Any], language: str) -> tuple[str, str]:
    """(title, body) of a template in one language."""
    values = dict(params)
    if "place" in values:
        values["place"] = _place(values["place"], language)
    for key, value in list(values.items()):
        if isinstance(value, Localized):
            values[key] = value[language]
        elif isinstance(value, date):
            values[key] = value.isoformat()
    text = (
        _environment(language)
        .get_template(f"{template}.j2")
        .render(zone_names=ZONE_NAMES[language], zone_rules=ZONE_RULES[language], **values)
    )
    lines = [line.rstrip() for line in text.strip().splitlines()]
    title, body = lines[0], "\n".join(line for line in lines[1:] if line)
    if language == "en" and title:
        title = title[0].upper() + title[1:]
    return title, body


def render_texts(template: str, params: Mapping[str, Any]) -> Texts:
    title_zh, body_zh = render(template, params, "zh")
    title_en, body_en = render(template, params, "en")
    return Texts(title_zh, body_zh, title_en, body_en)
