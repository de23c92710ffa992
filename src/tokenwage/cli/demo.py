"""``demo seed`` and ``demo run``: a realistic organisation to look around in."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tokenwage.cli.common import err, out, state, transaction
from tokenwage.render.statement import statement_text
from tokenwage.services.demo import DemoSummary, seed_demo
from tokenwage.services.statements import statement_for
from tokenwage.storage import migrate
from tokenwage.storage.ledger_repo import LedgerRepo
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
    then start the gateway in front of the simulated provider and show how to use it."""
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
        problems = list(LedgerRepo(conn).verify())
        entries = LedgerRepo(conn).count_entries()
    out.rule(f"Statement of {someone.name} for {last[0]}-{last[1]:02d}")
    sys.stdout.write(statement_text(st))
    out.rule("Ledger")
    if problems:
        err.print(f"[red]ledger verification FAILED: {problems[0]}[/]")
        raise typer.Exit(6)
    out.print(f"[green]OK[/]: all {entries} ledger entries verified; every hash chain holds.")
    if live:
        from tokenwage.cli.demo_live import run_live

        run_live(state(ctx).url, port, upstream_port, serve=serve)
