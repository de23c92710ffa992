"""Usage summed per org-local day, person, provider, model and source, for the dashboard;
filled from the usage records already there.

Revision ID: 0005_usage_daily
Revises: 0004_web_accounts
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

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
    _backfill(op.get_bind())


# Self-contained (no application imports), so this revision keeps working as the code moves on.
_SUMS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_nanousd",
)
_BUCKET_SECONDS = 900  # every real UTC offset is a multiple of 15 minutes
_DAILY = sa.table(
    "usage_daily",
    sa.column("day", sa.Date()),
    *(sa.column(c, sa.String()) for c in ("provider", "model", "source")),
    *(sa.column(c, sa.BigInteger()) for c in ("person_id", "requests", *_SUMS)),
)


def _backfill(conn: sa.Connection) -> None:
    """Sum the usage records already there per org-local day: the database sums them per
    15-minute UTC bucket, the buckets are placed on local dates here."""
    tz = ZoneInfo(conn.execute(sa.text("SELECT timezone FROM org ORDER BY id")).scalar() or "UTC")
    if conn.dialect.name == "sqlite":
        bucket = f"CAST(strftime('%s', used_utc) AS INTEGER) / {_BUCKET_SECONDS}"
    else:
        bucket = f"FLOOR(EXTRACT(EPOCH FROM used_utc) / {_BUCKET_SECONDS})"
    rows = conn.execute(
        sa.text(
            f"SELECT {bucket} AS bucket, person_id, provider, model, source, COUNT(*),"
            " SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),"
            " SUM(cache_write_tokens + cache_write_1h_tokens), SUM(reasoning_tokens),"
            " SUM(cost_nanousd) FROM usage_records WHERE person_id IS NOT NULL"
            " GROUP BY 1, person_id, provider, model, source"
        )
    )
    sums: dict[tuple[date, int, str, str, str], list[int]] = defaultdict(lambda: [0] * 7)
    for bucket_no, person, provider, model, source, *values in rows:
        start = datetime.fromtimestamp(int(bucket_no) * _BUCKET_SECONDS, UTC)
        acc = sums[(start.astimezone(tz).date(), person, provider, model, source)]
        for i, v in enumerate(values):
            acc[i] += int(v)
    cols = ("day", "person_id", "provider", "model", "source", "requests", *_SUMS)
    batch = [dict(zip(cols, (*k, *v), strict=True)) for k, v in sorted(sums.items())]
    for i in range(0, len(batch), 5000):
        conn.execute(sa.insert(_DAILY), batch[i : i + 5000])


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_daily_person_id_day"), table_name="usage_daily")
    op.drop_table("usage_daily")
