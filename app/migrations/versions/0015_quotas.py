"""Compute quotas the agency allocates per operator and per licence (issue 22, SATRE 2.3.03).

Revision ID: 0015_quotas
Revises: 0014_totp
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_quotas"
down_revision = "0014_totp"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_allocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=48), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("licence_id", sa.Integer(), nullable=True),
        sa.Column("concurrent", sa.Integer(), nullable=False),
        sa.Column("per_day", sa.Integer(), nullable=False),
        sa.Column("cpu_seconds_per_day", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("allocated_by", sa.String(length=160), nullable=False),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operator_orgs.id"], name=op.f("fk_quota_allocations_operator_id_operator_orgs")
        ),
        sa.ForeignKeyConstraint(["licence_id"], ["licences.id"], name=op.f("fk_quota_allocations_licence_id_licences")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_allocations")),
        sa.UniqueConstraint("scope", name=op.f("uq_quota_allocations_scope")),
    )
    op.create_index(op.f("ix_quota_allocations_operator_id"), "quota_allocations", ["operator_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_quota_allocations_operator_id"), table_name="quota_allocations")
    op.drop_table("quota_allocations")
