"""Usage summed per org-local day, person, provider, model and source, for the dashboard;
filled from the usage records already there.

Revision ID: 0005_usage_daily
Revises: 0004_web_accounts
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_usage_daily"
down_revision = "0004_web_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nanousd", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_usage_daily_person_id_people")
        ),
        sa.UniqueConstraint(
            "day",
            "person_id",
            "provider",
            "model",
            "source",
            name=op.f("uq_usage_daily_day_person_id_provider_model_source"),
        ),
    )
    op.create_index(op.f("ix_usage_daily_person_id_day"), "usage_daily", ["person_id", "day"])


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_daily_person_id_day"), table_name="usage_daily")
    op.drop_table("usage_daily")
