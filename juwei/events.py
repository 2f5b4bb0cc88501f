"""The one envelope every event travels in: CloudEvents 1.0 plus Juwei's extensions.

A domain event is a pydantic model (plain data, no I/O) registered under a versioned type name such as
``juwei.residents.HouseholdRegistered.v1``. The envelope adds where it comes from (``source``), which
stream it belongs to (``subject``), its version in that stream, its global position in the producing
service's log, the compound it belongs to, the building it concerns (when it concerns one) and the W3C
trace context. The same JSON goes on Kafka (binary mode), out of the feed and into the building board.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict
from pydantic_core import to_jsonable_python

# The W3C trace context of the work in progress (an HTTP request, a consumed event): events appended
# while it is set carry it, so one trace follows a command through every service it touches.
current_traceparent: ContextVar[str | None] = ContextVar("juwei_traceparent", default=None)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
_TYPE_NAME = re.compile(r"^(?P<name>[a-z][a-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+)\.v(?P<version>[1-9][0-9]*)$")


# How sensitive a payload field is: names a person (identity), states their health (health), says where
# they live (location: a building, a floor, a room, a household id, which names a flat), or none of these.
Sensitivity = Literal["identity", "health", "location", "none"]
SENSITIVITIES: tuple[str, ...] = get_args(Sensitivity)


class UnknownEventType(LookupError):
    """An envelope names a type this process has no class (and no upcaster) for."""


class MalformedEvent(ValueError):
    """An envelope or a payload does not have the shape the catalogue promises."""


@dataclass(frozen=True)
class Sealed:
    """A token field's content: ``fields`` of the same event (private ones), sealed under the vault key of
    ``<value of the subject field>#<token field>`` so that erasure and retention shred it like identity."""

    subject: str
    fields: tuple[str, ...]


class DomainEvent(BaseModel):
    """Base of every event payload. Subclasses set ``event_type`` and ``version``.

    ``building`` is declared by events that concern one building: the envelope copies it into its
    ``building`` extension, and Kafka uses it as the key so one building's story stays in order.
    ``private_fields`` stay in the producing service's own log (a separate column) and never reach
    Kafka, the feed or any other service: the place for sealed identity data.

    ``sensitivity`` classes fields beyond the registry's vocabulary of field names (see ``EventRegistry``).
    ``sealed_fields`` maps a field holding a vault token to what it seals (``Sealed``): the domain sets the
    plain fields, the store seals them into the token on append and opens them again on load.
    ``audience`` names the roles, besides staff, whose work needs this event in their feed.
    ``catalogue`` is the registry of the topic it is published on (set when that registry registers it): a
    consuming service names the event classes it reads, and their topics and catalogues follow.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str] = ""
    version: ClassVar[int] = 1
    private_fields: ClassVar[frozenset[str]] = frozenset()
    sensitivity: ClassVar[dict[str, Sensitivity]] = {}
    sealed_fields: ClassVar[dict[str, Sealed]] = {}
    audience: ClassVar[frozenset[str]] = frozenset()
    catalogue: ClassVar[EventRegistry | None] = None

    @classmethod
    def type_name(cls) -> str:
        return f"{cls.event_type}.v{cls.version}"

    def building_id(self) -> str | None:
        value = getattr(self, "building", None)
        return str(value) if value is not None else None


def sealed_subject(subject: str, field_name: str) -> str:
    """The vault subject a sealed field's token is sealed under: one key per data subject and field."""
    return f"{subject}#{field_name}"


