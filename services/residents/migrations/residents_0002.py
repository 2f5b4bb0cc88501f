"""The identity-read audit moves into the kernel's audit of sensitive reads (identity and health alike).

Rows already recorded are copied over (their purpose was not asked then), then the old table goes.

Revision ID: residents_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "residents_0002"
down_revision = "residents_0001"
branch_labels = None
depends_on = "juwei_0003"


def upgrade() -> None:
    op.execute(
        "INSERT INTO juwei_sensitive_reads "
        "(at, key_id, role, holder, compound, building, subject, kind, fields, purpose, route, request_id) "
        "SELECT r.at, r.key_id, r.role, NULL, r.compound, p.building, r.resident, 'identity', r.fields, "
        "'revealed (recorded before purposes were asked)', '', r.request_id "
        "FROM res_identity_reads r LEFT JOIN res_residents p ON p.resident = r.resident ORDER BY r.seq"
    )
    op.drop_index(op.f("ix_res_identity_reads_resident"), table_name="res_identity_reads")
    op.drop_index(op.f("ix_res_identity_reads_compound"), table_name="res_identity_reads")
    op.drop_table("res_identity_reads")


def downgrade() -> None:
    op.create_table(
        "res_identity_reads",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("compound", sa.String(length=64), nullable=False),
        sa.Column("resident", sa.String(length=100), nullable=False),
        sa.Column("fields", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(op.f("ix_res_identity_reads_compound"), "res_identity_reads", ["compound"], unique=False)
    op.create_index(op.f("ix_res_identity_reads_resident"), "res_identity_reads", ["resident"], unique=False)
