"""``price discount|override|unknown|list|quote``: the org's pricing rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import typer
from rich.table import Table

from tokenwage.cli.books import parse_instant
from tokenwage.cli.common import out, print_json, transaction
from tokenwage.core.usage import TokenUsage
from tokenwage.services import pricing as service
from tokenwage.services.pricing import PriceInput, parse_decimal

price_app = typer.Typer(
    help="Model prices: discounts, overrides, unknown models.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(price_app, name="price")


def _price_input(
    input_mtok: str | None,
    output_mtok: str | None,
    cache_read: str | None,
    cache_write: str | None,
    cache_write_1h: str | None,
) -> PriceInput | None:
    if input_mtok is None and output_mtok is None:
        return None
    if input_mtok is None or output_mtok is None:
        raise typer.BadParameter("give both --input and --output prices (dollars per million)")

    def opt(text: str | None, what: str) -> Decimal | None:
        return parse_decimal(text, what) if text is not None else None

    return PriceInput(
        input_mtok=parse_decimal(input_mtok, "--input"),
        output_mtok=parse_decimal(output_mtok, "--output"),
        cache_read_mtok=opt(cache_read, "--cache-read"),
        cache_write_mtok=opt(cache_write, "--cache-write"),
        cache_write_1h_mtok=opt(cache_write_1h, "--cache-write-1h"),
    )


INPUT = typer.Option(None, "--input", help="Dollars per million input tokens.")
OUTPUT = typer.Option(None, "--output", help="Dollars per million output tokens.")
CACHE_READ = typer.Option(None, "--cache-read", help="Dollars per million cache-read tokens.")
CACHE_WRITE = typer.Option(None, "--cache-write", help="Dollars per million cache-write tokens.")
CACHE_WRITE_1H = typer.Option(None, "--cache-write-1h", help="Per million 1-hour cache writes.")


@price_app.command("discount")
def discount(
    ctx: typer.Context,
    percent: str = typer.Argument(..., help="e.g. 12.5"),
    provider: str = typer.Option("*", "--provider", help="Only this provider [default: all]."),
) -> None:
    """Set the negotiated discount on list prices (0 to 100 percent)."""
    value = parse_decimal(percent, "discount")
    with transaction(ctx) as conn:
        service.set_discount(conn, value, provider.lower())
    out.print(f"Discount {value}% on {'all providers' if provider == '*' else provider}")


@price_app.command("override")
def override(
    ctx: typer.Context,
    provider: str = typer.Argument(..., help="Provider id, e.g. openai, or self-hosted."),
    model: str = typer.Argument(..., help="Model name or pattern, e.g. 'llama-3*'."),
    input_mtok: str = INPUT,
    output_mtok: str = OUTPUT,
    cache_read: str | None = CACHE_READ,
    cache_write: str | None = CACHE_WRITE,
    cache_write_1h: str | None = CACHE_WRITE_1H,
    start: str | None = typer.Option(None, "--from", help="In force from [default: always]."),
) -> None:
    """Price a model yourself: a custom contract, or a self-hosted model."""
    price = _price_input(input_mtok, output_mtok, cache_read, cache_write, cache_write_1h)
    if price is None:
        raise typer.BadParameter("an override needs --input and --output")
    with transaction(ctx) as conn:
        service.add_override(
            conn, provider, model, price, parse_instant(start, "--from") if start else None
        )
    out.print(
        f"Override {provider}/{model}: ${price.input_mtok} in, ${price.output_mtok} out per MTok"
    )


@price_app.command("unknown")
def unknown(
    ctx: typer.Context,
    mode: str = typer.Argument(..., help="reject (refuse usage of unknown models) or flag"),
    input_mtok: str | None = INPUT,
    output_mtok: str | None = OUTPUT,
) -> None:
    """What to do with a model nobody has a price for. It is never silently $0."""
    if mode not in ("reject", "flag"):
        raise typer.BadParameter("mode must be reject or flag")
    chosen: Literal["reject", "flag"] = "flag" if mode == "flag" else "reject"
    price = _price_input(input_mtok, output_mtok, None, None, None)
    with transaction(ctx) as conn:
        service.set_unknown_models(conn, chosen, price)
    out.print(f"Unknown models: {mode}")


@price_app.command("list")
def list_rules(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show the pricing rules."""
    with transaction(ctx) as conn:
        rules = service.list_rules(conn)
        policy = service.load_policy(conn)
    if as_json:
        print_json({"unknown_models": policy.unknown_models, "rules": rules})
        return
    table = Table(
        "kind",
        "provider",
        "model",
        "percent",
        "input",
        "output",
        "cache read",
        "cache write",
        "from",
        title=f"Pricing rules (unknown models: {policy.unknown_models})",
    )
    for r in rules:
        table.add_row(
            *(
                str(r.get(k, ""))
                for k in (
                    "kind",
                    "provider",
                    "model_pattern",
                    "percent",
                    "input_mtok",
                    "output_mtok",
                    "cache_read_mtok",
                    "cache_write_mtok",
                    "effective_from",
                )
            )
        )
    out.print(table)


@price_app.command("quote")
def quote(
    ctx: typer.Context,
    provider: str = typer.Argument(...),
    model: str = typer.Argument(...),
    input_tokens: int = typer.Option(0, "--input-tokens", min=0),
    output_tokens: int = typer.Option(0, "--output-tokens", min=0),
    cache_read_tokens: int = typer.Option(0, "--cache-read-tokens", min=0),
    cache_write_tokens: int = typer.Option(0, "--cache-write-tokens", min=0),
    at: str | None = typer.Option(None, "--at", help="Time of use [default: now]."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """What a usage would cost, with the org's rules, at a given time."""
    usage = TokenUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
    )
    when = parse_instant(at, "--at") if at else datetime.now(UTC)
    with transaction(ctx) as conn:
        priced = service.pricer_for(conn).price(usage, provider, model, when)
    if as_json:
        print_json(
            {
                "provider": priced.provider,
                "model": priced.model_ref,
                "source": priced.source,
                "flagged": priced.flagged,
                "cost_usd": priced.cost.exact(),
                "cost_nanousd": priced.cost.nanousd,
            }
        )
        return
    flag = " [yellow](unknown model: fallback price, flagged)[/]" if priced.flagged else ""
    out.print(f"{priced.provider}/{priced.model_ref}: {priced.cost.usd(6)} ({priced.source}){flag}")
