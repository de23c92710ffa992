"""Compensation packages, offers and fully loaded cost."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

import orjson
from sqlalchemy import Connection, and_, func, select

from tokenwage.core.compensation import CostBreakdown, fully_loaded_cost
from tokenwage.core.errors import Conflict, InvalidInput
from tokenwage.core.ledger import EntryKind
from tokenwage.core.money import Money
from tokenwage.core.org import Person
from tokenwage.core.package import CapMode, Package, Period, Rollover, TokenAllowance
from tokenwage.core.periods import local_midnight
from tokenwage.storage.org_repo import OrgRepo, person_account
from tokenwage.storage.schema import accounts, ledger_entries


def set_package(conn: Connection, email: str, pkg: Package, *, supersede: bool = False) -> int:
    """Add a package; with ``supersede``, end the open-ended one before it the day before."""
    repo = OrgRepo(conn)
    if supersede:
        for existing in repo.packages_for(repo.person_id(email)):
            if existing.effective_to is None and existing.effective_from < pkg.effective_from:
                assert existing.id is not None
                repo.end_package(existing.id, pkg.effective_from - timedelta(days=1))
    return repo.add_package(email, pkg)


OFFER_KEYS = ("salary", "bonus", "equity", "overhead", "allowance", "rollover", "expiry", "cap")


def parse_offer(text: str, start: date) -> tuple[str, Package]:
    """Parse ``"Name: salary=180000, bonus=20000, equity=40000, allowance=200/workday"``."""
    if ":" not in text:
        raise InvalidInput(
            f"offer {text!r}: write it as 'NAME: salary=..., allowance=AMOUNT/PERIOD'"
        )
    name, _, spec = text.partition(":")
    fields: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in OFFER_KEYS:
            raise InvalidInput(
                f"offer {name.strip()!r}: {part.strip()!r} is not KEY=VALUE with KEY one of "
                + ", ".join(OFFER_KEYS)
            )
        fields[key] = value.strip()
    if "salary" not in fields:
        raise InvalidInput(f"offer {name.strip()!r} needs salary=...")
    amount, period = Money(0), Period.MONTH
    if "allowance" in fields:
        amount_text, _, period_text = fields["allowance"].partition("/")
        amount = Money.parse(amount_text)
        try:
            period = Period(period_text.strip() or "month")
        except ValueError:
            raise InvalidInput(
                f"allowance period {period_text!r} must be one of "
                + ", ".join(p.value for p in Period)
            ) from None
    allowance = TokenAllowance(
        amount=amount,
        period=period,
        rollover=Rollover.parse(fields.get("rollover", "none")),
        expiry_days=int(fields["expiry"]) if "expiry" in fields else None,
        cap=CapMode(fields.get("cap", "hard")),
    )
    pkg = Package(
        base_salary=Money.parse(fields["salary"]),
        bonus_target=Money.parse(fields.get("bonus", "0")),
        equity_per_year=Money.parse(fields.get("equity", "0")),
        benefits_overhead=Money.parse(fields.get("overhead", "0")),
        allowance=allowance,
        effective_from=start,
    )
    return name.strip(), pkg


def current_package(conn: Connection, email: str, day: date) -> Package:
    repo = OrgRepo(conn)
    for pkg in repo.packages_for(repo.person_id(email)):
        if pkg.active_on(day):
            return pkg
    raise Conflict(f"{email} has no package in force on {day}; see `tokenwage package show`")


@dataclass(frozen=True)
class PersonCost:
    person: Person
    cost: CostBreakdown


def token_spend(conn: Connection, person_id: int, first: date, last: date, tz: str) -> Money:
    """Usage charged to the person (own account and team pools) with effective time in range."""
    start, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    in_range = and_(
        ledger_entries.c.kind == str(EntryKind.USAGE),
        ledger_entries.c.effective_utc >= start,
        ledger_entries.c.effective_utc < end,
    )
    own = conn.execute(
        select(func.coalesce(func.sum(ledger_entries.c.amount_nanousd), 0))
        .join(accounts, accounts.c.id == ledger_entries.c.account_id)
        .where(accounts.c.key == person_account(person_id), in_range)
    ).scalar_one()
    pool_rows = conn.execute(
        select(ledger_entries.c.amount_nanousd, ledger_entries.c.meta)
        .join(accounts, accounts.c.id == ledger_entries.c.account_id)
        .where(accounts.c.key.like("pool:%"), in_range)
        .where(ledger_entries.c.meta.like(f'%"person_id":{person_id}%'))
    )
    pooled = sum(
        r.amount_nanousd for r in pool_rows if orjson.loads(r.meta).get("person_id") == person_id
    )
    return Money(-(int(own) + pooled))


def people_costs(
    conn: Connection, first: date, last: date, *, team: str | None = None, email: str | None = None
) -> list[PersonCost]:
    repo = OrgRepo(conn)
    tz = repo.get_org().timezone
    everyone = [repo.get_person(email)] if email else repo.list_people(team)
    all_packages = repo.all_packages()
    rows = []
    for person in everyone:
        assert person.id is not None
        cost = fully_loaded_cost(
            all_packages.get(person.id, []),
            first,
            last,
            employed_from=person.start_date,
            employed_to=person.end_date,
            token_spend=token_spend(conn, person.id, first, last, tz),
        )
        rows.append(PersonCost(person, cost))
    return rows


def with_start(pkg: Package, start: date) -> Package:
    return replace(pkg, effective_from=start, effective_to=None, id=None)


def parse_utilisation(text: str) -> Decimal:
    t = text.strip()
    try:
        value = Decimal(t[:-1]) / 100 if t.endswith("%") else Decimal(t)
    except ArithmeticError:
        raise InvalidInput(f"utilisation {text!r}: write 0.6 or 60%") from None
    return value
