"""Allowance periods on the organisation's local calendar.

Period boundaries are local midnights in the org time zone, returned as UTC datetimes:
``day`` starts every midnight, ``workday`` every Monday-to-Friday midnight (public holidays
are not modelled), ``week`` every Monday, ``month`` on the 1st. A period runs from its start
up to (not including) the next start of the same kind, except a workday, which ends at the
next midnight (a Friday's workday ends Friday night, not Monday).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from tokenwage.core.errors import InvalidInput
from tokenwage.core.org import zone
from tokenwage.core.package import Period

# The standard year used to annualise an allowance (offers, fully loaded cost).
PERIODS_PER_YEAR: dict[Period, int] = {
    Period.DAY: 365,
    Period.WORKDAY: 260,
    Period.WEEK: 52,
    Period.MONTH: 12,
}


def local_midnight(day: date, tz: str) -> datetime:
    """The UTC instant of local midnight at the start of ``day``."""
    return datetime.combine(day, time(0), tzinfo=zone(tz)).astimezone(UTC)


def local_date(instant: datetime, tz: str) -> date:
    if instant.tzinfo is None:
        raise InvalidInput("timestamps must carry a time zone")
    return instant.astimezone(zone(tz)).date()


def _first_start_on_or_after(period: Period, day: date) -> date:
    if period is Period.DAY:
        return day
    if period is Period.WORKDAY:
        while day.weekday() >= 5:
            day += timedelta(days=1)
        return day
    if period is Period.WEEK:
        return day + timedelta(days=(7 - day.weekday()) % 7)
    if day.day == 1:
        return day
    return _add_month(day.replace(day=1))


def _start_on_or_before(period: Period, day: date) -> date | None:
    """The latest period start at or before ``day`` (None for a weekend with workdays)."""
    if period is Period.DAY:
        return day
    if period is Period.WORKDAY:
        return day if day.weekday() < 5 else None
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _add_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def _next_start_day(period: Period, start: date) -> date:
    if period is Period.DAY:
        return start + timedelta(days=1)
    if period is Period.WORKDAY:
        return _first_start_on_or_after(period, start + timedelta(days=1))
    if period is Period.WEEK:
        return start + timedelta(days=7)
    return _add_month(start)


def _end_day(period: Period, start: date) -> date:
    if period is Period.WORKDAY:
        return start + timedelta(days=1)
    return _next_start_day(period, start)


def start_days(period: Period, first: date, last: date) -> Iterator[date]:
    """Local dates on which a period starts, from ``first`` to ``last`` inclusive."""
    day = _first_start_on_or_after(period, first)
    while day <= last:
        yield day
        day = _next_start_day(period, day)


def period_starts(period: Period, since: datetime, until: datetime, tz: str) -> list[datetime]:
    """UTC instants of the period starts ``s`` with ``since <= s <= until``."""
    out = []
    for day in start_days(period, local_date(since, tz), local_date(until, tz)):
        instant = local_midnight(day, tz)
        if since <= instant <= until:
            out.append(instant)
    return out


def period_end(period: Period, start_utc: datetime, tz: str) -> datetime:
    """The UTC end (exclusive) of the period that starts at ``start_utc``."""
    return local_midnight(_end_day(period, local_date(start_utc, tz)), tz)


def current_period(period: Period, instant: datetime, tz: str) -> tuple[datetime, datetime] | None:
    """(start, end) of the period containing ``instant``; None between workdays."""
    start = _start_on_or_before(period, local_date(instant, tz))
    if start is None:
        return None
    start_utc = local_midnight(start, tz)
    end_utc = period_end(period, start_utc, tz)
    return (start_utc, end_utc) if instant < end_utc else None


def next_start(period: Period, instant: datetime, tz: str) -> datetime:
    """The first period start strictly after ``instant`` (the next refill)."""
    day = local_date(instant, tz)
    while True:
        candidate = _first_start_on_or_after(period, day)
        start_utc = local_midnight(candidate, tz)
        if start_utc > instant:
            return start_utc
        day = candidate + timedelta(days=1)


def count_period_starts(period: Period, first: date, last: date) -> int:
    """How many periods start between two local dates, inclusive (for proration)."""
    if last < first:
        return 0
    if period is Period.DAY:
        return (last - first).days + 1
    return sum(1 for _ in start_days(period, first, last))


def month_bounds(year: int, month: int, tz: str) -> tuple[datetime, datetime]:
    if not 1 <= month <= 12:
        raise InvalidInput(f"month {month} is not between 1 and 12")
    first = date(year, month, 1)
    return local_midnight(first, tz), local_midnight(_add_month(first), tz)
