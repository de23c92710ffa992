"""Allowance runs, grants, pool draws, balances and statements through the real database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tokenwage.core.errors import InvalidInput, NotFound
from tokenwage.core.ledger import Entry, EntryKind
from tokenwage.core.money import Money
from tokenwage.core.org import Org, Person, Team
from tokenwage.core.package import CapMode, Package, Period, Rollover, TokenAllowance
from tokenwage.core.pricing import Pricer, PricingPolicy
from tokenwage.core.usage import TokenUsage
from tokenwage.services import books
from tokenwage.services.people import add_person, add_team
from tokenwage.services.statements import statement_for
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, person_account, pool_account

TZ = "Europe/Berlin"
NOV = date(2026, 11, 1)


def _setup(db: Database, allowance: TokenAllowance, *, pool: Money | None = None) -> int:
    with db.begin() as conn:
        repo = OrgRepo(conn)
        repo.save_org(Org("Acme", TZ))
        add_team(conn, Team("platform", "Platform"))
        if pool is not None:
            repo.set_pool("platform", pool, Period.MONTH, NOV)
        pid = add_person(conn, Person("ada@acme.example", "Ada", team_slug="platform"))
        repo.add_package(
            "ada@acme.example",
            Package(base_salary=Money.parse(200_000), allowance=allowance, effective_from=NOV),
        )
        return pid


def _entries(db: Database, key: str) -> list[Entry]:
    with db.begin() as conn:
        return LedgerRepo(conn).entries(key)


def test_workday_allowance_catches_up_and_is_idempotent(db: Database) -> None:
    pid = _setup(db, TokenAllowance(Money.parse(200), Period.WORKDAY))
    at = datetime(2026, 11, 14, 12, tzinfo=UTC)  # a Saturday: 10 workdays have started
    with db.begin() as conn:
        first = books.run_allowances(conn, at)
    with db.begin() as conn:
        again = books.run_allowances(conn, at)
    assert again.entries == 0
    grants = [e for e in _entries(db, person_account(pid)) if e.kind is EntryKind.GRANT]
    assert len(grants) == 10 == first.grants
    # rollover none: every workday's grant lapsed at the end of its day
    assert first.expiries == 10
    with db.begin() as conn:
        assert LedgerRepo(conn).balance(person_account(pid)) == 0


def test_running_daily_equals_one_catch_up(db: Database) -> None:
    allowance = TokenAllowance(Money.parse(100), Period.DAY, rollover=Rollover.parse("capped:2"))
    pid = _setup(db, allowance)
    end = datetime(2026, 11, 20, 6, tzinfo=UTC)
    with db.begin() as conn:
        books.run_allowances(conn, end)
        once = [
            (e.kind, e.amount_nanousd, e.ref) for e in LedgerRepo(conn).entries(person_account(pid))
        ]
    # the same organisation, run every six hours instead
    with db.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ledger_entries")
        conn.exec_driver_sql(
            "UPDATE accounts SET head_seq = 0, head_hash = '"
            + "0" * 64
            + "', balance_nanousd = 0, granted_through_utc = NULL"
        )
    t = datetime(2026, 11, 1, tzinfo=UTC)
    while t <= end:
        with db.begin() as conn:
            books.run_allowances(conn, t)
        t += timedelta(hours=6)
    with db.begin() as conn:
        books.run_allowances(conn, end)
        stepped = [
            (e.kind, e.amount_nanousd, e.ref) for e in LedgerRepo(conn).entries(person_account(pid))
        ]
    assert stepped == once
    # capped:2 keeps at most two days' worth after each day ends, plus today's grant
    assert sum(a for _, a, _ in once) == Money.parse(300).nanousd


def test_usage_draws_own_then_pool_and_statement_adds_up(db: Database) -> None:
    pid = _setup(db, TokenAllowance(Money.parse(10), Period.MONTH), pool=Money.parse(100))
    now = datetime(2026, 11, 10, 12, tzinfo=UTC)
    pricer = Pricer(PricingPolicy())
    with db.begin() as conn:
        books.run_allowances(conn, now)
        person = OrgRepo(conn).get_person("ada@acme.example")
        funds = books.funds_for(
            conn, person, now, TZ, OrgRepo(conn).packages_for(pid), {"platform"}
        )
        assert funds.own_balance == Money.parse(10) and funds.pool_balance == Money.parse(100)
        usage = TokenUsage(input_tokens=1_000_000, output_tokens=200_000)  # $3 + $3 = $6 x2
        drafts = []
        for i in range(2):
            drafts += books.charge_usage(
                conn,
                person=person,
                usage=usage,
                provider="anthropic",
                model="claude-sonnet-4",
                used_utc=now,
                source="test",
                request_id=f"r{i}",
                pricer=pricer,
                funds=funds
                if i == 0
                else books.funds_for(
                    conn, person, now, TZ, OrgRepo(conn).packages_for(pid), {"platform"}
                ),
                now=now,
            )
            LedgerRepo(conn).append(drafts[-2:] if i else drafts, now)
        own = LedgerRepo(conn).balance(person_account(pid))
        pool = LedgerRepo(conn).balance(pool_account("platform"))
    assert own == 0  # $10 own allowance used up first
    assert pool == Money.parse(98).nanousd  # the remaining $2 came from the team pool
    with db.begin() as conn:
        st = statement_for(conn, "ada@acme.example", 2026, 11, now)
    assert st.closing_balance == Money(0)
    assert st.usage_total == Money.parse(-10)
    assert st.pool_usage.cost == Money.parse(2)


def test_grant_refusals(db: Database) -> None:
    _setup(db, TokenAllowance(Money.parse(10), Period.MONTH))
    now = datetime(2026, 11, 10, tzinfo=UTC)
    with db.begin() as conn:
        with pytest.raises(InvalidInput, match="positive"):
            books.grant(
                conn, email="ada@acme.example", team=None, amount=Money(0), reason="x", now=now
            )
        with pytest.raises(InvalidInput, match="reason"):
            books.grant(
                conn, email="ada@acme.example", team=None, amount=Money(5), reason=" ", now=now
            )
        with pytest.raises(NotFound):
            books.grant(
                conn, email="bob@acme.example", team=None, amount=Money(5), reason="x", now=now
            )
        with pytest.raises(InvalidInput, match="exactly one"):
            books.grant(conn, email=None, team=None, amount=Money(5), reason="x", now=now)
        entry = books.grant(
            conn, email=None, team="platform", amount=Money.parse(50), reason="top-up", now=now
        )
    assert entry.account == pool_account("platform") and entry.meta["source"] == "pool"


def test_balances_show_next_refill_and_spendable(db: Database) -> None:
    allowance = TokenAllowance(
        Money.parse(300), Period.MONTH, cap=CapMode.HARD, overdraft=Money.parse(25)
    )
    _setup(db, allowance, pool=Money.parse(100))
    now = datetime(2026, 11, 10, tzinfo=UTC)
    with db.begin() as conn:
        books.run_allowances(conn, now)
        (b,) = books.balances(conn, now)
    assert b.balance == Money.parse(300)
    assert b.pool_balance == Money.parse(100)
    assert b.spendable == Money.parse(425)
    assert b.next_refill_utc == datetime(2026, 11, 30, 23, tzinfo=UTC)  # Dec 1 in Berlin
