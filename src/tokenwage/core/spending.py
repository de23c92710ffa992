"""What a person may spend right now, for holds before a request and charges after it.

:class:`Funds` gathers the numbers: the person's own balance and what is held on it for
requests in flight, the same for their team pool (zero without one), their overdraft limit
and cap mode (from the allowance in force).

* ``available_own = max(0, own_balance - own_held)``, the same for the pool;
* ``overdraft_headroom = max(0, overdraft - max(0, -(own_balance - own_held)))``: how much
  further below zero the person may still go;
* ``spendable = available_own + available_pool + overdraft_headroom``.

:func:`check_hold` decides whether a request costing up to ``amount`` may start. With a
``hard`` cap a hold beyond ``spendable`` raises :class:`AllowanceExhausted` (the caller
adds the next refill); with a ``soft`` cap it is allowed and flagged ``soft_exceeded``.

:func:`split_charge` says where the actual cost is booked: the person's own available money
first, then the pool's available money, then whatever is left on the person's own account
(overdraft, or soft-cap overspend). The pool is never driven below zero and the parts always
add up to the cost. Release this request's own hold before calling it, so its ``Funds`` do
not count the request against itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tokenwage.core.errors import AllowanceExhausted, InvalidInput
from tokenwage.core.money import Money
from tokenwage.core.package import CapMode

ChargeTarget = Literal["own", "pool"]
_ZERO = Money(0)


@dataclass(frozen=True, slots=True)
class Funds:
    """Balances and holds for one person (and their pool), with their spending limits."""

    own_balance: Money
    own_held: Money = _ZERO
    pool_balance: Money = _ZERO
    pool_held: Money = _ZERO
    overdraft: Money = _ZERO
    cap: CapMode = CapMode.HARD

    def __post_init__(self) -> None:
        for label, amount in (
            ("own_held", self.own_held),
            ("pool_held", self.pool_held),
            ("overdraft", self.overdraft),
        ):
            if amount.nanousd < 0:
                raise InvalidInput(f"{label} cannot be negative ({amount})")

    @property
    def available_own(self) -> Money:
        return max(self.own_balance - self.own_held, _ZERO)

    @property
    def available_pool(self) -> Money:
        return max(self.pool_balance - self.pool_held, _ZERO)

    @property
    def overdraft_headroom(self) -> Money:
        below_zero = max(self.own_held - self.own_balance, _ZERO)
        return max(self.overdraft - below_zero, _ZERO)

    @property
    def spendable(self) -> Money:
        return self.available_own + self.available_pool + self.overdraft_headroom


@dataclass(frozen=True, slots=True)
class HoldDecision:
    """A hold that may go ahead. ``over_by`` is how far it exceeds ``spendable`` (soft cap)."""

    allowed: bool
    over_by: Money
    soft_exceeded: bool


def check_hold(amount: Money, funds: Funds) -> HoldDecision:
    """May a request that could cost ``amount`` start? Refusals raise, so ``allowed`` is true.

    Raises :class:`AllowanceExhausted` with a hard cap when ``amount > funds.spendable``.
    """
    if amount.nanousd < 0:
        raise InvalidInput(f"a hold cannot be negative ({amount})")
    spendable = funds.spendable
    over_by = max(amount - spendable, _ZERO)
    if over_by and funds.cap is CapMode.HARD:
        raise AllowanceExhausted(
            f"not enough allowance: {spendable.readable()} available, "
            f"{amount.readable()} needed for this request",
            available_nanousd=spendable.nanousd,
            needed_nanousd=amount.nanousd,
        )
    return HoldDecision(allowed=True, over_by=over_by, soft_exceeded=bool(over_by))


def split_charge(cost: Money, funds: Funds) -> list[tuple[ChargeTarget, Money]]:
    """Where ``cost`` is booked: ``[("own", x), ("pool", y)]``, zero parts left out.

    Own available money first, then the pool's, then the rest on own. A zero cost is one
    ``("own", $0)`` part so the usage is still recorded.
    """
    if cost.nanousd < 0:
        raise InvalidInput(f"a charge cannot be negative ({cost})")
    own = min(cost, funds.available_own)
    pool = min(cost - own, funds.available_pool)
    own += cost - own - pool
    parts: list[tuple[ChargeTarget, Money]] = []
    if own or not pool:
        parts.append(("own", own))
    if pool:
        parts.append(("pool", pool))
    return parts
