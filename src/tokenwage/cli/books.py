"""``grant``, ``allowances run``, ``balance``, ``statement``, ``ledger verify``, ``export``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from tokenwage.cli.common import audit, err, out, parse_amount, print_json, transaction
from tokenwage.core.errors import InvalidInput, LedgerTampered
from tokenwage.core.money import Money
from tokenwage.core.package import MAX_ALLOWANCE_PER_PERIOD
from tokenwage.render.statement import statement_html, statement_json, statement_text
from tokenwage.services import books
from tokenwage.services.statements import export_entries, last_recorded_utc, statement_for
from tokenwage.storage.ledger_repo import LedgerRepo

allowances_app = typer.Typer(help="Periodic allowances.", no_args_is_help=True)
ledger_app = typer.Typer(help="The hash-chained ledger.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("grant")(grant)
    app.add_typer(allowances_app, name="allowances")
    app.command("balance")(balance)
    app.command("statement")(statement)
    app.add_typer(ledger_app, name="ledger")
    app.command("export")(export)


def parse_instant(text: str, what: str) -> datetime:
    """An ISO date or date-time; a bare date or naive time is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"{what} {text!r} is not a date like 2026-11-30 or 2026-11-30T18:00Z"
        raise InvalidInput(msg) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def grant(
    ctx: typer.Context,
    email: str | None = typer.Argument(None, help="Person to grant to."),
    amount: str = typer.Option(..., "--amount", help="Dollars, e.g. 500."),
    reason: str = typer.Option(..., "--reason", help="Shown on the statement."),
    team: str | None = typer.Option(None, "--team", help="Grant to this team's pool instead."),
    expires: str | None = typer.Option(None, "--expires", help="When unused money lapses."),
) -> None:
    """Book a one-off grant: a spot award, an onboarding bonus, a pool top-up."""
    now = datetime.now(UTC)
    with transaction(ctx) as conn:
        entry = books.grant(
            conn,
            email=email,
            team=team,
            amount=parse_amount(amount, "--amount", limit=MAX_ALLOWANCE_PER_PERIOD),
            reason=reason,
            now=now,
            expires_utc=parse_instant(expires, "--expires") if expires else None,
        )
        audit(
            conn,
            "grant",
            {"person": email, "team": team, "amount_nanousd": entry.amount_nanousd}
            | {"reason": reason},
        )
    to = email or f"team {team}"
    out.print(escape(f"Granted {Money(entry.amount_nanousd)} to {to} ({reason})"))


@allowances_app.command("run")
def allowances_run(
    ctx: typer.Context,
    at: str | None = typer.Option(None, "--now", help="Run as of this instant [default: now]."),
) -> None:
    """Credit started periods, apply rollover and lapse expired grants (idempotent)."""
    clock = datetime.now(UTC)
    now = parse_instant(at, "--now") if at else clock
    if now > clock:
        raise InvalidInput(f"--now {now.isoformat()} is in the future; entries are booked as of it")
    with transaction(ctx) as conn:
        last = last_recorded_utc(conn) if at else None
        if last is not None and now < last:
            # statements are posted by recording time, so it must not go backwards
            raise InvalidInput(
                f"--now {now.isoformat()} is before the last ledger entry, recorded "
                f"{last.isoformat()}; run as of that instant or later"
            )
        result = books.run_allowances(conn, now)
    out.print(
        f"{result.accounts} accounts: {result.grants} grants, {result.expiries} expiries, "
        f"{result.entries} entries written"
    )


