"""Notify's tables: read models rebuilt by ``juwei replay notify``, and the delivery queue, which is not.

Read models (projections): building groups and their members (from residents events), channels, quiet
hours, messages and the boards' feed, questions grouped as near-duplicates, and the FAQ.

Not projections (like the kernel's inbox and checkpoints): ``notify_deliveries`` — the queue of what must
go out over which channel, its unique ``delivery_key`` written in the same transaction as the message
that caused it — with ``notify_attempts`` (every attempt) and ``notify_channel_state`` (which dispatcher
holds a channel, until when a platform blocks it). They record what happened in the outside world, which
a replay cannot redo; ``notify_board_tokens`` holds the boards' unguessable links.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    select,
    update,
)

from contracts.access import CompoundPlacements, Departures
from contracts.notify import (
    ChannelAttached,
    ChannelDetached,
    ChannelReconfigured,
    MessageComposed,
    QuestionsAnswered,
    QuestionSubmitted,
    QuietHoursSet,
)
from contracts.residents import (
    BuildingRegistered,
    HouseholdRegistered,
    RepresentativeChosen,
    ResidentErased,
    ResidentMoved,
)
from contracts.testing import SamplingPointChanged, SamplingPointClosed, SamplingPointOpened
from juwei.events import Envelope
from juwei.projection import Projection, upsert
from juwei.session import Session
from services.notify.domain import QuestionGroup, bigrams, closest_group, redact

tables = MetaData()
Seq = BigInteger().with_variant(Integer(), "sqlite")

groups = Table(
    "notify_groups",
    tables,
    Column("building", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("number", String(40), nullable=False),
    Column("lifts", Integer, nullable=False),
)
# Sampling points (from testing): their names tell a called floor where to go.
sampling_points = Table(
    "notify_sampling_points",
    tables,
    Column("point", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("open", Boolean, nullable=False),
)
households = Table(
    "notify_households",
    tables,
    Column("household", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", String(100), nullable=False, index=True),
    Column("representative", String(100), nullable=True),
)
channels = Table(
    "notify_channels",
    tables,
    Column("channel", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", String(100), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("language", String(5), nullable=False),
    Column("label", String(200), nullable=False),
    Column("config", Text, nullable=False),  # the vault's sealed token, never the secret itself
    Column("active", Boolean, nullable=False),
    Column("attached_at", DateTime(timezone=True), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)
quiet_hours = Table(
    "notify_quiet_hours",
    tables,
    Column("compound", String(64), primary_key=True),
    Column("start", String(5), nullable=True),
    Column("end", String(5), nullable=True),
)
messages = Table(
    "notify_messages",
    tables,
    Column("message", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("priority", String(20), nullable=False),
    Column("template", String(60), nullable=False),
    Column("cause", String(64), nullable=True),
    Column("buildings", Text, nullable=False),
    Column("title_zh", Text, nullable=False),
    Column("body_zh", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("body_en", Text, nullable=False),
    Column("composed_at", DateTime(timezone=True), nullable=False),
    Column("position", Seq, nullable=False, index=True),
)
# One row per (message, building): a board reads its building's rows after a position (its SSE id).
board_items = Table(
    "notify_board_items",
    tables,
    Column("message", String(100), primary_key=True),
    Column("building", String(100), primary_key=True),
    Column("compound", String(64), nullable=False),
    Column("position", Seq, nullable=False),
    Index("ix_notify_board_items_building_position", "building", "position"),
)
questions = Table(
    "notify_questions",
    tables,
    Column("question", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("building", String(100), nullable=False),
    Column("text", Text, nullable=False),
    Column("question_group", String(100), nullable=False, index=True),
    Column("answer", String(100), nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
)
question_groups = Table(
    "notify_question_groups",
    tables,
    Column("question_group", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("text", Text, nullable=False),  # the first question, as staff see the group
    Column("grams", Text, nullable=False),  # the members' bigram counts (JSON): the group's centroid
    Column("size", Integer, nullable=False),
    Column("answer", String(100), nullable=True),
    Column("first_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
)
faq = Table(
    "notify_faq",
    tables,
    Column("answer", String(100), primary_key=True),
    Column("compound", String(64), nullable=False, index=True),
    Column("message", String(100), nullable=False),
    Column("question", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("policy_points", Text, nullable=False),
    Column("buildings", Text, nullable=False),
    Column("asked", Integer, nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=False),
)

# --- not projections ------------------------------------------------------------------------------------

deliveries = Table(
    "notify_deliveries",
    tables,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("delivery", String(64), nullable=False),  # the id on the bus (uuid5 of the key)
    Column("delivery_key", String(400), nullable=False),
    Column("compound", String(64), nullable=False, index=True),
    Column("message", String(100), nullable=True),  # none for a digest
    Column("building", String(100), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("priority", String(20), nullable=False),
    # pending → sending → sent | pending (retry) | dead | uncertain; digested (merged); cancelled (detached)
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("claimed_by", String(100), nullable=True),
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    Column("digest", Seq, nullable=True),  # the digest delivery a digested one was merged into
    Column("digest_title", Text, nullable=True),  # a digest's own text (it has no message)
    Column("digest_body", Text, nullable=True),
    Column("last_code", String(60), nullable=True),
    Column("traceparent", String(64), nullable=True),  # the trace it was queued in: its send joins it
    UniqueConstraint("delivery_key", name="uq_notify_deliveries_key"),
    UniqueConstraint("delivery", name="uq_notify_deliveries_delivery"),
    Index("ix_notify_deliveries_due", "status", "channel", "next_attempt_at"),
    Index("ix_notify_deliveries_message", "message"),
)
attempts = Table(
    "notify_attempts",
    tables,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("delivery_id", Seq, nullable=False, index=True),
    Column("channel", String(100), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    # sent | rate_limited | transient | permanent | uncertain | deferred (quiet hours) | digested | requeued
    Column("outcome", String(20), nullable=False),
    Column("requested", Boolean, nullable=False),  # a request reached the platform: counts against its limit
    Column("code", String(60), nullable=False),
    Column("detail", Text, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_notify_attempts_channel_at", "channel", "at"),
)
channel_state = Table(
    "notify_channel_state",
    tables,
    Column("channel", String(100), primary_key=True),
    Column("lease_owner", String(100), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("blocked_until", DateTime(timezone=True), nullable=True),
    Column("broken", Text, nullable=True),  # why the platform refuses the channel itself (bad key, bad signature)
)
# Webhook subscriptions of outside systems (services.notify.subscriptions): who registered what, the queue of
# events for each (the body as that key's feed shows it) and every attempt. Their leases are channel_state rows.
subscriptions = Table(
    "notify_subscriptions",
    tables,
    Column("subscription", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False, index=True),  # the key that registered it: its deliveries stop with it
    Column("holder", String(220), nullable=False),
    Column("role", String(40), nullable=False),
    Column("types", Text, nullable=False),  # JSON list of base type names
    Column("compounds", Text, nullable=False),  # JSON list
    Column("health", Boolean, nullable=False),  # the key's grant: health fields in the body
    Column("endpoint", String(300), nullable=False),  # scheme and host only, for listings
    Column("config", Text, nullable=False),  # the vault's sealed {url, secret}
    Column("active", Boolean, nullable=False),  # false: paused, its events queue up
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)
subscription_deliveries = Table(
    "notify_subscription_deliveries",
    tables,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("subscription", String(64), nullable=False),
    Column("lane", String(200), nullable=False),  # the building (else the stream): a lane goes out in order
    Column("event_id", String(64), nullable=False),  # the webhook-id
    Column("event_type", String(200), nullable=False),
    Column("compound", String(64), nullable=False, index=True),
    Column("position", Seq, nullable=True),  # the event's position in its own service's feed
    Column("inbox_seq", Seq, nullable=False),
    Column("replay", String(64), nullable=False),  # "" for the first delivery, else the replay that queued it
    Column("body", Text, nullable=False),
    # pending → sending → sent | pending (retry) | dead (given up)
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("claimed_by", String(100), nullable=True),
    Column("last_code", String(60), nullable=True),
    UniqueConstraint("subscription", "event_id", "replay", name="uq_notify_subscription_deliveries_event"),
    Index("ix_notify_subscription_deliveries_due", "subscription", "status", "id"),
)
subscription_attempts = Table(
    "notify_subscription_attempts",
    tables,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("delivery_id", Seq, nullable=False, index=True),
    Column("subscription", String(64), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(20), nullable=False),  # sent | rate_limited | transient | dead | orphaned
    Column("status_code", Integer, nullable=True),  # the receiver's HTTP status, when it answered
    Column("code", String(60), nullable=False),
    Column("duration_ms", Integer, nullable=False),
)
board_tokens = Table(
    "notify_board_tokens",
    tables,
    Column("token", String(64), primary_key=True),
    Column("building", String(100), nullable=False, index=True),
    Column("compound", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


def _kind(envelope: Envelope) -> str:
    return envelope.type.split(".")[2]


class Groups(Projection):
    """One group per building; members are the households' representatives (ids only)."""

    name = "groups"
    tables = (groups, households)
    reads = (
        BuildingRegistered,
        HouseholdRegistered,
        RepresentativeChosen,
        ResidentMoved,
        ResidentErased,
    )

    def apply(self, session: Session, envelope: Envelope) -> None:
        data, kind = envelope.data, _kind(envelope)
        if kind == "BuildingRegistered":
            upsert(
                session,
                groups,
                {"building": data["building"]},
                {"compound": envelope.compound, "number": str(data["number"])[:40], "lifts": int(data.get("lifts", 0))},
            )
        elif kind == "HouseholdRegistered":
            upsert(
                session,
                households,
                {"household": data["household"]},
                {"compound": envelope.compound, "building": data["building"], "representative": None},
            )
        elif kind == "RepresentativeChosen":
            session.execute(
                update(households)
                .where(households.c.household == data["household"])
                .values(representative=data["resident"])
            )
        elif kind in ("ResidentMoved", "ResidentErased"):
            household = data["from_household"] if kind == "ResidentMoved" else data["household"]
            session.execute(
                update(households)
                .where(households.c.household == household, households.c.representative == data["resident"])
                .values(representative=None)
            )


