"""Writing usage records: the rows themselves and their sums per org-local day.

Every writer of usage (the gateway's group commit, importers, the demo) calls
:func:`record_usage`, so ``usage_daily`` always equals the records summed by day in the same
transaction: the dashboard reads the sums and stays fast with millions of records.
Unattributed records (no ``person_id``) are kept but not summed: nobody's page shows them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, text

from tokenwage.storage.bulk import insert_rows
from tokenwage.storage.schema import org, usage_daily, usage_records

SUMMED = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_nanousd",
)
_KEY = ("day", "person_id", "provider", "model", "source")
DAILY_COLUMNS = (*_KEY, "requests", *SUMMED)
DailyKey = tuple[date, int, str, str, str]


def upsert_daily_sql(marks: Sequence[str]) -> str:
    """The statement adding one row of sums into ``usage_daily`` (both dialects), with
    ``marks`` as its placeholders, one per :data:`DAILY_COLUMNS`."""
    updates = ", ".join(f"{c} = usage_daily.{c} + excluded.{c}" for c in ("requests", *SUMMED))
    return (
        f"INSERT INTO {usage_daily.name} ({', '.join(DAILY_COLUMNS)}) VALUES ({', '.join(marks)})"
        f" ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {updates}"
    )


_UPSERT_DAILY = text(upsert_daily_sql([f":{c}" for c in DAILY_COLUMNS]))


def org_zone(conn: Connection) -> ZoneInfo:
    """The organisation's time zone (UTC before the org exists)."""
    name = conn.execute(select(org.c.timezone)).scalar()
    return ZoneInfo(name or "UTC")


def daily_sums(rows: Sequence[Mapping[str, Any]], tz: ZoneInfo) -> dict[DailyKey, list[int]]:
    """``rows`` (usage record dicts) summed per (local day, person, provider, model, source):
    ``[requests, *SUMMED]`` each. Cache writes include the 1-hour kind."""
    sums: dict[DailyKey, list[int]] = {}
    for r in rows:
        person = r.get("person_id")
        if person is None:
            continue
        used: datetime = r["used_utc"]
        key = (used.astimezone(tz).date(), person, r["provider"], r["model"], r["source"])
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = [0] * (len(SUMMED) + 1)
        acc[0] += 1
        acc[1] += r["input_tokens"]
        acc[2] += r["output_tokens"]
        acc[3] += r["cache_read_tokens"]
        acc[4] += r["cache_write_tokens"] + r.get("cache_write_1h_tokens", 0)
        acc[5] += r["reasoning_tokens"]
        acc[6] += r["cost_nanousd"]
    return sums


def add_daily(conn: Connection, sums: Mapping[DailyKey, Sequence[int]]) -> None:
    """Add ``sums`` into ``usage_daily`` (one upsert statement, both dialects)."""
    if not sums:
        return
    params = [
        dict(zip(DAILY_COLUMNS, (*key, *vals), strict=True)) for key, vals in sorted(sums.items())
    ]
    conn.execute(_UPSERT_DAILY, params)


def record_usage(
    conn: Connection, rows: Sequence[dict[str, Any]], tz: ZoneInfo | None = None
) -> None:
    """Insert usage record ``rows`` and add them to the daily sums, in ``conn``'s transaction."""
    if not rows:
        return
    insert_rows(conn, usage_records, rows)
    add_daily(conn, daily_sums(rows, tz or org_zone(conn)))
