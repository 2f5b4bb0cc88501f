"""The daily account's day counters: per building and local day, the samples of unresulted tubes, each round's
residents and first samples per building.

Revision ID: notify_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0004"
down_revision = "notify_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_account_counts",
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("figure", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("compound", "building", "day", "figure"),
    )
    op.create_table(
        "notify_account_tubes",
        sa.Column("tube", sa.String(length=100), nullable=False),
        sa.Column("building", sa.String(length=100), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("resulted_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("compound", "tube", "building"),
    )
    op.create_table(
        "notify_account_rounds",
        sa.Column("round", sa.String(length=100), nullable=False),
        sa.Column("building", sa.String(length=100), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("residents", sa.Integer(), nullable=True),
        sa.Column("tested", sa.Integer(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("compound", "round", "building"),
    )


def downgrade() -> None:
    op.drop_table("notify_account_rounds")
    op.drop_table("notify_account_tubes")
    op.drop_table("notify_account_counts")
