"""Dashboard analytics (pure): burn-down, forecasts, near-cap, ratios, unusual use, fairness.

Inputs are plain numbers already summed by the storage layer (usage per local day, ledger
changes per local day, allowances committed); nothing here reads a database. Money stays
integer nano-dollars: every division that yields money goes through
:meth:`Money.prorate` (the one rounding rule, once); ratios are exact ``Decimal``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from tokenwage.core.money import NANO_PER_USD, Money

# -- ratios -------------------------------------------------------------------------------


def ratio(part: int, whole: int) -> Decimal | None:
    """``part / whole`` exactly, or None when there is no whole to compare with."""
    return Decimal(part) / Decimal(whole) if whole > 0 else None


def cache_hit_rate(
    input_tokens: int, cache_read_tokens: int, cache_write_tokens: int
) -> Decimal | None:
    """Share of prompt tokens served from the provider's cache (reads over all prompt tokens)."""
    return ratio(cache_read_tokens, input_tokens + cache_read_tokens + cache_write_tokens)


def cost_per_request(cost_nanousd: int, requests: int) -> Money | None:
    return Money(cost_nanousd).prorate(1, requests) if requests > 0 else None


def percent(value: Decimal | None, places: int = 0) -> str:
    """``Decimal('0.4567')`` as ``'46%'``; None as an em dash."""
    if value is None:
        return "—"
    return f"{(value * 100).quantize(Decimal(1).scaleb(-places))}%"


# -- burn-down ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BurnDay:
    day: date
    credited_nanousd: int  # cumulative net credits (grants, expiries, adjustments) so far
    spent_nanousd: int  # cumulative usage so far
    left_nanousd: int | None  # balance at the end of the day; None for days still to come
    pace_nanousd: int  # what would be left spending evenly to zero at the window's end
    forecast_nanousd: int | None  # forecast balance at the end of the day (today onwards)
    forecast_spent_nanousd: int | None  # forecast cumulative usage (today onwards)


@dataclass(frozen=True)
class BurnDown:
    first: date
    last: date
    opening_nanousd: int
    days: tuple[BurnDay, ...]
    left_now_nanousd: int
    daily_rate_nanousd: int  # average spend per elapsed day
    forecast_end_nanousd: int  # forecast balance at the end of ``last``
    runs_out_on: date | None  # first day the forecast balance is below zero


def burn_down(
    *,
    opening_nanousd: int,
    credits_by_day: Mapping[date, int],
    spend_by_day: Mapping[date, int],
    first: date,
    last: date,
    today: date,
) -> BurnDown:
    """How an account's balance runs down from ``first`` to ``last`` (local dates, inclusive).

    ``opening_nanousd`` is the balance before ``first``; ``credits_by_day`` the net of every
    non-usage change per day (grants positive, expiries negative; future days carry the
    scheduled allowance credits); ``spend_by_day`` the usage cost per day (positive). The
    forecast continues today's balance at the average daily spend of the elapsed days.
    """
    if last < first:
        raise ValueError(f"burn-down window ends {last} before it starts {first}")
    today = min(max(today, first), last)
    n_days = (last - first).days + 1
    elapsed = (today - first).days + 1
    window = [first + timedelta(days=i) for i in range(n_days)]
    budget = opening_nanousd + sum(credits_by_day.get(d, 0) for d in window)
    spent_so_far = sum(spend_by_day.get(d, 0) for d in window if d <= today)
    rate = Money(spent_so_far).prorate(1, elapsed).nanousd
    credited = spent = 0
    left_now = opening_nanousd
    forecast = 0
    runs_out: date | None = None
    days: list[BurnDay] = []
    for i, d in enumerate(window):
        credited += credits_by_day.get(d, 0)
        pace = Money(max(budget, 0)).prorate(n_days - i - 1, n_days).nanousd
        if d <= today:
            spent += spend_by_day.get(d, 0)
            left = opening_nanousd + credited - spent
            left_now = left
            forecast = left
            now_row = d == today
            row = BurnDay(
                d,
                credited,
                spent,
                left,
                pace,
                left if now_row else None,
                spent if now_row else None,
            )
        else:
            forecast += credits_by_day.get(d, 0) - rate
            ahead = (d - today).days
            row = BurnDay(d, credited, spent, None, pace, forecast, spent + ahead * rate)
        if runs_out is None and d >= today and (row.forecast_nanousd or 0) < 0:
            runs_out = d
        days.append(row)
    return BurnDown(first, last, opening_nanousd, tuple(days), left_now, rate, forecast, runs_out)