class SamplingPoints(Projection):
    name = "sampling_points"
    tables = (sampling_points,)
    reads = (SamplingPointOpened, SamplingPointChanged, SamplingPointClosed)

    def apply(self, session: Session, envelope: Envelope) -> None:
        data, kind = envelope.data, _kind(envelope)
        if kind == "SamplingPointClosed":
            session.execute(update(sampling_points).where(sampling_points.c.point == data["point"]).values(open=False))
            return
        upsert(
            session,
            sampling_points,
            {"point": data["point"]},
            {"compound": envelope.compound, "name": str(data.get("name", ""))[:200], "open": True},
        )


class Channels(Projection):
    name = "channels"
    tables = (channels, quiet_hours)
    reads = (ChannelAttached, ChannelReconfigured, ChannelDetached, QuietHoursSet)

    def apply(self, session: Session, envelope: Envelope) -> None:
        data, kind = {**envelope.data, **(envelope.private or {})}, _kind(envelope)
        if kind == "ChannelAttached":
            upsert(
                session,
                channels,
                {"channel": data["channel"]},
                {
                    "compound": envelope.compound,
                    "building": data["building"],
                    "kind": data["kind"],
                    "language": data.get("language", "zh"),
                    "label": data.get("label", ""),
                    "config": data.get("config", ""),
                    "active": True,
                    "attached_at": envelope.time,
                    "changed_at": envelope.time,
                },
            )
        elif kind == "ChannelReconfigured":
            session.execute(
                update(channels)
                .where(channels.c.channel == data["channel"])
                .values(config=data.get("config", ""), language=data.get("language", "zh"), changed_at=envelope.time)
            )
        elif kind == "ChannelDetached":
            session.execute(
                update(channels)
                .where(channels.c.channel == data["channel"])
                .values(active=False, config="", changed_at=envelope.time)
            )
        elif kind == "QuietHoursSet":
            upsert(
                session,
                quiet_hours,
                {"compound": envelope.compound},
                {"start": data.get("start"), "end": data.get("end")},
            )


