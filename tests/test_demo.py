"""The demo organisation: usage booked like production (records, daily sums, ledger), a
login per role, and ``demo run`` printing the dashboard and how to sign in."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.cli_runner import Cli
from tests.test_analytics_usage_daily import daily_rows, records_summed
from tokenwage.cli.demo import demo_logins, demo_password
from tokenwage.core.org import Role
from tokenwage.services.demo import DEMO_TZ, seed_demo
from tokenwage.storage import migrate
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import ledger_entries, person_settings, usage_records
from tokenwage.web.accounts import authenticate


def test_the_demo_books_usage_like_production(db: Database) -> None:
    now = datetime.now(UTC)
    with db.begin() as conn:
        summary = seed_demo(conn, now=now, people=8, days=12)
    with db.begin() as conn:
        records = conn.execute(select(func.count()).select_from(usage_records)).scalar_one()
        recorded_cost = conn.execute(select(func.sum(usage_records.c.cost_nanousd))).scalar_one()
        charged = conn.execute(
            select(func.sum(ledger_entries.c.amount_nanousd)).where(
                ledger_entries.c.kind == "usage"
            )
        ).scalar_one()
        assert records == summary.usage_sessions > 0
        assert -charged == recorded_cost  # every session recorded is exactly what was charged
        assert daily_rows(conn) == records_summed(conn, DEMO_TZ)
        assert list(LedgerRepo(conn).verify()) == []
        sources = set(conn.execute(select(usage_records.c.source).distinct()).scalars())
        opted = conn.execute(
            select(func.count()).where(person_settings.c.leaderboard_opt_in == 1)
        ).scalar_one()
    assert sources <= {"claude_code", "codex"} and sources
    assert opted == 6  # three in four of 8 people join the leaderboard
    assert set(summary.logins) == {str(r) for r in Role}


def test_demo_logins_sign_in_with_the_printed_passwords(db: Database) -> None:
    now = datetime.now(UTC)
    with db.begin() as conn:
        seed_demo(conn, now=now, people=8, days=3)
        logins = demo_logins(conn, now)
    assert [role for role, _, _ in logins] == list(Role)
    with db.begin() as conn:
        for role, email, password in logins:
            assert password == demo_password(role)
            account = authenticate(conn, email, password, now)
            assert account is not None and account.role is role
            assert authenticate(conn, email, "wrong-password-123", now) is None


def test_demo_run_prints_the_dashboard_and_a_login_per_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``demo run`` seeds, starts the mock provider and ``tokenwage serve`` (one port for
    gateway and dashboard), sends a request and prints how to sign in (SQLite, loopback)."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    cli = Cli(url, capsys)
    ran = cli("demo", "run", "--people", "8", "--days", "4", "--no-serve", "--port", "0")
    assert ran.code == 0, ran.err
    base = re.search(r"Open (http://127\.0\.0\.1:\d+)/ and sign in as:", ran.out)
    assert base, ran.out
    assert f"export OPENAI_BASE_URL={base.group(1)}/v1" in ran.out
    for role in Role:
        assert re.search(
            rf"{role.value}\s+\S+@acme\.example\s+password {demo_password(role)}", ran.out
        )
    assert "every hash chain holds" in ran.out
    member = re.search(r"member\s+(\S+@acme\.example)", ran.out)
    assert member and f"<{member.group(1)}> (shown once)" in ran.out  # the key is the member's
    # the request's debit is in the ledger (booked a few ms after the answer) and printed
    paid = re.search(
        r"cost\s+\$([\d.]+):\s+\S+\s+went\s+from\s+\$([\d.,]+)\s+to\s+\$([\d.,]+)", ran.out
    )
    assert paid, ran.out
    cost, before, after = (Decimal(g.replace(",", "").rstrip(".")) for g in paid.groups())
    assert cost > 0 and abs(before - after - cost) <= Decimal("0.000001")  # each shown rounded
    db = Database(url)
    try:
        migrate.require_current(db)
        with db.begin() as conn:
            assert authenticate(
                conn, member.group(1), demo_password(Role.MEMBER), datetime.now(UTC)
            )
    finally:
        db.dispose()
