"""Integer arithmetic for the hot path of :mod:`tokenwage.core.pricing`.

A resolved rate set's per-token prices are exact decimals, so each one is an integer count of
``10**-scale`` USD, where ``scale`` is the largest number of decimal places among the set's
prices. The cost of a usage is then an ``int`` sum, rounded once to nanousd, ties to even: the
one rounding rule of :mod:`tokenwage.core.money`, on the same exact value.

``Money.from_decimal(sum of the Decimal parts)`` is that value only while no ``Decimal``
operation before its final rounding rounds to the context precision, and while the context
does not trap the final rounding. :meth:`FlatPlan.nanousd` answers None outside the range where
that is guaranteed (a sum of ``10**19`` units or more, a context precision below 28 digits, or
an ``Inexact`` or ``Rounded`` trap), and the caller then takes the ``Decimal`` path, so the
results, and the errors, are the same as the ``Decimal`` path's.

The exact per-kind ``Decimal`` parts are still built (they are part of ``PricedUsage``), from
the same ``Decimal`` rates as before, so they keep their exact digits and exponent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, Rounded, getcontext
from math import floor

from tokenwage.core.usage import TokenUsage

__all__ = ["FlatPlan", "TieredPlan", "TieredRate", "plan_for"]

# A sum below 10**19 units keeps ``units * 10**9`` (the nanousd scaling in Money.from_decimal)
# and every part and partial sum under 28 digits, so the Decimal path never rounds early.
_EXACT_BELOW = 10**19
_MIN_PREC = 28
_NANO_PLACES = 9
_INPUT_SIDE = ("input", "cache_write", "cache_write_1h")  # worst-case candidates, in tie order


@dataclass(frozen=True, slots=True)
class TieredRate:
    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...]  # (start, per-token price), highest start first

    def at(self, prompt_tokens: int) -> Decimal:
        for start, price in self.tiers:
            if prompt_tokens > start:
                return price
        return self.base


@dataclass(frozen=True, slots=True)
class FlatPlan:
    """One set of flat per-token rates: the Decimal rates (for the parts) and the same rates
    as ints of ``10**-scale`` USD (for the cost). ``output`` None: output is not priced;
    ``reasoning`` None: reasoning is charged as output (``i_reasoning == i_output``).
    ``limit`` is 0 when a rate is not a finite Decimal: the Decimal path then always applies."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    output: Decimal | None
    reasoning: Decimal | None
    i_input: int
    i_cache_read: int
    i_cache_write: int
    i_cache_write_1h: int
    i_output: int
    i_reasoning: int
    multiplier: int  # 10**(9 - scale) when scale <= 9, else 1
    divisor: int  # 10**(scale - 9) when scale > 9, else 1
    limit: int

    def nanousd(self, units: int) -> int | None:
        """``units`` of ``10**-scale`` USD rounded to nanousd, ties to even; None when the
        Decimal path might round before its final rounding (see the module docstring)."""
        if -self.limit < units < self.limit and _plain(getcontext()):
            divisor = self.divisor
            if divisor == 1:
                return units * self.multiplier
            q, r = divmod(units, divisor)
            r += r
            return q + 1 if r > divisor or (r == divisor and q & 1) else q
        return None

    def price(self, usage: TokenUsage) -> tuple[tuple[tuple[str, Decimal], ...], int | None]:
        """The exact Decimal parts for the kinds with tokens, and the rounded nanousd total
        (None: use the Decimal sum of the parts instead)."""
        parts: list[tuple[str, Decimal]] = []
        tokens = usage.input_tokens
        units = tokens * self.i_input
        if tokens:
            parts.append(("input", self.input * tokens))
        tokens = usage.cache_read_tokens
        if tokens:
            units += tokens * self.i_cache_read
            parts.append(("cache_read", self.cache_read * tokens))
        tokens = usage.cache_write_tokens
        if tokens:
            units += tokens * self.i_cache_write
            parts.append(("cache_write", self.cache_write * tokens))
        tokens = usage.cache_write_1h_tokens
        if tokens:
            units += tokens * self.i_cache_write_1h
            parts.append(("cache_write_1h", self.cache_write_1h * tokens))
        output = usage.output_tokens
        if self.reasoning is not None:
            tokens = usage.reasoning_tokens
            if tokens:
                units += tokens * self.i_reasoning
                parts.append(("reasoning", self.reasoning * tokens))
                output -= tokens
        if output and self.output is not None:
            units += output * self.i_output
            parts.append(("output", self.output * output))
        context = getcontext()  # as _plain(context), inline: this is the hot path
        if (
            -self.limit < units < self.limit
            and context.prec >= _MIN_PREC
            and not (context.traps[Inexact] or context.traps[Rounded])
        ):
            divisor = self.divisor
            if divisor == 1:
                return tuple(parts), units * self.multiplier
            q, r = divmod(units, divisor)
            r += r
            return tuple(parts), q + 1 if r > divisor or (r == divisor and q & 1) else q
        return tuple(parts), None

    def dearest(
        self, prompt: int, output: int
    ) -> tuple[int, tuple[tuple[str, Decimal], ...]] | None:
        """The nanousd and parts of ``prompt`` tokens of the dearest input-side kind plus
        ``output`` tokens of output (the first kind on a tie); None: use the Decimal path."""
        out_units = output * self.i_output if self.output is not None else 0
        best, kind, rate = -1, "", self.input
        for candidate, i_rate, d_rate in zip(
            _INPUT_SIDE,
            (self.i_input, self.i_cache_write, self.i_cache_write_1h),
            (self.input, self.cache_write, self.cache_write_1h),
            strict=True,
        ):
            nanousd = self.nanousd(prompt * i_rate + out_units)
            if nanousd is None:
                return None
            if nanousd > best or not kind:
                best, kind, rate = nanousd, candidate, d_rate
        parts = [(kind, rate * prompt)] if prompt else []
        if output and self.output is not None:
            parts.append(("output", self.output * output))
        return best, tuple(parts)


