"""Keys name their holder (and may carry a read grant); reads of sensitive data are audited.

Keys issued before this revision are marked as held by a system named after their label: re-issue them
to a person with ``juwei keys create`` (the old ones keep working until revoked).

Revision ID: juwei_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "juwei_0003"
down_revision = "juwei_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("juwei_api_keys") as batch:
        batch.add_column(sa.Column("holder_kind", sa.String(20), nullable=True))
        batch.add_column(sa.Column("holder", sa.String(200), nullable=True))
        batch.add_column(sa.Column("read_grant", sa.Text, nullable=True))
    op.execute(
        "UPDATE juwei_api_keys SET holder_kind = 'system', "
        "holder = COALESCE(label, 'key issued before keys named their holders') WHERE holder_kind IS NULL"
    )
    op.create_index("ix_juwei_api_keys_holder", "juwei_api_keys", ["holder_kind", "holder"])
    op.create_table(
        "juwei_sensitive_reads",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(220), nullable=True),
        sa.Column("compound", sa.String(64), nullable=False),
        sa.Column("building", sa.String(100), nullable=True),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("fields", sa.String(300), nullable=False),
        sa.Column("purpose", sa.String(300), nullable=False),
        sa.Column("route", sa.String(300), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_juwei_sensitive_reads_compound_seq", "juwei_sensitive_reads", ["compound", "seq"])
    op.create_index("ix_juwei_sensitive_reads_subject", "juwei_sensitive_reads", ["subject"])


def downgrade() -> None:
    op.drop_table("juwei_sensitive_reads")
    op.drop_index("ix_juwei_api_keys_holder", table_name="juwei_api_keys")
    with op.batch_alter_table("juwei_api_keys") as batch:
        batch.drop_column("read_grant")
        batch.drop_column("holder")
        batch.drop_column("holder_kind")
