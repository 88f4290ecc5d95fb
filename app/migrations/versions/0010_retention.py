"""Retention per dataset and recorded deletion of dataset versions (issue 22, SATRE 3.1.09, 2.2.06).

``resources.retention_days``: how long each version of the dataset is kept after it was made (the
custodian's choice; NULL: the instance default, else until purged). ``dataset_versions.deleted_*``:
a purged version keeps its catalog metadata, marked deleted, with who deleted it and why.

Revision ID: 0010_retention
Revises: 0009_security
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_retention"
down_revision = "0009_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("dataset_versions") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deleted_by", sa.String(length=160), nullable=True))
        batch.add_column(sa.Column("deleted_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    # Dropped in place (SQLite 3.35+): a batch copy would drop tables that other rows reference.
    op.drop_column("dataset_versions", "deleted_reason")
    op.drop_column("dataset_versions", "deleted_by")
    op.drop_column("dataset_versions", "deleted_at")
    op.drop_column("resources", "retention_days")
