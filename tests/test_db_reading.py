"""``Database.reading()``: snapshots for pages and API reads that never wait for, or hold up,
the one writer (SQLite) and refuse writes (PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import InternalError

from tests.conftest import _truncate_all
from tokenwage.storage.db import Database
from tokenwage.storage.schema import audit_log
from tokenwage.web.api.common import now_utc


def test_a_reader_and_the_writer_do_not_wait_for_each_other(db: Database) -> None:
    row = {"at_utc": now_utc(), "actor": "t", "action": "a", "detail": "{}"}
    with db.begin() as writer:  # the write lock (SQLite) or an open write (PostgreSQL)
        writer.execute(insert(audit_log).values(row))
        with db.reading().begin() as reader:  # does not block: SQLite's busy timeout is 30 s
            assert reader.execute(select(audit_log)).all() == []  # the committed state only
    with db.reading().begin() as reader:
        assert len(reader.execute(select(audit_log)).all()) == 1
        with db.begin() as writer:  # a writer starts while the snapshot is open
            writer.execute(insert(audit_log).values(row))
        assert len(reader.execute(select(audit_log)).all()) == 1  # still its snapshot
    assert not db.read_only and db.reading().read_only


@pytest.mark.postgres
def test_a_reading_transaction_refuses_writes_on_postgresql(pg_url: str) -> None:
    _truncate_all(pg_url)
    db = Database(pg_url)
    row = {"at_utc": now_utc(), "actor": "t", "action": "a", "detail": "{}"}
    try:
        with pytest.raises(InternalError, match="read-only transaction"):
            with db.reading().begin() as reader:
                reader.execute(insert(audit_log).values(row))
    finally:
        db.dispose()
