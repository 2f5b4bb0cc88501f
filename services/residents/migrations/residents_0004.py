"""Work groups of the compound, volunteers' availability, and whom the medicine survey has asked each week.

Revision ID: residents_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "residents_0004"
down_revision = "residents_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "res_work_groups",
        sa.Column("work_group", sa.String(length=100), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("work_group"),
    )
    op.create_index(op.f("ix_res_work_groups_compound"), "res_work_groups", ["compound"], unique=False)
    op.create_table(
        "res_work_group_members",
        sa.Column("work_group", sa.String(length=100), nullable=False),
        sa.Column("volunteer", sa.String(length=100), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("work_group", "volunteer"),
    )
    op.create_index(op.f("ix_res_work_group_members_compound"), "res_work_group_members", ["compound"], unique=False)
    op.create_table(
        "res_availability",
        sa.Column("volunteer", sa.String(length=100), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("slots", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("volunteer"),
    )
    op.create_index(op.f("ix_res_availability_compound"), "res_availability", ["compound"], unique=False)
    op.create_table(
        "res_medicine_asked",
        sa.Column("resident", sa.String(length=100), nullable=False),
        sa.Column("week", sa.String(length=10), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=100), nullable=False),
        sa.Column("asked_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("resident", "week"),
    )
    op.create_index(op.f("ix_res_medicine_asked_compound"), "res_medicine_asked", ["compound"], unique=False)
    op.create_index(op.f("ix_res_medicine_asked_building"), "res_medicine_asked", ["building"], unique=False)


def downgrade() -> None:
    for table in ("res_medicine_asked", "res_availability", "res_work_group_members", "res_work_groups"):
        op.drop_table(table)
