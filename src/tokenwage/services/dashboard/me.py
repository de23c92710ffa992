"""My tokens (``/me``) and a person's page (``/people/{id}``): balance, burn-down, usage by
day and model, recent requests, keys, statements and sharing settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, desc, insert, select, update

from tokenwage.core import analytics
from tokenwage.core.allowances import allowance_in_force, next_refill
from tokenwage.core.analytics import BurnDown, CapCheck, OffHours, UsageFlag
from tokenwage.core.errors import InvalidInput
from tokenwage.core.money import Money
from tokenwage.core.org import Person, zone
from tokenwage.core.package import Package, Period, TokenAllowance
from tokenwage.core.periods import current_period, local_date, start_days
from tokenwage.services.books import funds_for
from tokenwage.services.dashboard.usage import (
    UsageTotals,
    Window,
    first_entry_utc,
    ledger_days,
    model_label,
    month_to_date,
    month_window,
    trailing_window,
    usage_by,
)
from tokenwage.storage.keys_repo import KeysRepo
from tokenwage.storage.org_repo import OrgRepo, person_account
from tokenwage.storage.schema import person_settings, usage_records

RECENT = 15
OFF_HOURS_SAMPLE = 200  # recent requests looked at for work outside working hours
HISTORY_DAYS = 30
ALIAS_MAX = 40


@dataclass(frozen=True)
class RecentRequest:
    used_utc: datetime
    source: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cost: Money
    status: int
    latency_ms: int | None


@dataclass(frozen=True)
class KeyRow:
    prefix: str
    name: str
    created_utc: datetime
    last_used_utc: datetime | None
    expires_utc: datetime | None
    revoked_utc: datetime | None
    usable: bool


@dataclass(frozen=True)
class SharingSettings:
    leaderboard_opt_in: bool = False
    leaderboard_alias: str | None = None
    leaderboard_show_name: bool = False  # else the alias, else "Engineer #n"
    share_detail: bool = False  # colleagues may open my page


@dataclass(frozen=True)
class Headline:
    """The numbers that change while requests flow (also served as JSON for live updates)."""

    balance: Money
    pool_team: str | None
    pool_balance: Money
    spendable: Money
    today: UsageTotals
    month: UsageTotals
    last_request_utc: datetime | None


@dataclass(frozen=True)
class PersonPage:
    person: Person
    headline: Headline
    allowance: TokenAllowance | None
    next_refill_utc: datetime | None
    burn: BurnDown
    burn_mode: str  # "balance": the balance over the allowance period; "allowance": credited
    # versus spent over the month (daily and workday allowances, which lapse day by day)
    forecast_month_linear: Money
    forecast_month_seasonal: Money
    cap: CapCheck
    history: Window
    by_day: list[tuple[date, int]]  # cost per day over ``history``
    by_model: list[tuple[str, UsageTotals]]  # over ``history``, costliest first
    recent: list[RecentRequest]
    keys: list[KeyRow]
    statements: list[str]  # "YYYY-MM", newest first
    settings: SharingSettings
    flags: list[UsageFlag]
    off_hours: OffHours  # over the most recent requests


def burn_window(allowance: TokenAllowance | None, now: datetime, tz: str) -> Window:
    """The current allowance period for weekly allowances, else the current month (a daily
    or workday allowance is followed over the month it builds up in)."""
    if allowance is not None and allowance.period is Period.WEEK:
        span = current_period(Period.WEEK, now, tz)
        assert span is not None  # a week always contains now
        first = local_date(span[0], tz)
        return Window(first, first + timedelta(days=6), local_date(now, tz))
    return month_window(now, tz)


def scheduled_credits(packages: list[Package], after: date, last: date) -> dict[date, int]:
    """Allowance credits still to come on ``(after, last]`` under the packages in force."""
    out: dict[date, int] = {}
    for day in (after + timedelta(days=i + 1) for i in range((last - after).days)):
        allowance = allowance_in_force(packages, day)
        if allowance is not None and any(start_days(allowance.period, day, day)):
            out[day] = allowance.amount.nanousd
    return out


def headline(conn: Connection, person: Person, now: datetime) -> Headline:
    repo = OrgRepo(conn)
    assert person.id is not None
    return _headline(conn, person, now, repo.get_org().timezone, repo.packages_for(person.id))


def _headline(
    conn: Connection, person: Person, now: datetime, tz: str, packages: list[Package]
) -> Headline:
    assert person.id is not None
    pools = {p.team_slug for p in OrgRepo(conn).pools()}
    funds = funds_for(conn, person, now, tz, packages, pools)
    month, today = month_to_date(conn, local_date(now, tz), [person.id])
    last = conn.execute(
        select(usage_records.c.used_utc)
        .where(usage_records.c.person_id == person.id)
        .order_by(desc(usage_records.c.used_utc))
        .limit(1)
    ).scalar()
    return Headline(
        balance=funds.own_balance,
        pool_team=person.team_slug if person.team_slug in pools else None,
        pool_balance=funds.pool_balance,
        spendable=funds.spendable,
        today=today,
        month=month,
        last_request_utc=last,
    )


def person_page(conn: Connection, person_id: int, now: datetime) -> PersonPage:
    repo = OrgRepo(conn)
    tz = repo.get_org().timezone
    person = repo.get_person_by_id(person_id)
    packages = repo.packages_for(person_id)
    today = local_date(now, tz)
    allowance = allowance_in_force(packages, today)
    top = _headline(conn, person, now, tz, packages)
    window = burn_window(allowance, now, tz)
    moves = ledger_days(conn, person_account(person_id), window.first, tz)
    balance_mode = allowance is None or allowance.period in (Period.WEEK, Period.MONTH)
    credits = {d: v for d, v in moves.credits_by_day.items() if d <= today}
    if balance_mode:  # what lapses lowers the balance; daily lapses would hide the month
        for d, v in moves.lapsed_by_day.items():
            credits[d] = credits.get(d, 0) - v
    credits.update(scheduled_credits(packages, today, window.last))
    burn = analytics.burn_down(
        opening_nanousd=moves.opening_nanousd if balance_mode else 0,
        credits_by_day=credits,
        spend_by_day=moves.usage_by_day,
        first=window.first,
        last=window.last,
        today=today,
    )
    history = trailing_window(now, tz, HISTORY_DAYS)
    lookback = today - timedelta(days=HISTORY_DAYS + 28)
    daily = {
        k[0]: v.cost_nanousd
        for k, v in usage_by(conn, ["day"], lookback, today, person_ids=[person_id]).items()
    }
    month = month_window(now, tz)
    elapsed = (today - month.first).days + 1
    total_days = (month.last - month.first).days + 1
    models = usage_by(conn, ["provider", "model"], history.first, today, person_ids=[person_id])
    refill = next_refill(packages, tz, now)
    return PersonPage(
        person=person,
        headline=top,
        allowance=allowance,
        next_refill_utc=refill,
        burn=burn,
        burn_mode="balance" if balance_mode else "allowance",
        forecast_month_linear=analytics.forecast_linear(
            top.month.cost_nanousd, elapsed, total_days
        ),
        forecast_month_seasonal=analytics.forecast_seasonal(
            daily, first=month.first, today=today, last=month.last
        ),
        cap=_cap(conn, person_id, allowance, top, burn, now, tz, refill),
        history=history,
        by_day=[(d, daily.get(d, 0)) for d in history.days],
        by_model=sorted(
            ((model_label(*k), v) for k, v in models.items()),
            key=lambda kv: (-kv[1].cost_nanousd, kv[0]),
        ),
        recent=recent_requests(conn, person_id),
        keys=keys_of(conn, person_id, now),
        statements=statement_months(conn, person_id, now, tz),
        settings=sharing_settings(conn, person_id),
        flags=analytics.usage_flags(daily, since=history.first),
        off_hours=analytics.off_hours(recent_times(conn, person_id, tz)),
    )


def _cap(
    conn: Connection,
    person_id: int,
    allowance: TokenAllowance | None,
    top: Headline,
    burn: BurnDown,
    now: datetime,
    tz: str,
    refill: datetime | None,
) -> CapCheck:
    span = current_period(allowance.period, now, tz) if allowance else None
    spent = 0
    if span is not None:
        first, last = local_date(span[0], tz), local_date(span[1], tz) - timedelta(days=1)
        rows = usage_by(conn, [], first, last, person_ids=[person_id])
        spent = rows.get((), UsageTotals()).cost_nanousd
    days = max((refill - now).days + 1, 0) if refill else 0
    return analytics.cap_check(
        spendable_nanousd=top.spendable.nanousd,
        spent_in_period_nanousd=spent,
        daily_rate_nanousd=burn.daily_rate_nanousd,
        days_to_refill=days,
    )


def recent_requests(conn: Connection, person_id: int, limit: int = RECENT) -> list[RecentRequest]:
    """The newest usage records (index on person and time; never a scan of everything)."""
    u = usage_records.c
    q = (
        select(
            u.used_utc,
            u.source,
            u.provider,
            u.model,
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cost_nanousd,
            u.status,
            u.latency_ms,
        )
        .where(u.person_id == person_id)
        .order_by(desc(u.used_utc))
        .limit(limit)
    )
    return [
        RecentRequest(
            r.used_utc,
            r.source,
            r.provider,
            r.model,
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            Money(r.cost_nanousd),
            r.status,
            r.latency_ms,
        )
        for r in conn.execute(q)
    ]


def recent_times(
    conn: Connection, person_id: int, tz: str, limit: int = OFF_HOURS_SAMPLE
) -> list[tuple[datetime, int]]:
    """The local time and cost of the newest ``limit`` requests (same index as above)."""
    u = usage_records.c
    q = (
        select(u.used_utc, u.cost_nanousd)
        .where(u.person_id == person_id)
        .order_by(desc(u.used_utc))
        .limit(limit)
    )
    local = zone(tz)
    return [(r.used_utc.astimezone(local), int(r.cost_nanousd)) for r in conn.execute(q)]


def keys_of(conn: Connection, person_id: int, now: datetime) -> list[KeyRow]:
    rows = [
        KeyRow(
            k.prefix,
            k.name,
            k.created_utc,
            k.last_used_utc,
            k.expires_utc,
            k.revoked_utc,
            k.usable_at(now),
        )
        for k, _ in KeysRepo(conn).list_for(person_id)
    ]
    return sorted(rows, key=lambda k: not k.usable)  # usable first, each newest first


def statement_months(conn: Connection, person_id: int, now: datetime, tz: str) -> list[str]:
    """Every month from the account's opening to this one, newest first."""
    opened = first_entry_utc(conn, person_account(person_id))
    if opened is None:
        return []
    first, last = local_date(opened, tz), local_date(now, tz)
    months = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        months.append(f"{y}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months[::-1]


def sharing_settings(conn: Connection, person_id: int) -> SharingSettings:
    s = person_settings.c
    row = conn.execute(select(person_settings).where(s.person_id == person_id)).first()
    if row is None:
        return SharingSettings()
    return SharingSettings(
        bool(row.leaderboard_opt_in),
        row.leaderboard_alias,
        bool(row.leaderboard_show_name),
        bool(row.share_detail),
    )


def save_sharing_settings(
    conn: Connection, person_id: int, settings: SharingSettings, now: datetime
) -> SharingSettings:
    alias = (settings.leaderboard_alias or "").strip() or None
    if alias is not None and (len(alias) > ALIAS_MAX or not alias.isprintable()):
        raise InvalidInput(f"a leaderboard alias has 1 to {ALIAS_MAX} printable characters")
    values = {
        "leaderboard_opt_in": int(settings.leaderboard_opt_in),
        "leaderboard_alias": alias,
        "leaderboard_show_name": int(settings.leaderboard_show_name),
        "share_detail": int(settings.share_detail),
        "updated_utc": now,
    }
    s = person_settings.c
    found = conn.execute(select(s.person_id).where(s.person_id == person_id)).first()
    if found is None:
        conn.execute(insert(person_settings).values(person_id=person_id, **values))
    else:
        conn.execute(update(person_settings).where(s.person_id == person_id).values(**values))
    return sharing_settings(conn, person_id)
