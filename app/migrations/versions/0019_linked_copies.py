"""Linked copies (issue 23): licences grant joint analysis, and each licence gets its own copies.

``licence_datasets`` gains ``link_group`` (nullable: every existing grant analyses each dataset alone,
so no existing licence gains a linkage it was not granted). ``licence_copies`` holds each licence's copy
of a dataset's desensitized version, its pseudonyms re-keyed for that licence and link group.

Existing licences get their copies made lazily before their next job (``registry.linkage``): until then a
job of theirs mounts nothing (fail closed), never the base copy.

Revision ID: 0019_linked_copies
Revises: 0018_consent
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_linked_copies"
down_revision = "0018_consent"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In place on both databases: licence_datasets is referenced by nothing, but a batch copy is never needed
    # to add a nullable column (and would drop what references a table on SQLite).
    op.add_column("licence_datasets", sa.Column("link_group", sa.String(length=300), nullable=True))
    op.create_table(
        "licence_copies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("licence_id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("base_version_id", sa.Integer(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("link_group", sa.String(length=300), nullable=False),
        sa.Column("shares_base", sa.Boolean(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("fingerprints", sa.String(length=512), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=160), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["licence_id"], ["licences.id"], name=op.f("fk_licence_copies_licence_id_licences")),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resources.id"], name=op.f("fk_licence_copies_resource_id_resources")
        ),
        sa.ForeignKeyConstraint(
            ["base_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_licence_copies_base_version_id_dataset_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_copies")),
        sa.UniqueConstraint("licence_id", "base_version_id", name="uq_licence_copies_licence_id_base_version_id"),
    )
    op.create_index(op.f("ix_licence_copies_licence_id"), "licence_copies", ["licence_id"], unique=False)
    op.create_index(op.f("ix_licence_copies_resource_id"), "licence_copies", ["resource_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_licence_copies_resource_id"), table_name="licence_copies")
    op.drop_index(op.f("ix_licence_copies_licence_id"), table_name="licence_copies")
    op.drop_table("licence_copies")
    op.drop_column("licence_datasets", "link_group")
