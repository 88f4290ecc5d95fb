"""The review thread of a release (issue 18): ``release_comments`` and ``release_assignments``.

New tables only (nothing existing is altered), so the upgrade and its downgrade are plain creates and
drops on both databases. See ``sandbox.release_comments``.

Revision ID: 0021_review18
Revises: 0020_requests
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_review18"
down_revision = "0021_operator18"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_comments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("file", sa.String(length=255), nullable=True),
        sa.Column("author", sa.String(length=160), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"], name=op.f("fk_release_comments_release_id_releases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_comments")),
    )
    op.create_index(op.f("ix_release_comments_release_id"), "release_comments", ["release_id"], unique=False)
    op.create_table(
        "release_assignments",
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=160), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_release_assignments_release_id_releases")
        ),
        sa.PrimaryKeyConstraint("release_id", name=op.f("pk_release_assignments")),
    )


def downgrade() -> None:
    op.drop_table("release_assignments")
    op.drop_index(op.f("ix_release_comments_release_id"), table_name="release_comments")
    op.drop_table("release_comments")
