"""Fully loaded cost, annual cost and offers, against figures worked out by hand."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenwage.core.compensation import (
    CostBreakdown,
    annual_cost,
    compare_offers,
    fully_loaded_cost,
    team_cost,
)
from tokenwage.core.errors import Conflict, InvalidInput
from tokenwage.core.money import Money
from tokenwage.core.package import Package, Period, TokenAllowance


def usd(text: str) -> Money:
    return Money.parse(text)


def package(
    salary: str,
    allowance: str = "0",
    period: Period = Period.MONTH,
    *,
    start: date = date(2020, 1, 1),
    end: date | None = None,
    bonus: str = "0",
    equity: str = "0",
    overhead: str = "0",
) -> Package:
    return Package(
        base_salary=usd(salary),
        allowance=TokenAllowance(usd(allowance), period),
        effective_from=start,
        effective_to=end,
        bonus_target=usd(bonus),
        equity_per_year=usd(equity),
        benefits_overhead=usd(overhead),
    )


def test_salary_prorated_by_days_of_the_year() -> None:
    # 180,000 x 90/365 = 44,383.561643835616...; in nanousd ...835.616 rounds up to ...836.
    cost = fully_loaded_cost([package("180000")], date(2026, 1, 1), date(2026, 3, 31))
    assert cost.salary == Money(44_383_561_643_836)


def test_workday_allowance_counts_workdays_in_november_2026() -> None:
    # 1 Nov 2026 is a Sunday: 30 days less 5 Sundays and 4 Saturdays = 21 workdays.
    cost = fully_loaded_cost(
        [package("0", "200", Period.WORKDAY)], date(2026, 11, 1), date(2026, 11, 30)
    )
    assert cost.token_allowance_committed == usd("4200")
    assert cost.total_committed == usd("4200")


def test_leap_year_divides_by_366() -> None:
    leap = fully_loaded_cost([package("366000")], date(2024, 2, 1), date(2024, 2, 29))
    common = fully_loaded_cost([package("365000")], date(2023, 2, 1), date(2023, 2, 28))
    assert leap.salary == usd("29000")  # 366,000 x 29/366
    assert common.salary == usd("28000")  # 365,000 x 28/365


def test_range_across_new_year_uses_each_years_length() -> None:
    # 365,000 x 31/365 + 365,000 x 31/366 = 31,000 + 30,915.300546448087... (rounds down)
    cost = fully_loaded_cost([package("365000")], date(2023, 12, 1), date(2024, 1, 31))
    assert cost.salary == Money(61_915_300_546_448)


def test_package_change_mid_range() -> None:
    old = package("120000", "500", start=date(2025, 1, 1), end=date(2026, 3, 31), bonus="36500")
    new = package("150000", "40", Period.DAY, start=date(2026, 4, 1), bonus="73000")
    cost = fully_loaded_cost([new, old], date(2026, 1, 1), date(2026, 6, 30))
    # (120,000 x 90 + 150,000 x 91) / 365 = 66,986.30136986301...
    assert cost.salary == Money(66_986_301_369_863)
    # 36,500 x 90/365 + 73,000 x 91/365 = 9,000 + 18,200
    assert cost.bonus == usd("27200")
    # 3 month starts x $500 + 91 days x $40
    assert cost.token_allowance_committed == usd("5140")


def test_rounds_once_per_component_not_per_segment() -> None:
    # Each half is 100,000 x 90/365 = 24,657.534246575342... nanousd fraction .342 each:
    # rounded per segment the total would be ...150; summed first it is ...150.68 -> ...151.
    first = package("100000", start=date(2026, 1, 1), end=date(2026, 3, 31))
    second = package("100000", start=date(2026, 4, 1), end=date(2026, 6, 29))
    cost = fully_loaded_cost([first, second], date(2026, 1, 1), date(2026, 6, 29))
    assert cost.salary == Money(49_315_068_493_151)


def test_employment_ends_mid_range() -> None:
    # 73,000 / 365 = 200 a day; 1 Jan to 15 Mar 2026 is 31 + 28 + 15 = 74 days.
    # 1 Jan 2026 is a Thursday: Mondays 5, 12, 19, 26 Jan, 2, 9, 16, 23 Feb, 2, 9 Mar = 10.
    cost = fully_loaded_cost(
        [package("73000", "100", Period.WEEK, overhead="36500", equity="7300")],
        date(2026, 1, 1),
        date(2026, 3, 31),
        employed_to=date(2026, 3, 15),
        token_spend=usd("250"),
    )
    assert cost.salary == usd("14800")
    assert cost.overhead == usd("7400")
    assert cost.equity == usd("1480")
    assert cost.token_allowance_committed == usd("1000")
    assert cost.total_committed == usd("24680")
    assert cost.token_spend_actual == usd("250")  # shown, never added to the total
    assert cost.utilisation == Decimal("0.25")


def test_employment_starting_after_the_range_costs_nothing() -> None:
    cost = fully_loaded_cost(
        [package("100000", "100")],
        date(2026, 1, 1),
        date(2026, 1, 31),
        employed_from=date(2026, 2, 1),
    )
    assert cost == CostBreakdown.zero()
    assert cost.utilisation is None


def test_team_cost_is_the_sum_of_people() -> None:
    a = fully_loaded_cost(
        [package("365000", "10", Period.DAY)],
        date(2026, 1, 1),
        date(2026, 1, 10),
        token_spend=usd("50"),
    )
    b = fully_loaded_cost([package("73000", "300")], date(2026, 1, 1), date(2026, 1, 10))
    team = team_cost([a, b])
    assert team.salary == usd("12000")  # 10 days x (1,000 + 200)
    assert team.token_allowance_committed == usd("400")  # 10 x 10 + 1 month start x 300
    assert team.total_committed == usd("12400")
    assert team.utilisation == Decimal("0.125")
    assert team_cost([]) == CostBreakdown.zero()


def test_bad_ranges_and_overlapping_packages_are_refused() -> None:
    with pytest.raises(InvalidInput, match="before it starts"):
        fully_loaded_cost([], date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(InvalidInput, match="employment ends"):
        fully_loaded_cost(
            [],
            date(2026, 1, 1),
            date(2026, 2, 1),
            employed_from=date(2026, 1, 20),
            employed_to=date(2026, 1, 10),
        )
    a = package("1", start=date(2026, 1, 1), end=date(2026, 6, 30))
    b = package("2", start=date(2026, 6, 30))
    with pytest.raises(Conflict, match="overlap"):
        fully_loaded_cost([a, b], date(2026, 1, 1), date(2026, 12, 31))


def test_annual_cost_on_a_standard_year() -> None:
    p = package("180000", "200", Period.WORKDAY, bonus="20000", equity="50000", overhead="30000")
    annual = annual_cost(p)
    assert annual.cash_comp == usd("200000")
    assert annual.allowance_per_year == usd("52000")  # 260 workdays
    assert annual.committed_total == usd("332000")


def test_compare_offers() -> None:
    offers = [
        ("Staff", package("180000", "1000")),  # 12,000 a year
        ("Staff + tokens", package("170000", "100", Period.WORKDAY)),  # 26,000 a year
    ]
    rows = compare_offers(offers, Decimal("0.5"))
    assert [r.name for r in rows] == ["Staff", "Staff + tokens"]
    first, second = rows
    assert first.annual_committed == usd("192000")
    assert first.expected_annual == usd("186000")
    assert first.committed_vs_first == first.expected_vs_first == Money(0)
    assert second.allowance_per_period == usd("100")
    assert second.period is Period.WORKDAY
    assert second.allowance_per_year == usd("26000")
    assert second.annual_committed == usd("196000")
    assert second.expected_annual == usd("183000")
    assert second.committed_vs_first == usd("4000")
    assert second.expected_vs_first == usd("-3000")


def test_expected_allowance_is_rounded_once() -> None:
    offers = [("a", package("0", "1000")), ("b", package("0", "0.000000001", Period.DAY))]
    a, b = compare_offers(offers, Decimal(1) / 3)
    # 12,000 / 3 = 4,000 (to 28 digits); b: 365 nanousd / 3 = 121.67 -> 122
    assert a.expected_annual == usd("4000")
    assert b.expected_annual == Money(122)


@pytest.mark.parametrize("bad", [Decimal("-0.01"), Decimal("1.01"), Decimal("NaN"), 0.5])
def test_utilisation_must_be_a_decimal_from_0_to_1(bad: object) -> None:
    offers = [("a", package("1")), ("b", package("2"))]
    with pytest.raises(InvalidInput, match="utilisation"):
        compare_offers(offers, bad)  # type: ignore[arg-type]


def test_compare_needs_two_distinct_offers() -> None:
    with pytest.raises(InvalidInput, match="at least 2"):
        compare_offers([("a", package("1"))], Decimal("0.5"))
    with pytest.raises(InvalidInput, match="distinct"):
        compare_offers([("a", package("1")), ("a", package("2"))], Decimal("0.5"))


@settings(max_examples=200, deadline=None)
@given(
    salary_nanousd=st.integers(0, 100_000_000 * 10**9),
    first=st.dates(date(2023, 1, 1), date(2025, 12, 31)),
    span_days=st.integers(0, 800),
    change_after=st.integers(0, 800),
)
def test_matches_a_day_by_day_exact_sum(
    salary_nanousd: int, first: date, span_days: int, change_after: int
) -> None:
    """Oracle: add each day's exact share as a fraction, round half-even once at the end."""
    last = first + timedelta(days=span_days)
    split = first + timedelta(days=change_after)
    packages = [
        Package(Money(salary_nanousd), TokenAllowance(usd("7")), date(2020, 1, 1), split),
        Package(Money(salary_nanousd // 3), TokenAllowance(usd("5")), split + timedelta(days=1)),
    ]
    exact = Fraction(0)
    month_starts = Money(0)
    day = first
    while day <= last:
        p = packages[0] if day <= split else packages[1]
        exact += Fraction(p.base_salary.nanousd, 366 if calendar.isleap(day.year) else 365)
        if day.day == 1:
            month_starts += p.allowance.amount
        day += timedelta(days=1)
    cost = fully_loaded_cost(packages, first, last)
    assert cost.salary == Money(round(exact))  # round() on a Fraction is half-even
    assert cost.token_allowance_committed == month_starts
