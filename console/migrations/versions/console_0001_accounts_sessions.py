"""The console's accounts, sessions and invitations.

Revision ID: console_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "console_0001"
down_revision = None
branch_labels = ("console",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_staff_accounts",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("compound", sa.String(40), nullable=False),
        sa.Column("staff", sa.String(120), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("sealed_key", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64)),
        sa.Column("compound", sa.String(40), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("holder_kind", sa.String(20), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("buildings", sa.Text),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("sealed_key", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idle_seconds", sa.String(12), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_console_sessions_key", "console_sessions", ["key_id"])
    op.create_table(
        "console_invitations",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("compound", sa.String(40), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("holder_kind", sa.String(20), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("buildings", sa.Text),
        sa.Column("label", sa.String(200)),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("sealed_key", sa.Text, nullable=False),
        sa.Column("key_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invited_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("console_invitations")
    op.drop_index("ix_console_sessions_key", "console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_staff_accounts")
