"""Credential recovery needs a second person; sessions end when credentials change (issue 22, SATRE 3.2.01).

A per-principal credential epoch (tokens carry the one they were issued under) and the recovery holds.

Revision ID: 0017_recovery
Revises: 0016_totp_throttle
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_recovery"
down_revision = "0016_totp_throttle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ALTER TABLE ADD COLUMN in place on both databases: a batch copy of ``principals`` would drop the
    # table, which SQLite's foreign keys refuse once other rows reference a principal (every real home).
    op.add_column(
        "principals", sa.Column("credential_epoch", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.create_table(
        "principal_recovery_holds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("opened_by", sa.String(length=160), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(length=160), nullable=True),
        sa.Column("clear_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"], ["principals.id"], name=op.f("fk_principal_recovery_holds_principal_id_principals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_principal_recovery_holds")),
    )
    op.create_index(
        op.f("ix_principal_recovery_holds_principal_id"), "principal_recovery_holds", ["principal_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_principal_recovery_holds_principal_id"), table_name="principal_recovery_holds")
    op.drop_table("principal_recovery_holds")
    # A plain column: both databases drop it in place (SQLite since 3.35). A batch copy would drop and
    # recreate ``principals``, which the tables referencing it refuse under SQLite's foreign keys.
    op.drop_column("principals", "credential_epoch")
