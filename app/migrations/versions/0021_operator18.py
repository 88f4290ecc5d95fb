"""A job's title and stated purpose (用途), given by its operator (issue 18).

Two nullable columns added in place (``ALTER TABLE … ADD COLUMN`` on both databases): the ``jobs`` table
is referenced by other rows, and a batch copy of it on SQLite would drop them. Older jobs read as having
neither.

Revision ID: 0021_operator18
Revises: 0020_requests
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_operator18"
down_revision = "0020_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("title", sa.String(length=200), nullable=True))
    op.add_column("jobs", sa.Column("purpose", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "purpose")
    op.drop_column("jobs", "title")
