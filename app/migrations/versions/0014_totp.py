"""Every person's second factor (issue 22, SATRE 3.2.04): one sealed TOTP secret per principal.

Revision ID: 0014_totp
Revises: 0013_people_standing
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_totp"
down_revision = "0013_people_standing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "principal_totp",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"], ["principals.id"], name=op.f("fk_principal_totp_principal_id_principals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_principal_totp")),
        sa.UniqueConstraint("principal_id", name=op.f("uq_principal_totp_principal_id")),
    )


def downgrade() -> None:
    op.drop_table("principal_totp")
