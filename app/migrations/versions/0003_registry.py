"""Registry: catalog, data items, dataset versions, catalog requests, operators, licences,
violations, findings, usage records, destructions, products and objections.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "objections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("filed_by", sa.String(length=160), nullable=False),
        sa.Column("filed_role", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column("resolved_by", sa.String(length=160), nullable=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objections")),
    )
    op.create_table(
        "operator_orgs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("qualification", sa.String(length=16), nullable=False),
        sa.Column("suspended_reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_orgs")),
        sa.UniqueConstraint("name", name=op.f("uq_operator_orgs_name")),
        sa.UniqueConstraint("uscc", name=op.f("uq_operator_orgs_uscc")),
    )
    op.create_table(
        "resources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("data_format", sa.String(length=32), nullable=False),
        sa.Column("industry", sa.String(length=64), nullable=False),
        sa.Column("coverage_time", sa.String(length=64), nullable=False),
        sa.Column("coverage_region", sa.String(length=128), nullable=False),
        sa.Column("update_frequency", sa.String(length=32), nullable=False),
        sa.Column("provider_name", sa.String(length=200), nullable=False),
        sa.Column("provider_code", sa.String(length=18), nullable=False),
        sa.Column("sharing_type", sa.String(length=16), nullable=False),
        sa.Column("sharing_conditions", sa.Text(), nullable=False),
        sa.Column("sharing_method", sa.String(length=64), nullable=False),
        sa.Column("sharing_legal_basis", sa.Text(), nullable=False),
        sa.Column("open_to_public", sa.Boolean(), nullable=False),
        sa.Column("opening_type", sa.String(length=16), nullable=False),
        sa.Column("opening_conditions", sa.Text(), nullable=False),
        sa.Column("opening_legal_basis", sa.Text(), nullable=False),
        sa.Column("operation_status", sa.String(length=16), nullable=False),
        sa.Column("operation_scenarios", sa.JSON(), nullable=False),
        sa.Column("level", sa.String(length=2), nullable=False),
        sa.Column("personal_info", sa.Boolean(), nullable=False),
        sa.Column("sensitive_personal_info", sa.Boolean(), nullable=False),
        sa.Column("obtained_via_sharing", sa.Boolean(), nullable=False),
        sa.Column("source_region", sa.String(length=128), nullable=False),
        sa.Column("provider_consent", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("revoke_reason", sa.Text(), nullable=False),
        sa.Column("available_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=160), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resources")),
        sa.UniqueConstraint("name", name=op.f("uq_resources_name")),
    )
    op.create_table(
        "catalog_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=160), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=160), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resources.id"], name=op.f("fk_catalog_requests_resource_id_resources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_requests")),
    )
    with op.batch_alter_table("catalog_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_requests_resource_id"), ["resource_id"], unique=False)

    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=160), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["dataset_versions.id"], name=op.f("fk_dataset_versions_parent_id_dataset_versions")
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resources.id"], name=op.f("fk_dataset_versions_resource_id_resources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
        sa.UniqueConstraint("resource_id", "version", name="uq_dataset_versions_resource_id_version"),
    )
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_versions_resource_id"), ["resource_id"], unique=False)

    op.create_table(
        "licences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("domains", sa.JSON(), nullable=False),
        sa.Column("scenarios", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("fee_class", sa.String(length=8), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("publicity_days", sa.Integer(), nullable=False),
        sa.Column("publicity_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=160), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operator_orgs.id"], name=op.f("fk_licences_operator_id_operator_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licences")),
    )
    with op.batch_alter_table("licences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licences_operator_id"), ["operator_id"], unique=False)

    op.create_table(
        "resource_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("pii_type", sa.String(length=32), nullable=True),
        sa.Column("level", sa.String(length=2), nullable=False),
        sa.Column("personal_info", sa.Boolean(), nullable=False),
        sa.Column("sensitive_personal_info", sa.Boolean(), nullable=False),
        sa.Column("suggested_pii_type", sa.String(length=32), nullable=True),
        sa.Column("suggested_level", sa.String(length=2), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("public_bounds", sa.JSON(), nullable=True),
        sa.Column("public_domain", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resources.id"], name=op.f("fk_resource_items_resource_id_resources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_items")),
        sa.UniqueConstraint("resource_id", "name", name="uq_resource_items_resource_id_name"),
    )
    with op.batch_alter_table("resource_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_resource_items_resource_id"), ["resource_id"], unique=False)

    op.create_table(
        "destructions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("licence_id", sa.Integer(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("by", sa.String(length=160), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["licence_id"], ["licences.id"], name=op.f("fk_destructions_licence_id_licences")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destructions")),
    )
    with op.batch_alter_table("destructions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_destructions_licence_id"), ["licence_id"], unique=False)

    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("licence_id", sa.Integer(), nullable=True),
        sa.Column("resource_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_by", sa.String(length=160), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["licence_id"], ["licences.id"], name=op.f("fk_findings_licence_id_licences")),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operator_orgs.id"], name=op.f("fk_findings_operator_id_operator_orgs")
        ),
        sa.ForeignKeyConstraint(["resource_id"], ["resources.id"], name=op.f("fk_findings_resource_id_resources")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_findings_operator_id"), ["operator_id"], unique=False)

    op.create_table(
        "licence_datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("licence_id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("epsilon_budget", sa.Float(), nullable=False),
        sa.Column("epsilon_spent", sa.Float(), nullable=False),
        sa.Column("delta_budget", sa.Float(), nullable=False),
        sa.Column("delta_spent", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["licence_id"], ["licences.id"], name=op.f("fk_licence_datasets_licence_id_licences")),
        sa.ForeignKeyConstraint(
            ["resource_id"], ["resources.id"], name=op.f("fk_licence_datasets_resource_id_resources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_datasets")),
        sa.UniqueConstraint("licence_id", "resource_id", name="uq_licence_datasets_licence_id_resource_id"),
    )
    with op.batch_alter_table("licence_datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licence_datasets_licence_id"), ["licence_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_licence_datasets_resource_id"), ["resource_id"], unique=False)

    op.create_table(
        "licence_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("licence_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("by", sa.String(length=160), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["licence_id"], ["licences.id"], name=op.f("fk_licence_events_licence_id_licences")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_events")),
    )
    with op.batch_alter_table("licence_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licence_events_licence_id"), ["licence_id"], unique=False)

    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("licence_id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("scenario", sa.String(length=128), nullable=False),
        sa.Column("lineage", sa.JSON(), nullable=False),
        sa.Column("attribution", sa.JSON(), nullable=False),
        sa.Column("fee_class", sa.String(length=8), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=True),
        sa.Column("artifacts", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("registered_by", sa.String(length=160), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["licence_id"], ["licences.id"], name=op.f("fk_products_licence_id_licences")),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operator_orgs.id"], name=op.f("fk_products_operator_id_operator_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("name", name=op.f("uq_products_name")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_products_licence_id"), ["licence_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_products_operator_id"), ["operator_id"], unique=False)

    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("licence_id", sa.Integer(), nullable=True),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("scenario", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["licence_id"], ["licences.id"], name=op.f("fk_usage_records_licence_id_licences")),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operator_orgs.id"], name=op.f("fk_usage_records_operator_id_operator_orgs")
        ),
        sa.ForeignKeyConstraint(["resource_id"], ["resources.id"], name=op.f("fk_usage_records_resource_id_resources")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
    )
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_records_licence_id"), ["licence_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_usage_records_resource_id"), ["resource_id"], unique=False)

    op.create_table(
        "violations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("operator_name", sa.String(length=128), nullable=False),
        sa.Column("licence_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["licence_id"], ["licences.id"], name=op.f("fk_violations_licence_id_licences")),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operator_orgs.id"], name=op.f("fk_violations_operator_id_operator_orgs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_violations")),
    )
    with op.batch_alter_table("violations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_violations_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_violations_operator_id"), ["operator_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("violations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_violations_operator_id"))
        batch_op.drop_index(batch_op.f("ix_violations_at"))

    op.drop_table("violations")
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_records_resource_id"))
        batch_op.drop_index(batch_op.f("ix_usage_records_licence_id"))

    op.drop_table("usage_records")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_operator_id"))
        batch_op.drop_index(batch_op.f("ix_products_licence_id"))

    op.drop_table("products")
    with op.batch_alter_table("licence_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_licence_events_licence_id"))

    op.drop_table("licence_events")
    with op.batch_alter_table("licence_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_licence_datasets_resource_id"))
        batch_op.drop_index(batch_op.f("ix_licence_datasets_licence_id"))

    op.drop_table("licence_datasets")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_findings_operator_id"))

    op.drop_table("findings")
    with op.batch_alter_table("destructions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_destructions_licence_id"))

    op.drop_table("destructions")
    with op.batch_alter_table("resource_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resource_items_resource_id"))

    op.drop_table("resource_items")
    with op.batch_alter_table("licences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_licences_operator_id"))

    op.drop_table("licences")
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_versions_resource_id"))

    op.drop_table("dataset_versions")
    with op.batch_alter_table("catalog_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_requests_resource_id"))

    op.drop_table("catalog_requests")
    op.drop_table("resources")
    op.drop_table("operator_orgs")
    op.drop_table("objections")