_INSERT_MESSAGE = messages.insert()
_INSERT_BOARD_ITEM = board_items.insert()


class Messages(Projection):
    """Every message with its texts, and each building board's feed."""

    name = "messages"
    tables = (messages, board_items)
    reads = (MessageComposed,)

    def apply(self, session: Session, envelope: Envelope) -> None:
        self.apply_many(session, [envelope])

    def apply_many(self, session: Session, envelopes: Sequence[Envelope]) -> None:
        # One INSERT per table for the run, not one per envelope: each statement costs more than SQLite's work.
        rows: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        for envelope in envelopes:
            data = {**envelope.data, **(envelope.private or {})}
            position = envelope.position or 0
            rows.append(
                {
                    "message": data["message"],
                    "compound": envelope.compound,
                    "kind": data["kind"],
                    "priority": data["priority"],
                    "template": data.get("template", ""),
                    "cause": data.get("cause"),
                    "buildings": json.dumps(data["buildings"]),
                    "title_zh": data.get("title_zh", ""),
                    "body_zh": data.get("body_zh", ""),
                    "title_en": data.get("title_en", ""),
                    "body_en": data.get("body_en", ""),
                    "composed_at": envelope.time,
                    "position": position,
                }
            )
            items.extend(
                {"message": data["message"], "building": b, "compound": envelope.compound, "position": position}
                for b in data["buildings"]
            )
        if not rows:
            return
        connection = session.connection()
        connection.execute(_INSERT_MESSAGE, rows)
        if items:
            connection.execute(_INSERT_BOARD_ITEM, items)


