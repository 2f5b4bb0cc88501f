"""A queued delivery keeps the trace it was queued in, so that its later send joins that trace.

Revision ID: notify_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0002"
down_revision = "notify_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notify_deliveries", sa.Column("traceparent", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("notify_deliveries", "traceparent")
