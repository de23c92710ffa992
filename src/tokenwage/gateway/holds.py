"""Holds: money set aside for requests in flight, placed atomically across processes.

Placing a hold reads the person's balance, their team pool's balance and the holds already
out against both, checks the request's worst case against what may be spent
(:func:`tokenwage.core.spending.check_hold`) and inserts the hold, all in one write
transaction: ``BEGIN IMMEDIATE`` on SQLite (every worker process queues on the one write
lock), row locks on the two account rows on PostgreSQL. Two requests can therefore never
both spend the same money, however many workers serve them.

Holds are not precious: the meter opens this store's SQLite connections with
``synchronous=NORMAL`` (no fsync per commit; a process crash still loses nothing), and
PostgreSQL commits them with ``synchronous_commit=off``. A hold that outlives its request
is released by the sweeper when it expires.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from tokenwage.core.errors import StoreUnavailable
from tokenwage.core.money import Money
from tokenwage.core.package import CapMode
from tokenwage.core.spending import Funds, HoldDecision, check_hold
from tokenwage.storage.bulk import sqlite_ts
from tokenwage.storage.db import Database


@dataclass(frozen=True, slots=True)
class Payer:
    """Who pays for a person's requests and under which limits (cached by the meter)."""

    person_id: int
    account_key: str
    pool_key: str | None
    cap: CapMode
    overdraft: Money


@dataclass(frozen=True, slots=True)
class PlacedHold:
    request_id: str
    amount: Money
    pool_part: Money
    funds_before: Funds
    decision: HoldDecision


LOCK_WAIT_S = 30.0
"""How long a hold or a settlement batch waits for SQLite's write lock before giving up."""

_FUNDS_SQL = text(
    """
    SELECT
      (SELECT balance_nanousd FROM accounts WHERE key = :own) AS own_balance,
      (SELECT COALESCE(SUM(amount_nanousd - pool_nanousd), 0) FROM holds
         WHERE person_id = :person AND expires_utc > :now) AS own_held,
      (SELECT balance_nanousd FROM accounts WHERE key = :pool) AS pool_balance,
      (SELECT COALESCE(SUM(pool_nanousd), 0) FROM holds
         WHERE pool_key = :pool AND expires_utc > :now) AS pool_held
    """
)
_FUNDS_QMARK = (
    "SELECT (SELECT balance_nanousd FROM accounts WHERE key = ?),"
    " (SELECT COALESCE(SUM(amount_nanousd - pool_nanousd), 0) FROM holds"
    "  WHERE person_id = ? AND expires_utc > ?),"
    " (SELECT balance_nanousd FROM accounts WHERE key = ?),"
    " (SELECT COALESCE(SUM(pool_nanousd), 0) FROM holds WHERE pool_key = ? AND expires_utc > ?)"
)
_INSERT_QMARK = (
    "INSERT INTO holds (request_id, person_id, amount_nanousd, pool_nanousd, pool_key,"
    " created_utc, expires_utc) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_LEASE_FUNDS_QMARK = (
    "SELECT (SELECT balance_nanousd FROM accounts WHERE key = ?),"
    " (SELECT COALESCE(SUM(amount_nanousd - pool_nanousd), 0) FROM holds"
    "  WHERE person_id = ? AND expires_utc > ? AND request_id <> ?)"
)
_LEASE_FUNDS = text(
    "SELECT (SELECT balance_nanousd FROM accounts WHERE key = :own),"
    " (SELECT COALESCE(SUM(amount_nanousd - pool_nanousd), 0) FROM holds"
    "  WHERE person_id = :person AND expires_utc > :now AND request_id <> :lease)"
)
_UPSERT_LEASE_TAIL = (
    " ON CONFLICT (request_id) DO UPDATE SET amount_nanousd = excluded.amount_nanousd,"
    " expires_utc = excluded.expires_utc"
)
_UPSERT_LEASE_QMARK = (
    "INSERT INTO holds (request_id, person_id, amount_nanousd, pool_nanousd, pool_key,"
    " created_utc, expires_utc) VALUES (?, ?, ?, 0, NULL, ?, ?)" + _UPSERT_LEASE_TAIL
)
_UPSERT_LEASE = text(
    "INSERT INTO holds (request_id, person_id, amount_nanousd, pool_nanousd, pool_key,"
    " created_utc, expires_utc) VALUES (:lease, :person, :amount, 0, NULL, :now, :exp)"
    + _UPSERT_LEASE_TAIL
)
_LOCK_PG = text("SELECT id FROM accounts WHERE key IN (:own, :pool) ORDER BY id FOR UPDATE")
_INSERT = text(
    "INSERT INTO holds (request_id, person_id, amount_nanousd, pool_nanousd, pool_key,"
    " created_utc, expires_utc) VALUES (:rid, :person, :amount, :pool_part, :pool, :now, :exp)"
)


