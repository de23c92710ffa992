"""Dashboard analytics: burn-down, forecasts, caps, flags and fairness (pure functions)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenwage.core import analytics
from tokenwage.core.analytics import CapStatus, FlagKind
from tokenwage.core.money import NANO_PER_USD, Money

USD = NANO_PER_USD
D0 = date(2026, 11, 2)  # a Monday

amounts = st.integers(min_value=0, max_value=10_000 * USD)
day_maps = st.dictionaries(
    st.integers(min_value=0, max_value=29).map(lambda i: D0 + timedelta(days=i)), amounts
)


@given(
    opening=st.integers(min_value=-100 * USD, max_value=10_000 * USD),
    credits=day_maps,
    spend=day_maps,
    today_offset=st.integers(min_value=0, max_value=29),
)
def test_burn_down_balance_is_opening_plus_credits_minus_spend(
    opening: int, credits: dict[date, int], spend: dict[date, int], today_offset: int
) -> None:
    last = D0 + timedelta(days=29)
    today = D0 + timedelta(days=today_offset)
    b = analytics.burn_down(
        opening_nanousd=opening,
        credits_by_day=credits,
        spend_by_day=spend,
        first=D0,
        last=last,
        today=today,
    )
    assert len(b.days) == 30
    through_today = [d for d in b.days if d.day <= today]
    for row in through_today:
        c = sum(v for d, v in credits.items() if d <= row.day)
        s = sum(v for d, v in spend.items() if d <= row.day)
        assert row.left_nanousd == opening + c - s
    assert b.left_now_nanousd == through_today[-1].left_nanousd
    assert all(d.left_nanousd is None for d in b.days if d.day > today)
    # the even pace ends at zero and never rises
    paces = [d.pace_nanousd for d in b.days]
    assert paces[-1] == 0 and paces == sorted(paces, reverse=True)
    # the forecast runs from today's balance at the average rate plus future credits
    future_credits = sum(v for d, v in credits.items() if d > today)
    days_ahead = (last - today).days
    assert b.forecast_end_nanousd == (
        b.left_now_nanousd + future_credits - days_ahead * b.daily_rate_nanousd
    )
    end = b.days[-1]
    assert end.forecast_spent_nanousd == end.spent_nanousd + days_ahead * b.daily_rate_nanousd
    if b.runs_out_on is not None:
        row = next(d for d in b.days if d.day == b.runs_out_on)
        assert row.forecast_nanousd is not None and row.forecast_nanousd < 0


def test_burn_down_month_example() -> None:
    first, last = date(2026, 11, 1), date(2026, 11, 30)
    b = analytics.burn_down(
        opening_nanousd=0,
        credits_by_day={first: 3000 * USD},
        spend_by_day={date(2026, 11, d): 100 * USD for d in range(1, 11)},
        first=first,
        last=last,
        today=date(2026, 11, 10),
    )
    assert b.left_now_nanousd == 2000 * USD
    assert b.daily_rate_nanousd == 100 * USD
    assert b.forecast_end_nanousd == 0  # exactly on pace: 20 more days at $100
    assert b.runs_out_on is None
    assert b.days[9].pace_nanousd == 2000 * USD  # 20/30 of $3,000 left after day 10


def test_burn_down_refuses_a_reversed_window() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        analytics.burn_down(
            opening_nanousd=0,
            credits_by_day={},
            spend_by_day={},
            first=D0,
            last=D0 - timedelta(days=1),
            today=D0,
        )


@given(spent=amounts, total=st.integers(1, 31), data=st.data())
def test_linear_forecast_is_the_pace_so_far(spent: int, total: int, data: st.DataObject) -> None:
    elapsed = data.draw(st.integers(1, total))
    f = analytics.forecast_linear(spent, elapsed, total)
    assert f >= Money(spent)
    assert abs(f.nanousd * elapsed - spent * total) <= elapsed  # rounded once, to the nano
    if elapsed == total:
        assert f == Money(spent)


def test_seasonal_forecast_keeps_weekends_quiet() -> None:
    history = {}
    for i in range(28):
        d = D0 - timedelta(days=28) + timedelta(days=i)
        history[d] = 0 if d.weekday() >= 5 else 70 * USD
    # Monday D0 to Sunday D0+6; today is Monday with $70 spent
    history[D0] = 70 * USD
    f = analytics.forecast_seasonal(history, first=D0, today=D0, last=D0 + timedelta(days=6))
    assert f == Money(5 * 70 * USD)  # four more workdays, a quiet weekend
    linear = analytics.forecast_linear(70 * USD, 1, 7)
    assert linear == Money(7 * 70 * USD)


@given(
    spendable=st.integers(-100 * USD, 1000 * USD),
    spent=amounts,
    rate=st.integers(0, 500 * USD),
    days=st.integers(0, 31),
)
def test_cap_check_status(spendable: int, spent: int, rate: int, days: int) -> None:
    c = analytics.cap_check(
        spendable_nanousd=spendable,
        spent_in_period_nanousd=spent,
        daily_rate_nanousd=rate,
        days_to_refill=days,
    )
    if spendable <= 0:
        assert c.status is CapStatus.OUT
    elif rate > 0 and spendable < rate * days:
        assert c.status is CapStatus.NEAR
    if c.status is CapStatus.OK:
        assert c.used_share is None or c.used_share < Decimal("0.8")


def test_cap_check_examples() -> None:
    ok = analytics.cap_check(
        spendable_nanousd=900 * USD,
        spent_in_period_nanousd=100 * USD,
        daily_rate_nanousd=10 * USD,
        days_to_refill=20,
    )
    assert ok.status is CapStatus.OK and ok.used_share == Decimal("0.1")
    assert ok.days_left_at_pace == 90
    near = analytics.cap_check(
        spendable_nanousd=150 * USD,
        spent_in_period_nanousd=850 * USD,
        daily_rate_nanousd=1 * USD,
        days_to_refill=3,
    )
    assert near.status is CapStatus.NEAR


def test_ratios() -> None:
    assert analytics.cache_hit_rate(100, 900, 0) == Decimal("0.9")
    assert analytics.cache_hit_rate(0, 0, 0) is None
    assert analytics.cost_per_request(10 * USD, 4) == Money.parse("2.50")
    assert analytics.cost_per_request(5, 0) is None
    assert analytics.cost_per_request(1, 2) == Money(0)  # half a nano: ties to even
    assert analytics.percent(Decimal("0.456")) == "46%"
    assert analytics.percent(None) == "—"


def test_usage_flags_find_spikes_and_weekends() -> None:
    spend = {
        D0 + timedelta(days=i): 20 * USD for i in range(14) if (D0 + timedelta(i)).weekday() < 5
    }
    spike_day = D0 + timedelta(days=16)  # a Wednesday
    spend[spike_day] = 90 * USD
    saturday = D0 + timedelta(days=19)
    spend[saturday] = 30 * USD
    spend[D0 + timedelta(days=17)] = 40 * USD  # twice the usual: not flagged
    flags = analytics.usage_flags(spend, since=D0 + timedelta(days=14))
    assert [(f.kind, f.day) for f in flags] == [
        (FlagKind.WEEKEND, saturday),
        (FlagKind.SPIKE, spike_day),
    ]
    assert flags[1].usual_nanousd == 20 * USD
    assert "usual day $20.00" in flags[1].describe()


def test_usage_flags_need_history_and_a_floor() -> None:
    spend = {D0: 1 * USD, D0 + timedelta(days=1): 4 * USD}
    assert analytics.usage_flags(spend, since=D0) == []


@given(st.lists(st.integers(0, 10_000 * USD), min_size=1, max_size=40))
def test_gini_is_between_zero_and_one(values: list[int]) -> None:
    g = analytics.gini(values)
    if sum(values) == 0:
        assert g is None
        return
    assert g is not None and Decimal(0) <= g < 1
    assert analytics.gini([values[0]] * len(values)) in (Decimal(0), None)
    assert analytics.gini(list(reversed(values))) == g


def test_gini_examples() -> None:
    assert analytics.gini([0, 0, 0, 100]) == Decimal("0.75")
    assert analytics.gini([]) is None
    with pytest.raises(ValueError):
        analytics.gini([-1])


def test_team_fairness() -> None:
    rows = analytics.team_fairness(
        {
            "data": [(100 * USD, 90 * USD), (100 * USD, 50 * USD), (100 * USD, 10 * USD)],
            "mobile": [(200 * USD, 20 * USD)],
            "empty": [],
        }
    )
    assert [r.team for r in rows] == ["data", "mobile", "empty"]
    data = rows[0]
    assert data.utilisation == Decimal(150) / Decimal(300)
    assert data.median_person == Decimal("0.5")
    assert data.spread is not None and data.spread > 0
    assert rows[1].utilisation == Decimal("0.1") and rows[1].spread == 0
    assert rows[2].utilisation is None


def test_month_seal_covers_every_chain_head() -> None:
    heads = [("person:1", 3, "a" * 64), ("pool:data", 9, "b" * 64)]
    seal = analytics.month_seal(heads)
    assert seal == analytics.month_seal(list(reversed(heads)))
    assert seal == analytics.month_seal([*heads, ("person:2", 0, "0" * 64)])
    assert seal != analytics.month_seal([("person:1", 3, "c" * 64), ("pool:data", 9, "b" * 64)])
    assert seal != analytics.month_seal([("person:1", 4, "a" * 64), ("pool:data", 9, "b" * 64)])
    assert len(seal) == 64


def test_off_hours_counts_nights_and_weekends() -> None:
    monday = datetime(2026, 11, 2, 12, 0)
    times = [
        (monday, 1),  # noon: working hours
        (monday.replace(hour=6, minute=59), 2),  # before 07:00
        (monday.replace(hour=20), 4),  # from 20:00
        (monday.replace(hour=19, minute=59), 8),
        (monday + timedelta(days=5), 16),  # Saturday noon
    ]
    found = analytics.off_hours(times)
    assert (found.requests, found.outside, found.outside_cost_nanousd) == (5, 3, 22)
    assert found.share == Decimal("0.6") and not found.notable  # fewer than five
    many = analytics.off_hours([(monday.replace(hour=23), 1)] * 5 + [(monday, 1)] * 15)
    assert many.notable and many.share == Decimal("0.25")
    assert not analytics.off_hours([(monday.replace(hour=23), 1)] * 5 + [(monday, 1)] * 16).notable
    assert analytics.off_hours([]).share is None
    with pytest.raises(ValueError):
        analytics.off_hours(times, start_hour=20, end_hour=7)
