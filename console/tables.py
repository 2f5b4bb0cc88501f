"""The console's own tables: staff accounts, sessions and one-time invitations (nothing of the services')."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text

metadata = MetaData()

# A staff member's sign-in: the password hash and the key the console acts with on their behalf (sealed).
staff_accounts = Table(
    "console_staff_accounts",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("compound", String(40), nullable=False),
    Column("staff", String(120), nullable=False),
    Column("password_hash", String(300), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("sealed_key", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True)),
)

# A signed-in browser: the cookie holds a random token, the row only its SHA-256.
sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("csrf", String(64), nullable=False),
    Column("username", String(64)),  # staff; None for an invited person
    Column("compound", String(40), nullable=False),
    Column("role", String(40), nullable=False),
    Column("holder_kind", String(20), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("buildings", Text),  # JSON list; None: every building of the compound
    Column("key_id", String(64), nullable=False),
    Column("sealed_key", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("idle_seconds", String(12), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Index("ix_console_sessions_key", "key_id"),
)

# A one-time link for a volunteer or household: opening it once makes a session; its key is already issued.
invitations = Table(
    "console_invitations",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("compound", String(40), nullable=False),
    Column("role", String(40), nullable=False),
    Column("holder_kind", String(20), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("buildings", Text),
    Column("label", String(200)),
    Column("key_id", String(64), nullable=False),
    Column("sealed_key", Text, nullable=False),
    Column("key_expires_at", DateTime(timezone=True), nullable=False),
    Column("invited_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)