def read_funds(conn: Connection, payer: Payer, now: datetime) -> Funds:
    row = conn.execute(
        _FUNDS_SQL,
        {
            "own": payer.account_key,
            "person": payer.person_id,
            "pool": payer.pool_key or "",
            "now": _ts(conn, now),
        },
    ).one()
    return _funds(payer, row.own_balance, row.own_held, row.pool_balance, row.pool_held)


def _funds(payer: Payer, own: Any, own_held: Any, pool: Any, pool_held: Any) -> Funds:
    return Funds(
        own_balance=Money(int(own or 0)),
        own_held=Money(max(int(own_held or 0), 0)),
        pool_balance=Money(int(pool or 0)) if payer.pool_key else Money(0),
        pool_held=Money(max(int(pool_held or 0), 0)) if payer.pool_key else Money(0),
        overdraft=payer.overdraft,
        cap=payer.cap,
    )


def read_funds_sqlite(cur: Any, payer: Payer, now: datetime) -> Funds:
    """:func:`read_funds` on a sqlite3 cursor."""
    stamp = sqlite_ts(now)
    pool = payer.pool_key or ""
    row = cur.execute(
        _FUNDS_QMARK, (payer.account_key, payer.person_id, stamp, pool, pool, stamp)
    ).fetchone()
    return _funds(payer, row[0], row[1], row[2], row[3])


def own_sqlite_connection(db: Database) -> Any:
    """A driver connection of ``db`` taken out of its pool for good, that waits for the
    write lock by polling (see :func:`immediate`) instead of SQLite's busy handler, and
    never checkpoints the WAL on commit (the writer's checkpoint thread does, so no commit
    pays for copying pages and an fsync)."""
    raw = db.engine.raw_connection()
    raw.detach()
    cur = raw.cursor()
    cur.execute("PRAGMA busy_timeout=0")
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()
    return raw


class Busy(Exception):
    """The write lock is taken (``immediate(..., wait=False)``)."""


@contextmanager
def immediate(raw: Any, *, wait: bool = True) -> Iterator[Any]:
    """A cursor of sqlite3 connection ``raw`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT``,
    rolled back if the block raises.

    Waiting for the write lock polls every 50-500 us. SQLite's own busy handler sleeps 1,
    2, 5, 10 ... 100 ms between tries, so when two worker processes take turns with the lock
    one of them can starve for hundreds of milliseconds; polling keeps the wait to about
    the other's transaction. ``wait=False`` raises :class:`Busy` at once instead.
    """
    cur = raw.cursor()
    deadline = time.monotonic() + LOCK_WAIT_S
    pause = 0.00005
    while True:
        try:
            cur.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                cur.close()
                raise
            if not wait:
                cur.close()
                raise Busy from exc
            if time.monotonic() > deadline:
                cur.close()
                raise StoreUnavailable(f"the database stayed locked for {LOCK_WAIT_S:g} s") from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.0005)
    try:
        yield cur
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    finally:
        cur.close()


