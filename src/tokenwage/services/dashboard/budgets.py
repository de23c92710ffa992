"""Budgets (``/budgets``): packages, allowances, one-off grants and team pools; admins change
them in two steps (preview, then confirm), and every change leaves an audit entry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

import orjson
from sqlalchemy import Connection, desc, select

from tokenwage.core.errors import Conflict, InvalidInput
from tokenwage.core.money import Money
from tokenwage.core.org import Person
from tokenwage.core.package import Package, Period, TokenAllowance
from tokenwage.core.periods import local_date
from tokenwage.services import books
from tokenwage.services.dashboard.team import balances
from tokenwage.services.packages import set_package
from tokenwage.storage.org_repo import OrgRepo, TeamPool, person_account, pool_account
from tokenwage.storage.schema import accounts, audit_log, ledger_entries
from tokenwage.storage.web_repo import WebRepo

RECENT = 20
ACTION_PREFIX = "budget."


class ChangeKind(StrEnum):
    ALLOWANCE = "allowance"  # a person's allowance from today (a new package, same pay)
    GRANT = "grant"  # a one-off grant to a person or a team pool
    POOL = "pool"  # a team pool's allowance


@dataclass(frozen=True)
class PackageRow:
    person: Person
    package: Package | None
    balance: Money


@dataclass(frozen=True)
class PoolRow:
    slug: str
    name: str
    pool: TeamPool | None
    balance: Money


@dataclass(frozen=True)
class GrantRow:
    recorded_utc: datetime
    account: str
    amount: Money
    memo: str


@dataclass(frozen=True)
class AuditRow:
    at_utc: datetime
    actor: str
    action: str
    detail: dict[str, object]


@dataclass(frozen=True)
class BudgetsPage:
    packages: list[PackageRow]
    pools: list[PoolRow]
    grants: list[GrantRow]
    audit: list[AuditRow]


def budgets_page(conn: Connection, now: datetime) -> BudgetsPage:
    repo = OrgRepo(conn)
    today = local_date(now, repo.get_org().timezone)
    people = repo.list_people()
    all_packages = repo.all_packages()
    teams = repo.list_teams()
    keys = [person_account(p.id) for p in people if p.id is not None]
    held = balances(conn, keys + [pool_account(t.slug) for t in teams])
    rows = []
    for p in people:
        assert p.id is not None
        current = next((k for k in all_packages.get(p.id, []) if k.active_on(today)), None)
        rows.append(PackageRow(p, current, Money(held.get(person_account(p.id), 0))))
    pools = {p.team_slug: p for p in repo.pools()}
    pool_rows = [
        PoolRow(t.slug, t.name, pools.get(t.slug), Money(held.get(pool_account(t.slug), 0)))
        for t in teams
    ]
    return BudgetsPage(rows, pool_rows, recent_grants(conn), budget_audit(conn))


def recent_grants(conn: Connection, limit: int = RECENT) -> list[GrantRow]:
    """The newest one-off grants (spot awards, pool top-ups), newest first."""
    e = ledger_entries.c
    q = (
        select(e.recorded_utc, accounts.c.key, e.amount_nanousd, e.memo)
        .join(accounts, accounts.c.id == e.account_id)
        .where(e.kind == "grant", e.ref.like("one-off:%"))
        .order_by(desc(e.id))
        .limit(limit)
    )
    return [
        GrantRow(r.recorded_utc, r.key, Money(r.amount_nanousd), r.memo) for r in conn.execute(q)
    ]


def budget_audit(conn: Connection, limit: int = RECENT) -> list[AuditRow]:
    a = audit_log.c
    q = (
        select(audit_log)
        .where(a.action.like(f"{ACTION_PREFIX}%"))
        .order_by(desc(a.id))
        .limit(limit)
    )
    return [AuditRow(r.at_utc, r.actor, r.action, orjson.loads(r.detail)) for r in conn.execute(q)]


@dataclass(frozen=True)
class BudgetChange:
    kind: ChangeKind
    target: str  # a person's email, or a team's slug (pool, or a grant to a pool)
    to_team: bool
    amount: Money
    period: Period | None  # allowance and pool changes
    reason: str  # grants

    def fields(self) -> dict[str, str]:
        """The form fields that describe this change (the confirmation step resends them)."""
        return {
            "kind": self.kind.value,
            "target": self.target,
            "to_team": "1" if self.to_team else "",
            "amount": self.amount.exact(),
            "period": self.period.value if self.period else "",
            "reason": self.reason,
        }


def parse_change(form: Mapping[str, str]) -> BudgetChange:
    try:
        kind = ChangeKind(form.get("kind", ""))
    except ValueError:
        raise InvalidInput("choose what to change: allowance, grant or pool") from None
    target = form.get("target", "").strip()
    if not target:
        raise InvalidInput("choose a person or a team")
    amount = Money.parse(form.get("amount", "").strip() or "0")
    if amount.nanousd < 0:
        raise InvalidInput(f"an amount cannot be negative ({amount})")
    period = None
    if kind is not ChangeKind.GRANT:
        try:
            period = Period(form.get("period", ""))
        except ValueError:
            choices = ", ".join(p.value for p in Period)
            raise InvalidInput(f"choose an allowance period: {choices}") from None
    reason = form.get("reason", "").strip()
    if kind is ChangeKind.GRANT and (amount.nanousd == 0 or not reason):
        raise InvalidInput("a grant needs a positive amount and a reason (it is on the statement)")
    to_team = kind is ChangeKind.POOL or form.get("to_team", "") == "1"
    return BudgetChange(kind, target, to_team, amount, period, reason)


@dataclass(frozen=True)
class Preview:
    change: BudgetChange
    what: str  # one sentence
    before: str
    after: str


def preview(conn: Connection, change: BudgetChange, now: datetime) -> Preview:
    """What the change will do, checked against the current books, without writing."""
    repo = OrgRepo(conn)
    today = local_date(now, repo.get_org().timezone)
    if change.kind is ChangeKind.ALLOWANCE:
        person = repo.get_person(change.target)
        current = _current(repo, person, today)
        new = _with_allowance(current, change, today)
        return Preview(
            change,
            f"Change {person.name}'s allowance from {today} (a new package; pay unchanged)",
            _describe(current.allowance),
            _describe(new.allowance),
        )
    if change.kind is ChangeKind.POOL:
        repo.team_id(change.target)
        pool = next((p for p in repo.pools() if p.team_slug == change.target), None)
        after = "no pool" if change.amount.nanousd == 0 else f"{change.amount} per {change.period}"
        before = f"{pool.amount} per {pool.period}" if pool else "no pool"
        return Preview(change, f"Set team {change.target}'s pool from {today}", before, after)
    key = pool_account(change.target) if change.to_team else ""
    if change.to_team:
        repo.team_id(change.target)
        who = f"team {change.target}'s pool"
    else:
        person = repo.get_person(change.target)
        assert person.id is not None
        key, who = person_account(person.id), person.name
    balance = Money(balances(conn, [key]).get(key, 0))
    return Preview(
        change,
        f"Grant {change.amount} to {who}: {change.reason}",
        f"balance {balance}",
        f"balance {balance + change.amount}",
    )


def apply_change(conn: Connection, change: BudgetChange, actor: str, now: datetime) -> str:
    """Make the change and write its audit entry, in the caller's transaction."""
    shown = preview(conn, change, now)
    repo = OrgRepo(conn)
    today = local_date(now, repo.get_org().timezone)
    if change.kind is ChangeKind.ALLOWANCE:
        person = repo.get_person(change.target)
        new = _with_allowance(_current(repo, person, today), change, today)
        set_package(conn, person.email, new, supersede=True)
    elif change.kind is ChangeKind.POOL:
        if change.amount.nanousd == 0:
            repo.set_pool(change.target, None, None)
        else:
            repo.set_pool(change.target, change.amount, change.period, today)
    else:
        books.grant(
            conn,
            email=None if change.to_team else change.target,
            team=change.target if change.to_team else None,
            amount=change.amount,
            reason=change.reason,
            now=now,
        )
    detail = {**change.fields(), "before": shown.before, "after": shown.after}
    WebRepo(conn).audit(actor, f"{ACTION_PREFIX}{change.kind.value}", detail, now)
    return f"{shown.what}. Before: {shown.before}; now: {shown.after}."


def _current(repo: OrgRepo, person: Person, today: date) -> Package:
    assert person.id is not None
    for pkg in repo.packages_for(person.id):
        if pkg.active_on(today):
            return pkg
    raise Conflict(f"{person.email} has no package in force today; set one with the CLI first")


def _with_allowance(current: Package, change: BudgetChange, today: date) -> Package:
    if current.effective_from == today:
        raise Conflict(
            "this person's package already changed today; change it again tomorrow, "
            "or use `tokenwage package set` to replace today's package"
        )
    assert change.period is not None
    allowance = replace(current.allowance, amount=change.amount, period=change.period)
    return replace(current, allowance=allowance, effective_from=today, effective_to=None, id=None)


def _describe(allowance: TokenAllowance | None) -> str:
    if allowance is None:
        return "no allowance"
    return f"{allowance.amount} per {allowance.period} ({allowance.cap} cap)"