class Unclassified(TypeError):
    """A payload field has no sensitivity class: neither the event nor the registry's vocabulary names one."""


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class EventRegistry:
    """Maps versioned type names to payload classes and old versions to upcasters.

    A producing service's published registry names its ``topic`` (``juwei.<service>``) and says in one line
    what travels there (``description``, the AsyncAPI channel's); a merged registry (what one service
    consumes from several topics) has neither.
    """

    classes: dict[str, type[DomainEvent]] = field(default_factory=dict)
    upcasters: dict[str, tuple[str, Upcaster]] = field(default_factory=dict)
    # The sensitivity of a field by its name, for every event of this catalogue (``DomainEvent.sensitivity``
    # overrides it per event: a household id is location, but in a case it says who has the case).
    vocabulary: dict[str, Sensitivity] = field(default_factory=dict)
    topic: str = ""
    description: str = ""
    # Per current type: (field, default, default factory) of every optional field, for ``trusted``.
    _defaults: dict[str, list[tuple[str, Any, Callable[[], Any] | None]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def register(self, cls: type[DomainEvent]) -> type[DomainEvent]:
        if not cls.event_type:
            raise TypeError(f"{cls.__name__} has no event_type")
        name = cls.type_name()
        existing = self.classes.get(name)
        if existing is not None and existing is not cls:
            raise TypeError(f"{name} is registered twice ({existing.__name__}, {cls.__name__})")
        self.classes[name] = cls
        if self.topic and cls.__dict__.get("catalogue") is None:
            cls.catalogue = self  # the class is published here; merged registries leave it where it is
        return cls

    def register_all(self, classes: Iterable[type[DomainEvent]]) -> None:
        for cls in classes:
            self.register(cls)

    def upcaster(self, old_type: str, new_type: str) -> Callable[[Upcaster], Upcaster]:
        """Declare how an old payload version becomes the next one (chains are followed)."""

        def decorate(fn: Upcaster) -> Upcaster:
            self.upcasters[old_type] = (new_type, fn)
            return fn

        return decorate

    def upcast(self, type_name: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if type_name not in self.upcasters:  # the common case, read once per replayed event
            return type_name, data
        seen = set()
        while type_name not in self.classes and type_name in self.upcasters:
            if type_name in seen:
                raise MalformedEvent(f"upcaster loop at {type_name}")
            seen.add(type_name)
            type_name, fn = self.upcasters[type_name][0], self.upcasters[type_name][1]
            data = fn(dict(data))
        return type_name, data

    @classmethod
    def merged(cls, *registries: EventRegistry) -> EventRegistry:
        """One registry that knows every type of the given ones (the catalogue of several topics)."""
        union = cls()
        for registry in registries:
            union.register_all(registry.classes.values())
            union.upcasters.update(registry.upcasters)
            union.vocabulary.update(registry.vocabulary)
        return union

    def field_classes(self, cls: type[DomainEvent], *, strict: bool = True) -> dict[str, Sensitivity]:
        """The sensitivity of every field of ``cls`` (private ones included).

        A field without one raises ``Unclassified``; not ``strict`` (the feed at run time), it fails closed:
        ``identity``, never shown — unless the catalogue classes nothing at all (then every field is ``none``).
        """
        overrides: dict[str, Sensitivity] = {}
        for base in reversed(cls.__mro__):
            overrides.update(getattr(base, "sensitivity", {}) or {})
        found: dict[str, Sensitivity] = {}
        missing = []
        for name in cls.model_fields:
            kind = overrides.get(name) or self.vocabulary.get(name)
            if kind is None:
                missing.append(name)
                kind = "identity" if self.vocabulary or overrides else "none"
            found[name] = kind
        if missing and strict:
            raise Unclassified(f"{cls.type_name()}: no sensitivity for {', '.join(missing)}")
        return found

    def current_class(self, type_name: str) -> type[DomainEvent] | None:
        """The class an event of ``type_name`` is read as (after upcasting), None when unknown."""
        seen = set()
        while type_name not in self.classes and type_name in self.upcasters and type_name not in seen:
            seen.add(type_name)
            type_name = self.upcasters[type_name][0]
        return self.classes.get(type_name)

    def type_names(self, bases: Iterable[str]) -> set[str]:
        """Every versioned type name (current and upcast) whose base name is one of ``bases``."""
        wanted = set(bases)
        known = [*self.classes, *self.upcasters]
        return {name for name in known if name.rsplit(".v", 1)[0] in wanted}

    def trusted(self, type_name: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(current type, payload) of an event that was checked before (appended, or applied when received).

        Upcast and with defaults filled in for fields older payloads lack, as ``decode`` would give them,
        but without pydantic's validation (a fifth of testing's rebuild): values stay in their JSON form (times
        are ISO text, see ``parse_time``). Payloads are the JSON ``payload()`` dumps, so plain dict reads
        see what the validated model would.
        """
        current, data = self.upcast(type_name, data)
        defaults = self._defaults.get(current)
        if defaults is None:
            cls = self.classes.get(current)
            if cls is None:
                raise UnknownEventType(type_name)
            defaults = self._defaults[current] = _defaults_of(cls)
        missing = [entry for entry in defaults if entry[0] not in data]
        if missing:
            data = dict(data)
            for name, default, factory in missing:
                data[name] = factory() if factory is not None else default
        return current, data

    def knows(self, type_name: str) -> bool:
        return type_name in self.classes or type_name in self.upcasters

    def decode(self, type_name: str, data: Mapping[str, Any]) -> DomainEvent:
        current, upcast = self.upcast(type_name, dict(data))
        cls = self.classes.get(current)
        if cls is None:
            raise UnknownEventType(type_name)
        try:
            return cls.model_validate(upcast)
        except ValueError as exc:
            raise MalformedEvent(f"{type_name}: {exc}") from exc


def catalogue_of(cls: type[DomainEvent]) -> EventRegistry:
    """The published registry an event class belongs to (its topic's)."""
    if cls.__dict__.get("catalogue") is None:
        raise TypeError(f"{cls.__name__} is registered in no topic's registry")
    return cls.__dict__["catalogue"]


def types_of(*classes: type[DomainEvent]) -> frozenset[str]:
    """Every stored version of these events, by type name (old versions are upcast when read)."""
    names: set[str] = set()
    for cls in classes:
        names |= catalogue_of(cls).type_names([cls.event_type])
    return frozenset(names)


def _defaults_of(cls: type[DomainEvent]) -> list[tuple[str, Any, Callable[[], Any] | None]]:
    """The optional fields of an event class, each with its JSON default (what ``payload()`` would dump)."""
    found: list[tuple[str, Any, Callable[[], Any] | None]] = []
    for name, info in cls.model_fields.items():
        if info.is_required():
            continue
        if info.default_factory is not None:
            found.append((name, None, info.default_factory))  # type: ignore[arg-type]
        else:
            found.append((name, to_jsonable_python(info.default), None))
    return found


def split_type(type_name: str) -> tuple[str, int]:
    match = _TYPE_NAME.match(type_name)
    if not match:
        raise MalformedEvent(f"event type {type_name!r} is not of the form <name>.v<version>")
    return match["name"], int(match["version"])


def valid_traceparent(value: str | None) -> str | None:
    """The header if it is a well-formed W3C traceparent, else None (never trust a caller's junk)."""
    return value if value is not None and _TRACEPARENT.match(value) else None


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def new_event_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Envelope:
    """A CloudEvent as Juwei stores and sends it. ``data`` is the JSON payload, already upcast on read."""

    id: str
    source: str
    type: str
    subject: str
    time: datetime
    data: dict[str, Any]
    compound: str
    streamversion: int
    position: int | None = None
    building: str | None = None
    traceparent: str | None = None
    datacontenttype: str = CONTENT_TYPE
    # Private fields, present only when read from the producing service's own log; never serialised.
    private: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    # CloudEvents extension attributes Juwei adds; names are lowercase alphanumerics per the spec.
    EXTENSIONS: ClassVar[tuple[str, ...]] = ("compound", "streamversion", "position", "building", "traceparent")

    @property
    def key(self) -> str:
        """Kafka key: the building when the event concerns one (ordering per building), else the stream."""
        return self.building or self.subject

    def with_position(self, position: int) -> Envelope:
        return replace(self, position=position)

    def to_cloudevent(self) -> dict[str, Any]:
        """Structured-mode JSON (feed, board, dead letters)."""
        body: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": iso_time(self.time),
            "datacontenttype": self.datacontenttype,
        }
        for name in self.EXTENSIONS:
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        body["data"] = self.data
        return body

    @classmethod
    def from_cloudevent(cls, body: Mapping[str, Any]) -> Envelope:
        try:
            if body.get("specversion") != SPEC_VERSION:
                raise MalformedEvent(f"specversion must be {SPEC_VERSION}")
            data = body.get("data")
            if not isinstance(data, dict):
                raise MalformedEvent("data must be a JSON object")
            position = body.get("position")
            return cls(
                id=str(body["id"]),
                source=str(body["source"]),
                type=str(body["type"]),
                subject=str(body["subject"]),
                time=parse_time(str(body["time"])),
                data=data,
                compound=str(body["compound"]),
                streamversion=int(body["streamversion"]),
                position=int(position) if position is not None else None,
                building=_opt_str(body.get("building")),
                traceparent=_opt_str(body.get("traceparent")),
                datacontenttype=str(body.get("datacontenttype", CONTENT_TYPE)),
            )
        except KeyError as exc:
            raise MalformedEvent(f"missing CloudEvents attribute {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            if isinstance(exc, MalformedEvent):
                raise
            raise MalformedEvent(str(exc)) from exc

    @classmethod
    def from_stored(cls, body: Mapping[str, Any]) -> Envelope:
        """A CloudEvent this service stored itself (its inbox): ``from_cloudevent`` checked it on receipt.

        No checks and no conversions: ~1 µs an event less than ``from_cloudevent`` on a rebuild.
        """
        position = body.get("position")
        return stored_envelope(
            body["id"],
            body["source"],
            body["type"],
            body["subject"],
            parse_time(body["time"]),
            body["data"],
            body["compound"],
            body["streamversion"],
            position,
            body.get("building"),
            body.get("traceparent"),
            None,
            body.get("datacontenttype", CONTENT_TYPE),
        )

    def to_kafka(self) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """Binary content mode: attributes in ``ce_*`` headers, the data as the record value."""
        extensions = {name: getattr(self, name) for name in self.EXTENSIONS}
        headers = binary_headers(self.id, self.source, self.type, self.subject, self.time, extensions)
        return self.key.encode(), dump_json(self.data), headers

    @classmethod
    def from_kafka(cls, value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> Envelope:
        attrs: dict[str, Any] = {}
        for name, raw in headers:
            if name.startswith("ce_"):
                try:
                    attrs[name[3:]] = raw.decode()
                except (UnicodeDecodeError, AttributeError) as exc:
                    raise MalformedEvent(f"header {name} is not UTF-8") from exc
            elif name == "content-type" and raw is not None:
                attrs["datacontenttype"] = raw.decode(errors="replace")
        if value is None:
            raise MalformedEvent("record has no value")
        try:
            attrs["data"] = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedEvent(f"value is not JSON: {exc}") from exc
        return cls.from_cloudevent(attrs)


_new_object = object.__new__


def stored_envelope(
    id: str,
    source: str,
    type: str,
    subject: str,
    time: datetime,
    data: dict[str, Any],
    compound: str,
    streamversion: int,
    position: int | None,
    building: str | None,
    traceparent: str | None,
    private: dict[str, Any] | None,
    datacontenttype: str = CONTENT_TYPE,
) -> Envelope:
    """An ``Envelope`` of values already checked (a store's row, an inbox's JSON), every field given.

    It fills the instance's ``__dict__`` at once: a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, ~1 µs an event on a rebuild. Equal to ``Envelope(...)`` of the same values.
    """
    envelope = _new_object(Envelope)
    envelope.__dict__.update(
        id=id,
        source=source,
        type=type,
        subject=subject,
        time=time,
        data=data,
        compound=compound,
        streamversion=streamversion,
        position=position,
        building=building,
        traceparent=traceparent,
        datacontenttype=datacontenttype,
        private=private,
    )
    return envelope


def dump_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def binary_headers(
    id: str, source: str, type: str, subject: str, time: datetime, extensions: Mapping[str, Any]
) -> list[tuple[str, bytes]]:
    """Kafka headers of a CloudEvent in binary content mode (extensions that are None are left out)."""
    headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", type.encode()),
        ("ce_subject", subject.encode()),
        ("ce_time", iso_time(time).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    headers.extend((f"ce_{name}", str(value).encode()) for name, value in extensions.items() if value is not None)
    return headers


def iso_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """A payload's or an envelope's ISO time (``Z`` or an offset), tz-aware: naive text is taken as UTC."""
    moment = datetime.fromisoformat(text)  # reads a trailing "Z" since Python 3.11
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def payload(event: DomainEvent) -> dict[str, Any]:
    """The public JSON payload of a domain event (what ``data`` carries on the bus)."""
    return event.model_dump(mode="json", exclude=set(event.private_fields) or None)


def private_payload(event: DomainEvent) -> dict[str, Any] | None:
    """The fields that stay in the service's own log, or None when the event has none."""
    if not event.private_fields:
        return None
    return event.model_dump(mode="json", include=set(event.private_fields))
