"""The register of compounds: each compound's subdistrict (街道), name and own zone rules.

Revision ID: residents_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "residents_0005"
down_revision = "residents_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "res_compounds",
        sa.Column("compound", sa.String(length=64), primary_key=True),
        sa.Column("subdistrict", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("sealed_days", sa.Integer(), nullable=True),
        sa.Column("precaution_days", sa.Integer(), nullable=True),
    )
    op.create_index("ix_res_compounds_subdistrict", "res_compounds", ["subdistrict"])


def downgrade() -> None:
    op.drop_index("ix_res_compounds_subdistrict", table_name="res_compounds")
    op.drop_table("res_compounds")
