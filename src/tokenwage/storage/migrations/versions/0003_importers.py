"""Importers (cursors, identities, provider ids on usage records); accounts remember
when their head entry was recorded.

Revision ID: 0003_importers
Revises: 0002_gateway_keys_holds_usage
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_importers"
down_revision = "0002_gateway_keys_holds_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("head_recorded_utc", sa.DateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE accounts SET head_recorded_utc = (SELECT MAX(recorded_utc) FROM ledger_entries"
        " WHERE ledger_entries.account_id = accounts.id)"
    )
    op.create_table(
        "import_cursors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("location", sa.String(length=1000), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("updated_utc", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_cursors")),
        sa.UniqueConstraint("source", "location", name=op.f("uq_import_cursors_source_location")),
    )
    op.create_table(
        "identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_utc", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_identities_person_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identities")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_identities_kind_value")),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identities_person_id"), ["person_id"], unique=False)

    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("project", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("hostname", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("upstream_request_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("charge_mode", sa.String(length=8), server_default="charge", nullable=False)
        )
        batch_op.create_index(
            batch_op.f("ix_usage_records_message_id"), ["message_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_usage_records_upstream_request_id"),
            ["upstream_request_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("head_recorded_utc")
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_records_upstream_request_id"))
        batch_op.drop_index(batch_op.f("ix_usage_records_message_id"))
        batch_op.drop_column("charge_mode")
        batch_op.drop_column("message_id")
        batch_op.drop_column("upstream_request_id")
        batch_op.drop_column("hostname")
        batch_op.drop_column("project")
        batch_op.drop_column("session_id")

    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identities_person_id"))

    op.drop_table("identities")
    op.drop_table("import_cursors")
