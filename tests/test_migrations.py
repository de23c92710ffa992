"""Migrations create exactly the schema the code declares, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tokenwage.core.errors import StoreUnavailable
from tokenwage.storage import migrate
from tokenwage.storage.db import Database
from tokenwage.storage.schema import metadata


def test_migrated_schema_matches_the_tables(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], f"schema.py and the migrations disagree: {diff}"


def test_database_is_at_head(db: Database) -> None:
    assert migrate.current_revision(db) == migrate.head_revision(db)
    migrate.require_current(db)


def test_upgrade_is_idempotent(db: Database) -> None:
    migrate.upgrade(db)
    assert migrate.current_revision(db) == migrate.head_revision(db)


def test_empty_database_is_refused_with_a_hint(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(StoreUnavailable, match="tokenwage init"):
            migrate.require_current(db)
    finally:
        db.dispose()


def test_fresh_sqlite_upgrade_from_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'new.db'}")
    try:
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision(db)
    finally:
        db.dispose()


def test_upgrade_from_the_oldest_schema_keeps_the_books(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    from tokenwage.core import ledger
    from tokenwage.core.ledger import EntryDraft, EntryKind, Head
    from tokenwage.storage.ledger_repo import LedgerRepo

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate.upgrade(db, "0001_initial")
        at = datetime(2026, 1, 1, tzinfo=UTC)
        (e,), head = ledger.append(
            Head(), [EntryDraft("person:1", EntryKind.GRANT, 5, at, "g1")], at
        )
        with db.begin() as conn:  # the tables as 0001 made them, written with plain SQL
            conn.execute(
                text(
                    "INSERT INTO accounts (id, key, head_seq, head_hash, balance_nanousd,"
                    " created_utc) VALUES (1, 'person:1', 1, :h, 5, '2026-01-01 00:00:00.000000')"
                ),
                {"h": head.hash},
            )
            conn.execute(
                text(
                    "INSERT INTO ledger_entries (account_id, seq, kind, amount_nanousd,"
                    " effective_utc, recorded_utc, ref, memo, expires_utc, meta, prev_hash, hash)"
                    " VALUES (1, 1, 'grant', 5, :t, :t, 'g1', '', NULL, '{}', :p, :h)"
                ),
                {"t": "2026-01-01 00:00:00.000000", "p": e.prev_hash, "h": e.hash},
            )
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision(db)
        with db.begin() as conn:
            assert LedgerRepo(conn).balance("person:1") == 5
            assert list(LedgerRepo(conn).verify()) == []
            assert LedgerRepo(conn).account("person:1").head.seq == 1
            later = datetime(2025, 1, 1, tzinfo=UTC)  # a clock behind the books
            (f,) = LedgerRepo(conn).append(
                [EntryDraft("person:1", EntryKind.GRANT, 1, later, "g2")], later
            )
            assert f.recorded_utc == at  # recording time never goes backwards
    finally:
        db.dispose()
