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

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

from tokenwage.core.money import Money
from tokenwage.core.package import CapMode
from tokenwage.core.spending import Funds, HoldDecision, check_hold
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
    return Funds(
        own_balance=Money(int(row.own_balance or 0)),
        own_held=Money(max(int(row.own_held or 0), 0)),
        pool_balance=Money(int(row.pool_balance or 0)) if payer.pool_key else Money(0),
        pool_held=Money(max(int(row.pool_held or 0), 0)) if payer.pool_key else Money(0),
        overdraft=payer.overdraft,
        cap=payer.cap,
    )


class HoldStore:
    """Places and releases holds on the organisation's database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sqlite = db.is_sqlite

    def funds(self, payer: Payer, now: datetime) -> Funds:
        with self.db.engine.connect() as conn:
            funds = read_funds(conn, payer, now)
            conn.rollback()
            return funds

    def place(
        self, payer: Payer, request_id: str, amount: Money, now: datetime, ttl: timedelta
    ) -> PlacedHold:
        """Check and hold ``amount`` in one transaction; raises ``AllowanceExhausted``."""
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
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return when
