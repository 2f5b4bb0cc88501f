"""Key rotation (an expiry and a successor per key) and the record of compounds whose data was retired.

Revision ID: juwei_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "juwei_0002"
down_revision = "juwei_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("juwei_api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("successor", sa.String(32), nullable=True))
    op.create_table(
        "juwei_retention",
        sa.Column("compound", sa.String(64), primary_key=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("report", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("juwei_retention")
    with op.batch_alter_table("juwei_api_keys") as batch:
        batch.drop_column("successor")
        batch.drop_column("expires_at")
