"""Team (``/team``): each member's use of their allowance this month, top models, and who
is near their cap. Everything for the whole team comes from a handful of queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, select

from tokenwage.core import analytics
from tokenwage.core.allowances import allowance_in_force, next_refill
from tokenwage.core.analytics import CapCheck, CapStatus, UsageFlag
from tokenwage.core.money import Money
from tokenwage.core.org import Person
from tokenwage.core.package import Package, TokenAllowance
from tokenwage.core.periods import count_period_starts, current_period, local_date
from tokenwage.core.spending import Funds
from tokenwage.services.dashboard.usage import (
    UsageTotals,
    Window,
    model_label,
    month_window,
    trailing_window,
    usage_by,
)
from tokenwage.storage.org_repo import OrgRepo, person_account, pool_account
from tokenwage.storage.schema import accounts

RATE_DAYS = 14  # the daily rate behind "runs out before the refill"
HISTORY_DAYS = 30


@dataclass(frozen=True)
class MemberRow:
    person: Person
    allowance: TokenAllowance | None
    committed: Money  # allowance credited this month so far
    month: UsageTotals
    utilisation: Decimal | None  # month spend over committed
    balance: Money
    spendable: Money
    cap: CapCheck
    top_model: str | None
    flags: list[UsageFlag]


@dataclass(frozen=True)
class TeamPage:
    label: str
    month: Window
    members: list[MemberRow]
    total: UsageTotals
    committed: Money
    utilisation: Decimal | None
    top_models: list[tuple[str, UsageTotals]]
    by_day: list[tuple[date, int]]
    pool_balance: Money | None

    @property
    def near_cap(self) -> list[MemberRow]:
        return [m for m in self.members if m.cap.status is not CapStatus.OK]


def balances(conn: Connection, keys: Sequence[str]) -> dict[str, int]:
    """Account balances by key, in one query."""
    if not keys:
        return {}
    q = select(accounts.c.key, accounts.c.balance_nanousd).where(accounts.c.key.in_(keys))
    return {r.key: int(r.balance_nanousd) for r in conn.execute(q)}


def committed_so_far(packages: Sequence[Package], first: date, today: date) -> Money:
    """Allowance credited from ``first`` to ``today`` under the packages in force."""
    total = Money(0)
    day = first
    while day <= today:
        allowance = allowance_in_force(packages, day)
        if allowance is not None:
            total += allowance.amount.times(count_period_starts(allowance.period, day, day))
        day += timedelta(days=1)
    return total


def team_page(conn: Connection, label: str, members: Sequence[Person], now: datetime) -> TeamPage:
    repo = OrgRepo(conn)
    tz = repo.get_org().timezone
    month = month_window(now, tz)
    history = trailing_window(now, tz, HISTORY_DAYS)
    today = month.today
    ids = [p.id for p in members if p.id is not None]
    start = min(month.first, history.first)
    rows = usage_by(conn, ["person_id", "day"], start, today, person_ids=ids)
    models = usage_by(conn, ["person_id", "provider", "model"], month.first, today, person_ids=ids)
    all_packages = repo.all_packages()
    pools = {p.team_slug for p in repo.pools()}
    keys = [person_account(i) for i in ids] + [pool_account(s) for s in pools]
    held = balances(conn, keys)
    out = []
    for person in members:
        assert person.id is not None
        daily = {k[1]: v.cost_nanousd for k, v in rows.items() if k[0] == person.id}
        spent = sum(
            (v for k, v in rows.items() if k[0] == person.id and k[1] >= month.first),
            UsageTotals(),
        )
        mine = {model_label(k[1], k[2]): v for k, v in models.items() if k[0] == person.id}
        top = max(mine.items(), key=lambda kv: kv[1].cost_nanousd)[0] if mine else None
        pkgs = all_packages.get(person.id, [])
        allowance = allowance_in_force(pkgs, today)
        committed = committed_so_far(pkgs, month.first, today)
        has_pool = person.team_slug in pools
        funds = Funds(
            own_balance=Money(held.get(person_account(person.id), 0)),
            pool_balance=Money(
                held.get(pool_account(person.team_slug or ""), 0) if has_pool else 0
            ),
            overdraft=allowance.overdraft if allowance else Money(0),
        )
        out.append(
            MemberRow(
                person=person,
                allowance=allowance,
                committed=committed,
                month=spent,
                utilisation=analytics.ratio(spent.cost_nanousd, committed.nanousd),
                balance=funds.own_balance,
                spendable=funds.spendable,
                cap=_cap(daily, allowance, funds, pkgs, now, tz),
                top_model=top,
                flags=analytics.usage_flags(daily, since=today - timedelta(days=6)),
            )
        )
    out.sort(key=lambda m: (-(m.utilisation or Decimal(-1)), m.person.name))
    by_model: dict[str, UsageTotals] = {}
    for k, v in models.items():
        label_ = model_label(k[1], k[2])
        by_model[label_] = by_model.get(label_, UsageTotals()) + v
    total = sum((m.month for m in out), UsageTotals())
    committed_total = Money.total(m.committed for m in out)
    per_day: dict[date, int] = {}
    for (_, day), v in rows.items():
        per_day[day] = per_day.get(day, 0) + v.cost_nanousd
    team_slugs = {p.team_slug for p in members}
    pool = None
    if len(team_slugs) == 1 and next(iter(team_slugs)) in pools:
        pool = Money(held.get(pool_account(next(iter(team_slugs)) or ""), 0))
    return TeamPage(
        label=label,
        month=month,
        members=out,
        total=total,
        committed=committed_total,
        utilisation=analytics.ratio(total.cost_nanousd, committed_total.nanousd),
        top_models=sorted(by_model.items(), key=lambda kv: (-kv[1].cost_nanousd, kv[0])),
        by_day=[(d, per_day.get(d, 0)) for d in history.days],
        pool_balance=pool,
    )


def _cap(
    daily: dict[date, int],
    allowance: TokenAllowance | None,
    funds: Funds,
    packages: Sequence[Package],
    now: datetime,
    tz: str,
) -> CapCheck:
    today = local_date(now, tz)
    span = current_period(allowance.period, now, tz) if allowance else None
    spent = 0
    if span is not None:
        first, end = local_date(span[0], tz), local_date(span[1], tz)
        spent = sum(v for d, v in daily.items() if first <= d < end)
    recent = sum(v for d, v in daily.items() if d > today - timedelta(days=RATE_DAYS))
    refill = next_refill(list(packages), tz, now)
    return analytics.cap_check(
        spendable_nanousd=funds.spendable.nanousd,
        spent_in_period_nanousd=spent,
        daily_rate_nanousd=Money(recent).prorate(1, RATE_DAYS).nanousd,
        days_to_refill=max((refill - now).days + 1, 0) if refill else 0,
    )
