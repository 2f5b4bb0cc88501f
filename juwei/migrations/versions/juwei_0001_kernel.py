"""Kernel tables: events (the outbox), snapshots, checkpoints, inbox, API keys.

Revision ID: juwei_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "juwei_0001"
down_revision = None
branch_labels = ("juwei",)
depends_on = None

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "juwei_events",
        sa.Column("position", Position, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("compound", sa.String(64), nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("building", sa.String(64), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("private", sa.Text, nullable=True),
        sa.Column("traceparent", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.UniqueConstraint("stream_id", "version", name="uq_juwei_events_stream_version"),
    )
    op.create_index("ix_juwei_events_compound_position", "juwei_events", ["compound", "position"])
    op.create_table(
        "juwei_snapshots",
        sa.Column("stream_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
    )
    op.create_table(
        "juwei_checkpoints",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("position", Position, nullable=False),
    )
    op.create_table(
        "juwei_inbox",
        sa.Column("seq", Position, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("consumer", "event_id", name="uq_juwei_inbox_consumer_event"),
    )
    op.create_table(
        "juwei_api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("compound", sa.String(64), nullable=True),
        sa.Column("buildings", sa.Text, nullable=True),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "juwei_subject_keys",
        sa.Column("subject", sa.String(100), primary_key=True),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "juwei_subject_keys",
        "juwei_api_keys",
        "juwei_inbox",
        "juwei_checkpoints",
        "juwei_snapshots",
        "juwei_events",
    ):
        op.drop_table(table)
