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

    from tokenwage.core.ledger import EntryDraft, EntryKind
    from tokenwage.storage.ledger_repo import LedgerRepo

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate.upgrade(db, "0001_initial")
        with db.begin() as conn:
            repo = LedgerRepo(conn)
            repo.ensure_account("person:1")
            at = datetime(2026, 1, 1, tzinfo=UTC)
            repo.append([EntryDraft("person:1", EntryKind.GRANT, 5, at, "g1")], at)
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision(db)
        with db.begin() as conn:
            assert LedgerRepo(conn).balance("person:1") == 5
            assert list(LedgerRepo(conn).verify()) == []
    finally:
        db.dispose()
