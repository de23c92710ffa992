"""``demo seed`` and ``demo run``: a realistic organisation to look around in."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Connection

from tokenwage.cli.common import err, out, state, transaction
from tokenwage.core.money import Money
from tokenwage.core.org import Role
from tokenwage.render.statement import statement_text
from tokenwage.services import books
from tokenwage.services.dashboard.ledger import verify_ledger
from tokenwage.services.demo import DemoSummary, seed_demo
from tokenwage.services.statements import statement_for
from tokenwage.storage import migrate
from tokenwage.storage.org_repo import OrgRepo

demo_app = typer.Typer(
    help="A demo organisation with months of realistic usage.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")


def _seed(ctx: typer.Context, people: int, days: int, seed: int) -> DemoSummary:
    db = state(ctx).database(check_schema=False)
    migrate.upgrade(db)
    now = datetime.now(UTC)
    with Progress(
        TextColumn("Simulating usage"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("days", total=days + 1)
        with transaction(ctx) as conn:
            summary = seed_demo(
                conn,
                now=now,
                people=people,
                days=days,
                seed=seed,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    out.print(
        f"Seeded Acme Robotics: {summary.people} people in {summary.teams} teams, {summary.days} "
        f"days, {summary.usage_sessions} coding sessions ({summary.refused_sessions} refused by a "
        f"hard cap), {summary.entries} ledger entries."
    )
    return summary


@demo_app.command("seed")
def demo_seed(
    ctx: typer.Context,
    people: int = typer.Option(48, "--people", min=3, max=2000),
    days: int = typer.Option(90, "--days", min=1, max=730),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """Fill an empty database with the demo organisation."""
    _seed(ctx, people, days, seed)


@demo_app.command("run")
def demo_run(
    ctx: typer.Context,
    people: int = typer.Option(48, "--people", min=3, max=2000),
    days: int = typer.Option(90, "--days", min=1, max=730),
    serve: bool = typer.Option(
        True, "--serve/--no-serve", help="Keep the gateway running until Ctrl-C."
    ),
    live: bool = typer.Option(True, "--live/--no-live", help="Start the gateway at all."),
    port: int = typer.Option(8080, "--port", help="Gateway port (a free one if taken)."),
    upstream_port: int = typer.Option(9100, "--upstream-port", help="Simulated provider port."),
) -> None:
    """Seed the demo if the database is empty, show balances, a statement and the audit,
    then start tokenwage serve (gateway and dashboard) in front of the simulated provider
    and show how to sign in and how to point clients at it."""
    db = state(ctx).database(check_schema=False)
    migrate.upgrade(db)
    with transaction(ctx) as conn:
        seeded = OrgRepo(conn).has_org() and bool(OrgRepo(conn).list_people())
    if not seeded:
        _seed(ctx, people, days, 7)
    from tokenwage.cli.books import balance

    out.rule("Balances")
    balance(ctx, email=None, team=None, as_json=False)
    now = datetime.now(UTC)
    with transaction(ctx) as conn:
        platform = OrgRepo(conn).list_people(team_slug="platform")
        someone = platform[min(1, len(platform) - 1)]
        last = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
        st = statement_for(conn, someone.email, *last, now)
        checked = verify_ledger(conn, "tokenwage demo", now)  # the Ledger page shows it
    out.rule(f"Statement of {someone.name} for {last[0]}-{last[1]:02d}")
    sys.stdout.write(statement_text(st))
    out.rule("Ledger")
    if not checked.ok:
        err.print(f"[red]ledger verification FAILED: {checked.problems[0][1]}[/]")
        raise typer.Exit(6)
    out.print(
        f"[green]OK[/]: all {checked.entries} ledger entries verified; every hash chain holds."
    )
    if live:
        from tokenwage.cli.demo_live import run_live

        with transaction(ctx) as conn:
            logins = demo_logins(conn, now)
        run_live(state(ctx).url, port, upstream_port, serve=serve, logins=logins)


WELCOME = Money.parse(20)


def demo_password(role: Role) -> str:
    """The demo's known password for each role's login (never use these elsewhere)."""
    return f"demo-{role.value}-password"


def demo_logins(conn: Connection, now: datetime) -> list[tuple[Role, str, str]]:
    """A dashboard login for each role: (role, email, password). The member is one with
    money of their own right now (a workday allowance is empty at the weekend), or gets a
    small welcome grant, so requests with the demo's key go through and show on their page."""
    from tokenwage.web.accounts import set_password

    first: dict[Role, str] = {}
    able = {b.person.email for b in books.balances(conn, now) if b.balance > Money.parse(1)}
    people = sorted(OrgRepo(conn).list_people(), key=lambda p: (p.email not in able, p.id or 0))
    for person in people:
        first.setdefault(person.role, person.email)
    member = first.get(Role.MEMBER)
    if member is not None and member not in able:
        books.grant(
            conn, email=member, team=None, amount=WELCOME, reason="Demo: welcome credit", now=now
        )
    logins = []
    for role in Role:
        if role in first:
            password = demo_password(role)
            set_password(conn, first[role], password, actor="tokenwage demo", now=now)
            logins.append((role, first[role], password))
    return logins
