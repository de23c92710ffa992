"""One settlement batch on SQLite, on the writer's own driver connection (no SQLAlchemy).

The same writes as :meth:`tokenwage.gateway.writer.GroupCommitWriter._write_batch` does on
PostgreSQL through the repositories, in about a tenth of the CPU time: release the
requests' holds (or shrink the worker's lease by what was consumed), skip requests already
recorded (idempotency), price-split and chain the ledger debits
(:func:`tokenwage.core.ledger.append`, the one hashing code), insert the usage records, add
them to ``usage_daily`` (:func:`tokenwage.storage.usage_rows.daily_sums`: the same sums every
other writer adds) and mark the keys used. Every list of ids is one bound JSON parameter.
The caller wraps it in ``BEGIN IMMEDIATE`` ... ``COMMIT``.

A batch formats each instant once (:class:`_Stamps`): every record and entry of a batch
shares its recording time, and a request's debits share its record's time of use.

``pace`` is called between units of work (a settlement, a ledger entry, a record): the
folder passes its :class:`~tokenwage.gateway.pacing.Pacer`, so a batch of 256 never holds a
CPU for milliseconds at a stretch; a worker's own writes pass nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from tokenwage.core import ledger
from tokenwage.core.ledger import EntryDraft, Head
from tokenwage.core.money import Money
from tokenwage.gateway.holds import read_funds_sqlite
from tokenwage.gateway.pacing import no_pause
from tokenwage.gateway.settlement import Settlement, book, leases_consumed
from tokenwage.storage.bulk import sqlite_ts
from tokenwage.storage.ledger_repo import INSERT_ENTRY_SQL, entry_row, new_by_account
from tokenwage.storage.usage_rows import DAILY_COLUMNS, daily_sums, upsert_daily_sql

_IN = "IN (SELECT value FROM json_each(?))"
_CHAIN_SLICE = 16
"""Drafts chained per call of :func:`tokenwage.core.ledger.append` (the pace between)."""
_UPDATE_HEAD = (
    "UPDATE accounts SET head_seq = ?, head_hash = ?, balance_nanousd = ?, head_recorded_utc = ?"
    " WHERE id = ?"
)
_SHRINK_LEASE = "UPDATE holds SET amount_nanousd = MAX(amount_nanousd - ?, 0) WHERE request_id = ?"
_UPSERT_DAILY = upsert_daily_sql("?" * len(DAILY_COLUMNS))


def _json(values: list[Any]) -> str:
    return orjson.dumps(values).decode()


class _Stamps(dict[datetime, str]):
    """:func:`sqlite_ts` of the instants of one batch, each formatted once."""

    def __missing__(self, when: datetime) -> str:
        stamp = sqlite_ts(when)
        if when.tzinfo is UTC:  # elsewhere one wall time can name two instants (DST)
            self[when] = stamp
        return stamp


def write_batch(
    cur: Any,
    batch: list[Settlement],
    now: datetime,
    touch: list[int],
    pace: Callable[[], None] = no_pause,
) -> list[Money]:
    """Write ``batch`` with sqlite3 cursor ``cur`` inside the caller's transaction and mark
    keys ``touch`` used; returns what each settlement charged (zero when already recorded
    or not charged)."""
    ids = [s.ticket.facts.request_id for s in batch]
    done = {
        r[0]
        for r in cur.execute(
            f"SELECT request_id FROM usage_records WHERE request_id {_IN}", (_json(ids),)
        )
    }
    charged, drafts, records = book(
        batch, done, now, lambda payer: read_funds_sqlite(cur, payer, now), pace
    )
    stamps = _Stamps()
    _release(cur, batch, charged)
    _append_ledger(cur, drafts, now, stamps, pace)
    if records:
        _insert_records(cur, records, stamps, pace)
    if touch:
        cur.execute(
            f"UPDATE virtual_keys SET last_used_utc = ? WHERE id {_IN}",
            (stamps[now], _json(touch)),
        )
    return charged


def _release(cur: Any, batch: list[Settlement], charged: list[Money]) -> None:
    """Delete per-request holds; shrink leases by what their requests consumed."""
    held = [s.ticket.facts.request_id for s in batch if s.ticket.lease is None]
    if held:
        cur.execute(f"DELETE FROM holds WHERE request_id {_IN}", (_json(held),))
    consumed = leases_consumed(batch, charged)
    if consumed:
        cur.executemany(_SHRINK_LEASE, [(n, lease) for lease, n in consumed.items()])


def _append_ledger(
    cur: Any, drafts: list[EntryDraft], now: datetime, stamps: _Stamps, pace: Callable[[], None]
) -> None:
    if not drafts:
        return
    refs = [d.ref for d in drafts]
    seen = {
        r[0] for r in cur.execute(f"SELECT ref FROM ledger_entries WHERE ref {_IN}", (_json(refs),))
    }
    by_account = new_by_account(drafts, seen)
    if not by_account:
        return
    heads = {
        row[1]: row
        for row in cur.execute(
            "SELECT id, key, head_seq, head_hash, balance_nanousd, head_recorded_utc"
            f" FROM accounts WHERE key {_IN}",
            (_json(sorted(by_account)),),
        )
    }
    rows: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    for key, account_drafts in by_account.items():
        if key not in heads:
            raise LookupError(f"no ledger account {key!r}; create it before booking to it")
        account_id, _, seq, head_hash, balance, last = heads[key]
        recorded = now
        if last is not None:  # recording time never goes backwards within an account
            recorded = max(now, datetime.fromisoformat(last).replace(tzinfo=UTC))
        head = Head(seq, head_hash, balance)
        for at in range(0, len(account_drafts), _CHAIN_SLICE):  # chained on from each head
            entries, head = ledger.append(head, account_drafts[at : at + _CHAIN_SLICE], recorded)
            for e in entries:
                rows.append(entry_row(account_id, e, stamps.__getitem__))
                pace()
        updates.append(
            (
                head.seq,
                head.hash,
                head.balance_nanousd,
                stamps[entries[-1].recorded_utc],
                account_id,
            )
        )
    cur.executemany(INSERT_ENTRY_SQL, rows)
    cur.executemany(_UPDATE_HEAD, updates)


def _insert_records(
    cur: Any, records: list[dict[str, Any]], stamps: _Stamps, pace: Callable[[], None]
) -> None:
    columns = list(records[0])
    marks = ", ".join("?" * len(columns))
    timed = [i for i, v in enumerate(records[0].values()) if isinstance(v, datetime)]
    rows = []
    for r in records:
        row = list(r.values())
        for i in timed:
            row[i] = stamps[row[i]]
        rows.append(row)
        pace()
    cur.executemany(f"INSERT INTO usage_records ({', '.join(columns)}) VALUES ({marks})", rows)
    name = cur.execute("SELECT timezone FROM org").fetchone()
    sums = daily_sums(records, ZoneInfo(name[0] if name and name[0] else "UTC"))
    cur.executemany(
        _UPSERT_DAILY,
        [(key[0].isoformat(), *key[1:], *vals) for key, vals in sorted(sums.items())],
    )
