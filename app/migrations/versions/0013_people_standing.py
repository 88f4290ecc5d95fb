"""People's standing (issue 22, SATRE 3.2.02, 1.5.01, 1.5.02, 1.6.04): identity checks, terms of use and
their acceptance, training, per person.

Revision ID: 0013_people_standing
Revises: 0012_atrest
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_people_standing"
down_revision = "0012_atrest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("org", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("evidence_kind", sa.String(length=32), nullable=True),
        sa.Column("evidence_ref", sa.String(length=128), nullable=True),
        sa.Column("evidence_digest", sa.String(length=64), nullable=True),
        sa.Column("evidence_masked", sa.String(length=32), nullable=True),
        sa.Column("checked_by", sa.String(length=128), nullable=True),
        sa.Column("terms_version", sa.String(length=32), nullable=True),
        sa.Column("course", sa.String(length=128), nullable=True),
        sa.Column("recorded_by", sa.String(length=160), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_records")),
    )
    op.create_index("ix_person_records_person_kind", "person_records", ["person", "kind"], unique=False)
    op.create_index("ix_person_records_org", "person_records", ["org"], unique=False)
    op.create_index("ix_person_records_expires_on", "person_records", ["expires_on"], unique=False)
    op.create_table(
        "terms_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("published_by", sa.String(length=160), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terms_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_terms_versions_version")),
    )


def downgrade() -> None:
    op.drop_table("terms_versions")
    op.drop_index("ix_person_records_expires_on", table_name="person_records")
    op.drop_index("ix_person_records_org", table_name="person_records")
    op.drop_index("ix_person_records_person_kind", table_name="person_records")
    op.drop_table("person_records")
