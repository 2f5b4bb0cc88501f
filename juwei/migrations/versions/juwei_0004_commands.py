"""Exactly-once commands: the ledger of Idempotency-Keys and the answers given (``juwei.commands``).

Revision ID: juwei_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "juwei_0004"
down_revision = "juwei_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "juwei_commands",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.String(2000), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("response", sa.Text, nullable=True),
        sa.Column("media_type", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("juwei_commands")
