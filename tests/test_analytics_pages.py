"""The dashboard's data access against the books: the burn-down ends at the ledger balance,
daily allowances follow the month, the team's committed allowance counts period starts.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tests.web.pages_data import spend
from tokenwage.core.money import Money
from tokenwage.core.org import Org, Person, Team
from tokenwage.core.package import Package, Period, TokenAllowance
from tokenwage.core.periods import count_period_starts
from tokenwage.services import books
from tokenwage.services.dashboard.me import person_page
from tokenwage.services.dashboard.team import team_page
from tokenwage.services.people import add_person, add_team
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, person_account


def _org(db: Database, now: datetime) -> dict[str, int]:
    start = (now - timedelta(days=70)).date()
    ids = {}
    with db.begin() as conn:
        OrgRepo(conn).save_org(Org("Acme", "UTC"))
        add_team(conn, Team("data", "Data"))
        for short, amount, period in (("mo", 900, Period.MONTH), ("wd", 40, Period.WORKDAY)):
            email = f"{short}@acme.example"
            ids[short] = add_person(conn, Person(email, short.upper(), team_slug="data"))
            OrgRepo(conn).add_package(
                email,
                Package(
                    base_salary=Money.parse(100_000),
                    allowance=TokenAllowance(Money.parse(amount), period),
                    effective_from=start,
                ),
            )
        books.run_allowances(conn, now)
    return ids


def test_burn_down_ends_at_the_ledger_balance(db: Database) -> None:
    now = datetime.now(UTC)
    ids = _org(db, now)
    spent = spend(db, "mo@acme.example", n=5, model="gpt-5").cost_nanousd
    with db.begin() as conn:
        page = person_page(conn, ids["mo"], now)
        balance = LedgerRepo(conn).balance(person_account(ids["mo"]))
    assert page.burn_mode == "balance"
    assert page.burn.first == now.date().replace(day=1)
    assert page.burn.left_now_nanousd == balance == Money.parse(900).nanousd - spent
    assert page.headline.month.cost_nanousd == spent and page.headline.today.requests == 5
    assert page.by_model[0][0] == "openai/gpt-5" and page.by_model[0][1].requests == 5
    assert [r.model for r in page.recent] == ["gpt-5"] * 5
    assert page.by_day[-1] == (now.date(), spent)


def test_daily_allowances_follow_the_month(db: Database) -> None:
    now = datetime.now(UTC)
    ids = _org(db, now)
    with db.begin() as conn:
        page = person_page(conn, ids["wd"], now)
        team = team_page(conn, "Data", OrgRepo(conn).list_people("data"), now)
    today = now.date()
    first = today.replace(day=1)
    workdays = count_period_starts(Period.WORKDAY, first, today)
    row = next(d for d in page.burn.days if d.day == today)
    assert page.burn_mode == "allowance"
    assert row.credited_nanousd == Money.parse(40).nanousd * workdays
    month_end = page.burn.days[-1]
    assert month_end.credited_nanousd == Money.parse(40).nanousd * count_period_starts(
        Period.WORKDAY,
        first,
        date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1),
    )
    committed = {m.person.email: m.committed for m in team.members}
    assert committed["wd@acme.example"] == Money.parse(40).times(workdays)
    assert committed["mo@acme.example"] == Money.parse(900)
    assert team.committed == Money.parse(900) + Money.parse(40).times(workdays)
