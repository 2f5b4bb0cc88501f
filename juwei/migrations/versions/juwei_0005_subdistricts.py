"""The subdistrict tier: a key may be scoped to a subdistrict; each service keeps which subdistrict each compound
belongs to (``juwei.subdistricts``).

Revision ID: juwei_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "juwei_0005"
down_revision = "juwei_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("juwei_api_keys") as batch:
        batch.add_column(sa.Column("subdistrict", sa.String(64), nullable=True))
    op.create_table(
        "juwei_compound_subdistricts",
        sa.Column("compound", sa.String(64), primary_key=True),
        sa.Column("subdistrict", sa.String(64), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_juwei_compound_subdistricts_subdistrict", "juwei_compound_subdistricts", ["subdistrict"])


def downgrade() -> None:
    op.drop_index("ix_juwei_compound_subdistricts_subdistrict", table_name="juwei_compound_subdistricts")
    op.drop_table("juwei_compound_subdistricts")
    with op.batch_alter_table("juwei_api_keys") as batch:
        batch.drop_column("subdistrict")