class HoldStore:
    """Places and releases holds on the organisation's database.

    On SQLite, holds are placed on one dedicated driver connection, below SQLAlchemy (the
    same statements, several times faster), one transaction at a time.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sqlite = db.is_sqlite
        self._raw: Any = None
        self._raw_lock = threading.Lock()  # one driver connection: one transaction at a time

    def close(self) -> None:
        with self._raw_lock:
            if self._raw is not None:
                self._raw.close()
                self._raw = None

    def _cursor_conn(self) -> Any:
        if self._raw is None:
            self._raw = own_sqlite_connection(self.db)
        return self._raw

    def _place_sqlite(
        self, payer: Payer, request_id: str, amount: Money, now: datetime, ttl: timedelta
    ) -> PlacedHold:
        stamp = sqlite_ts(now)
        with immediate(self._cursor_conn()) as cur:
            funds = read_funds_sqlite(cur, payer, now)
            decision = check_hold(amount, funds)
            own_part = min(amount, funds.available_own)
            pool_part = min(amount - own_part, funds.available_pool)
            cur.execute(
                _INSERT_QMARK,
                (
                    request_id,
                    payer.person_id,
                    amount.nanousd,
                    pool_part.nanousd,
                    payer.pool_key,
                    stamp,
                    sqlite_ts(now + ttl),
                ),
            )
        return PlacedHold(request_id, amount, pool_part, funds, decision)

    def set_lease(
        self,
        payer: Payer,
        lease_id: str,
        decide: Callable[[Funds], int],
        now: datetime,
        ttl: timedelta,
    ) -> int:
        """Set lease ``lease_id`` (a hold row of a person without a team pool) to
        ``decide(funds)`` in one transaction, where ``funds`` counts every hold but this
        lease; 0 deletes it. ``decide`` may raise (``AllowanceExhausted``): nothing changes.
        Returns the amount set."""
        if self._sqlite:
            with self._raw_lock, immediate(self._cursor_conn()) as cur:
                row = cur.execute(
                    _LEASE_FUNDS_QMARK,
                    (payer.account_key, payer.person_id, sqlite_ts(now), lease_id),
                ).fetchone()
                total = decide(_funds(payer, row[0], row[1], 0, 0))
                if total > 0:
                    cur.execute(
                        _UPSERT_LEASE_QMARK,
                        (lease_id, payer.person_id, total, sqlite_ts(now), sqlite_ts(now + ttl)),
                    )
                else:
                    cur.execute("DELETE FROM holds WHERE request_id = ?", (lease_id,))
                return total
        with self.db.begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(_LOCK_PG, {"own": payer.account_key, "pool": ""})
            row = conn.execute(
                _LEASE_FUNDS,
                {
                    "own": payer.account_key,
                    "person": payer.person_id,
                    "now": now,
                    "lease": lease_id,
                },
            ).one()
            total = decide(_funds(payer, row[0], row[1], 0, 0))
            if total > 0:
                conn.execute(
                    _UPSERT_LEASE,
                    {
                        "lease": lease_id,
                        "person": payer.person_id,
                        "amount": total,
                        "now": now,
                        "exp": now + ttl,
                    },
                )
            else:
                conn.execute(text("DELETE FROM holds WHERE request_id = :rid"), {"rid": lease_id})
            return total

    def funds(self, payer: Payer, now: datetime) -> Funds:
        with self.db.engine.connect() as conn:
            funds = read_funds(conn, payer, now)
            conn.rollback()
            return funds

    def place(
        self, payer: Payer, request_id: str, amount: Money, now: datetime, ttl: timedelta
    ) -> PlacedHold:
        """Check and hold ``amount`` in one transaction; raises ``AllowanceExhausted``."""
        if self._sqlite:
            with self._raw_lock:
                return self._place_sqlite(payer, request_id, amount, now, ttl)
        with self.db.begin() as conn:
            if not self._sqlite:
                conn.execute(text("SET LOCAL synchronous_commit = off"))
                conn.execute(_LOCK_PG, {"own": payer.account_key, "pool": payer.pool_key or ""})
            funds = read_funds(conn, payer, now)
            decision = check_hold(amount, funds)
            own_part = min(amount, funds.available_own)
            pool_part = min(amount - own_part, funds.available_pool)
            conn.execute(
                _INSERT,
                {
                    "rid": request_id,
                    "person": payer.person_id,
                    "amount": amount.nanousd,
                    "pool_part": pool_part.nanousd,
                    "pool": payer.pool_key,
                    "now": _ts(conn, now),
                    "exp": _ts(conn, now + ttl),
                },
            )
        return PlacedHold(request_id, amount, pool_part, funds, decision)

    def release(self, request_id: str) -> None:
        with self.db.begin() as conn:
            conn.execute(text("DELETE FROM holds WHERE request_id = :rid"), {"rid": request_id})

    def sweep(self, now: datetime) -> int:
        """Release holds whose request died; returns how many."""
        with self.db.begin() as conn:
            result = conn.execute(
                text("DELETE FROM holds WHERE expires_utc <= :now"), {"now": _ts(conn, now)}
            )
            return int(result.rowcount or 0)


def _ts(conn: Connection, when: datetime) -> object:
    """Timestamps as the UTC column type stores them (naive UTC text on SQLite)."""
    if conn.dialect.name == "sqlite":
        return sqlite_ts(when)
    return when
