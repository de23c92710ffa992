"""Entry point: ``tokenwage [--database-url URL] COMMAND ...``."""

from __future__ import annotations

from functools import cache
from typing import Any

import typer
from rich.markup import escape
from sqlalchemy.exc import OperationalError

from tokenwage import __version__
from tokenwage.cli import (
    books,
    demo,
    exports,
    imports,
    keys,
    logins,
    mock_upstream,
    org,
    packages,
    pricing,
    push,
    serve,
)
from tokenwage.cli.common import State, err, exit_code
from tokenwage.core.errors import StoreUnavailable, TokenwageError

app = typer.Typer(
    name="tokenwage",
    help="Pay engineers in AI tokens and keep the books honest.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tokenwage {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        envvar="TOKENWAGE_DATABASE_URL",
        help="sqlite:///path/to.db or postgresql://user@host/db "
        "[default: a SQLite file in your user data directory]",
        show_envvar=True,
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    ctx.obj = State(database_url)
    ctx.call_on_close(ctx.obj.close)


org.register(app)
packages.register(app)
books.register(app)
pricing.register(app)
keys.register(app)
logins.register(app)
push.register(app)
imports.register(app)
exports.register(app)  # after imports: adds to its `import` group
mock_upstream.register(app)
serve.register(app)
demo.register(app)


@cache
def _command() -> Any:
    """The Click command behind ``app``, built once (Typer rebuilds it on every call)."""
    return typer.main.get_command(app)


def main(argv: list[str] | None = None) -> None:
    """Console script. Domain errors become a clear message and a non-zero exit code."""
    try:
        _command().main(args=argv, prog_name="tokenwage")
    except TokenwageError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise SystemExit(exit_code(exc)) from None
    except OperationalError as exc:  # connecting or migrating outside Database.begin()
        unavailable = StoreUnavailable(f"database error: {exc.orig}")
        err.print(f"[bold red]error:[/] {escape(str(unavailable))}")
        raise SystemExit(exit_code(unavailable)) from None
