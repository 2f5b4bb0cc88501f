"""The published event catalogue of the notify service (topic ``juwei.notify``).

Ids only: message texts, channel labels and channel secrets (webhook keys, signing secrets, e-mail
addresses) are private fields, kept in notify's own log, never on Kafka or the feed. Events that concern
one building declare ``building`` so that one building group's story stays in order on Kafka.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from contracts import roles as r
from contracts.sensitivity import VOCABULARY
from juwei.events import DomainEvent, EventRegistry

TOPIC = "juwei.notify"
registry = EventRegistry(
    vocabulary=VOCABULARY,
    topic=TOPIC,
    description="Messages sent to building groups and their deliveries.",
)
# Who besides staff reads each event in the feed (``contracts.access``): what the groups were told, and the
# questions an information officer passed on. Channels and deliveries are the operators' business.
BUILDING_TEAM = frozenset({r.INFORMATION_OFFICER, r.LOGISTICS_VOLUNTEER})

ChannelKind = Literal["wecom", "dingtalk", "feishu", "email", "webhook"]
Language = Literal["zh", "en"]
Priority = Literal["normal", "important", "critical"]
MessageKind = Literal["event", "announcement", "answer"]


class ChannelAttached(DomainEvent):
    """An operator attached a channel (a chat bot, an e-mail list, a webhook) to a building group."""

    event_type = "juwei.notify.ChannelAttached"
    version = 1
    private_fields: ClassVar[frozenset[str]] = frozenset({"label", "config"})
    channel: str
    building: str
    kind: ChannelKind
    language: Language = "zh"
    label: str = Field("", description="operator's name for it; private")
    config: str = Field("", description="URL, key, secret, addresses sealed in the vault; private")


class ChannelReconfigured(DomainEvent):
    """New URL or secret for a channel (key rotation, or the fix after a bad signature)."""

    event_type = "juwei.notify.ChannelReconfigured"
    version = 1
    private_fields: ClassVar[frozenset[str]] = frozenset({"config"})
    channel: str
    building: str
    language: Language = "zh"
    config: str = ""


class ChannelDetached(DomainEvent):
    event_type = "juwei.notify.ChannelDetached"
    version = 1
    channel: str
    building: str


class QuietHoursSet(DomainEvent):
    """Hours (compound-local time) when only critical messages reach people's phones; none: no quiet hours."""

    event_type = "juwei.notify.QuietHoursSet"
    version = 1
    start: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class MessageComposed(DomainEvent):
    """A message for some building groups, from an event, an announcement or an answer. Texts are private."""

    event_type = "juwei.notify.MessageComposed"
    version = 1
    audience = BUILDING_TEAM
    private_fields: ClassVar[frozenset[str]] = frozenset({"title_zh", "body_zh", "title_en", "body_en"})
    message: str
    kind: MessageKind
    priority: Priority
    buildings: list[str]
    building: str | None = Field(None, description="set when the message is for one building only")
    template: str = Field("", description="the rule's template, or 'announcement' / 'answer'")
    cause: str | None = Field(None, description="id of the event that caused it")
    title_zh: str = ""
    body_zh: str = ""
    title_en: str = ""
    body_en: str = ""


class DigestComposed(DomainEvent):
    """Deliveries over a channel's rate limit merged into one digest delivery (nothing dropped)."""

    event_type = "juwei.notify.DigestComposed"
    version = 1
    delivery: str
    channel: str
    building: str
    merged: list[str]


class DeliverySent(DomainEvent):
    event_type = "juwei.notify.DeliverySent"
    version = 1
    delivery: str
    message: str | None = Field(None, description="none for a digest")
    channel: str
    building: str
    attempt: int


class DeliveryFailed(DomainEvent):
    """One attempt failed in a way that a later attempt may fix (rate limit, unreachable): retry scheduled."""

    event_type = "juwei.notify.DeliveryFailed"
    version = 1
    delivery: str
    message: str | None = None
    channel: str
    building: str
    attempt: int
    reason: Literal["rate_limited", "transient"]
    code: str = ""
    retry_at: datetime


class DeliveryDeadLettered(DomainEvent):
    """A permanent error (bad signature, bad key, refused): parked for an operator, who is alerted."""

    event_type = "juwei.notify.DeliveryDeadLettered"
    version = 1
    delivery: str
    message: str | None = None
    channel: str
    building: str
    attempt: int
    code: str = ""
    channel_broken: bool = Field(False, description="the channel itself is wrong: it is paused until fixed")


class DeliveryUncertain(DomainEvent):
    """The process died (or the answer was lost) after the request may have left: not resent, operator alerted."""

    event_type = "juwei.notify.DeliveryUncertain"
    version = 1
    delivery: str
    message: str | None = None
    channel: str
    building: str
    attempt: int
    code: str = ""


class DeliveryRequeued(DomainEvent):
    """An operator sent a dead-lettered or uncertain delivery back to the queue."""

    event_type = "juwei.notify.DeliveryRequeued"
    version = 1
    delivery: str
    channel: str
    building: str


class QuestionSubmitted(DomainEvent):
    """An information officer passed on a resident's question; the text is private (it may name someone)."""

    event_type = "juwei.notify.QuestionSubmitted"
    version = 1
    audience = frozenset({r.INFORMATION_OFFICER})
    private_fields: ClassVar[frozenset[str]] = frozenset({"text"})
    question: str
    building: str
    text: str = ""


class QuestionsAnswered(DomainEvent):
    """Staff answered a group of near-duplicate questions; the answer goes to every building that asked."""

    event_type = "juwei.notify.QuestionsAnswered"
    version = 1
    audience = frozenset({r.INFORMATION_OFFICER})
    private_fields: ClassVar[frozenset[str]] = frozenset({"question_text", "answer", "policy_points"})
    answer_id: str
    questions: list[str]
    buildings: list[str]
    message: str
    question_text: str = ""
    answer: str = ""
    policy_points: list[str] = Field(default_factory=list)


class CallsListed(DomainEvent):
    """An urgent message reached a building's group, and these households are in no group: their officer
    calls or visits each before ``due_at``. Ids only; what to say is the message's own (private) text."""

    event_type = "juwei.notify.CallsListed"
    version = 1
    audience = frozenset({r.INFORMATION_OFFICER})
    message: str
    building: str
    households: list[str]
    due_at: datetime


class HouseholdCalled(DomainEvent):
    """The officer told the household (by phone or at the door): its call is done. ``by`` is the key's id."""

    event_type = "juwei.notify.HouseholdCalled"
    version = 1
    audience = frozenset({r.INFORMATION_OFFICER})
    message: str
    building: str
    household: str
    by: str


CATALOGUE: tuple[type[DomainEvent], ...] = (
    ChannelAttached,
    ChannelReconfigured,
    ChannelDetached,
    QuietHoursSet,
    MessageComposed,
    DigestComposed,
    DeliverySent,
    DeliveryFailed,
    DeliveryDeadLettered,
    DeliveryUncertain,
    DeliveryRequeued,
    QuestionSubmitted,
    QuestionsAnswered,
    CallsListed,
    HouseholdCalled,
)
registry.register_all(CATALOGUE)
