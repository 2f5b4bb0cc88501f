"""The zone alerts (CAP 1.2): every zone change as the public alert that announces it.

Zone changes recorded before this revision get their alerts from a replay: ``juwei replay residents zone_alerts``.

Revision ID: residents_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "residents_0003"
down_revision = "residents_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "res_zone_alerts",
        sa.Column("identifier", sa.String(length=48), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("scope_id", sa.String(length=100), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("sent", sa.DateTime(timezone=True), nullable=False),
        sa.Column("zone", sa.String(length=12), nullable=False),
        sa.Column("previous", sa.String(length=12), nullable=False),
        sa.Column("last_case_on", sa.Date(), nullable=True),
        sa.Column("days_since_last_case", sa.Integer(), nullable=True),
        sa.Column("next_zone", sa.String(length=12), nullable=True),
        sa.Column("next_change_on", sa.Date(), nullable=True),
        sa.Column("decided_by_authority", sa.Boolean(), nullable=False),
        sa.Column("supersedes", sa.String(length=48), nullable=True),
        sa.Column("supersedes_sent", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("identifier"),
    )
    op.create_index(op.f("ix_res_zone_alerts_compound"), "res_zone_alerts", ["compound"], unique=False)
    op.create_index(op.f("ix_res_zone_alerts_scope_id"), "res_zone_alerts", ["scope_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_res_zone_alerts_scope_id"), table_name="res_zone_alerts")
    op.drop_index(op.f("ix_res_zone_alerts_compound"), table_name="res_zone_alerts")
    op.drop_table("res_zone_alerts")
