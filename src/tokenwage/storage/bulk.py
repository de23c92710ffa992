"""Bulk inserts below SQLAlchemy's per-row parameter handling, and one-parameter id lookups.

SQLAlchemy's ``executemany`` spends about twice SQLite's own insert work on per-row
parameter processing; for the ledger and usage records (hundreds of thousands of rows per
import) rows go to the driver directly: ``COPY`` on PostgreSQL, ``executemany`` with
ready-made values on SQLite (datetimes as the naive-UTC text SQLAlchemy would store).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Column, Connection, Table, text


def sqlite_ts(when: datetime) -> str:
    """A UTC instant as the text SQLAlchemy's SQLite DateTime stores (naive UTC)."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _sqlite_value(v: Any) -> Any:
    return sqlite_ts(v) if isinstance(v, datetime) else v


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``."""
    if not rows:
        return
    columns = list(rows[0])
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.dbapi_connection
        assert raw is not None
        sql = f"COPY {table.name} ({names}) FROM STDIN"
        with raw.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row([row[c] for c in columns])
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
        [tuple(_sqlite_value(row[c]) for c in columns) for row in rows],
    )


def existing(conn: Connection, column: Column[Any], values: Sequence[str]) -> set[str]:
    """Which of ``values`` are already in ``column``: one bound parameter however many
    values (a JSON array on SQLite, a text array on PostgreSQL), so nothing is re-expanded
    and re-planned per batch."""
    if not values:
        return set()
    table, name = column.table.name, column.name
    if conn.dialect.name == "postgresql":
        q = text(f"SELECT {name} FROM {table} WHERE {name} = ANY(CAST(:v AS text[]))")
        return set(conn.execute(q, {"v": list(values)}).scalars())

    q = text(f"SELECT {name} FROM {table} WHERE {name} IN (SELECT value FROM json_each(:v))")
    return set(conn.execute(q, {"v": orjson.dumps(list(values)).decode()}).scalars())
