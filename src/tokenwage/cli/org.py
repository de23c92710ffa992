"""``init``, ``migrate``, ``team ...`` and ``person ...``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from tokenwage.cli.common import out, parse_amount, print_json, state, transaction
from tokenwage.core.org import Org, Person, Role, Team
from tokenwage.core.package import MAX_ALLOWANCE_PER_PERIOD, Period
from tokenwage.services import people as people_service
from tokenwage.storage import migrate
from tokenwage.storage.org_repo import OrgRepo

team_app = typer.Typer(help="Teams and their shared token pools.", no_args_is_help=True)
person_app = typer.Typer(help="People: add, list, import from CSV.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("migrate")(migrate_cmd)
    app.add_typer(team_app, name="team")
    app.add_typer(person_app, name="person")


def init(
    ctx: typer.Context,
    org_name: str = typer.Option("My Organisation", "--org", help="Organisation name."),
    timezone: str = typer.Option(
        "UTC", "--timezone", help="IANA zone for day and month boundaries."
    ),
) -> None:
    """Create (or upgrade) the database and record the organisation."""
    value = Org(name=org_name, timezone=timezone)  # a bad zone is refused before any write
    db = state(ctx).database(check_schema=False)
    migrate.upgrade(db)
    with db.begin() as conn:
        OrgRepo(conn).save_org(value)
    where = db.engine.url.render_as_string()
    out.print(escape(f"Initialised {org_name!r} ({timezone}) at {where}"))


def migrate_cmd(ctx: typer.Context) -> None:
    """Bring the database schema up to date."""
    db = state(ctx).database(check_schema=False)
    before = migrate.current_revision(db)
    migrate.upgrade(db)
    out.print(f"Schema {before or 'empty'} -> {migrate.current_revision(db)}")


@team_app.command("add")
def team_add(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="Short id, e.g. platform-infra."),
    name: str = typer.Option(None, "--name", help="Display name [default: from the id]."),
    parent: str | None = typer.Option(None, "--parent", help="Parent team id."),
) -> None:
    """Add a team (teams may nest)."""
    display = name or slug.replace("-", " ").title()
    with transaction(ctx) as conn:
        people_service.add_team(conn, Team(slug, display, parent))
    out.print(f"Added team {slug}")


@team_app.command("list")
def team_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """List teams."""
    with transaction(ctx) as conn:
        teams = OrgRepo(conn).list_teams()
    if as_json:
        print_json([{"slug": t.slug, "name": t.name, "parent": t.parent_slug} for t in teams])
        return
    table = Table("id", "name", "parent", title=f"{len(teams)} teams")
    for t in teams:
        table.add_row(t.slug, escape(t.name), t.parent_slug or "")
    out.print(table)


@team_app.command("pool")
def team_pool(
    ctx: typer.Context,
    slug: str = typer.Argument(...),
    amount: str = typer.Option(..., "--amount", help="Dollars credited to the pool each period."),
    period: Period = typer.Option(Period.MONTH, "--period"),
    start: str | None = typer.Option(None, "--from", help="First day [default: today]."),
) -> None:
    """Give a team a periodic shared pool that members draw on after their own allowance.

    Unused pool money lapses at the end of each period (no rollover)."""
    money = parse_amount(amount, "--amount", limit=MAX_ALLOWANCE_PER_PERIOD)
    first = people_service.parse_date(start, "--from") if start else date.today()
    with transaction(ctx) as conn:
        OrgRepo(conn).set_pool(slug, money, period, first)
    out.print(f"Team {slug} pool: {money} per {period}")


@person_app.command("add")
def person_add(
    ctx: typer.Context,
    email: str = typer.Argument(...),
    name: str = typer.Option(..., "--name"),
    team: str | None = typer.Option(None, "--team"),
    manager: str | None = typer.Option(None, "--manager", help="Manager's email."),
    level: str | None = typer.Option(None, "--level"),
    role: Role = typer.Option(Role.MEMBER, "--role"),
    start: str | None = typer.Option(None, "--start", help="Start date, YYYY-MM-DD."),
    end: str | None = typer.Option(None, "--end", help="End date, YYYY-MM-DD."),
) -> None:
    """Add a person."""
    parse = people_service.parse_date
    person = Person(
        email=email,
        name=name,
        team_slug=team,
        manager_email=manager,
        level=level,
        role=role,
        start_date=parse(start, "--start") if start else None,
        end_date=parse(end, "--end") if end else None,
    )
    with transaction(ctx) as conn:
        people_service.add_person(conn, person)
    out.print(escape(f"Added {person.email}"))


@person_app.command("list")
def person_list(
    ctx: typer.Context,
    team: str | None = typer.Option(None, "--team"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List people."""
    with transaction(ctx) as conn:
        rows = OrgRepo(conn).list_people(team)
    if as_json:
        print_json(
            [
                {
                    "email": p.email,
                    "name": p.name,
                    "team": p.team_slug,
                    "manager": p.manager_email,
                    "level": p.level,
                    "role": str(p.role),
                    "start_date": p.start_date,
                    "end_date": p.end_date,
                }
                for p in rows
            ]
        )
        return
    table = Table("email", "name", "team", "manager", "level", "role", title=f"{len(rows)} people")
    for p in rows:
        cells = (p.email, p.name, p.team_slug, p.manager_email, p.level, p.role)
        table.add_row(*(escape(c or "") for c in cells))
    out.print(table)


@person_app.command("import")
def person_import(
    ctx: typer.Context,
    path: Path = typer.Argument(
        ..., help="CSV with columns " + ", ".join(people_service.PEOPLE_COLUMNS)
    ),
    create_teams: bool = typer.Option(False, "--create-teams", help="Create unknown teams."),
) -> None:
    """Import people from CSV; any bad line is reported and then nothing is written."""
    with transaction(ctx) as conn:
        result = people_service.import_people_csv(conn, path, create_teams=create_teams)
    out.print(f"Imported {result.people} people ({result.teams_created} new teams)")