def balance(
    ctx: typer.Context,
    email: str | None = typer.Argument(None, help="One person [default: everyone]."),
    team: str | None = typer.Option(None, "--team"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Balances: own allowance, team pool and what can still be spent."""
    now = datetime.now(UTC)
    with transaction(ctx) as conn:
        rows = books.balances(conn, now, email=email, team=team)
    if as_json:
        print_json(
            [
                {
                    "email": b.person.email,
                    "team": b.person.team_slug,
                    "balance_usd": b.balance.exact(),
                    "pool_balance_usd": b.pool_balance.exact(),
                    "spendable_usd": b.spendable.exact(),
                    "allowance_usd": b.allowance.amount.exact() if b.allowance else None,
                    "allowance_period": str(b.allowance.period) if b.allowance else None,
                    "next_refill_utc": b.next_refill_utc,
                }
                for b in rows
            ]
        )
        return
    table = Table("person", "team", "balance", "team pool", "can spend", "allowance", "next refill")
    for b in rows:
        allowance = f"{b.allowance.amount} / {b.allowance.period}" if b.allowance else "–"
        refill = b.next_refill_utc.strftime("%Y-%m-%d %H:%M UTC") if b.next_refill_utc else "–"
        table.add_row(
            escape(b.person.email),
            b.person.team_slug or "",
            b.balance.usd(),
            b.pool_balance.usd() if b.pool_team else "–",
            b.spendable.usd(),
            allowance,
            refill,
        )
    out.print(table)


def statement(
    ctx: typer.Context,
    email: str = typer.Argument(...),
    month: str = typer.Option(None, "--month", help="YYYY-MM [default: this month]."),
    fmt: str = typer.Option("text", "--format", help="text, json or html"),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to a file."),
) -> None:
    """The monthly token statement: like a pay stub, sealed by the ledger's hash chain."""
    now = datetime.now(UTC)
    year, mon = _parse_month(month) if month else (now.year, now.month)
    if fmt not in ("text", "json", "html"):
        raise InvalidInput(f"--format {fmt!r} must be text, json or html")
    with transaction(ctx) as conn:
        st = statement_for(conn, email, year, mon, now)
    if fmt == "json":
        text = orjson.dumps(statement_json(st), option=orjson.OPT_INDENT_2).decode() + "\n"
    elif fmt == "html":
        text = statement_html(st)
    else:
        text = statement_text(st)
    if output:
        output.write_text(text, encoding="utf-8")
        out.print(escape(f"Wrote {output}"))
    else:
        sys.stdout.write(text)


def _parse_month(text: str) -> tuple[int, int]:
    try:
        year, mon = (int(x) for x in text.split("-"))
    except ValueError:
        raise InvalidInput(f"--month {text!r} must look like 2026-11") from None
    if not 1 <= mon <= 12:
        raise InvalidInput(f"--month {text!r}: month must be 01 to 12")
    return year, mon


@ledger_app.command("verify")
def verify(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Check every hash chain; exit 6 and name the first bad entry if anything was tampered."""
    with transaction(ctx) as conn:
        repo = LedgerRepo(conn)
        problems = list(repo.verify())
        count = repo.count_entries()
        n_accounts = len(repo.all_accounts())
    if as_json:
        print_json(
            {
                "ok": not problems,
                "entries": count,
                "accounts": n_accounts,
                "problems": [
                    {"account": p.account, "entry_id": p.entry_id, "seq": p.seq, "what": p.what}
                    for p in problems
                ],
            }
        )
    elif not problems:
        out.print(f"[green]OK[/]: {count} entries in {n_accounts} accounts; every chain holds.")
    else:
        for p in problems[:20]:
            err.print(escape(str(p)), style="red")
    if problems:
        first = problems[0]
        raise LedgerTampered(
            f"ledger verification failed: first bad entry is {first}",
            account=first.account,
            entry_id=first.entry_id,
            seq=first.seq,
        )


def export(
    ctx: typer.Context,
    fmt: str = typer.Option("csv", "--format", help="csv or json"),
    output: Path | None = typer.Option(None, "--output", "-o"),
    since: str | None = typer.Option(None, "--since", help="Recorded at or after."),
    until: str | None = typer.Option(None, "--until", help="Recorded before."),
) -> None:
    """Export ledger entries with their hashes, for finance tools and auditors."""
    if fmt not in ("csv", "json"):
        raise InvalidInput(f"--format {fmt!r} must be csv or json")
    lo = parse_instant(since, "--since") if since else None
    hi = parse_instant(until, "--until") if until else None
    with transaction(ctx) as conn:
        chunks = export_entries(conn, fmt, since=lo, until=hi)
        if output:
            with output.open("w", encoding="utf-8", newline="") as f:
                for chunk in chunks:
                    f.write(chunk)
            err.print(escape(f"Wrote {output}"))
        else:
            for chunk in chunks:
                sys.stdout.write(chunk)
