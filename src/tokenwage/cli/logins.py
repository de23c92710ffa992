"""``login set-password|disable`` and ``api-token create|list|revoke``: dashboard sign-in."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import typer
from rich.markup import escape
from rich.table import Table

from tokenwage.cli.common import cli_actor, err, out, print_json, transaction
from tokenwage.core.errors import InvalidInput

login_app = typer.Typer(help="Dashboard logins (argon2id password hashes).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for scripts calling the REST API.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(login_app, name="login")
    app.add_typer(token_app, name="api-token")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InvalidInput("--password-stdin read an empty line")
        return password
    password = typer.prompt("New password", hide_input=True)
    again = typer.prompt("Repeat it", hide_input=True)
    if password != again:
        raise InvalidInput("the two passwords differ; nothing was changed")
    return str(password)


@login_app.command("set-password")
def set_password(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="Whose login (a person in the directory)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
) -> None:
    """Create or change a dashboard login; the person's sessions end. Re-enables a login."""
    from tokenwage.web.accounts import set_password as service

    password = _read_password(password_stdin)
    with transaction(ctx) as conn:
        who = service(conn, email, password, actor=cli_actor(), now=datetime.now(UTC))
    out.print(escape(f"Password set for {who.email} ({who.role.value})."))


@login_app.command("disable")
def disable(ctx: typer.Context, email: str = typer.Argument(...)) -> None:
    """Refuse sign-in and API tokens for a person, and end their sessions."""
    from tokenwage.web.accounts import disable_login

    with transaction(ctx) as conn:
        who = disable_login(conn, email, actor=cli_actor(), now=datetime.now(UTC))
    out.print(escape(f"Login of {who.email} disabled; `login set-password` enables it again."))


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="Whom the token acts as (with their role)."),
    name: str = typer.Option(..., "--name", help="A label, e.g. nightly-report."),
    expires_days: int | None = typer.Option(
        None, "--expires-days", min=1, help="Stop working after D days [default: never]."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create an API token. The secret is printed once: store it now."""
    from tokenwage.web.accounts import create_api_token

    with transaction(ctx) as conn:
        info, raw = create_api_token(
            conn, email, name, actor=cli_actor(), now=datetime.now(UTC), expires_days=expires_days
        )
    if as_json:
        print_json({"token": raw, "prefix": info.prefix, "name": info.name, "email": info.email})
        return
    out.print(raw)
    err.print(
        escape(f"API token {info.prefix} ({info.name}) for {info.email}; shown only this once.")
    )


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    email: str | None = typer.Argument(None, help="Only this person's tokens."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List API tokens (never their secrets)."""
    from tokenwage.web.accounts import list_api_tokens

    now = datetime.now(UTC)
    with transaction(ctx) as conn:
        rows = list_api_tokens(conn, email)
    if as_json:
        print_json(
            [
                {
                    "prefix": t.prefix,
                    "name": t.name,
                    "email": t.email,
                    "created_utc": t.created_utc,
                    "expires_utc": t.expires_utc,
                    "revoked_utc": t.revoked_utc,
                    "last_used_utc": t.last_used_utc,
                    "usable": t.usable_at(now),
                }
                for t in rows
            ]
        )
        return
    table = Table("prefix", "name", "owner", "created", "expires", "last used", "status")
    for t in rows:
        status = "revoked" if t.revoked_utc else ("expired" if not t.usable_at(now) else "active")
        table.add_row(
            t.prefix,
            escape(t.name),
            t.email,
            t.created_utc.strftime("%Y-%m-%d"),
            t.expires_utc.strftime("%Y-%m-%d") if t.expires_utc else "never",
            t.last_used_utc.strftime("%Y-%m-%d %H:%M") if t.last_used_utc else "-",
            status,
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context, prefix: str = typer.Argument(..., help="The token's prefix (twa_...).")
) -> None:
    """Revoke an API token; it is refused from the next request on."""
    from tokenwage.web.accounts import revoke_api_token

    with transaction(ctx) as conn:
        info = revoke_api_token(conn, prefix, actor=cli_actor(), now=datetime.now(UTC))
    out.print(escape(f"Revoked {info.prefix} ({info.name}) of {info.email}"))