class Questions(Projection):
    """Residents' questions, grouped as they arrive: a question joins the most similar open group, or starts one."""

    name = "questions"
    tables = (questions, question_groups, faq)
    reads = (QuestionSubmitted, QuestionsAnswered)

    def apply(self, session: Session, envelope: Envelope) -> None:
        data = {**envelope.data, **(envelope.private or {})}
        if _kind(envelope) == "QuestionSubmitted":
            self._submitted(session, envelope, data)
        else:
            self._answered(session, envelope, data)

    def _submitted(self, session: Session, envelope: Envelope, data: dict[str, Any]) -> None:
        from collections import Counter

        text = data.get("text", "")
        open_groups = [
            QuestionGroup(row.question_group, Counter(json.loads(row.grams)), row.size)
            for row in session.execute(
                select(question_groups.c.question_group, question_groups.c.grams, question_groups.c.size).where(
                    question_groups.c.compound == envelope.compound, question_groups.c.answer.is_(None)
                )
            )
        ]
        found = closest_group(text, open_groups)
        grams = bigrams(text)
        if found is None:
            group_id = f"{envelope.compound}:g-{data['question'].split(':', 1)[-1]}"
            session.execute(
                question_groups.insert().values(
                    question_group=group_id,
                    compound=envelope.compound,
                    text=redact(text),
                    grams=json.dumps(dict(grams), ensure_ascii=False),
                    size=1,
                    answer=None,
                    first_at=envelope.time,
                    last_at=envelope.time,
                )
            )
        else:
            group_id = found.id
            session.execute(
                update(question_groups)
                .where(question_groups.c.question_group == group_id)
                .values(
                    grams=json.dumps(dict(found.grams + grams), ensure_ascii=False),
                    size=found.size + 1,
                    last_at=envelope.time,
                )
            )
        session.execute(
            questions.insert().values(
                question=data["question"],
                compound=envelope.compound,
                building=data["building"],
                text=redact(text),
                question_group=group_id,
                answer=None,
                submitted_at=envelope.time,
            )
        )

    def _answered(self, session: Session, envelope: Envelope, data: dict[str, Any]) -> None:
        answered = data["questions"]
        session.execute(update(questions).where(questions.c.question.in_(answered)).values(answer=data["answer_id"]))
        touched = (
            session.execute(select(questions.c.question_group).where(questions.c.question.in_(answered)).distinct())
            .scalars()
            .all()
        )
        session.execute(
            update(question_groups)
            .where(question_groups.c.question_group.in_(touched))
            .values(answer=data["answer_id"])
        )
        session.execute(delete(faq).where(faq.c.answer == data["answer_id"]))
        session.execute(
            faq.insert().values(
                answer=data["answer_id"],
                compound=envelope.compound,
                message=data["message"],
                question=data.get("question_text", ""),
                text=data.get("answer", ""),
                policy_points=json.dumps(data.get("policy_points", []), ensure_ascii=False),
                buildings=json.dumps(data["buildings"]),
                asked=len(answered),
                answered_at=envelope.time,
            )
        )


def projections() -> list[Projection]:
    from services.notify.account.views import DailyAccounts  # it reads this module's questions table

    return [
        Groups(),
        SamplingPoints(),
        Channels(),
        Messages(),
        Questions(),
        DailyAccounts(),
        Departures(),
        CompoundPlacements(),
    ]
