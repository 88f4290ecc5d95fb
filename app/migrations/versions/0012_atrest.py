"""Encryption at rest (issue 22, SATRE 2.8.01): the data keys of copies, fingerprints, outputs, products.

Revision ID: 0012_atrest
Revises: 0011_custodian_signoff
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_atrest"
down_revision = "0011_custodian_signoff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=160), nullable=False),
        sa.Column("live_scope", sa.String(length=160), nullable=True),
        sa.Column("wrapped", sa.String(length=96), nullable=True),
        sa.Column("master_id", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=160), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_by", sa.String(length=160), nullable=True),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("destroyed_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_keys")),
        sa.UniqueConstraint("live_scope", name=op.f("uq_data_keys_live_scope")),
    )
    op.create_index("ix_data_keys_scope", "data_keys", ["scope"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_data_keys_scope", table_name="data_keys")
    op.drop_table("data_keys")
