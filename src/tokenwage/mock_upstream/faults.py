"""Faults: the random ones a config asks for, and the ones a request forces by header."""

from __future__ import annotations

import random
from dataclasses import dataclass

FAULT_HEADER = "x-mock-fault"
FAULT_NAMES = ("drop-mid-stream", "error-mid-stream", "no-usage", "status-NNN")


class UnknownFault(ValueError):
    """The ``x-mock-fault`` header names a fault the mock does not know."""


@dataclass(frozen=True, slots=True)
class ForcedFaults:
    """Faults one request asked for with ``x-mock-fault: a, b`` (comma-separated)."""

    drop_mid_stream: bool = False
    error_mid_stream: bool = False
    no_usage: bool = False
    status: int | None = None

    @classmethod
    def parse(cls, header: str | None) -> ForcedFaults:
        if not header:
            return NO_FAULTS
        drop = error = no_usage = False
        status: int | None = None
        for raw in header.split(","):
            name = raw.strip().lower()
            if name == "drop-mid-stream":
                drop = True
            elif name == "error-mid-stream":
                error = True
            elif name == "no-usage":
                no_usage = True
            elif name.startswith("status-") and name[7:].isdigit() and 400 <= int(name[7:]) <= 599:
                status = int(name[7:])
            elif name:
                raise UnknownFault(
                    f"unknown {FAULT_HEADER} {name!r}; expected a comma-separated list of "
                    f"{', '.join(FAULT_NAMES)} (NNN a 4xx or 5xx status)"
                )
        return cls(drop_mid_stream=drop, error_mid_stream=error, no_usage=no_usage, status=status)


NO_FAULTS = ForcedFaults()


class RandomFaults:
    """Draws which requests fail from a RNG seeded once, so a sequential run repeats exactly."""

    def __init__(self, error_rate: float, seed: int) -> None:
        self._error_rate = error_rate
        self._rng = random.Random(seed)

    def draw_status(self, statuses: tuple[int, ...]) -> int | None:
        """A status to fail this request with, or None to answer it normally."""
        if self._error_rate <= 0.0:
            return None
        if self._rng.random() >= self._error_rate:
            return None
        return self._rng.choice(statuses)
