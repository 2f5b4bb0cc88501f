"""What the notify service's HTTP API takes and gives: request and response models, apart from the routes."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from juwei.openapi import UtcTime

# --- building groups and channels ----------------------------------------------------------------------------------


Kind = Literal["wecom", "dingtalk", "feishu", "email", "webhook"]


class ChannelIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "dingtalk",
                    "label": "12号楼官方群",
                    "config": {"url": "https://oapi.dingtalk.com/robot/send?access_token=…", "secret": "SEC…"},
                }
            ]
        },
    )
    kind: Kind
    language: Literal["zh", "en"] = "zh"
    label: str = Field("", max_length=100)
    config: dict[str, Any] = Field(
        description="by kind: bots {url, secret?}; webhook {url, secret}; "
        "email {host, port, sender, recipients, username?, password?, "
        "starttls?, ssl?}. Never returned."
    )


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: dict[str, Any]
    language: Literal["zh", "en"] | None = None


class ChannelOut(BaseModel):
    channel: str
    building: str
    kind: str
    language: str
    label: str
    endpoint: str = Field(description="host only: keys, secrets and addresses are never shown")
    active: bool
    broken: str | None = Field(None, description="why the platform refuses this channel; fix it with PUT")
    blocked_until: UtcTime | None = None
    pending: int = 0
    dead: int = 0


# A time of day in the compound, hh:mm.
TimeOfDay = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["22:00"])]


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"start": "22:00", "end": "07:00"}]})
    start: TimeOfDay | None = None
    end: TimeOfDay | None = None


# --- messages ------------------------------------------------------------------------------------------------------


class AnnouncementIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "明日全员核酸",
                    "body": "明天 7:00 起按楼层分批下楼采样，请听楼栋群通知，不要提前下楼。",
                    "buildings": None,
                    "priority": "important",
                }
            ]
        },
    )
    title: str = Field(min_length=1, max_length=120)
    body: str = Field("", max_length=4000)
    title_en: str = Field("", max_length=200)
    body_en: str = Field("", max_length=6000)
    buildings: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]] | None = Field(
        None, description="the buildings whose groups get it; none: every group of the compound", max_length=500
    )
    priority: Literal["normal", "important", "critical"] = "normal"


class Composed(BaseModel):
    message: str
    buildings: list[str]
    deliveries: int


class Requeued(BaseModel):
    delivery: str
    status: str
    next_attempt_at: UtcTime


# --- questions -----------------------------------------------------------------------------------------------------


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "我们楼的阳性什么时候转运？"}]})
    text: str = Field(min_length=1, max_length=500)


class QuestionOut(BaseModel):
    question: str
    building: str
    question_group: str
    faq: list[dict[str, Any]] = Field(default_factory=list, description="answers already given to similar questions")


class AnswerIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "楼里的阳性病例什么时候转运？",
                    "answer": "转运由区里统一安排，确定时间后会第一时间在本群通知。",
                    "policy_points": ["阳性病例转运由区疫情防控指挥部统一调度", "转运后楼栋公共区域当天消杀"],
                }
            ]
        },
    )
    question: str = Field(min_length=1, max_length=200, description="the question as it will be published")
    answer: str = Field(min_length=1, max_length=4000)
    policy_points: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=20)
    priority: Literal["normal", "important", "critical"] = "normal"


class Answered(BaseModel):
    answer: str
    message: str
    buildings: list[str]
    questions: int


# --- the building board --------------------------------------------------------------------------------------------


class BoardLink(BaseModel):
    building: str
    url: str


# --- webhook subscriptions of outside systems ----------------------------------------------------------------------

CompoundName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
TypeName = Annotated[
    str, Field(pattern=r"^[a-z][A-Za-z0-9_.]{0,150}[A-Za-z0-9]$", examples=["juwei.testing.CaseConfirmed"])
]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://dashboard.example.gov.cn/juwei/events",
                    "types": ["juwei.residents.ZoneStatusChanged", "juwei.testing.CaseConfirmed"],
                    "compounds": ["c1"],
                }
            ]
        },
    )
    url: str = Field(min_length=8, max_length=2000, description="http:// or https://, with a host, no user:password@")
    types: list[TypeName] = Field(min_length=1, max_length=200, description="base event types (no .v1)")
    compounds: list[CompoundName] = Field(min_length=1, max_length=500)


class SubscriptionOut(BaseModel):
    subscription: str
    endpoint: str = Field(description="scheme and host only: the path and query are never shown")
    types: list[str]
    compounds: list[str]
    health: bool = Field(description="health fields are delivered (the key's grant)")
    active: bool = Field(description="false: paused, its events wait")
    created_at: UtcTime
    pending: int = 0
    sent: int = 0
    dead: int = 0


class SubscriptionRegistered(SubscriptionOut):
    secret: str = Field(description="whsec_<base64>: shown this once, never again")


class ReplayIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"service": "testing", "from_position": 1200}]}
    )
    from_event: str | None = Field(None, max_length=64, description="this event and every one notify received after")
    service: Literal["residents", "supplies", "testing"] | None = Field(None, description="with from_position")
    from_position: int | None = Field(None, ge=0, le=2**63 - 1, description="this position of the service's feed on")


class Replayed(BaseModel):
    replay: str
    queued: int


class SubscriptionAttemptOut(BaseModel):
    attempt: int
    at: UtcTime
    outcome: str
    status_code: int | None
    code: str
    duration_ms: int


class SubscriptionDeliveryOut(BaseModel):
    id: int
    event_id: str = Field(description="the webhook-id header")
    event_type: str
    compound: str
    position: int | None
    replay: str | None
    status: str
    attempts: list[SubscriptionAttemptOut]
    created_at: UtcTime
    sent_at: UtcTime | None
    last_code: str | None


class SubscriptionDeliveries(BaseModel):
    deliveries: list[SubscriptionDeliveryOut]
    next_after: int


# --- answers of the reads (strict: a key the model does not name is a bug, not a leak) ------------------------------


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GroupListed(Answer):
    building: str
    number: str
    households: int
    members: int = Field(description="Households with a representative in the group")
    channels: int = Field(description="Active channels")


class GroupList(Answer):
    groups: list[GroupListed]


class GroupMember(Answer):
    household: str
    representative: str


class GroupOut(Answer):
    building: str
    number: str
    households: int
    members: list[GroupMember]
    without_representative: int
    channels: list[ChannelOut]


class QuietHoursOut(Answer):
    start: str | None = Field(description="HH:MM in `timezone`; none: no quiet hours")
    end: str | None
    timezone: str


class MessageOut(Answer):
    message: str
    kind: str
    priority: str
    template: str
    buildings: list[str]
    title: str = Field(description="In Chinese")
    body: str = Field(description="In Chinese")
    title_en: str
    body_en: str
    composed_at: UtcTime


class MessageListed(MessageOut):
    deliveries: dict[str, int] = Field(description="Deliveries by status")


class MessageList(Answer):
    messages: list[MessageListed]


class AttemptOut(Answer):
    attempt: int
    at: UtcTime
    outcome: str
    code: str
    detail: str
    duration_ms: int
    via_digest: str | None = Field(None, description="Sent in this digest delivery (only then present)")


class DeliveryOut(Answer):
    delivery: str
    building: str
    channel: str
    kind: str | None
    message: str | None = Field(description="None: a digest of several messages")
    priority: str
    status: str
    attempts: int
    next_attempt_at: UtcTime | None
    sent_at: UtcTime | None
    digest: str | None = Field(description="The digest delivery that carried it, if any")
    log: list[AttemptOut]


class MessageShown(MessageOut):
    delivery_log: list[DeliveryOut]


class DeliveryList(Answer):
    deliveries: list[DeliveryOut]


class QuestionGroupOut(Answer):
    question_group: str
    text: str
    asked: int
    buildings: dict[str, int] = Field(description="How often each building asked")
    examples: list[str]
    first_at: UtcTime
    last_at: UtcTime
    answer: str | None


class QuestionGroups(Answer):
    groups: list[QuestionGroupOut]


class FaqEntry(Answer):
    answer: str
    question: str
    text: str
    policy_points: list[str]
    asked: int
    buildings: int = Field(description="How many buildings asked")
    answered_at: UtcTime


class FaqOut(Answer):
    faq: list[FaqEntry]


class DailyAccountIn(BaseModel):
    """Which day's account to send now: today unless said (a past day when notify was down at the set hour)."""

    model_config = ConfigDict(extra="forbid")
    on: date | None = None


class DailyAccountSent(BaseModel):
    day: date
    buildings: list[str] = Field(description="the building groups the day's account is for")
    composed: int = Field(description="accounts composed now; 0 when the day's were already sent")
