"""Importer fixtures: an organisation on each database, and a way to run one import."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from tokenwage.core.imported import ChargeMode
from tokenwage.core.org import Org, Person, Team
from tokenwage.importers import ImportOutcome, Source, run_import
from tokenwage.storage.db import Database
from tokenwage.storage.imports_repo import Cursor, ImportsRepo
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.schema import usage_records

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def books(db: Database) -> Database:
    """An organisation in UTC with team platform, Ada in it and Bob outside it."""
    with db.begin() as conn:
        repo = OrgRepo(conn)
        repo.save_org(Org("Acme", "UTC"))
        repo.add_team(Team("platform", "Platform"))
        repo.add_person(Person("ada@acme.io", "Ada", team_slug="platform"))
        repo.add_person(Person("bob@acme.io", "Bob"))
    return db


def book(
    db: Database,
    source: Source,
    *,
    mode: ChargeMode = ChargeMode.TRACK,
    dry_run: bool = False,
    now: datetime = NOW,
) -> ImportOutcome:
    with db.begin() as conn:
        return run_import(conn, source, mode=mode, now=now, dry_run=dry_run)


def records(db: Database) -> list[Any]:
    with db.begin() as conn:
        return list(conn.execute(select(usage_records).order_by(usage_records.c.request_id)))


def record_count(db: Database) -> int:
    with db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(usage_records)).scalar_one())


def cursors(db: Database, source: str) -> dict[str, Cursor]:
    with db.begin() as conn:
        return ImportsRepo(conn).cursors(source)


def token_sums(rows: list[Any]) -> dict[str, int]:
    names = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_write_1h_tokens",
             "cache_read_tokens", "reasoning_tokens")  # fmt: skip
    return {n: sum(getattr(r, n) for r in rows) for n in names}
