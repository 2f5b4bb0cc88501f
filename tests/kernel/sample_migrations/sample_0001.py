"""Sample read models.

Revision ID: sample_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "sample_0001"
down_revision = None
branch_labels = ("sample",)
depends_on = "juwei_0001"


def upgrade() -> None:
    for name in ("desk_totals", "board_totals"):
        op.create_table(
            name,
            sa.Column("building", sa.String(64), primary_key=True),
            sa.Column("total", sa.Integer, nullable=False),
            sa.Column("events", sa.Integer, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("board_totals")
    op.drop_table("desk_totals")
