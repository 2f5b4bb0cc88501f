"""The compound's volunteers as residents publishes them: a sampling point's key may name one of them.

Revision ID: testing_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "testing_0002"
down_revision = "testing_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tst_volunteers",
        sa.Column("volunteer", sa.String(length=100), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=100), nullable=False),
        sa.Column("serving", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("volunteer"),
    )
    op.create_index(op.f("ix_tst_volunteers_compound"), "tst_volunteers", ["compound"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_tst_volunteers_compound"), table_name="tst_volunteers")
    op.drop_table("tst_volunteers")
