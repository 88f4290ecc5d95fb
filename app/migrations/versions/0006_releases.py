"""Releases: operators' release requests and the reviewers' sealed votes (issue 7).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(length=128), nullable=False),
        sa.Column("licence_id", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(length=128), nullable=False),
        sa.Column("fee_class", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("required_reviews", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("justifications", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_releases_job_id_jobs")),
        sa.ForeignKeyConstraint(["licence_id"], ["licences.id"], name=op.f("fk_releases_licence_id_licences")),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_releases_product_id_products")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_releases")),
    )
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.create_index("ix_releases_state_created_at", ["state", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_releases_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_releases_operator"), ["operator"], unique=False)
        batch_op.create_index(batch_op.f("ix_releases_licence_id"), ["licence_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_releases_product"), ["product"], unique=False)
    op.create_table(
        "release_votes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=160), nullable=False),
        sa.Column("decision", sa.String(length=24), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("voted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"], name=op.f("fk_release_votes_release_id_releases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_votes")),
        sa.UniqueConstraint("release_id", "round", "reviewer", name="uq_release_votes_release_id_round_reviewer"),
    )
    with op.batch_alter_table("release_votes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_release_votes_release_id"), ["release_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("release_votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_votes_release_id"))
    op.drop_table("release_votes")
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_releases_product"))
        batch_op.drop_index(batch_op.f("ix_releases_licence_id"))
        batch_op.drop_index(batch_op.f("ix_releases_operator"))
        batch_op.drop_index(batch_op.f("ix_releases_job_id"))
        batch_op.drop_index("ix_releases_state_created_at")
    op.drop_table("releases")
