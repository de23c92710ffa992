"""Indexes the dashboard reads by: a person's most recent usage records (the "recent
requests" table) without sorting all of that person's records. And the leaderboard's
third choice beside an alias and "Engineer #n": showing one's own name.

Revision ID: 0006_dashboard_indexes
Revises: 0005_usage_daily
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_dashboard_indexes"
down_revision = "0005_usage_daily"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_usage_records_person_id_used_utc"), "usage_records", ["person_id", "used_utc"]
    )
    op.add_column(
        "person_settings",
        sa.Column("leaderboard_show_name", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("person_settings") as batch:
        batch.drop_column("leaderboard_show_name")
    op.drop_index(op.f("ix_usage_records_person_id_used_utc"), table_name="usage_records")