# -- forecasts ----------------------------------------------------------------------------


def forecast_linear(spent_nanousd: int, days_elapsed: int, days_total: int) -> Money:
    """Spend by the end of a window at the pace so far: ``spent * total / elapsed``."""
    if days_total < 1 or not 1 <= days_elapsed <= days_total:
        raise ValueError(f"need 1 <= days_elapsed ({days_elapsed}) <= days_total ({days_total})")
    return Money(spent_nanousd).prorate(days_total, days_elapsed)


def forecast_seasonal(
    spend_by_day: Mapping[date, int], *, first: date, today: date, last: date, weeks: int = 4
) -> Money:
    """Spend by ``last``: spent from ``first`` to ``today``, plus each remaining day at the
    average of the same weekday over the ``weeks`` weeks before tomorrow (weekends stay
    quiet, Mondays busy)."""
    if not first <= today <= last:
        raise ValueError(f"need {first} <= {today} <= {last}")
    spent = sum(v for d, v in spend_by_day.items() if first <= d <= today)
    by_weekday = [0] * 7
    since = today - timedelta(days=7 * weeks - 1)
    for d, v in spend_by_day.items():
        if since <= d <= today:
            by_weekday[d.weekday()] += v
    total = Money(spent)
    day = today + timedelta(days=1)
    while day <= last:
        total += Money(by_weekday[day.weekday()]).prorate(1, weeks)
        day += timedelta(days=1)
    return total


# -- caps ---------------------------------------------------------------------------------


class CapStatus(StrEnum):
    OK = "ok"
    NEAR = "near"  # under the warning share left, or on course to run out before the refill
    OUT = "out"  # nothing left to spend


@dataclass(frozen=True)
class CapCheck:
    status: CapStatus
    used_share: Decimal | None  # spent over what was available in the period
    days_left_at_pace: int | None  # whole days the spendable money lasts at the current rate


def cap_check(
    *,
    spendable_nanousd: int,
    spent_in_period_nanousd: int,
    daily_rate_nanousd: int,
    days_to_refill: int,
    warn_left: Decimal = Decimal("0.2"),
) -> CapCheck:
    """Is a person near their cap? ``spendable`` is what they may still spend (own balance,
    pool and overdraft headroom); the period's budget is that plus what they already spent."""
    budget = spendable_nanousd + spent_in_period_nanousd
    used = ratio(spent_in_period_nanousd, budget)
    lasts = spendable_nanousd // daily_rate_nanousd if daily_rate_nanousd > 0 else None
    if spendable_nanousd <= 0:
        status = CapStatus.OUT
    elif (used is not None and used >= 1 - warn_left) or (
        lasts is not None and lasts < days_to_refill
    ):
        status = CapStatus.NEAR
    else:
        status = CapStatus.OK
    return CapCheck(status, used, max(lasts, 0) if lasts is not None else None)


# -- unusual use --------------------------------------------------------------------------


class FlagKind(StrEnum):
    SPIKE = "spike"  # a day far above the person's usual
    WEEKEND = "weekend"  # spend on a Saturday or Sunday (outside work hours)


@dataclass(frozen=True)
class UsageFlag:
    kind: FlagKind
    day: date
    spend_nanousd: int
    usual_nanousd: int  # the median active day before it (SPIKE) or 0

    def describe(self) -> str:
        if self.kind is FlagKind.SPIKE:
            return (
                f"{Money(self.spend_nanousd)} on {self.day:%a %d %b}, "
                f"usual day {Money(self.usual_nanousd)}"
            )
        return f"{Money(self.spend_nanousd)} on {self.day:%a %d %b} (weekend)"


@dataclass(frozen=True)
class OffHours:
    """Of the requests looked at, those outside working hours (local time: weekends, and
    weekdays before ``start_hour`` or from ``end_hour``)."""

    requests: int
    outside: int
    outside_cost_nanousd: int
    start_hour: int
    end_hour: int

    @property
    def share(self) -> Decimal | None:
        return ratio(self.outside, self.requests)

    @property
    def notable(self) -> bool:
        """Worth a look: at least 5 such requests and a quarter of all."""
        return self.outside >= 5 and 4 * self.outside >= self.requests


