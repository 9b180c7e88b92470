"""Personal data: per-person keys (crypto-shredding) and consent, outside the log.

`person_keys` holds one AES-256 key per person (NULL once erased: the row is the tombstone).
Columns that now hold sealed values (`pii:v1:...` envelopes, several times longer than the
plaintext) become TEXT, and contacts are listed by (created_at, id), no longer by name: a name is
ciphertext now.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# table -> columns that hold envelopes, with their old type (for downgrade)
SEALED = {
    "registry_contacts": {"name": sa.String(200), "email": sa.String(320), "phone": sa.String(40),
                          "position": sa.String(200)},
    "events_participants": {"name": sa.String(200), "email": sa.String(320)},
    "events_meetings": {"requester_name": sa.String(200), "receiver_name": sa.String(200)},
    "events_notify_participants": {"name": sa.String(200), "email": sa.String(320)},
    "events_outbox": {"recipient": sa.String(320), "recipient_name": sa.String(200), "subject": sa.String(300)},
}


def upgrade() -> None:
    op.create_table(
        "person_keys",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.LargeBinary),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("erased_at", sa.String(32)),
    )
    op.create_table(
        "registry_person_consents",
        sa.Column("person_id", sa.String(36), primary_key=True),
        sa.Column("newsletter", sa.Boolean, nullable=False),
        sa.Column("share_profile_with_partner_clusters", sa.Boolean, nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
    )
    op.drop_index("ix_registry_contacts_organisation", table_name="registry_contacts")
    for table, columns in SEALED.items():
        with op.batch_alter_table(table) as batch:
            for column, old in columns.items():
                batch.alter_column(column, type_=sa.Text(), existing_type=old)
    op.create_index("ix_registry_contacts_organisation", "registry_contacts", ["organisation_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_registry_contacts_organisation", table_name="registry_contacts")
    for table, columns in SEALED.items():
        with op.batch_alter_table(table) as batch:
            for column, old in columns.items():
                batch.alter_column(column, type_=old, existing_type=sa.Text())
    op.create_index("ix_registry_contacts_organisation", "registry_contacts", ["organisation_id", "name", "id"])
    op.drop_table("registry_person_consents")
    op.drop_table("person_keys")
