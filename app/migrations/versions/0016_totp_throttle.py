"""A run of wrong second-factor codes locks the factor for a while (RFC 4226 §7.3; SATRE 3.2.04).

Revision ID: 0016_totp_throttle
Revises: 0015_quotas
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_totp_throttle"
down_revision = "0015_quotas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("principal_totp") as batch:
        batch.add_column(sa.Column("failures", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("locked_until_step", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("principal_totp", "locked_until_step")  # in place, as 0017 does
    op.drop_column("principal_totp", "failures")
