"""The unreachable: households that hear no building group, and the calls urgent messages oblige.

Revision ID: notify_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0005"
down_revision = "notify_0004"
branch_labels = None
depends_on = None

Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notify_unreachable",
        sa.Column("household", sa.String(length=100), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=100), nullable=False),
        sa.Column("floor", sa.Integer(), nullable=False),
        sa.Column("room", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("marked", sa.Boolean(), nullable=False),
        sa.Column("changed_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("household"),
    )
    op.create_index(op.f("ix_notify_unreachable_compound"), "notify_unreachable", ["compound"], unique=False)
    op.create_index(op.f("ix_notify_unreachable_building"), "notify_unreachable", ["building"], unique=False)
    op.create_table(
        "notify_calls",
        sa.Column("call", sa.String(length=100), nullable=False),
        sa.Column("call_list", sa.String(length=100), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=100), nullable=False),
        sa.Column("household", sa.String(length=100), nullable=False),
        sa.Column("message", sa.String(length=100), nullable=False),
        sa.Column("listed_at", Moment, nullable=False),
        sa.Column("due_at", Moment, nullable=False),
        sa.Column("done_at", Moment, nullable=True),
        sa.Column("done_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("call"),
    )
    op.create_index("ix_notify_calls_building", "notify_calls", ["building", "done_at"], unique=False)
    op.create_index("ix_notify_calls_due", "notify_calls", ["compound", "done_at", "due_at"], unique=False)


def downgrade() -> None:
    op.drop_table("notify_calls")
    op.drop_table("notify_unreachable")
