"""Exact money.

Every amount in tokenwage is an ``int`` count of **nano-US-dollars** (1 nanousd = 1e-9 USD),
held in :class:`Money`. Token prices are quoted per million tokens, so a price of
$0.075/MTok is exactly 75 nanousd per token; salaries fit easily in a signed 64-bit column
($9.2 billion).

The one rounding rule
---------------------
Whenever an exact decimal amount (a price times a token count, a discount, a proration)
has to become a ``Money``, it is rounded **once, to the nearest nanousd, ties to even**
(``ROUND_HALF_EVEN``) by :meth:`Money.from_decimal`. Nothing else in the code base rounds
money. Floats are refused everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from tokenwage.core.errors import InvalidInput

NANO_PER_USD = 1_000_000_000
NANO_PER_CENT = 10_000_000
ROUNDING = ROUND_HALF_EVEN
_QUANTUM = Decimal(1)


@dataclass(frozen=True, order=True, slots=True)
class Money:
    """An exact amount of US dollars, stored as integer nano-dollars."""

    nanousd: int

    def __post_init__(self) -> None:
        if isinstance(self.nanousd, bool) or not isinstance(self.nanousd, int):
            raise TypeError(f"Money takes an int of nanousd, got {self.nanousd!r}")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def zero(cls) -> Money:
        return cls(0)

    @classmethod
    def from_decimal(cls, usd: Decimal) -> Money:
        """Round an exact dollar amount to nanousd with the one rounding rule."""
        if not isinstance(usd, Decimal):
            raise TypeError(f"Money.from_decimal takes a Decimal, got {type(usd).__name__}")
        if not usd.is_finite():
            raise ValueError(f"amount must be finite, got {usd}")
        return cls(int((usd * NANO_PER_USD).quantize(_QUANTUM, rounding=ROUNDING)))

    @classmethod
    def parse(cls, text: str | int | Decimal) -> Money:
        """Parse a user-written dollar amount: ``"250"``, ``"$1,200.50"``, ``"0.000001"``.

        Amounts finer than a nano-dollar are refused rather than rounded silently.
        """
        if isinstance(text, float):
            raise TypeError("floats are not accepted for money; pass a string or Decimal")
        if isinstance(text, int):
            return cls(text * NANO_PER_USD)
        if isinstance(text, Decimal):
            value = text
        else:
            cleaned = text.strip().replace(",", "").replace("_", "")
            if cleaned.startswith("$"):
                cleaned = cleaned[1:]
            elif cleaned.startswith("-$"):
                cleaned = "-" + cleaned[2:]
            try:
                value = Decimal(cleaned)
            except InvalidOperation:
                raise InvalidInput(
                    f"not a dollar amount: {text!r} (write it like 250 or 1200.50)"
                ) from None
        if not value.is_finite():
            raise InvalidInput(f"not a dollar amount: {text!r}")
        scaled = value * NANO_PER_USD
        if scaled != scaled.to_integral_value():
            raise InvalidInput(f"{text!r} is finer than one nano-dollar")
        return cls(int(scaled))

    # -- arithmetic ---------------------------------------------------------------------
    def __add__(self, other: Money) -> Money:
        return Money(self.nanousd + other.nanousd)

    def __sub__(self, other: Money) -> Money:
        return Money(self.nanousd - other.nanousd)

    def __neg__(self) -> Money:
        return Money(-self.nanousd)

    def __abs__(self) -> Money:
        return Money(abs(self.nanousd))

    def __bool__(self) -> bool:
        return self.nanousd != 0

    def times(self, factor: int | Decimal) -> Money:
        """Multiply by an integer (exact) or a Decimal (rounded once by the rule)."""
        if isinstance(factor, bool) or isinstance(factor, float):
            raise TypeError("multiply money by an int or a Decimal")
        if isinstance(factor, int):
            return Money(self.nanousd * factor)
        return Money.from_decimal(self.to_decimal() * factor)

    def prorate(self, numerator: int, denominator: int) -> Money:
        """``self * numerator / denominator`` rounded once by the rule."""
        if denominator <= 0:
            raise ValueError("denominator must be positive")
        return Money.from_decimal(self.to_decimal() * numerator / denominator)

    @staticmethod
    def total(amounts: Any) -> Money:
        return Money(sum(m.nanousd for m in amounts))

    # -- presentation -------------------------------------------------------------------
    def to_decimal(self) -> Decimal:
        return Decimal(self.nanousd) / NANO_PER_USD

    def usd(self, places: int = 2) -> str:
        """Dollars for people, e.g. ``$1,234.57``; display rounding uses the same rule."""
        q = Decimal(1).scaleb(-places)
        value = self.to_decimal().quantize(q, rounding=ROUNDING)
        sign = "-" if value < 0 else ""
        return f"{sign}${abs(value):,.{places}f}"

    def readable(self) -> str:
        """Cents when exact, else to the micro-dollar, so small amounts never read as $0.00."""
        return self.usd(2 if self.nanousd % NANO_PER_CENT == 0 else 6)

    def exact(self) -> str:
        """The exact dollar amount as a plain decimal string (for JSON and CSV)."""
        return format(self.to_decimal().normalize(), "f")

    def __str__(self) -> str:
        return self.usd()
