"""What every command shares: the database, output, and turning errors into exit codes."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import typer
from rich.console import Console
from sqlalchemy import Connection

from tokenwage.config import load_settings
from tokenwage.core.errors import (
    Conflict,
    InvalidInput,
    LedgerTampered,
    NotFound,
    PolicyDenied,
    StoreUnavailable,
    TokenwageError,
    Unauthenticated,
)
from tokenwage.core.money import Money
from tokenwage.storage import migrate
from tokenwage.storage.db import Database
from tokenwage.storage.web_repo import WebRepo

# Piped output (scripts, CI logs) gets wide tables instead of Rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else 160
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)

EXIT_CODES: tuple[tuple[type[TokenwageError], int], ...] = (
    (InvalidInput, 2),
    (NotFound, 3),
    (Conflict, 4),
    (PolicyDenied, 5),
    (LedgerTampered, 6),
    (StoreUnavailable, 7),
    (Unauthenticated, 8),
)


def exit_code(exc: TokenwageError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


class State:
    """Per-invocation state, kept on the Typer context."""

    def __init__(self, database_url: str | None) -> None:
        self._url = database_url
        self._db: Database | None = None

    @property
    def url(self) -> str:
        if self._url:
            return self._url
        return load_settings().database_url.get_secret_value()

    def database(self, *, check_schema: bool = True) -> Database:
        if self._db is None:
            self._db = Database(self.url)
            if check_schema:
                migrate.require_current(self._db)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


@contextmanager
def transaction(ctx: typer.Context) -> Iterator[Connection]:
    """The command's one transaction: all of it is written, or none of it."""
    with state(ctx).database().begin() as conn:
        yield conn


def cli_actor() -> str:
    """How audit entries name whoever ran the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"


def audit(conn: Connection, action: str, detail: dict[str, Any]) -> None:
    """An audit entry for a change made from the command line (the dashboard writes its own)."""
    WebRepo(conn).audit(cli_actor(), action, detail, datetime.now(UTC))


def parse_amount(text: str, what: str, *, limit: Money | None = None) -> Money:
    """A dollar amount from the command line; a bad one is :class:`InvalidInput` (exit 2)."""
    try:
        amount = Money.parse(text)
    except (ValueError, InvalidInput) as exc:
        raise InvalidInput(f"{what} {text!r}: {exc}") from None
    if limit is not None and abs(amount) > limit:
        raise InvalidInput(f"{what} {amount} is above the limit of {limit}; check for an extra 0")
    return amount


def print_json(value: Any) -> None:
    sys.stdout.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    )
