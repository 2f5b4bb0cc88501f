"""Webhook subscriptions of outside systems: the subscriptions, their queue of events and every attempt.

Revision ID: notify_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0003"
down_revision = "notify_0002"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notify_subscriptions",
        sa.Column("subscription", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=220), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("types", sa.Text(), nullable=False),
        sa.Column("compounds", sa.Text(), nullable=False),
        sa.Column("health", sa.Boolean(), nullable=False),
        sa.Column("endpoint", sa.String(length=300), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("changed_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("subscription"),
    )
    op.create_index(op.f("ix_notify_subscriptions_key_id"), "notify_subscriptions", ["key_id"], unique=False)
    op.create_table(
        "notify_subscription_deliveries",
        sa.Column("id", Seq, autoincrement=True, nullable=False),
        sa.Column("subscription", sa.String(length=64), nullable=False),
        sa.Column("lane", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("position", Seq, nullable=True),
        sa.Column("inbox_seq", Seq, nullable=False),
        sa.Column("replay", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", Moment, nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("sent_at", Moment, nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("last_code", sa.String(length=60), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription", "event_id", "replay", name="uq_notify_subscription_deliveries_event"),
    )
    op.create_index(
        op.f("ix_notify_subscription_deliveries_compound"), "notify_subscription_deliveries", ["compound"], unique=False
    )
    op.create_index(
        "ix_notify_subscription_deliveries_due",
        "notify_subscription_deliveries",
        ["subscription", "status", "id"],
        unique=False,
    )
    op.create_table(
        "notify_subscription_attempts",
        sa.Column("seq", Seq, autoincrement=True, nullable=False),
        sa.Column("delivery_id", Seq, nullable=False),
        sa.Column("subscription", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(
        op.f("ix_notify_subscription_attempts_delivery_id"),
        "notify_subscription_attempts",
        ["delivery_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_notify_subscription_attempts_subscription"),
        "notify_subscription_attempts",
        ["subscription"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("notify_subscription_attempts")
    op.drop_table("notify_subscription_deliveries")
    op.drop_table("notify_subscriptions")
