"""Routes of the zone alerts: an Atom feed of a compound's latest CAP 1.2 alerts, and each alert on its own.

Written with the standard library's ElementTree, each document's namespace declared on its root element (the
alert inside an Atom entry declares CAP's as its default); ``tests/residents/test_cap.py`` validates every alert against
the OASIS CAP 1.2 schema.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, tzinfo
from typing import Annotated
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Response

from contracts import roles as r
from juwei.auth import CompoundId, admit
from juwei.callers import Caller
from juwei.dependencies import RuntimeOf
from juwei.openapi import answered_as
from juwei.paging import Limit
from services.residents.api.register import PROBLEM_RESPONSES
from services.residents.application import alerts
from services.residents.domain.alerts import IDENTIFIER_PATTERN, LANGUAGES, Sender, ZoneAlert, wording

CAP = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"

# Zone status is public (the building board shows it): every key of the compound, and another system's key
# of the compound when its grant covers zone changes (checked in ``application.alerts``).
ZoneReaders = Annotated[Caller, Depends(admit(*r.ALL))]
Identifier = Annotated[
    str, Path(pattern=IDENTIFIER_PATTERN, description="The alert's identifier", examples=["zone-" + "0" * 8 + "-…"])
]
BuildingFilter = Annotated[
    str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$", description="Only this building's alerts")
]

router = APIRouter(tags=["zones"])


def cap_time(moment: datetime, where: tzinfo) -> str:
    """CAP's date-time: seconds, a numeric offset, and UTC written ``-00:00`` (CAP 1.2, 3.3.2)."""
    text = moment.astimezone(where).replace(microsecond=0).isoformat()
    return text[:-6] + "-00:00" if text.endswith("+00:00") else text


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _value(parent: ET.Element, tag: str, name: str, value: str) -> None:
    pair = _sub(parent, tag)
    _sub(pair, "valueName", name)
    _sub(pair, "value", value)


def alert_element(alert: ZoneAlert, where: tzinfo) -> ET.Element:
    """The CAP 1.2 ``alert``: one ``info`` block in Chinese and one in English, no geometry (the register has
    none), the building and compound as geocodes."""
    sender = Sender.of(alert.compound)
    root = ET.Element("alert", xmlns=CAP)
    _sub(root, "identifier", alert.identifier)
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(alert.sent, where))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", alert.msg_type)
    _sub(root, "scope", "Public")
    if alert.supersedes is not None:
        earlier, earlier_sent = alert.supersedes
        _sub(root, "references", f"{sender},{earlier},{cap_time(earlier_sent, where)}")
    grading = alert.grading()
    expires = alert.expires(where)
    for language in LANGUAGES:
        words = wording(alert, language)
        info = _sub(root, "info")
        _sub(info, "language", words.language)
        _sub(info, "category", "Health")
        _sub(info, "event", words.event)
        _sub(info, "responseType", grading.response)
        _sub(info, "urgency", grading.urgency)
        _sub(info, "severity", grading.severity)
        _sub(info, "certainty", grading.certainty)
        _value(info, "eventCode", "juwei:zone", alert.zone)
        _sub(info, "effective", cap_time(alert.sent, where))
        if expires is not None:
            _sub(info, "expires", cap_time(expires, where))
        _sub(info, "senderName", words.sender_name)
        _sub(info, "headline", words.headline)
        _sub(info, "description", words.description)
        _sub(info, "instruction", words.instruction)
        _value(info, "parameter", "juwei:previousZone", alert.previous)
        _value(info, "parameter", "juwei:decidedByAuthority", "true" if alert.decided_by_authority else "false")
        if alert.last_case_on is not None:
            _value(info, "parameter", "juwei:lastCaseOn", alert.last_case_on.isoformat())
        area = _sub(info, "area")
        _sub(area, "areaDesc", words.area)
        _value(area, "geocode", "juwei:compound", alert.compound)
        if alert.building is not None:
            _value(area, "geocode", "juwei:building", alert.building)
    return root


def _document(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def feed_document(compound: str, alerts_: list[ZoneAlert], path: str, where: tzinfo) -> bytes:
    """An Atom feed (RFC 4287), newest first; each entry carries its whole alert and links to it alone."""
    sender = Sender.of(compound)
    feed = ET.Element("feed", xmlns=ATOM)
    _sub(feed, "id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{sender}/cap')}")
    _sub(feed, "title", f"{compound} 小区分区管控 · Zone status of compound {compound}")
    newest = alerts_[0].sent if alerts_ else datetime.now(UTC)
    _sub(feed, "updated", newest.astimezone(where).replace(microsecond=0).isoformat())
    author = _sub(feed, "author")
    _sub(author, "name", f"{compound} 小区居委会 · Residents' committee of compound {compound}")
    self_link = _sub(feed, "link")
    self_link.set("rel", "self")
    self_link.set("type", ATOM_MEDIA_TYPE)
    self_link.set("href", path)
    for alert in alerts_:
        entry = _sub(feed, "entry")
        _sub(entry, "id", f"urn:uuid:{alert.identifier.removeprefix('zone-')}")
        chinese, english = (wording(alert, language) for language in LANGUAGES)
        _sub(entry, "title", f"{chinese.headline} · {english.headline}")
        _sub(entry, "updated", alert.sent.astimezone(where).replace(microsecond=0).isoformat())
        link = _sub(entry, "link")
        link.set("rel", "alternate")
        link.set("type", CAP_MEDIA_TYPE)
        link.set("href", f"/compounds/{compound}/cap/{alert.identifier}.xml")
        content = _sub(entry, "content")
        content.set("type", CAP_MEDIA_TYPE)
        content.append(alert_element(alert, where))
    return _document(feed)


def _where(runtime: RuntimeOf) -> tzinfo:
    return ZoneInfo(runtime.settings.timezone)


@router.get(
    "/compounds/{compound}/cap",
    summary="The compound's latest zone alerts (CAP 1.2) as an Atom feed, newest first",
    response_class=Response,
    responses={**PROBLEM_RESPONSES, **answered_as("An Atom feed (RFC 4287) of CAP 1.2 alerts", ATOM_MEDIA_TYPE)},
)
def zone_alert_feed(
    compound: CompoundId,
    caller: ZoneReaders,
    runtime: RuntimeOf,
    building: BuildingFilter = None,
    limit: Limit = 50,
) -> Response:
    found = alerts.latest(runtime, caller, compound, building, limit)
    path = f"/compounds/{compound}/cap" + (f"?building={building}" if building else "")
    body = feed_document(compound, found, path, _where(runtime))
    return Response(body, media_type=f"{ATOM_MEDIA_TYPE}; charset=utf-8")


@router.get(
    "/compounds/{compound}/cap/{identifier}.xml",
    summary="One zone alert (CAP 1.2)",
    response_class=Response,
    responses={**PROBLEM_RESPONSES, **answered_as("A CAP 1.2 alert", CAP_MEDIA_TYPE)},
)
def zone_alert(compound: CompoundId, identifier: Identifier, caller: ZoneReaders, runtime: RuntimeOf) -> Response:
    found = alerts.one(runtime, caller, compound, identifier)
    body = _document(alert_element(found, _where(runtime)))
    return Response(body, media_type=f"{CAP_MEDIA_TYPE}; charset=utf-8")
