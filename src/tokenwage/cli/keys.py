"""``keys create|list|revoke``: virtual keys for the gateway."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table

from tokenwage.cli.books import parse_instant
from tokenwage.cli.common import audit, err, out, print_json, transaction
from tokenwage.services import keys as service

keys_app = typer.Typer(help="Virtual API keys for the gateway.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def create(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="Whose key."),
    name: str = typer.Option("default", "--name", help="A label, e.g. laptop or ci."),
    expires: str | None = typer.Option(None, "--expires", help="When the key stops working."),
    model: list[str] = typer.Option([], "--model", help="Allow only these models (patterns)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a key. The secret is printed once: store it now."""
    now = datetime.now(UTC)
    with transaction(ctx) as conn:
        info, raw = service.create_key(
            conn,
            email=email,
            name=name,
            now=now,
            expires_utc=parse_instant(expires, "--expires") if expires else None,
            allowed_models=model,
        )
        audit(conn, "key.create", {"person": email, "prefix": info.prefix})
    if as_json:
        print_json({"key": raw, "prefix": info.prefix, "name": info.name, "email": email})
        return
    out.print(raw)
    err.print(f"Key {info.prefix} ({info.name}) for {email}. It is shown only this once.")


@keys_app.command("list")
def list_cmd(
    ctx: typer.Context,
    email: str | None = typer.Argument(None, help="Only this person's keys."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List keys (never their secrets)."""
    now = datetime.now(UTC)
    with transaction(ctx) as conn:
        rows = service.list_keys(conn, email)
    if as_json:
        print_json(
            [
                {
                    "prefix": k.prefix,
                    "name": k.name,
                    "email": owner,
                    "created_utc": k.created_utc,
                    "expires_utc": k.expires_utc,
                    "revoked_utc": k.revoked_utc,
                    "last_used_utc": k.last_used_utc,
                    "allowed_models": list(k.allowed_models or []),
                    "usable": k.usable_at(now),
                }
                for k, owner in rows
            ]
        )
        return
    table = Table("prefix", "name", "owner", "created", "expires", "status", "models")
    for k, owner in rows:
        status = "revoked" if k.revoked_utc else ("expired" if not k.usable_at(now) else "active")
        table.add_row(
            k.prefix,
            k.name,
            owner,
            k.created_utc.strftime("%Y-%m-%d"),
            k.expires_utc.strftime("%Y-%m-%d") if k.expires_utc else "never",
            status,
            ", ".join(k.allowed_models or ["all"]),
        )
    out.print(table)


@keys_app.command("revoke")
def revoke(ctx: typer.Context, prefix: str = typer.Argument(..., help="The key's prefix.")) -> None:
    """Revoke a key; the gateway refuses it within seconds."""
    with transaction(ctx) as conn:
        info = service.revoke_key(conn, prefix, datetime.now(UTC))
        audit(conn, "key.revoke", {"prefix": info.prefix})
    out.print(f"Revoked {info.prefix} ({info.name})")
