"""The books: periodic allowances, one-off grants, usage charges and balances.

Every function works inside the caller's transaction; the ledger repository is the only
writer of entries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection

from tokenwage.core import allowances
from tokenwage.core.charges import usage_drafts
from tokenwage.core.errors import InvalidInput
from tokenwage.core.ledger import Entry, EntryDraft, EntryKind
from tokenwage.core.money import Money
from tokenwage.core.org import Person
from tokenwage.core.package import CapMode, Package, Period, TokenAllowance
from tokenwage.core.periods import local_date, period_starts
from tokenwage.core.pricing import Pricer
from tokenwage.core.spending import Funds
from tokenwage.core.usage import TokenUsage
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, TeamPool, person_account, pool_account


@dataclass(frozen=True)
class RunResult:
    accounts: int
    written: list[Entry]

    @property
    def entries(self) -> int:
        return len(self.written)

    @property
    def grants(self) -> int:
        return sum(e.kind is EntryKind.GRANT for e in self.written)

    @property
    def expiries(self) -> int:
        return sum(e.kind is EntryKind.EXPIRY for e in self.written)


EntriesOf = Callable[[str], Sequence[Entry]]


def run_allowances(
    conn: Connection, now: datetime, *, entries_of: EntriesOf | None = None
) -> RunResult:
    """Credit every allowance period that has started and lapse what has expired, up to
    ``now``. Idempotent: a second run at the same ``now`` writes nothing; after downtime it
    catches up every missed period in order. Accounts with no period boundary and no lot
    expiry since their last run are skipped without reading their entries. ``entries_of``
    may serve entries from a cache the caller keeps current (the demo does)."""
    repo, ledger = OrgRepo(conn), LedgerRepo(conn)
    load = entries_of or ledger.entries
    tz = repo.get_org().timezone
    all_packages = repo.all_packages()
    targets: list[tuple[str, list[Package], date | None, date | None]] = [
        (person_account(p.id), all_packages.get(p.id, []), p.start_date, p.end_date)
        for p in repo.list_people()
        if p.id is not None
    ]
    targets += [(pool_account(p.team_slug), [pool_package(p)], None, None) for p in repo.pools()]
    accounts = {a.key: a for a in ledger.all_accounts()}
    cursors = [a.granted_through_utc for a in accounts.values() if a.granted_through_utc]
    expiring = ledger.expiries_between(min(cursors), now) if cursors else {}
    drafts: list[EntryDraft] = []
    for key, packages, employed_from, employed_to in targets:
        since = accounts[key].granted_through_utc
        if since is not None and since >= now:
            continue
        if since is not None and not (
            _boundary_between(packages, tz, since, now)
            or any(since < t <= now for t in expiring.get(key, ()))
        ):
            continue
        drafts += allowances.plan_allowance_run(
            account=key,
            packages=packages,
            employed_from=employed_from,
            employed_to=employed_to,
            tz=tz,
            entries=load(key),
            since_utc=since,
            now_utc=now,
        )
    written = ledger.append(drafts, now)
    ledger.set_granted_through([key for key, *_ in targets], now)
    return RunResult(accounts=len(targets), written=written)


def _boundary_between(packages: Sequence[Package], tz: str, since: datetime, now: datetime) -> bool:
    """Does any allowance period start or end in ``(since, now]``? (Workday periods end at
    midnight, so days are checked for them.)"""
    for pkg in packages:
        period = pkg.allowance.period
        check = Period.DAY if period is Period.WORKDAY else period
        if any(s > since for s in period_starts(check, since, now, tz)):
            return True
    return False


def pool_package(pool: TeamPool) -> Package:
    """A team pool is funded like a person with a package of no pay and no rollover."""
    return Package(
        base_salary=Money(0),
        allowance=TokenAllowance(amount=pool.amount, period=pool.period),
        effective_from=pool.start,
    )


def grant(
    conn: Connection,
    *,
    email: str | None,
    team: str | None,
    amount: Money,
    reason: str,
    now: datetime,
    expires_utc: datetime | None = None,
    ref: str | None = None,
) -> Entry:
    """A one-off grant (spot award, onboarding bonus) to a person or a team pool."""
    if (email is None) == (team is None):
        raise InvalidInput("grant to exactly one of a person (EMAIL) or a team (--team)")
    if amount.nanousd <= 0:
        raise InvalidInput(f"a grant must be positive, not {amount}")
    if not reason.strip():
        raise InvalidInput("a grant needs a --reason (it appears on the statement)")
    if expires_utc is not None and expires_utc <= now:
        raise InvalidInput("a grant's expiry must be in the future")
    repo = OrgRepo(conn)
    key = pool_account(team) if team else person_account(repo.person_id(email or ""))
    if team:
        repo.team_id(team)
    draft = allowances.one_off_grant(
        key,
        amount,
        reason.strip(),
        now,
        ref or f"one-off:{key}:{now.isoformat()}",
        expires_utc=expires_utc,
    )
    written = LedgerRepo(conn).append([draft], now)
    if not written:
        raise InvalidInput(f"this grant was already booked (ref {draft.ref})")
    return written[0]


@dataclass(frozen=True)
class Balance:
    person: Person
    balance: Money
    pool_team: str | None
    pool_balance: Money
    allowance: TokenAllowance | None
    next_refill_utc: datetime | None
    spendable: Money


def balances(
    conn: Connection, now: datetime, *, email: str | None = None, team: str | None = None
) -> list[Balance]:
    repo = OrgRepo(conn)
    tz = repo.get_org().timezone
    people = [repo.get_person(email)] if email else repo.list_people(team)
    all_packages = repo.all_packages()
    pool_teams = {p.team_slug for p in repo.pools()}
    out = []
    for person in people:
        assert person.id is not None
        pkgs = all_packages.get(person.id, [])
        funds = funds_for(conn, person, now, tz, pkgs, pool_teams)
        allowance = allowances.allowance_in_force(pkgs, local_date(now, tz))
        out.append(
            Balance(
                person=person,
                balance=funds.own_balance,
                pool_team=person.team_slug if person.team_slug in pool_teams else None,
                pool_balance=funds.pool_balance,
                allowance=allowance,
                next_refill_utc=allowances.next_refill(pkgs, tz, now) if pkgs else None,
                spendable=funds.spendable,
            )
        )
    return out


def funds_for(
    conn: Connection,
    person: Person,
    now: datetime,
    tz: str,
    packages: list[Package],
    pool_teams: set[str],
) -> Funds:
    ledger = LedgerRepo(conn)
    assert person.id is not None
    allowance = allowances.allowance_in_force(packages, local_date(now, tz))
    has_pool = person.team_slug is not None and person.team_slug in pool_teams
    pool_balance = ledger.balance(pool_account(person.team_slug or "")) if has_pool else 0
    return Funds(
        own_balance=Money(ledger.balance(person_account(person.id))),
        own_held=Money(0),
        pool_balance=Money(pool_balance),
        pool_held=Money(0),
        overdraft=allowance.overdraft if allowance else Money(0),
        cap=allowance.cap if allowance else CapMode.HARD,
    )


def charge_usage(
    conn: Connection,
    *,
    person: Person,
    usage: TokenUsage,
    provider: str,
    model: str,
    used_utc: datetime,
    source: str,
    request_id: str,
    pricer: Pricer,
    funds: Funds,
    now: datetime,
) -> list[EntryDraft]:
    """Price one usage and split its cost over the person's own account and team pool."""
    assert person.id is not None
    return usage_drafts(
        pricer.price(usage, provider, model, used_utc),
        usage,
        funds,
        person_id=person.id,
        own_account=person_account(person.id),
        pool_account=pool_account(person.team_slug) if person.team_slug else None,
        provider=provider,
        model=model,
        used_utc=used_utc,
        source=source,
        request_id=request_id,
    )
