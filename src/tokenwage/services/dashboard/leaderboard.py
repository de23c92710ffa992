"""Leaderboard (``/leaderboard``): only people who opted in, under their name only if they
chose to show it, else their alias, else "Engineer #n"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, select

from tokenwage.core.errors import InvalidInput
from tokenwage.services.dashboard.usage import (
    UsageTotals,
    Window,
    month_window,
    trailing_window,
    usage_by,
)
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.schema import people, person_settings

PERIODS = {"7d": "Last 7 days", "30d": "Last 30 days", "month": "This month", "90d": "90 days"}
METRICS = {
    "spend": "Spend",
    "tokens": "Tokens",
    "cache_hit_rate": "Cache hit rate",
    "cost_per_request": "Cost per request",
}
# Lower cost per request is better; the others rank highest first.
_SORT: dict[str, Callable[[UsageTotals], Decimal | int]] = {
    "spend": lambda t: -t.cost_nanousd,
    "tokens": lambda t: -t.tokens,
    "cache_hit_rate": lambda t: -(t.cache_hit_rate or Decimal(0)),
    "cost_per_request": lambda t: t.cost_per_request.nanousd if t.cost_per_request else 1 << 62,
}


@dataclass(frozen=True)
class LeaderRow:
    rank: int
    display_name: str
    named: bool  # the person's real name is shown
    is_viewer: bool
    totals: UsageTotals


@dataclass(frozen=True)
class Leaderboard:
    period: str
    metric: str
    window: Window
    rows: list[LeaderRow]
    viewer_opted_in: bool


def period_window(period: str, now: datetime, tz: str) -> Window:
    if period == "month":
        month = month_window(now, tz)
        return Window(month.first, month.today, month.today)
    if period in ("7d", "30d", "90d"):
        return trailing_window(now, tz, int(period[:-1]))
    raise InvalidInput(f"period {period!r} must be one of {', '.join(PERIODS)}")


def leaderboard(
    conn: Connection, period: str, metric: str, now: datetime, viewer_id: int
) -> Leaderboard:
    if metric not in METRICS:
        raise InvalidInput(f"metric {metric!r} must be one of {', '.join(METRICS)}")
    tz = OrgRepo(conn).get_org().timezone
    window = period_window(period, now, tz)
    s = person_settings.c
    q = (
        select(people.c.id, people.c.name, s.leaderboard_alias, s.leaderboard_show_name)
        .join(people, people.c.id == s.person_id)
        .where(s.leaderboard_opt_in != 0)
    )
    entrants = {int(r.id): r for r in conn.execute(q)}
    usage = usage_by(conn, ["person_id"], window.first, window.last, person_ids=list(entrants))
    ranked = sorted(
        ((pid, usage.get((pid,), UsageTotals())) for pid in entrants),
        key=lambda pt: (_SORT[metric](pt[1]), pt[0]),
    )
    rows, anonymous = [], 0
    for rank, (pid, totals) in enumerate(ranked, start=1):
        r = entrants[pid]
        if r.leaderboard_show_name:
            name, named = r.name, True
        elif r.leaderboard_alias:
            name, named = r.leaderboard_alias, False
        else:
            anonymous += 1
            name, named = f"Engineer #{anonymous}", False
        rows.append(LeaderRow(rank, name, named, pid == viewer_id, totals))
    return Leaderboard(period, metric, window, rows, viewer_id in entrants)
