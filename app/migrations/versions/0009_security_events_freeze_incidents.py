"""Security operations (issue 22, SATRE 2.5.03 and 2.6.04): security events and alerts, the platform
freeze, the incident register.

Revision ID: 0009_security
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_security"
down_revision = "0008"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "security_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=128), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=False),
        _when("window_start"),
        _when("first_at"),
        _when("last_at"),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=160), nullable=True),
        _when("acknowledged_at", nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
        sa.UniqueConstraint("kind", "source", "principal", "window_start", name="uq_security_events_bucket"),
    )
    op.create_index("ix_security_events_window_start", "security_events", ["window_start"], unique=False)
    op.create_index("ix_security_events_last_at", "security_events", ["last_at"], unique=False)
    op.create_table(
        "security_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("key_kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _when("raised_at"),
        _when("last_at"),
        sa.Column("acknowledged_by", sa.String(length=160), nullable=True),
        _when("acknowledged_at", nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_alerts")),
    )
    op.create_index("ix_security_alerts_rule_key", "security_alerts", ["rule", "key"], unique=False)
    freeze = op.create_table(
        "platform_freeze",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        _when("since", nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=160), nullable=False),
        _when("changed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_freeze")),
    )
    # The one row, not frozen: a freeze then only ever updates it (no two concurrent inserts to race).
    op.bulk_insert(freeze, [{"id": 1, "frozen": False, "reason": "", "changed_by": ""}])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("ledger_entries", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("recorded_by", sa.String(length=160), nullable=False),
        _when("recorded_at"),
        sa.Column("closed_by", sa.String(length=160), nullable=True),
        _when("closed_at", nullable=True),
        sa.Column("close_note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )


def downgrade() -> None:
    op.drop_table("incidents")
    op.drop_table("platform_freeze")
    op.drop_index("ix_security_alerts_rule_key", table_name="security_alerts")
    op.drop_table("security_alerts")
    op.drop_index("ix_security_events_last_at", table_name="security_events")
    op.drop_index("ix_security_events_window_start", table_name="security_events")
    op.drop_table("security_events")
