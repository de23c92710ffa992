"""Indexes the dashboard reads by: a person's most recent usage records (the "recent
requests" table) without sorting all of that person's records.

Revision ID: 0006_dashboard_indexes
Revises: 0005_usage_daily
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0006_dashboard_indexes"
down_revision = "0005_usage_daily"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_usage_records_person_id_used_utc"), "usage_records", ["person_id", "used_utc"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_records_person_id_used_utc"), table_name="usage_records")