@dataclass(frozen=True, slots=True)
class TieredPlan:
    """Flat plans per band of prompt tokens: ``bands`` is (start, plan), highest start first;
    a prompt of more than ``start`` tokens uses that band, else ``base``."""

    bands: tuple[tuple[int, FlatPlan], ...]
    base: FlatPlan

    def at(self, prompt_tokens: int) -> FlatPlan:
        for start, plan in self.bands:
            if prompt_tokens > start:
                return plan
        return self.base


def plan_for(kinds: Sequence[Decimal | TieredRate | None], tiered: bool) -> FlatPlan | TieredPlan:
    """The plan for rates (input, cache_read, cache_write, cache_write_1h, output, reasoning);
    with tiered rates, one flat plan per band of prompts between the tiers' starts."""

    def at(prompt: int) -> FlatPlan:
        flat = [k if k is None or isinstance(k, Decimal) else k.at(prompt) for k in kinds]
        return _flat_plan(flat)

    if not tiered:
        return at(0)
    starts = sorted({s for k in kinds if isinstance(k, TieredRate) for s, _ in k.tiers})
    # any int prompt in (start, next start] prices like floor(start) + 1; below all, like the
    # lowest start itself
    bands = tuple((s, at(floor(s) + 1)) for s in reversed(starts))
    return TieredPlan(bands=bands, base=at(floor(starts[0]) if starts else 0))


def _plain(context: Context) -> bool:
    """Whether the Decimal path does its sums exactly and rounds without trapping."""
    return context.prec >= _MIN_PREC and not (context.traps[Inexact] or context.traps[Rounded])


def _flat_plan(rates: list[Decimal | None]) -> FlatPlan:
    present = [r for r in rates if r is not None]
    exact = all(isinstance(r, Decimal) and r.is_finite() for r in present)
    exponents = [r.as_tuple().exponent for r in present] if exact else []
    scale = max([0, *(-e for e in exponents if isinstance(e, int))])
    ints = [_units(r, scale) if exact and r is not None else None for r in rates]
    i_output = ints[4] or 0
    input_, cache_read, cache_write, cache_write_1h = rates[:4]
    assert input_ is not None and cache_read is not None and cache_write is not None
    assert cache_write_1h is not None, "only output and reasoning may have no price"
    return FlatPlan(
        input=input_,
        cache_read=cache_read,
        cache_write=cache_write,
        cache_write_1h=cache_write_1h,
        output=rates[4],
        reasoning=rates[5],
        i_input=ints[0] or 0,
        i_cache_read=ints[1] or 0,
        i_cache_write=ints[2] or 0,
        i_cache_write_1h=ints[3] or 0,
        i_output=i_output,
        i_reasoning=i_output if ints[5] is None else ints[5],
        multiplier=10 ** max(_NANO_PLACES - scale, 0),
        divisor=10 ** max(scale - _NANO_PLACES, 0),
        limit=_EXACT_BELOW if exact else 0,
    )


def _units(rate: Decimal, scale: int) -> int:
    """``rate`` as an exact int of ``10**-scale`` USD (``scale`` covers its decimal places)."""
    sign, digits, exponent = rate.as_tuple()
    assert isinstance(exponent, int), "finite rates only"
    coefficient = int("".join(map(str, digits))) if digits else 0
    value: int = coefficient * 10 ** (exponent + scale)
    return -value if sign else value