def off_hours(
    requests: Iterable[tuple[datetime, int]], *, start_hour: int = 7, end_hour: int = 20
) -> OffHours:
    """``requests`` as (local time, cost in nano-USD)."""
    if not 0 <= start_hour < end_hour <= 24:
        raise ValueError(
            f"working hours {start_hour}-{end_hour} must satisfy 0 <= start < end <= 24"
        )
    n = outside = cost = 0
    for at, nanousd in requests:
        n += 1
        if at.weekday() >= 5 or not start_hour <= at.hour < end_hour:
            outside += 1
            cost += nanousd
    return OffHours(n, outside, cost, start_hour, end_hour)


def median(values: Sequence[int]) -> int:
    """The median, the lower middle for an even count (stays an exact int)."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def usage_flags(
    spend_by_day: Mapping[date, int],
    *,
    since: date,
    factor: int = 3,
    floor_nanousd: int = 5 * NANO_PER_USD,
    lookback_days: int = 28,
    min_history: int = 5,
) -> list[UsageFlag]:
    """Days from ``since`` on whose spend is above ``factor`` times the median active day of
    the ``lookback_days`` before (with at least ``min_history`` active days to judge from)
    and above ``floor_nanousd``; and weekend days above the floor. Newest first."""
    flags: list[UsageFlag] = []
    for day in sorted((d for d in spend_by_day if d >= since), reverse=True):
        spend = spend_by_day[day]
        if spend < floor_nanousd:
            continue
        start = day - timedelta(days=lookback_days)
        history = [v for d, v in spend_by_day.items() if start <= d < day and v > 0]
        usual = median(history)
        if len(history) >= min_history and spend > factor * usual:
            flags.append(UsageFlag(FlagKind.SPIKE, day, spend, usual))
        elif day.weekday() >= 5:
            flags.append(UsageFlag(FlagKind.WEEKEND, day, spend, 0))
    return flags


# -- fairness -----------------------------------------------------------------------------


def gini(values: Sequence[int]) -> Decimal | None:
    """Gini coefficient of non-negative amounts: 0 when everyone spends the same, towards 1
    when one person spends everything. None for nobody or nothing spent."""
    if any(v < 0 for v in values):
        raise ValueError("gini takes non-negative amounts")
    n, total = len(values), sum(values)
    if n == 0 or total == 0:
        return None
    weighted = sum((i + 1) * v for i, v in enumerate(sorted(values)))
    return Decimal(2 * weighted - (n + 1) * total) / Decimal(n * total)


@dataclass(frozen=True)
class TeamUse:
    team: str
    people: int
    committed_nanousd: int  # allowance credited over the window
    spent_nanousd: int
    utilisation: Decimal | None  # spent / committed
    median_person: Decimal | None  # the median member's own utilisation
    spread: Decimal | None  # gini of spend across members


def team_fairness(
    members: Mapping[str, Sequence[tuple[int, int]]],
) -> list[TeamUse]:
    """Per team, from each member's (committed, spent) over the same window: utilisation,
    the median member's utilisation and the spread of spend. Highest utilisation first."""
    out = []
    for team, rows in members.items():
        committed = sum(c for c, _ in rows)
        spent = sum(s for _, s in rows)
        shares = sorted(r for c, s in rows if (r := ratio(s, c)) is not None)
        mid = shares[(len(shares) - 1) // 2] if shares else None
        spread = gini([max(s, 0) for _, s in rows])
        out.append(TeamUse(team, len(rows), committed, spent, ratio(spent, committed), mid, spread))
    return sorted(out, key=lambda t: (-(t.utilisation or Decimal(-1)), t.team))


# -- seals --------------------------------------------------------------------------------


def month_seal(heads: Iterable[tuple[str, int, str]]) -> str:
    """One SHA-256 over every chain's head (account, seq, hash) at a month's end: publish it
    and a rewritten history no longer matches. Order-independent; a chain with no entry yet
    contributes nothing."""
    lines = sorted(f"{account} {seq} {digest}" for account, seq, digest in heads if seq > 0)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
