"""A one-person organisation with a key: what tests, benchmarks and examples start from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from tokenwage.core.money import Money
from tokenwage.core.org import Org, Person, Team
from tokenwage.core.package import Package, Period, TokenAllowance
from tokenwage.services import books
from tokenwage.services.keys import create_key
from tokenwage.services.people import add_person, add_team
from tokenwage.storage.org_repo import OrgRepo


def one_person_org(
    conn: Connection,
    allowance: Money,
    *,
    email: str = "ada@acme.example",
    period: Period = Period.MONTH,
    key_name: str = "laptop",
    now: datetime | None = None,
) -> str:
    """Org "Acme" (UTC), team ``platform``, one person whose package started 40 days ago,
    allowances credited up to now; returns a new key for that person (shown once)."""
    now = now or datetime.now(UTC)
    OrgRepo(conn).save_org(Org("Acme", "UTC"))
    add_team(conn, Team("platform", "Platform"))
    add_person(conn, Person(email, email.split("@")[0].title(), team_slug="platform"))
    OrgRepo(conn).add_package(
        email,
        Package(
            base_salary=Money.parse(1),
            allowance=TokenAllowance(allowance, period),
            effective_from=(now - timedelta(days=40)).date(),
        ),
    )
    books.run_allowances(conn, now)
    return create_key(conn, email=email, name=key_name, now=now)[1]
