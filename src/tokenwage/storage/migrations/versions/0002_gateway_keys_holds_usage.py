"""Gateway: virtual keys, holds for requests in flight, and one usage record per request.

Revision ID: 0002_gateway_keys_holds_usage
Revises: 0001_initial
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_gateway_keys_holds_usage"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("amount_nanousd", sa.BigInteger(), nullable=False),
        sa.Column("pool_nanousd", sa.BigInteger(), nullable=False),
        sa.Column("pool_key", sa.String(length=100), nullable=True),
        sa.Column("created_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_utc", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_holds_person_id_people")
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_holds")),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holds_expires_utc"), ["expires_utc"], unique=False)
        batch_op.create_index(batch_op.f("ix_holds_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_holds_pool_key"), ["pool_key"], unique=False)

    op.create_table(
        "virtual_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("allowed_models", sa.Text(), nullable=True),
        sa.Column("created_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_utc", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_virtual_keys_person_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_virtual_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_virtual_keys_prefix")),
        sa.UniqueConstraint("secret_sha256", name=op.f("uq_virtual_keys_secret_sha256")),
    )
    with op.batch_alter_table("virtual_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_virtual_keys_person_id"), ["person_id"], unique=False)

    op.create_table(
        "usage_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("requested_model", sa.String(length=200), nullable=True),
        sa.Column("endpoint", sa.String(length=64), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_1h_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nanousd", sa.BigInteger(), nullable=False),
        sa.Column("price_source", sa.String(length=16), nullable=True),
        sa.Column("estimated", sa.Integer(), nullable=False),
        sa.Column("stream", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("used_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_utc", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["virtual_keys.id"], name=op.f("fk_usage_records_key_id_virtual_keys")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_usage_records_person_id_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
        sa.UniqueConstraint("request_id", name=op.f("uq_usage_records_request_id")),
    )
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_records_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_usage_records_used_utc"), ["used_utc"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_records_used_utc"))
        batch_op.drop_index(batch_op.f("ix_usage_records_person_id"))

    op.drop_table("usage_records")
    with op.batch_alter_table("virtual_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_virtual_keys_person_id"))

    op.drop_table("virtual_keys")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holds_pool_key"))
        batch_op.drop_index(batch_op.f("ix_holds_person_id"))
        batch_op.drop_index(batch_op.f("ix_holds_expires_utc"))

    op.drop_table("holds")
