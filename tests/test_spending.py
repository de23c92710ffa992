"""Spending: what a person may hold and where a charge is booked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenwage.core.errors import AllowanceExhausted, InvalidInput, PolicyDenied
from tokenwage.core.money import Money
from tokenwage.core.package import CapMode
from tokenwage.core.spending import Funds, check_hold, split_charge


def usd(text: str) -> Money:
    return Money.parse(text)


def test_available_money_and_overdraft_headroom() -> None:
    funds = Funds(
        own_balance=usd("10"),
        own_held=usd("4"),
        pool_balance=usd("50"),
        pool_held=usd("20"),
        overdraft=usd("5"),
    )
    assert funds.available_own == usd("6")
    assert funds.available_pool == usd("30")
    assert funds.overdraft_headroom == usd("5")
    assert funds.spendable == usd("41")


def test_holds_beyond_the_balance_use_up_overdraft_headroom_and_nothing_goes_negative() -> None:
    funds = Funds(own_balance=usd("-2"), own_held=usd("1"), pool_balance=usd("3"),
                  pool_held=usd("5"), overdraft=usd("5"))  # fmt: skip
    assert funds.available_own == Money(0)
    assert funds.available_pool == Money(0)
    assert funds.overdraft_headroom == usd("2")  # already 3 below zero
    assert funds.spendable == usd("2")

    deep = Funds(own_balance=usd("-9"), overdraft=usd("5"))
    assert deep.overdraft_headroom == Money(0)
    assert deep.spendable == Money(0)


def test_a_person_without_a_pool_or_overdraft_can_spend_their_balance() -> None:
    funds = Funds(own_balance=usd("3"))
    assert (funds.pool_balance, funds.overdraft, funds.cap) == (Money(0), Money(0), CapMode.HARD)
    assert funds.spendable == usd("3")


def test_negative_holds_or_limits_are_refused() -> None:
    with pytest.raises(InvalidInput, match="own_held"):
        Funds(own_balance=usd("1"), own_held=usd("-1"))
    with pytest.raises(InvalidInput, match="overdraft"):
        Funds(own_balance=usd("1"), overdraft=usd("-1"))
    with pytest.raises(InvalidInput, match="hold cannot be negative"):
        check_hold(usd("-1"), Funds(own_balance=usd("1")))
    with pytest.raises(InvalidInput, match="charge cannot be negative"):
        split_charge(usd("-1"), Funds(own_balance=usd("1")))


def test_hard_cap_allows_up_to_exactly_spendable() -> None:
    funds = Funds(own_balance=usd("1"), pool_balance=usd("2"), overdraft=usd("0.5"))
    decision = check_hold(usd("3.5"), funds)
    assert (decision.allowed, decision.over_by, decision.soft_exceeded) == (True, Money(0), False)


def test_hard_cap_refuses_beyond_spendable_naming_both_amounts() -> None:
    funds = Funds(own_balance=usd("1"), pool_balance=usd("2"), overdraft=usd("0.5"))
    with pytest.raises(AllowanceExhausted) as caught:
        check_hold(usd("3.5") + Money(1), funds)
    err = caught.value
    assert isinstance(err, PolicyDenied)
    assert (err.available_nanousd, err.needed_nanousd) == (3_500_000_000, 3_500_000_001)
    assert "$3.50 available" in str(err)
    assert "$3.500000 needed" in str(err)  # never rounded to look affordable
    assert err.next_refill_utc is None  # the caller adds it


def test_small_amounts_are_shown_to_the_micro_dollar() -> None:
    with pytest.raises(AllowanceExhausted, match=r"\$0.00 available, \$0.004213 needed"):
        check_hold(usd("0.004213"), Funds(own_balance=Money(0)))


def test_soft_cap_allows_and_flags_the_overspend() -> None:
    funds = Funds(own_balance=usd("1"), cap=CapMode.SOFT)
    decision = check_hold(usd("4"), funds)
    assert (decision.allowed, decision.over_by, decision.soft_exceeded) == (True, usd("3"), True)
    within = check_hold(usd("1"), funds)
    assert (within.over_by, within.soft_exceeded) == (Money(0), False)


def test_charge_takes_own_money_first_then_the_pool() -> None:
    funds = Funds(own_balance=usd("5"), own_held=usd("1"), pool_balance=usd("10"))
    assert split_charge(usd("3"), funds) == [("own", usd("3"))]
    assert split_charge(usd("6"), funds) == [("own", usd("4")), ("pool", usd("2"))]


def test_charge_beyond_both_lands_on_own_and_never_drives_the_pool_below_zero() -> None:
    funds = Funds(own_balance=usd("1"), pool_balance=usd("2"), pool_held=usd("0.5"),
                  overdraft=usd("10"))  # fmt: skip
    assert split_charge(usd("5"), funds) == [("own", usd("3.5")), ("pool", usd("1.5"))]


def test_charge_when_only_the_pool_has_money_is_all_pool() -> None:
    funds = Funds(own_balance=Money(0), pool_balance=usd("2"))
    assert split_charge(usd("2"), funds) == [("pool", usd("2"))]


def test_a_free_request_is_still_one_own_part() -> None:
    assert split_charge(Money(0), Funds(own_balance=Money(0))) == [("own", Money(0))]


money = st.integers(-(10**12), 10**12).map(Money)
limits = st.integers(0, 10**12).map(Money)


@st.composite
def funds(draw: st.DrawFn) -> Funds:
    return Funds(
        own_balance=draw(money),
        own_held=draw(limits),
        pool_balance=draw(money),
        pool_held=draw(limits),
        overdraft=draw(limits),
        cap=draw(st.sampled_from(CapMode)),
    )


@given(st.integers(0, 3 * 10**12).map(Money), funds())
def test_a_split_always_adds_up_and_respects_the_pool(cost: Money, f: Funds) -> None:
    parts = split_charge(cost, f)
    assert Money.total(amount for _, amount in parts) == cost
    assert all(amount >= Money(0) for _, amount in parts)
    assert len({target for target, _ in parts}) == len(parts)
    pool = Money.total(amount for target, amount in parts if target == "pool")
    assert pool <= f.available_pool
    # the charge never takes the pool below zero (or further below, if holds already did)
    assert f.pool_balance - f.pool_held - pool >= min(f.pool_balance - f.pool_held, Money(0))
    own = cost - pool
    if own > f.available_own:  # the rest falls on own only once the pool is used up
        assert pool == f.available_pool


@given(st.integers(0, 3 * 10**12).map(Money), funds())
def test_a_hold_is_refused_only_by_a_hard_cap_beyond_spendable(amount: Money, f: Funds) -> None:
    assert f.available_own >= Money(0) and f.available_pool >= Money(0)
    assert f.overdraft_headroom >= Money(0)
    try:
        decision = check_hold(amount, f)
    except AllowanceExhausted as err:
        assert f.cap is CapMode.HARD and amount > f.spendable
        assert err.available_nanousd == f.spendable.nanousd
        return
    assert decision.allowed
    assert decision.soft_exceeded == (amount > f.spendable)
    assert decision.over_by == max(amount - f.spendable, Money(0))
