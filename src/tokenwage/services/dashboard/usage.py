"""Reading ``usage_daily`` and the ledger per local day: the queries every page shares."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Integer, cast, func, select

from tokenwage.core import analytics
from tokenwage.core.money import Money
from tokenwage.core.org import zone
from tokenwage.core.periods import local_date, local_midnight
from tokenwage.storage.schema import accounts, ledger_entries, people, teams, usage_daily

BUCKET_SECONDS = 900  # every real UTC offset is a multiple of 15 minutes
_TOKENS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


@dataclass(frozen=True)
class UsageTotals:
    """Usage summed over some rows of ``usage_daily``."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_nanousd: int = 0
    reasoning_tokens: int = 0  # part of output_tokens, not added to tokens again

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens + self.output_tokens + self.cache_read_tokens
        ) + self.cache_write_tokens

    @property
    def cost(self) -> Money:
        return Money(self.cost_nanousd)

    @property
    def cache_hit_rate(self) -> Decimal | None:
        return analytics.cache_hit_rate(
            self.input_tokens, self.cache_read_tokens, self.cache_write_tokens
        )

    @property
    def cost_per_request(self) -> Money | None:
        return analytics.cost_per_request(self.cost_nanousd, self.requests)

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            self.requests + other.requests,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cost_nanousd + other.cost_nanousd,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass(frozen=True)
class Window:
    """Local dates ``first`` to ``last`` inclusive, with today's local date."""

    first: date
    last: date
    today: date

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def month_window(now: datetime, tz: str) -> Window:
    today = local_date(now, tz)
    first = today.replace(day=1)
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return Window(first, nxt - timedelta(days=1), today)


def trailing_window(now: datetime, tz: str, days: int) -> Window:
    today = local_date(now, tz)
    return Window(today - timedelta(days=days - 1), today, today)


def _sums() -> list[Any]:
    d = usage_daily.c
    cols = [func.coalesce(func.sum(d.requests), 0).label("requests")]
    cols += [func.coalesce(func.sum(d[c]), 0).label(c) for c in _TOKENS]
    return [*cols, func.coalesce(func.sum(d.cost_nanousd), 0).label("cost_nanousd")]


def _totals(sums: Sequence[Any]) -> UsageTotals:
    """From the ``_sums()`` columns, by position (PostgreSQL sums bigints as numeric)."""
    requests, inp, out, cache_read, cache_write, reasoning, cost = (int(v) for v in sums)
    return UsageTotals(requests, inp, out, cache_read, cache_write, cost, reasoning)


def usage_by(
    conn: Connection,
    group: Iterable[str],
    first: date | None,
    last: date | None,
    *,
    person_ids: Collection[int] | None = None,
    source: str | None = None,
) -> dict[tuple[Any, ...], UsageTotals]:
    """``usage_daily`` summed from ``first`` to ``last`` (None: no bound) per the ``group``
    columns, which may be ``day``, ``person_id``, ``provider``, ``model``, ``source`` and
    ``team`` (the person's team slug); for everyone or for ``person_ids``, from every
    source or one."""
    d = usage_daily.c
    keys: list[Any] = []
    for name in group:
        keys.append(teams.c.slug.label("team") if name == "team" else d[name])
    q = select(*keys, *_sums())
    if first is not None:
        q = q.where(d.day >= first)
    if last is not None:
        q = q.where(d.day <= last)
    if source is not None:
        q = q.where(d.source == source)
    if "team" in group:
        q = q.join(people, people.c.id == d.person_id).outerjoin(
            teams, teams.c.id == people.c.team_id
        )
    if person_ids is not None:
        q = q.where(d.person_id.in_(sorted(person_ids)))
    if keys:
        q = q.group_by(*keys)
    out: dict[tuple[Any, ...], UsageTotals] = {}
    n = len(keys)
    for r in conn.execute(q):
        out[r[:n]] = _totals(r[n:])
    return out


def month_to_date(
    conn: Connection, today: date, person_ids: Collection[int] | None = None
) -> tuple[UsageTotals, UsageTotals]:
    """Usage from the first of ``today``'s month to ``today``, and ``today``'s alone (one
    query), for everyone or for ``person_ids``."""
    rows = usage_by(conn, ["day"], today.replace(day=1), today, person_ids=person_ids)
    return sum(rows.values(), UsageTotals()), rows.get((today,), UsageTotals())


def _bucket(conn: Connection) -> Any:
    """15-minute UTC buckets of ``ledger_entries.effective_utc``, placed on local days later."""
    col = ledger_entries.c.effective_utc
    if conn.dialect.name == "sqlite":
        return cast(func.strftime("%s", col), Integer) // BUCKET_SECONDS
    return func.floor(func.extract("epoch", col) / BUCKET_SECONDS)


@dataclass(frozen=True)
class LedgerDays:
    """One account's money movements per local day from ``since`` (by effective time)."""

    balance_now_nanousd: int
    opening_nanousd: int  # the balance before ``since`` (what took effect earlier)
    credits_by_day: dict[date, int]  # net of grants, adjustments and reversals
    lapsed_by_day: dict[date, int]  # expiries, positive
    usage_by_day: dict[date, int]  # usage charged, positive


def ledger_days(conn: Connection, account_key: str, since: date, tz: str) -> LedgerDays:
    """Reads the account's entries recorded since local midnight of ``since`` (indexed by
    account and recording time), summed in the database per 15-minute bucket of their
    effective time and kind. An entry recorded late (an allowance run catching up, usage
    imported days after) lands on the day it took effect, or in the opening balance."""
    head = conn.execute(
        select(accounts.c.id, accounts.c.balance_nanousd).where(accounts.c.key == account_key)
    ).first()
    if head is None:
        return LedgerDays(0, 0, {}, {}, {})
    e = ledger_entries.c
    bucket = _bucket(conn).label("bucket")
    q = (
        select(bucket, e.kind, func.sum(e.amount_nanousd).label("amount"))
        .where(e.account_id == head.id, e.recorded_utc >= local_midnight(since, tz))
        .group_by(bucket, e.kind)
    )
    local = zone(tz)
    sums: dict[str, dict[date, int]] = {"credit": {}, "expiry": {}, "usage": {}}
    moved = 0
    for r in conn.execute(q):
        day = datetime.fromtimestamp(int(r.bucket) * BUCKET_SECONDS, UTC).astimezone(local).date()
        if day < since:
            continue  # took effect before the window: part of the opening balance
        amount = int(r.amount)
        moved += amount
        kind = r.kind if r.kind in ("expiry", "usage") else "credit"
        sign = 1 if kind == "credit" else -1
        sums[kind][day] = sums[kind].get(day, 0) + sign * amount
    balance = int(head.balance_nanousd)
    return LedgerDays(balance, balance - moved, sums["credit"], sums["expiry"], sums["usage"])


def first_entry_utc(conn: Connection, account_key: str) -> datetime | None:
    """When the account's first entry was recorded (index on account and recording time)."""
    e = ledger_entries.c
    q = (
        select(e.recorded_utc)
        .join(accounts, accounts.c.id == e.account_id)
        .where(accounts.c.key == account_key)
        .order_by(e.recorded_utc)
        .limit(1)
    )
    found: datetime | None = conn.execute(q).scalar()
    return found


def model_label(provider: str, model: str) -> str:
    return f"{provider}/{model}"
