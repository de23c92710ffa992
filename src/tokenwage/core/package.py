"""Compensation packages and their token allowance (data only; costs live in compensation.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from tokenwage.core.errors import InvalidInput
from tokenwage.core.money import NANO_PER_USD, Money

# Anything above these is almost certainly a typo (an extra zero or cents typed as dollars).
MAX_ANNUAL_COMP = Money(100_000_000 * NANO_PER_USD)
MAX_ALLOWANCE_PER_PERIOD = Money(1_000_000 * NANO_PER_USD)


class Period(StrEnum):
    DAY = "day"
    WORKDAY = "workday"
    WEEK = "week"
    MONTH = "month"


class RolloverKind(StrEnum):
    NONE = "none"
    CAPPED = "capped"
    UNLIMITED = "unlimited"


class CapMode(StrEnum):
    HARD = "hard"  # refuse spending beyond balance + pool + overdraft
    SOFT = "soft"  # allow, flag and alert


@dataclass(frozen=True)
class Rollover:
    kind: RolloverKind = RolloverKind.NONE
    cap_periods: int | None = None  # with CAPPED: carry at most this many periods' allowance

    def __post_init__(self) -> None:
        if self.kind is RolloverKind.CAPPED:
            if self.cap_periods is None or self.cap_periods < 1:
                raise InvalidInput("capped rollover needs cap_periods of at least 1")
        elif self.cap_periods is not None:
            raise InvalidInput(f"cap_periods only applies to capped rollover, not {self.kind}")

    @classmethod
    def parse(cls, text: str) -> Rollover:
        """``none``, ``unlimited`` or ``capped:N``."""
        t = text.strip().lower()
        if t.startswith("capped:"):
            try:
                return cls(RolloverKind.CAPPED, int(t.split(":", 1)[1]))
            except ValueError:
                msg = f"rollover {text!r}: write capped:N with N a whole number"
                raise InvalidInput(msg) from None
        try:
            return cls(RolloverKind(t))
        except ValueError:
            raise InvalidInput(f"rollover {text!r} must be none, unlimited or capped:N") from None

    def __str__(self) -> str:
        return f"capped:{self.cap_periods}" if self.kind is RolloverKind.CAPPED else self.kind.value


@dataclass(frozen=True)
class TokenAllowance:
    amount: Money  # credited at each period start
    period: Period = Period.MONTH
    rollover: Rollover = Rollover()
    expiry_days: int | None = None  # unused grants expire this many days after granted
    cap: CapMode = CapMode.HARD
    overdraft: Money = Money(0)  # how far below zero spending may go

    def __post_init__(self) -> None:
        if self.amount.nanousd < 0:
            raise InvalidInput(f"allowance amount cannot be negative ({self.amount})")
        if self.amount > MAX_ALLOWANCE_PER_PERIOD:
            raise InvalidInput(
                f"allowance {self.amount} per {self.period} is above the limit of "
                f"{MAX_ALLOWANCE_PER_PERIOD}; check for an extra zero"
            )
        if self.overdraft.nanousd < 0:
            raise InvalidInput("overdraft limit cannot be negative")
        if self.expiry_days is not None and self.expiry_days < 1:
            raise InvalidInput("expiry_days must be at least 1 (or unset for no expiry)")


@dataclass(frozen=True)
class Package:
    """What one person is paid, effective from ``effective_from`` up to ``effective_to``
    (inclusive; ``None`` = open-ended)."""

    base_salary: Money
    allowance: TokenAllowance
    effective_from: date
    effective_to: date | None = None
    bonus_target: Money = Money(0)
    equity_per_year: Money = Money(0)
    benefits_overhead: Money = Money(0)
    person_email: str | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        for label, amount in (
            ("base salary", self.base_salary),
            ("bonus target", self.bonus_target),
            ("equity per year", self.equity_per_year),
            ("benefits overhead", self.benefits_overhead),
        ):
            if amount.nanousd < 0:
                raise InvalidInput(f"{label} cannot be negative ({amount})")
            if amount > MAX_ANNUAL_COMP:
                raise InvalidInput(f"{label} {amount} is above {MAX_ANNUAL_COMP}; check the amount")
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise InvalidInput(
                f"package ends {self.effective_to} before it starts {self.effective_from}"
            )

    def active_on(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )

    def overlaps(self, other: Package) -> bool:
        a_end = self.effective_to or date.max
        b_end = other.effective_to or date.max
        return self.effective_from <= b_end and other.effective_from <= a_end
