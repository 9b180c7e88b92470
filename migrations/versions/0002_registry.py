"""Registry read models (services/registry/projections.py): rebuildable from the event log.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "registry_clusters",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("acronym", sa.String(30), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("nuts_region", sa.String(5)),
        sa.Column("thematic_focus", sa.String(500)),
        sa.Column("legal_form", sa.String(40), nullable=False),
        sa.Column("website", sa.String(300)),
        sa.Column("description", sa.Text),
        sa.Column("name_key", sa.String(300), nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False),
        *_stamps(),
    )
    op.create_index("ix_registry_clusters_name_key", "registry_clusters", ["name_key", "id"])

    op.create_table(
        "registry_organisations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("legal_name", sa.String(300), nullable=False),
        sa.Column("short_name", sa.String(100)),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("company_size", sa.String(10)),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("stages", sa.JSON, nullable=False),
        sa.Column("competencies", sa.JSON, nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("nuts_region", sa.String(5)),
        sa.Column("website", sa.String(300)),
        sa.Column("description", sa.Text),
        sa.Column("vat", sa.String(20)),
        sa.Column("pic", sa.String(9)),
        sa.Column("ror", sa.String(9)),
        sa.Column("name_key", sa.String(300), nullable=False),
        sa.Column("name_text", sa.String(500), nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False),
        *_stamps(),
    )
    op.create_index("ix_registry_organisations_name_key", "registry_organisations", ["name_key", "id"])
    op.create_index("ix_registry_organisations_kind", "registry_organisations", ["kind"])
    op.create_index("ix_registry_organisations_country", "registry_organisations", ["country", "nuts_region"])
    op.create_index("ix_registry_organisations_nuts_region", "registry_organisations", ["nuts_region"])
    op.create_index("ix_registry_organisations_pic", "registry_organisations", ["pic"])
    op.create_index("ix_registry_organisations_vat", "registry_organisations", ["vat"])

    op.create_table(
        "registry_organisation_facets",
        sa.Column("organisation_id", sa.String(36), nullable=False),
        sa.Column("facet", sa.String(20), nullable=False),
        sa.Column("value", sa.String(60), nullable=False),
        sa.PrimaryKeyConstraint("facet", "value", "organisation_id", name="pk_registry_organisation_facets"),
    )
    op.create_index("ix_registry_organisation_facets_organisation", "registry_organisation_facets",
                    ["organisation_id"])

    op.create_table(
        "registry_contacts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organisation_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("phone", sa.String(40)),
        sa.Column("position", sa.String(200)),
        *_stamps(),
    )
    op.create_index("ix_registry_contacts_organisation", "registry_contacts", ["organisation_id", "name", "id"])

    op.create_table(
        "registry_memberships",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organisation_id", sa.String(36), nullable=False),
        sa.Column("cluster_id", sa.String(36), nullable=False),
        sa.Column("fee_category", sa.String(30), nullable=False),
        sa.Column("yearly_fee", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("applied_on", sa.Date, nullable=False),
        sa.Column("activated_on", sa.Date),
        sa.Column("suspended_on", sa.Date),
        sa.Column("ended_on", sa.Date),
        sa.Column("period_end", sa.Date),
        sa.Column("status_reason", sa.String(500)),
        *_stamps(),
    )
    op.create_index("ix_registry_memberships_cluster", "registry_memberships",
                    ["cluster_id", "status", "organisation_id"])
    op.create_index("ix_registry_memberships_organisation", "registry_memberships", ["organisation_id", "status"])
    op.create_index("ix_registry_memberships_created", "registry_memberships", ["created_at", "id"])

    op.create_table(
        "registry_connections",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("source_id", sa.String(36), nullable=False),
        sa.Column("target_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("description", sa.String(1000)),
        sa.Column("since", sa.Date),
        sa.Column("ended_on", sa.Date),
        sa.Column("active", sa.Boolean, nullable=False),
        *_stamps(),
    )
    op.create_index("ix_registry_connections_source", "registry_connections", ["source_id", "kind"])
    op.create_index("ix_registry_connections_target", "registry_connections", ["target_id", "kind"])
    op.create_index("ix_registry_connections_created", "registry_connections", ["created_at", "id"])

    op.create_table(
        "registry_working_groups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("cluster_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("member_count", sa.Integer, nullable=False),
        *_stamps(),
    )
    op.create_index("ix_registry_working_groups_cluster", "registry_working_groups", ["cluster_id", "name_key", "id"])
    op.create_index("ix_registry_working_groups_name_key", "registry_working_groups", ["name_key", "id"])

    op.create_table(
        "registry_working_group_members",
        sa.Column("working_group_id", sa.String(36), nullable=False),
        sa.Column("organisation_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("joined_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("working_group_id", "organisation_id", name="pk_registry_working_group_members"),
    )
    op.create_index("ix_registry_working_group_members_organisation", "registry_working_group_members",
                    ["organisation_id"])


def downgrade() -> None:
    for table in ("registry_working_group_members", "registry_working_groups", "registry_connections",
                  "registry_memberships", "registry_contacts", "registry_organisation_facets",
                  "registry_organisations", "registry_clusters"):
        op.drop_table(table)
