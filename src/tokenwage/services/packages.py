"""Compensation packages, offers and fully loaded cost."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    current: list[Package] = []
    for existing in repo.packages_for(repo.person_id(email)):
        open_before = existing.effective_to is None and existing.effective_from < pkg.effective_from
        if supersede and open_before:
            assert existing.id is not None
            last_day = pkg.effective_from - timedelta(days=1)
            repo.end_package(existing.id, last_day)
            existing = replace(existing, effective_to=last_day)
        current.append(existing)
    for existing in current:
        if existing.overlaps(pkg):
            raise Conflict(
                f"{email} already has a package {_span(existing)}, which overlaps the new one "
                f"{_span(pkg)}; choose dates that do not overlap (--from, --to), or use "
                "--supersede to end an open-ended package the day before the new one starts"
            )
    return repo.add_package(email, pkg)


def _span(pkg: Package) -> str:
    return f"from {pkg.effective_from} to {pkg.effective_to or 'open-ended'}"


def _money(text: str, what: str) -> Money:
    try:
        return Money.parse(text)
    except ValueError as exc:
        raise InvalidInput(f"{what}: {exc}") from None


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
    label = f"offer {name.strip()!r}"
    if "salary" not in fields:
        raise InvalidInput(f"{label} needs salary=...")
    amount, period = Money(0), Period.MONTH
    if "allowance" in fields:
        amount_text, _, period_text = fields["allowance"].partition("/")
        amount = _money(amount_text, f"{label} allowance")
        try:
            period = Period(period_text.strip() or "month")
        except ValueError:
            raise InvalidInput(
                f"allowance period {period_text!r} must be one of "
                + ", ".join(p.value for p in Period)
            ) from None
    try:
        expiry_days = int(fields["expiry"]) if "expiry" in fields else None
    except ValueError:
        raise InvalidInput(f"{label} expiry {fields['expiry']!r} must be whole days") from None
    try:
        cap = CapMode(fields.get("cap", "hard"))
    except ValueError:
        choices = ", ".join(c.value for c in CapMode)
        raise InvalidInput(f"{label} cap {fields['cap']!r} must be one of {choices}") from None
    allowance = TokenAllowance(
        amount=amount,
        period=period,
        rollover=Rollover.parse(fields.get("rollover", "none")),
        expiry_days=expiry_days,
        cap=cap,
    )
    pkg = Package(
        base_salary=_money(fields["salary"], f"{label} salary"),
        bonus_target=_money(fields.get("bonus", "0"), f"{label} bonus"),
        equity_per_year=_money(fields.get("equity", "0"), f"{label} equity"),
        benefits_overhead=_money(fields.get("overhead", "0"), f"{label} overhead"),
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

    @property
    def total(self) -> Money:
        """Fully loaded: pay, equity, overhead and the allowance committed."""
        return self.cost.total_committed


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
    return loaded_costs(
        everyone,
        repo.all_packages(),
        first,
        last,
        lambda person_id: token_spend(conn, person_id, first, last, tz),
    )


def loaded_costs(
    people: Sequence[Person],
    packages: Mapping[int, list[Package]],
    first: date,
    last: date,
    spend: Callable[[int], Money],
) -> list[PersonCost]:
    """The fully loaded cost of each of ``people`` from ``first`` to ``last``, with their
    packages and ``spend(person_id)``, the tokens they spent."""
    rows = []
    for person in people:
        assert person.id is not None
        cost = fully_loaded_cost(
            packages.get(person.id, []),
            first,
            last,
            employed_from=person.start_date,
            employed_to=person.end_date,
            token_spend=spend(person.id),
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
