"""What people cost: fully loaded cost over a date range, annual cost, offer comparison (pure).

Annual amounts (salary, bonus target, equity per year, benefits overhead) accrue by the day:
a day in calendar year ``Y`` is worth ``amount / days_in(Y)`` (365 or 366). Over a range the
exact per-day shares of every package segment are summed as one fraction and rounded **once**
per component by the one rule (:meth:`Money.prorate`), so splitting a range never gains or
loses a nano-dollar to rounding.

The token allowance is *committed* money: the allowance amount times the number of period
starts (:func:`count_period_starts`) that fall inside the days the package is active and the
person employed. What was actually spent is reported beside it and never added to the total,
because an allowance that expires unused was committed but never paid out.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from tokenwage.core.errors import Conflict, InvalidInput
from tokenwage.core.money import Money
from tokenwage.core.package import Package, Period
from tokenwage.core.periods import PERIODS_PER_YEAR, count_period_starts

# Common denominator of a day's share in a common (1/365) and a leap (1/366) year. A day in
# year Y weighs ``_YEAR_DENOMINATOR // days_in(Y)`` over it, so every sum stays an exact int.
_YEAR_DENOMINATOR = 365 * 366
_NO_SPEND = Money(0)


@dataclass(frozen=True)
class CostBreakdown:
    """One person's (or, summed with ``+``, a team's) cost over a range.

    ``total_committed`` and ``utilisation`` are derived from the other fields.
    """

    salary: Money
    bonus: Money
    equity: Money
    overhead: Money
    token_allowance_committed: Money
    token_spend_actual: Money = Money(0)
    total_committed: Money = field(init=False)
    utilisation: Decimal | None = field(init=False)  # spend / committed allowance

    def __post_init__(self) -> None:
        total = Money.total(
            (self.salary, self.bonus, self.equity, self.overhead, self.token_allowance_committed)
        )
        committed = self.token_allowance_committed.nanousd
        ratio = Decimal(self.token_spend_actual.nanousd) / committed if committed else None
        object.__setattr__(self, "total_committed", total)
        object.__setattr__(self, "utilisation", ratio)

    @classmethod
    def zero(cls) -> CostBreakdown:
        return cls(Money(0), Money(0), Money(0), Money(0), Money(0))

    def __add__(self, other: CostBreakdown) -> CostBreakdown:
        return CostBreakdown(
            salary=self.salary + other.salary,
            bonus=self.bonus + other.bonus,
            equity=self.equity + other.equity,
            overhead=self.overhead + other.overhead,
            token_allowance_committed=self.token_allowance_committed
            + other.token_allowance_committed,
            token_spend_actual=self.token_spend_actual + other.token_spend_actual,
        )


@dataclass(frozen=True)
class AnnualCost:
    """A package over a standard year (``PERIODS_PER_YEAR`` allowance periods)."""

    salary: Money
    bonus: Money
    equity: Money
    overhead: Money
    cash_comp: Money  # salary + bonus target
    allowance_per_year: Money
    committed_total: Money  # cash + equity + overhead + allowance per year


@dataclass(frozen=True)
class OfferRow:
    name: str
    salary: Money
    bonus: Money
    equity: Money
    overhead: Money
    allowance_per_period: Money
    period: Period
    allowance_per_year: Money
    annual_committed: Money
    expected_annual: Money  # with the allowance used at the given utilisation
    committed_vs_first: Money  # annual_committed minus the first offer's
    expected_vs_first: Money  # expected_annual minus the first offer's


def fully_loaded_cost(
    packages: Sequence[Package],
    first: date,
    last: date,
    *,
    employed_from: date | None = None,
    employed_to: date | None = None,
    token_spend: Money = _NO_SPEND,
) -> CostBreakdown:
    """One person's cost from ``first`` to ``last`` (inclusive local dates)."""
    if last < first:
        raise InvalidInput(f"cost range ends {last} before it starts {first}; swap the dates")
    if employed_from and employed_to and employed_to < employed_from:
        raise InvalidInput(f"employment ends {employed_to} before it starts {employed_from}")
    _check_one_person(packages)
    lo = max(first, employed_from or date.min)
    hi = min(last, employed_to or date.max)
    salary = bonus = equity = overhead = 0  # numerators over _YEAR_DENOMINATOR, in nanousd
    allowance = Money(0)
    for p in packages:
        seg_first = max(lo, p.effective_from)
        seg_last = min(hi, p.effective_to or date.max)
        if seg_last < seg_first:
            continue
        weight = sum(
            days * (_YEAR_DENOMINATOR // _days_in(y)) for y, days in _years(seg_first, seg_last)
        )
        salary += p.base_salary.nanousd * weight
        bonus += p.bonus_target.nanousd * weight
        equity += p.equity_per_year.nanousd * weight
        overhead += p.benefits_overhead.nanousd * weight
        starts = count_period_starts(p.allowance.period, seg_first, seg_last)
        allowance += p.allowance.amount.times(starts)
    return CostBreakdown(
        salary=_round_once(salary),
        bonus=_round_once(bonus),
        equity=_round_once(equity),
        overhead=_round_once(overhead),
        token_allowance_committed=allowance,
        token_spend_actual=token_spend,
    )


def team_cost(rows: Iterable[CostBreakdown]) -> CostBreakdown:
    """The sum of people's breakdowns (each already rounded once per component)."""
    total = CostBreakdown.zero()
    for row in rows:
        total = total + row
    return total


def annual_cost(package: Package) -> AnnualCost:
    allowance = package.allowance
    per_year = allowance.amount.times(PERIODS_PER_YEAR[allowance.period])
    cash = package.base_salary + package.bonus_target
    return AnnualCost(
        salary=package.base_salary,
        bonus=package.bonus_target,
        equity=package.equity_per_year,
        overhead=package.benefits_overhead,
        cash_comp=cash,
        allowance_per_year=per_year,
        committed_total=Money.total(
            (cash, package.equity_per_year, package.benefits_overhead, per_year)
        ),
    )


def compare_offers(offers: Sequence[tuple[str, Package]], utilisation: Decimal) -> list[OfferRow]:
    """Offers side by side over a standard year; the first offer is the baseline.

    ``utilisation`` (0 to 1) is the share of the allowance expected to be used; the expected
    cost counts only that share of the allowance, rounded once.
    """
    if not isinstance(utilisation, Decimal) or not utilisation.is_finite():
        raise InvalidInput(
            f"utilisation must be a Decimal like Decimal('0.6'), got {utilisation!r}"
        )
    if not Decimal(0) <= utilisation <= Decimal(1):
        raise InvalidInput(f"utilisation {utilisation} must be between 0 and 1 (0.6 means 60%)")
    if len(offers) < 2:
        raise InvalidInput(f"comparing offers needs at least 2, got {len(offers)}")
    names = [name for name, _ in offers]
    if len(set(names)) != len(names):
        raise InvalidInput(f"offer names must be distinct, got {names!r}")
    rows: list[OfferRow] = []
    for name, package in offers:
        annual = annual_cost(package)
        expected = annual.committed_total - annual.allowance_per_year
        expected += annual.allowance_per_year.times(utilisation)
        base_committed = rows[0].annual_committed if rows else annual.committed_total
        base_expected = rows[0].expected_annual if rows else expected
        rows.append(
            OfferRow(
                name=name,
                salary=annual.salary,
                bonus=annual.bonus,
                equity=annual.equity,
                overhead=annual.overhead,
                allowance_per_period=package.allowance.amount,
                period=package.allowance.period,
                allowance_per_year=annual.allowance_per_year,
                annual_committed=annual.committed_total,
                expected_annual=expected,
                committed_vs_first=annual.committed_total - base_committed,
                expected_vs_first=expected - base_expected,
            )
        )
    return rows


def _check_one_person(packages: Sequence[Package]) -> None:
    emails = {p.person_email for p in packages if p.person_email is not None}
    if len(emails) > 1:
        raise InvalidInput(f"fully loaded cost is for one person; got packages of {sorted(emails)}")
    for i, a in enumerate(packages):
        for b in packages[i + 1 :]:
            if a.overlaps(b):
                raise Conflict(
                    f"packages from {a.effective_from} and {b.effective_from} overlap; "
                    "end the earlier one the day before the later one starts"
                )


def _days_in(year: int) -> int:
    return 366 if calendar.isleap(year) else 365


def _years(first: date, last: date) -> Iterator[tuple[int, int]]:
    """(calendar year, number of days) for each year the inclusive range touches."""
    for year in range(first.year, last.year + 1):
        start = max(first, date(year, 1, 1))
        end = min(last, date(year, 12, 31))
        yield year, (end - start).days + 1


def _round_once(numerator: int) -> Money:
    """``numerator / _YEAR_DENOMINATOR`` nanousd by the one rule.

    Exact: a fraction over 133,590 is either a true tie or at least 1/133,590 away from one,
    far beyond the 28 significant digits Decimal keeps for these magnitudes.
    """
    return Money(numerator).prorate(1, _YEAR_DENOMINATOR)
