"""The ledger in a real database: idempotent appends, balances, and tamper detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tokenwage.core.ledger import EntryDraft, EntryKind
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _grant(account: str, ref: str, amount: int = 100_000_000_000) -> EntryDraft:
    return EntryDraft(account, EntryKind.GRANT, amount, T0, ref, meta={"source": "one-off"})


def _usage(account: str, ref: str, amount: int, model: str = "claude-sonnet-4") -> EntryDraft:
    meta = {"source": "test", "model": model, "input_tokens": 10, "output_tokens": 5}
    return EntryDraft(account, EntryKind.USAGE, -amount, T0 + timedelta(minutes=1), ref, meta=meta)


def _seed(db: Database) -> None:
    with db.begin() as conn:
        repo = LedgerRepo(conn)
        repo.ensure_account("person:1")
        repo.ensure_account("person:2")
        repo.append([_grant("person:1", "g1"), _grant("person:2", "g2")])
        repo.append([_usage("person:1", f"u{i}", 1_000_000 * (i + 1)) for i in range(20)])


def _problems(db: Database) -> list[str]:
    with db.begin() as conn:
        return [str(p) for p in LedgerRepo(conn).verify()]


def test_balance_is_sum_and_chain_verifies(db: Database) -> None:
    _seed(db)
    with db.begin() as conn:
        repo = LedgerRepo(conn)
        entries = repo.entries("person:1")
        assert [e.seq for e in entries] == list(range(1, 22))
        assert repo.balance("person:1") == sum(e.amount_nanousd for e in entries)
        assert repo.balance("person:1") == 100_000_000_000 - 1_000_000 * 210
    assert _problems(db) == []


def test_append_is_idempotent_per_ref(db: Database) -> None:
    _seed(db)
    with db.begin() as conn:
        repo = LedgerRepo(conn)
        again = repo.append([_grant("person:1", "g1"), _usage("person:1", "u3", 4_000_000)])
        assert again == []
        assert repo.count_entries() == 22


def test_round_trip_preserves_hash_inputs(db: Database) -> None:
    _seed(db)
    with db.begin() as conn:
        stored = LedgerRepo(conn).entries("person:1")
    assert all(e.hash and e.effective_utc.tzinfo is not None for e in stored)
    assert stored[1].meta["model"] == "claude-sonnet-4"


TAMPERING = {
    "edited amount": "UPDATE ledger_entries SET amount_nanousd = amount_nanousd + 7"
    " WHERE id = {id}",
    "edited meta": 'UPDATE ledger_entries SET meta = \'{{"model":"gpt-4o"}}\' WHERE id = {id}',
    "deleted row": "DELETE FROM ledger_entries WHERE id = {id}",
    "reordered": "UPDATE ledger_entries SET seq = -seq WHERE id IN ({id}, {next_id})",
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_raw_sql_tampering_is_found_and_named(db: Database, how: str) -> None:
    _seed(db)
    with db.begin() as conn:
        victim = LedgerRepo(conn).entries("person:1")[5]
        nxt = LedgerRepo(conn).entries("person:1")[6]
        conn.execute(text(TAMPERING[how].format(id=victim.id, next_id=nxt.id)))
        if how == "reordered":  # swap the two rows' positions
            conn.execute(
                text("UPDATE ledger_entries SET seq = :s WHERE id = :i"),
                [{"s": nxt.seq, "i": victim.id}, {"s": victim.seq, "i": nxt.id}],
            )
    problems = _problems(db)
    assert problems, f"{how} was not detected"
    # an edited row is itself the first bad one; after a delete or a swap it is the row
    # that now stands in the victim's place
    named = victim.id if how.startswith("edited") else nxt.id
    assert f"entry id {named} " in problems[0]


def test_removed_tail_is_found(db: Database) -> None:
    _seed(db)
    with db.begin() as conn:
        last = LedgerRepo(conn).entries("person:1")[-1]
        conn.execute(text("DELETE FROM ledger_entries WHERE id = :i"), {"i": last.id})
    problems = _problems(db)
    assert problems and "head says seq 21" in problems[0]


def test_inserted_row_is_found(db: Database) -> None:
    _seed(db)
    with db.begin() as conn:
        e = LedgerRepo(conn).entries("person:2")[0]
        conn.execute(
            text(
                "INSERT INTO ledger_entries (account_id, seq, kind, amount_nanousd, effective_utc,"
                " recorded_utc, ref, memo, expires_utc, meta, prev_hash, hash)"
                " SELECT account_id, 2, kind, amount_nanousd, effective_utc, recorded_utc,"
                " 'forged', memo, expires_utc, meta, hash, hash FROM ledger_entries WHERE id = :i"
            ),
            {"i": e.id},
        )
    problems = _problems(db)
    assert problems and "person:2" in problems[0]
