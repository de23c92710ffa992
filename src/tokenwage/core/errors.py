"""One hierarchy of domain errors.

::

    TokenwageError
     ├── InvalidInput                 bad value from a user or a file; message names it and the fix
     │    └── BadFile                 a file with problems, one line number per problem
     ├── NotFound                     an unknown person, team, account, package or key
     ├── Unauthenticated              a missing, unknown, revoked or expired API key
     ├── Conflict                     duplicates and overlaps: email taken, package dates overlap
     ├── PolicyDenied                 the rules say no (not a fault)
     │    ├── AllowanceExhausted      not enough left to spend; carries balance and next refill
     │    ├── ModelNotAllowed         the key or org may not use this model
     │    └── UnknownModelPrice       no price for a model and unknown models are rejected
     ├── LedgerTampered               ``ledger verify`` found a row edited, deleted, inserted, moved
     └── StoreUnavailable             the database or counter store cannot be reached

Translation to HTTP errors and exit codes happens at the edges only (gateway, web, CLI).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


class TokenwageError(Exception):
    """Base of every error tokenwage raises on purpose."""


class InvalidInput(TokenwageError):
    """A value from a user or a file is not acceptable."""


@dataclass(frozen=True)
class LineProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class BadFile(InvalidInput):
    """A file has one or more bad lines; nothing from it was written."""

    def __init__(self, path: str, problems: Sequence[LineProblem]) -> None:
        self.path = path
        self.problems = list(problems)
        shown = "\n".join(f"  {path}:{p}" for p in self.problems[:50])
        more = len(self.problems) - 50
        tail = f"\n  … and {more} more" if more > 0 else ""
        super().__init__(
            f"{path} has {len(self.problems)} bad line(s); nothing was written:\n{shown}{tail}"
        )


class NotFound(TokenwageError):
    """Something named does not exist."""


class Unauthenticated(TokenwageError):
    """No usable credentials: the key is missing, unknown, revoked or expired."""


class Conflict(TokenwageError):
    """The change would contradict existing data (duplicate, overlap)."""


class PolicyDenied(TokenwageError):
    """A rule refuses the action. Not an infrastructure fault."""


class AllowanceExhausted(PolicyDenied):
    def __init__(
        self,
        message: str,
        *,
        available_nanousd: int,
        needed_nanousd: int,
        allowance_nanousd: int | None = None,
        next_refill_utc: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.available_nanousd = available_nanousd
        self.needed_nanousd = needed_nanousd
        self.allowance_nanousd = allowance_nanousd
        self.next_refill_utc = next_refill_utc


class ModelNotAllowed(PolicyDenied):
    pass


class UnknownModelPrice(PolicyDenied):
    pass


class LedgerTampered(TokenwageError):
    """The hash chain does not hold; ``entry_id`` names the first bad entry."""

    def __init__(
        self, message: str, *, account: str, entry_id: int | None, seq: int | None
    ) -> None:
        super().__init__(message)
        self.account = account
        self.entry_id = entry_id
        self.seq = seq


class StoreUnavailable(TokenwageError):
    """The database or the counter store cannot be reached."""
