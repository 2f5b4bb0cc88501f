"""Test results as FHIR R4 resources, and FHIR search over them: plain Python, no I/O.

A PCR result is one ``Observation`` per person sampled (LOINC 94500-6), grouped by a ``DiagnosticReport`` per
tube (a pooled tube's report holds each of its people's observations); an antigen result is one
``Observation`` (LOINC 94558-4) in a ``DiagnosticReport`` of its own. People are ``Patient/<pseudonym>``: the
caller passes the pseudonym in, this module never sees who anyone is. Values are SNOMED CT Detected /
Not detected; an invalid result has no value but ``dataAbsentReason`` error.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from juwei.aggregate import Invalid

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
PCR_CODE = "94500-6"  # SARS-CoV-2 (COVID-19) RNA [Presence] in Respiratory system specimen by NAA with probe detection
ANTIGEN_CODE = "94558-4"  # SARS-CoV-2 (COVID-19) Ag [Presence] in Respiratory system specimen by Rapid immunoassay
CODES = {
    "pcr": (
        PCR_CODE,
        "SARS-CoV-2 (COVID-19) RNA [Presence] in Respiratory system specimen by NAA with probe detection",
    ),
    "antigen": (
        ANTIGEN_CODE,
        "SARS-CoV-2 (COVID-19) Ag [Presence] in Respiratory system specimen by Rapid immunoassay",
    ),
}
_VALUES = {
    "positive": (SNOMED, "260373001", "Detected", "POS", "Positive"),
    "negative": (SNOMED, "260415000", "Not detected", "NEG", "Negative"),
}
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_SECTION = "http://terminology.hl7.org/CodeSystem/v2-0074"
FHIR_JSON = "application/fhir+json"
RESOURCE_TYPES = ("Observation", "DiagnosticReport")
DEFAULT_COUNT = 100
MAX_COUNT = 1000


@dataclass(slots=True)
class Finding:
    """One person's result, as the read model keeps it, with the pseudonym the caller drew for them.

    ``kind`` pcr or antigen; ``report`` the key of its report (a tube, or the self-report); ``pool`` how many
    people share the tube (1: an individual sample; antigen: 1).
    """

    kind: str
    report: str
    report_label: str
    patient: str
    observation: str
    round: str
    result: str
    collected_at: datetime
    resulted_at: datetime
    pool: int = 1

    @property
    def sort_key(self) -> tuple[int, str]:
        """Oldest result first: results recorded later land on later pages (a pager never misses one)."""
        return (microseconds(self.resulted_at), self.observation)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def microseconds(moment: datetime) -> int:
    """A moment as a number that sorts as it does (a page's position: cheaper than text for 5,000 results)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def observation(finding: Finding, compound: str, shown: Any) -> dict[str, Any]:
    """``shown`` renders a time in the compound's zone (what residents and the committee read)."""
    code, display = CODES[finding.kind]
    found: dict[str, Any] = {
        "resourceType": "Observation",
        "id": finding.observation,
        "meta": {"lastUpdated": shown(finding.resulted_at)},
        "status": "preliminary" if finding.result == "positive" and finding.pool > 1 else "final",
        "category": [{"coding": [{"system": _CATEGORY, "code": "laboratory", "display": "Laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{finding.patient}"},
        "effectiveDateTime": shown(finding.collected_at),
        "issued": shown(finding.resulted_at),
        "method": {"text": _method(finding)},
    }
    value = _VALUES.get(finding.result)
    if value is None:  # invalid: the test said nothing; the person is sampled again
        found["dataAbsentReason"] = {"coding": [{"system": _ABSENT, "code": "error", "display": "Error"}]}
    else:
        system, value_code, value_display, flag, flag_display = value
        found["valueCodeableConcept"] = {
            "coding": [{"system": system, "code": value_code, "display": value_display}],
            "text": value_display,
        }
        found["interpretation"] = [{"coding": [{"system": _INTERPRETATION, "code": flag, "display": flag_display}]}]
    found["identifier"] = [{"system": f"urn:juwei:{compound}:round", "value": finding.round}]
    return found


def _method(finding: Finding) -> str:
    if finding.kind == "antigen":
        return "antigen self-test, reported by the household"
    if finding.pool > 1:
        return f"pooled sample ({finding.pool} in 1); a positive pool is followed by individual re-tests"
    return "individual sample"


def diagnostic_report(findings: Sequence[Finding], compound: str, shown: Any) -> dict[str, Any]:
    """One tube's (or self-report's) report: its observations, and its subject when it is one person's."""
    first = findings[0]
    code, display = CODES[first.kind]
    people = {finding.patient for finding in findings}
    resulted = max(finding.resulted_at for finding in findings)
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": first.report,
        "meta": {"lastUpdated": shown(resulted)},
        "identifier": [
            {
                "system": f"urn:juwei:{compound}:{'tube' if first.kind == 'pcr' else 'antigen-report'}",
                "value": first.report_label,
            }
        ],
        "status": "final",
        "category": [{"coding": [{"system": _SECTION, "code": "LAB", "display": "Laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "effectiveDateTime": shown(min(finding.collected_at for finding in findings)),
        "issued": shown(resulted),
        "result": [{"reference": f"Observation/{finding.observation}"} for finding in findings],
    }
    value = _VALUES.get(first.result)
    if value is None:
        report["conclusion"] = "invalid: the sample is taken again"
    else:
        system, value_code, value_display = value[:3]
        report["conclusionCode"] = [{"coding": [{"system": system, "code": value_code, "display": value_display}]}]
    if len(people) == 1:
        report["subject"] = {"reference": f"Patient/{first.patient}"}
    return report


def patient(pseudonym: str, compound: str, register_id: str) -> dict[str, Any]:
    """The person behind a pseudonym, for a reader allowed to link results to the register: no name here
    (testing keeps none), only the register's id, which residents' audited reveal turns into a person."""
    return {
        "resourceType": "Patient",
        "id": pseudonym,
        "identifier": [{"system": f"urn:juwei:{compound}:resident", "value": register_id}],
    }


# --- search ---------------------------------------------------------------------------------------------------

_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")
_DATE = re.compile(
    r"^(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})"
    r"(T(?P<hour>\d{2}):(?P<minute>\d{2})(:(?P<second>\d{2})(\.\d+)?)?(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$",
    re.ASCII,
)
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_LOCAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
COMMON = ("_count", "_cursor", "_format", "_include", "round", "date", "_lastUpdated", "code", "subject", "patient")
_INCLUDES = {
    "Observation": ("Observation:subject", "Observation:patient"),
    "DiagnosticReport": ("DiagnosticReport:result", "DiagnosticReport:subject", "DiagnosticReport:patient"),
}
_FORMATS = ("json", "application/json", "application/fhir+json")


# The refusals of a FHIR read in Chinese, by code (``ServiceDefinition.wording``), filled from their details.
WORDING = {
    "search-parameter-unknown": "不支持检索参数 {parameter}",
    "search-parameter-repeated": "检索参数 {parameter} 只能给一次",
    "date-invalid": "{parameter} 不是有效的 FHIR 日期（如 2022-04-12、ge2022-04-12T08:00）",
    "count-invalid": "_count 须为 1 到 1000 的整数",
    "code-unknown": "code 只能是 LOINC 94500-6（核酸）或 94558-4（抗原）",
    "subject-invalid": "{parameter} 须为 Patient/<编号>",
    "cursor-invalid": "_cursor 不是本服务给出的翻页位置，请使用 Bundle.link 中的 next",
    "include-unsupported": "不支持此 _include",
    "format-unsupported": "只提供 JSON 格式",
    "round-invalid": "round 不是有效的轮次编号",
    "round-unknown": "没有这个轮次",
    "health-not-granted": "检测结果属健康数据：此密钥的授权不含健康数据",
    "results-not-granted": "此密钥的授权不含检测结果",
    "identity-not-granted": "假名对应的身份仅限工作人员查询",
}


def refused(detail: str, code: str, parameter: str) -> Invalid:
    return Invalid(detail, code=code, parameter=parameter)


@dataclass(frozen=True)
class Moment:
    """One ``date`` or ``_lastUpdated`` condition: a prefix and the range its value stands for."""

    prefix: str
    start: datetime
    end: datetime

    def holds(self, at: datetime) -> bool:
        inside = self.start <= at < self.end
        if self.prefix == "eq":
            return inside
        if self.prefix == "ne":
            return not inside
        if self.prefix == "gt":
            return at >= self.end
        if self.prefix == "ge":
            return at >= self.start
        if self.prefix == "lt":
            return at < self.start
        return at < self.end  # le


def moment(parameter: str, given: str, zone: tzinfo) -> Moment:
    """A FHIR date search value (``ge2022-04-12``, ``2022-04``, ``lt2022-04-12T08:00:00+08:00``); a value
    without an offset is the compound's wall-clock time."""
    prefix, value = (given[:2], given[2:]) if given[:2].isalpha() else ("eq", given)
    if prefix not in _PREFIXES:
        raise refused(
            f"{parameter}: prefix {prefix!r} is not supported (one of {', '.join(_PREFIXES)})",
            "date-invalid",
            parameter,
        )
    match = _DATE.match(value)
    if match is None:
        raise refused(
            f"{parameter}: {given!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][offset])",
            "date-invalid",
            parameter,
        )
    parts = match.groupdict()
    try:
        return Moment(prefix, *_range(parts, zone))
    except (ValueError, OverflowError) as exc:  # 2022-02-30, an offset of +25:00, the last day of year 9999
        raise refused(f"{parameter}: {given!r} is not a date ({exc})", "date-invalid", parameter) from None


def _range(parts: dict[str, str | None], zone: tzinfo) -> tuple[datetime, datetime]:
    """The instants a FHIR date value stands for: from its start up to (not including) its end."""
    given_zone = parts["zone"]
    where: tzinfo = zone
    if given_zone == "Z":
        where = UTC
    elif given_zone:
        sign = 1 if given_zone[0] == "+" else -1
        where = timezone(sign * timedelta(hours=int(given_zone[1:3]), minutes=int(given_zone[4:6])))
    year, month, day = int(parts["year"] or 0), int(parts["month"] or 1), int(parts["day"] or 1)
    hour, minute, second = int(parts["hour"] or 0), int(parts["minute"] or 0), int(parts["second"] or 0)
    start = datetime(year, month, day, hour, minute, second, tzinfo=where)
    if parts["second"]:
        end = start + timedelta(seconds=1)
    elif parts["minute"]:
        end = start + timedelta(minutes=1)
    elif parts["day"]:
        end = start + timedelta(days=1)
    elif parts["month"]:
        end = start.replace(year=year + (month == 12), month=month % 12 + 1)
    else:
        end = start.replace(year=year + 1)
    return start, end


@dataclass(frozen=True)
class Search:
    """A FHIR search over one compound's results, as the query string asked for it."""

    resource: str
    count: int = DEFAULT_COUNT
    after: tuple[int, str] | None = None
    round: str | None = None
    kinds: frozenset[str] = frozenset(CODES)
    dates: tuple[Moment, ...] = ()
    updated: tuple[Moment, ...] = ()
    patients: frozenset[str] | None = None
    include: frozenset[str] = frozenset()

    def admits(self, finding: Finding) -> bool:
        """Whether a finding is a match (for a report: whether this observation of it is)."""
        if finding.kind not in self.kinds:
            return False
        if self.patients is not None and finding.patient not in self.patients:
            return False
        if not all(condition.holds(finding.collected_at) for condition in self.dates):
            return False
        return all(condition.holds(finding.resulted_at) for condition in self.updated)


def search(resource: str, pairs: Iterable[tuple[str, str]], zone: tzinfo) -> Search:
    """Parse a query string strictly: an unknown parameter, a modifier or a bad value is refused, never ignored
    (a consumer that misspells ``date`` must not silently get every result)."""
    found: dict[str, Any] = {"resource": resource}
    dates: list[Moment] = []
    updated: list[Moment] = []
    seen: set[str] = set()
    for name, value in pairs:
        if name not in COMMON:
            raise refused(
                f"{resource} search has no parameter {name!r} (known: {', '.join(COMMON)})",
                "search-parameter-unknown",
                name,
            )
        if name in seen and name not in ("date", "_lastUpdated", "_include"):
            raise refused(f"{name} is given twice", "search-parameter-repeated", name)
        seen.add(name)
        if name == "_count":
            if not re.fullmatch(r"[0-9]{1,4}", value) or not 1 <= int(value) <= MAX_COUNT:
                raise refused(
                    f"_count must be a whole number from 1 to {MAX_COUNT}, not {value!r}", "count-invalid", name
                )
            found["count"] = int(value)
        elif name == "_cursor":
            found["after"] = _cursor(value)
        elif name == "_format":
            if value not in _FORMATS:
                raise refused(f"_format: only JSON is served ({', '.join(_FORMATS)})", "format-unsupported", name)
        elif name == "_include":
            if value not in _INCLUDES[resource]:
                raise refused(
                    f"_include: {value!r} is not supported here (one of {', '.join(_INCLUDES[resource])})",
                    "include-unsupported",
                    name,
                )
            found.setdefault("include", set()).add(value.split(":", 1)[1].replace("patient", "subject"))
        elif name == "round":
            if not _LOCAL.match(value):
                raise refused(f"round: {value!r} is not a round's id", "round-invalid", name)
            found["round"] = value
        elif name == "date":
            dates.append(moment(name, value, zone))
        elif name == "_lastUpdated":
            updated.append(moment(name, value, zone))
        elif name == "code":
            found["kinds"] = _kinds(value)
        else:  # subject, patient
            found["patients"] = _patients(name, value)
    found["include"] = frozenset(found.get("include", ()))
    return Search(**found, dates=tuple(dates), updated=tuple(updated))


def _kinds(value: str) -> frozenset[str]:
    kinds: set[str] = set()
    for token in value.split(","):
        system, _bar, code = token.rpartition("|")
        if system not in ("", LOINC):
            raise refused(f"code: system {system!r} is not served here (only {LOINC})", "code-unknown", "code")
        matched = [kind for kind, (known, _display) in CODES.items() if known == code]
        if not matched:
            raise refused(
                f"code: {code!r} is not a result served here ({PCR_CODE} PCR, {ANTIGEN_CODE} antigen)",
                "code-unknown",
                "code",
            )
        kinds.update(matched)
    return frozenset(kinds)


def _patients(name: str, value: str) -> frozenset[str]:
    chosen: set[str] = set()
    for token in value.split(","):
        pseudonym = token.removeprefix("Patient/")
        if not _ID.match(pseudonym):
            raise refused(f"{name}: {token!r} is not a Patient reference (Patient/<id>)", "subject-invalid", name)
        chosen.add(pseudonym)
    return frozenset(chosen)


def cursor_of(key: tuple[int, str]) -> str:
    """Where the next page starts: opaque to the client, which follows ``Bundle.link`` next."""
    return base64.urlsafe_b64encode(f"{key[0]}|{key[1]}".encode()).decode().rstrip("=")


def _cursor(value: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    at, _bar, last = text.partition("|")
    if not re.fullmatch(r"-?[0-9]{1,20}", at) or not _ID.match(last):
        raise refused("_cursor: not a cursor this server gave; follow Bundle.link next", "cursor-invalid", "_cursor")
    return (int(at), last)


def bundle(
    matches: Sequence[dict[str, Any]],
    included: Sequence[dict[str, Any]],
    total: int,
    self_url: str,
    next_url: str | None,
    base: str,
    at: str,
) -> dict[str, Any]:
    """A searchset Bundle: the page's matches, then what ``_include`` brought, and the link to the next page."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    entries = [
        {"fullUrl": f"{base}/{found['resourceType']}/{found['id']}", "resource": found, "search": {"mode": mode}}
        for group, mode in ((matches, "match"), (included, "include"))
        for found in group
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": at,
        "total": total,
        "link": links,
        "entry": entries,
    }
