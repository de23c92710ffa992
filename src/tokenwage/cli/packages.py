"""``package set|show``, ``offer compare`` and ``cost``."""

from __future__ import annotations

from datetime import date

import typer
from rich.markup import escape
from rich.table import Table

from tokenwage.cli.common import audit, out, parse_amount, print_json, transaction
from tokenwage.core.compensation import CostBreakdown, compare_offers, team_cost
from tokenwage.core.money import Money
from tokenwage.core.package import CapMode, Package, Period, Rollover, TokenAllowance
from tokenwage.services import packages as service
from tokenwage.services.people import parse_date
from tokenwage.storage.org_repo import OrgRepo

package_app = typer.Typer(
    help="Compensation packages with a token allowance.", no_args_is_help=True
)
offer_app = typer.Typer(help="Model and compare offers.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(package_app, name="package")
    app.add_typer(offer_app, name="offer")
    app.command("cost")(cost)


@package_app.command("set")
def package_set(
    ctx: typer.Context,
    email: str = typer.Argument(...),
    salary: str = typer.Option(..., "--salary", help="Base salary per year, dollars."),
    allowance: str = typer.Option(..., "--allowance", help="Token allowance per period, dollars."),
    period: Period = typer.Option(Period.MONTH, "--period"),
    bonus: str = typer.Option("0", "--bonus", help="Bonus target per year."),
    equity: str = typer.Option("0", "--equity", help="Equity value vesting per year."),
    overhead: str = typer.Option("0", "--overhead", help="Benefits and overhead per year."),
    rollover: str = typer.Option("none", "--rollover", help="none, unlimited or capped:N"),
    expiry_days: int | None = typer.Option(
        None, "--expiry-days", help="Unused grants lapse after N days."
    ),
    cap: CapMode = typer.Option(CapMode.HARD, "--cap"),
    overdraft: str = typer.Option("0", "--overdraft", help="How far below zero spending may go."),
    start: str = typer.Option(..., "--from", help="First day, YYYY-MM-DD."),
    end: str | None = typer.Option(
        None, "--to", help="Last day, YYYY-MM-DD [default: open-ended]."
    ),
    supersede: bool = typer.Option(
        False, "--supersede", help="End the current open package the day before."
    ),
) -> None:
    """Set a person's package from a date. Overlapping dates are refused."""
    pkg = Package(
        base_salary=parse_amount(salary, "--salary"),
        bonus_target=parse_amount(bonus, "--bonus"),
        equity_per_year=parse_amount(equity, "--equity"),
        benefits_overhead=parse_amount(overhead, "--overhead"),
        allowance=TokenAllowance(
            amount=parse_amount(allowance, "--allowance"),
            period=period,
            rollover=Rollover.parse(rollover),
            expiry_days=expiry_days,
            cap=cap,
            overdraft=parse_amount(overdraft, "--overdraft"),
        ),
        effective_from=parse_date(start, "--from"),
        effective_to=parse_date(end, "--to") if end else None,
    )
    with transaction(ctx) as conn:
        service.set_package(conn, email, pkg, supersede=supersede)
        audit(conn, "package.set", {"person": email, **package_dict(pkg)})
    amount = pkg.allowance.amount
    out.print(escape(f"Package for {email} from {pkg.effective_from}: {amount} per {period}"))


def package_dict(p: Package) -> dict[str, object]:
    a = p.allowance
    return {
        "effective_from": p.effective_from,
        "effective_to": p.effective_to,
        "base_salary_usd": p.base_salary.exact(),
        "bonus_target_usd": p.bonus_target.exact(),
        "equity_per_year_usd": p.equity_per_year.exact(),
        "benefits_overhead_usd": p.benefits_overhead.exact(),
        "allowance_usd": a.amount.exact(),
        "allowance_period": str(a.period),
        "rollover": str(a.rollover),
        "expiry_days": a.expiry_days,
        "cap": str(a.cap),
        "overdraft_usd": a.overdraft.exact(),
    }


@package_app.command("show")
def package_show(
    ctx: typer.Context,
    email: str = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a person's packages over time."""
    with transaction(ctx) as conn:
        repo = OrgRepo(conn)
        pkgs = repo.packages_for(repo.person_id(email))
    if as_json:
        print_json([package_dict(p) for p in pkgs])
        return
    table = Table(
        "from",
        "to",
        "salary",
        "bonus",
        "equity",
        "overhead",
        "allowance",
        "rollover",
        "cap",
        title=escape(f"Packages of {email}"),
    )
    for p in pkgs:
        a = p.allowance
        table.add_row(
            str(p.effective_from),
            str(p.effective_to or "…"),
            p.base_salary.usd(0),
            p.bonus_target.usd(0),
            p.equity_per_year.usd(0),
            p.benefits_overhead.usd(0),
            f"{a.amount} / {a.period}",
            str(a.rollover),
            f"{a.cap} (overdraft {a.overdraft})",
        )
    out.print(table)


@offer_app.command("compare")
def offer_compare(
    ctx: typer.Context,
    offer: list[str] = typer.Option(
        [],
        "--offer",
        help="'NAME: salary=..., bonus=..., equity=..., overhead=..., allowance=200/workday'",
    ),
    person: list[str] = typer.Option([], "--person", help="Include this person's current package."),
    utilisation: str = typer.Option(
        "0.7", "--utilisation", help="Expected allowance use, 0.7 or 70%."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Compare packages side by side: annual committed cost and expected cost."""
    today = date.today()
    offers = [service.parse_offer(text, today) for text in offer]
    if person:
        with transaction(ctx) as conn:
            offers += [(email, service.current_package(conn, email, today)) for email in person]
    rows = compare_offers(offers, service.parse_utilisation(utilisation))
    if as_json:
        print_json(
            [
                {k: (v.exact() if isinstance(v, Money) else str(v)) for k, v in vars(r).items()}
                for r in rows
            ]
        )
        return
    table = Table(title=escape(f"Offers at {utilisation} allowance utilisation"))
    table.add_column("")
    for r in rows:
        table.add_column(escape(r.name), justify="right")
    lines: list[tuple[str, list[str]]] = [
        ("Base salary", [r.salary.usd(0) for r in rows]),
        ("Bonus target", [r.bonus.usd(0) for r in rows]),
        ("Equity / year", [r.equity.usd(0) for r in rows]),
        ("Benefits & overhead", [r.overhead.usd(0) for r in rows]),
        ("Token allowance", [f"{r.allowance_per_period} / {r.period}" for r in rows]),
        ("Token allowance / year", [r.allowance_per_year.usd(0) for r in rows]),
        ("Annual committed", [r.annual_committed.usd(0) for r in rows]),
        ("Expected annual", [r.expected_annual.usd(0) for r in rows]),
        ("Expected vs first", [r.expected_vs_first.usd(0) for r in rows]),
    ]
    for label, cells in lines:
        table.add_row(label, *cells)
    out.print(table)


def cost_dict(c: CostBreakdown) -> dict[str, object]:
    return {
        "salary_usd": c.salary.exact(),
        "bonus_usd": c.bonus.exact(),
        "equity_usd": c.equity.exact(),
        "overhead_usd": c.overhead.exact(),
        "token_allowance_committed_usd": c.token_allowance_committed.exact(),
        "total_committed_usd": c.total_committed.exact(),
        "token_spend_actual_usd": c.token_spend_actual.exact(),
        "utilisation": str(c.utilisation) if c.utilisation is not None else None,
    }


def cost(
    ctx: typer.Context,
    start: str = typer.Option(..., "--from", help="First day, YYYY-MM-DD."),
    end: str = typer.Option(..., "--to", help="Last day, YYYY-MM-DD."),
    team: str | None = typer.Option(None, "--team"),
    person: str | None = typer.Option(None, "--person"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Fully loaded cost per person (and total): pay + committed allowance, with actual spend."""
    first, last = parse_date(start, "--from"), parse_date(end, "--to")
    with transaction(ctx) as conn:
        rows = service.people_costs(conn, first, last, team=team, email=person)
    total = team_cost(r.cost for r in rows)
    if as_json:
        print_json(
            {
                "from": first,
                "to": last,
                "people": [{"email": r.person.email, **cost_dict(r.cost)} for r in rows],
                "total": cost_dict(total),
            }
        )
        return
    table = Table(
        "person",
        "salary",
        "bonus",
        "equity",
        "overhead",
        "tokens committed",
        "committed total",
        "tokens spent",
        "used",
        title=f"Fully loaded cost {first} to {last}",
    )
    for label, c in [(r.person.email, r.cost) for r in rows] + [("TOTAL", total)]:
        used = f"{c.utilisation:.0%}" if c.utilisation is not None else "–"
        table.add_row(
            escape(label),
            c.salary.usd(0),
            c.bonus.usd(0),
            c.equity.usd(0),
            c.overhead.usd(0),
            c.token_allowance_committed.usd(0),
            c.total_committed.usd(0),
            c.token_spend_actual.usd(2),
            used,
        )
    out.print(table)
