"""Custodians agree to access, and policies are approved by four eyes (issue 22, SATRE 1.5.04 and 1.2.01).

``egress_delegations`` gains ``kind``: ``egress`` (every existing row: the release sign-off) or
``access`` (the agreement to licences over the dataset). ``licence_agreements`` holds each custodian's
decision on a dataset of a licence; ``policy_approvals`` each proposed desensitization policy (by level
and canonical digest) and the agency's decision on it.

Licences already active stay active (their basis was the agency's grant, before this rule); a licence
not yet active needs its custodians' agreement from now on.

Revision ID: 0018_consent
Revises: 0017_recovery
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_consent"
down_revision = "0017_recovery"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # In place on both databases (a batch copy would drop a table other rows may reference).
    op.add_column(
        "egress_delegations", sa.Column("kind", sa.String(length=16), nullable=False, server_default="egress")
    )
    op.create_table(
        "licence_agreements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("licence_id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("custodian", sa.String(length=160), nullable=False),
        sa.Column("org", sa.String(length=128), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _when("decided_at"),
        sa.ForeignKeyConstraint(
            ["licence_id"], ["licences.id"], name=op.f("fk_licence_agreements_licence_id_licences")
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resources.id"], name=op.f("fk_licence_agreements_resource_id_resources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_agreements")),
        sa.UniqueConstraint("licence_id", "resource_id", name="uq_licence_agreements_licence_id_resource_id"),
    )
    op.create_index(op.f("ix_licence_agreements_licence_id"), "licence_agreements", ["licence_id"], unique=False)
    op.create_table(
        "policy_approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("level", sa.String(length=2), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("proposed_by", sa.String(length=160), nullable=False),
        sa.Column("proposed_role", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _when("proposed_at"),
        sa.Column("decided_by", sa.String(length=160), nullable=True),
        _when("decided_at", nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_approvals")),
    )
    op.create_index("ix_policy_approvals_level_sha256", "policy_approvals", ["level", "sha256"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_policy_approvals_level_sha256", table_name="policy_approvals")
    op.drop_table("policy_approvals")
    op.drop_index(op.f("ix_licence_agreements_licence_id"), table_name="licence_agreements")
    op.drop_table("licence_agreements")
    op.drop_column("egress_delegations", "kind")
