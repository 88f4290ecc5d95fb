"""Custodians have a say on egress (issue 22, SATRE 3.1.06 and 1.5.04): per-dataset standing delegations
to the agency, custodians' sign-offs of releases, and each release's snapshot of which datasets need one.

Releases made before this migration need no sign-off (``signoff_required`` is empty): they keep the
rule they were requested under, as a release requested after a delegation's withdrawal keeps its own.

Revision ID: 0011_custodian_signoff
Revises: 0010_retention
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_custodian_signoff"
down_revision = "0010_retention"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "egress_delegations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("org", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _when("expires_at", nullable=True),
        sa.Column("granted_by", sa.String(length=160), nullable=False),
        _when("granted_at"),
        sa.Column("withdrawn_by", sa.String(length=160), nullable=True),
        _when("withdrawn_at", nullable=True),
        sa.Column("withdraw_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resources.id"], name=op.f("fk_egress_delegations_resource_id_resources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_egress_delegations")),
    )
    op.create_index(
        "ix_egress_delegations_resource_id_withdrawn_at",
        "egress_delegations",
        ["resource_id", "withdrawn_at"],
        unique=False,
    )
    op.create_table(
        "release_signoffs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("custodian", sa.String(length=160), nullable=False),
        sa.Column("org", sa.String(length=128), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _when("signed_at"),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"], name=op.f("fk_release_signoffs_release_id_releases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_signoffs")),
        sa.UniqueConstraint("release_id", "round", "dataset", name="uq_release_signoffs_release_id_round_dataset"),
    )
    op.create_index(op.f("ix_release_signoffs_release_id"), "release_signoffs", ["release_id"], unique=False)
    # In place (ALTER TABLE ADD COLUMN) on both databases: a batch copy of ``releases`` drops the table,
    # which SQLite's foreign keys refuse once a vote references a release (any home with data).
    op.add_column("releases", sa.Column("signoff_required", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    op.add_column("releases", sa.Column("delegated", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    op.drop_column("releases", "delegated")
    op.drop_column("releases", "signoff_required")
    op.drop_index(op.f("ix_release_signoffs_release_id"), table_name="release_signoffs")
    op.drop_table("release_signoffs")
    op.drop_index("ix_egress_delegations_resource_id_withdrawn_at", table_name="egress_delegations")
    op.drop_table("egress_delegations")
