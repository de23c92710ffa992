"""``import openai-usage|openai-costs|anthropic-usage|anthropic-cost|claude-code-report|cursor``.

Provider exports, from saved JSON files or fetched live (``--fetch``) from the admin APIs.
Usage defaults to ``--mode charge``: the organisation pays these providers, so the usage is
spent from the allowances it pays for. Cost reports default to ``--mode track``: they restate
the spend that the usage reports already itemise, so charging both would charge twice.
See docs/provider-exports.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from tokenwage.cli.books import parse_instant
from tokenwage.cli.common import err, out, print_json, transaction
from tokenwage.core.errors import InvalidInput
from tokenwage.core.imported import ChargeMode, ImportedUsage
from tokenwage.core.money import Money
from tokenwage.importers import anthropic_admin, cursor, fetch, openai_admin
from tokenwage.services.importing import ImportSummary, import_usage
from tokenwage.services.pricing import pricer_for

Parse = Callable[[bytes, str, datetime], list[ImportedUsage]]
Fetch = Callable[[fetch.AdminApi, datetime, datetime, datetime], fetch.Fetched]
DEFAULT_DAYS = 7


@dataclass(frozen=True)
class Export:
    command: str
    help: str
    parse: Parse
    fetch: Fetch
    mode: ChargeMode
    key_env: str
    base_url: str
    cost_only: bool = False


EXPORTS = (
    Export(
        "openai-usage",
        "OpenAI organisation Usage API (completions), by project, user, API key and model.",
        lambda b, p, now: openai_admin.parse_usage(b, p, complete_before=now),
        fetch.openai_usage,
        ChargeMode.CHARGE,
        "OPENAI_ADMIN_KEY",
        fetch.OPENAI_BASE_URL,
    ),
    Export(
        "openai-costs",
        "OpenAI organisation Costs API, by project and line item (cost-only records).",
        lambda b, p, now: openai_admin.parse_costs(b, p, complete_before=now),
        fetch.openai_costs,
        ChargeMode.TRACK,
        "OPENAI_ADMIN_KEY",
        fetch.OPENAI_BASE_URL,
        cost_only=True,
    ),
    Export(
        "anthropic-usage",
        "Anthropic Admin API Messages usage report, by API key, workspace and model.",
        lambda b, p, now: anthropic_admin.parse_usage(b, p, complete_before=now),
        fetch.anthropic_usage,
        ChargeMode.CHARGE,
        "ANTHROPIC_ADMIN_KEY",
        fetch.ANTHROPIC_BASE_URL,
    ),
    Export(
        "anthropic-cost",
        "Anthropic Admin API Cost report, by workspace and description (cost-only records).",
        lambda b, p, now: anthropic_admin.parse_cost(b, p, complete_before=now),
        fetch.anthropic_cost,
        ChargeMode.TRACK,
        "ANTHROPIC_ADMIN_KEY",
        fetch.ANTHROPIC_BASE_URL,
        cost_only=True,
    ),
    Export(
        "claude-code-report",
        "Anthropic Claude Code usage report: per engineer (e-mail), day and model.",
        lambda b, p, now: anthropic_admin.parse_claude_code(b, p, complete_before=now),
        fetch.claude_code_report,
        ChargeMode.CHARGE,
        "ANTHROPIC_ADMIN_KEY",
        fetch.ANTHROPIC_BASE_URL,
    ),
    Export(
        "cursor",
        "Cursor team usage events (Admin API filtered-usage-events), by e-mail.",
        lambda b, p, now: cursor.parse_events(b, p),
        fetch.cursor_events,
        ChargeMode.CHARGE,
        "CURSOR_ADMIN_KEY",
        fetch.CURSOR_BASE_URL,
    ),
)


def register(app: typer.Typer) -> None:
    """Add the commands to the ``import`` group, creating it when no module registered it
    before (``cli.imports`` does: register this module after it)."""
    group = next((g.typer_instance for g in app.registered_groups if g.name == "import"), None)
    if group is None:
        group = typer.Typer(help="Import usage that bypassed the gateway.", no_args_is_help=True)
        app.add_typer(group, name="import")
    for spec in EXPORTS:
        group.command(spec.command)(_command(spec))


def _command(spec: Export) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        files: list[Path] = typer.Argument(
            None, help="Saved API responses: one JSON page, or a JSON array of pages."
        ),
        fetch_live: bool = typer.Option(
            False, "--fetch", help="Page through the provider's admin API instead of files."
        ),
        since: str | None = typer.Option(
            None,
            "--since",
            help=f"With --fetch: the first instant (default: {DEFAULT_DAYS} days before --until).",
        ),
        until: str | None = typer.Option(
            None, "--until", help="With --fetch: the end, excluded (default: now)."
        ),
        admin_key: str | None = typer.Option(
            None, "--admin-key", envvar=spec.key_env, show_envvar=True, help="Admin API key."
        ),
        base_url: str = typer.Option(spec.base_url, "--base-url", help="Admin API base URL."),
        mode: ChargeMode = typer.Option(
            spec.mode, "--mode", help="charge: debit allowances; track: book only."
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="Write nothing."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        now = datetime.now(UTC)
        if fetch_live == bool(files):
            raise InvalidInput("give export files or --fetch (one of the two)")
        if fetch_live:
            end = parse_instant(until, "--until") if until else now
            start = parse_instant(since, "--since") if since else end - timedelta(DEFAULT_DAYS)
            if start >= end:
                raise InvalidInput(f"--since {start.isoformat()} is not before {end.isoformat()}")
            api = fetch.AdminApi(base_url, admin_key or "")
            got = spec.fetch(api, start, end, now)
            records, origin = got.records, f"{got.pages} page(s) from {base_url}"
        else:
            records, origin = _read(spec, files, now), f"{len(files)} file(s)"
        summary = _book(ctx, spec, records, mode, now, dry_run)
        result = _result(spec, records, origin, summary, dry_run)
        if as_json:
            print_json(result)
        else:
            _print(result, summary)

    command.__doc__ = spec.help
    command.__name__ = f"import_{spec.command.replace('-', '_')}"
    return command


def _read(spec: Export, files: list[Path], now: datetime) -> list[ImportedUsage]:
    records: list[ImportedUsage] = []
    for path in files:
        try:
            body = path.expanduser().read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
        records += spec.parse(body, str(path), now)
    return records


def _book(
    ctx: typer.Context,
    spec: Export,
    records: list[ImportedUsage],
    mode: ChargeMode,
    now: datetime,
    dry_run: bool,
) -> ImportSummary | None:
    with transaction(ctx) as conn:
        return import_usage(
            conn, records, mode=mode, pricer=pricer_for(conn), now=now, dry_run=dry_run
        )


def _result(
    spec: Export,
    records: list[ImportedUsage],
    origin: str,
    s: ImportSummary | None,
    dry_run: bool,
) -> dict[str, Any]:
    reported = Money.total(r.reported_cost for r in records if r.reported_cost is not None)
    result: dict[str, Any] = {
        "source": spec.command,
        "from": origin,
        "dry_run": dry_run,
        "records": len(records),
        "tokens": sum(r.usage.total_tokens for r in records),
        "reported_usd": reported.exact(),
    }
    if s is not None:
        result |= {
            "new": s.new,
            "duplicates": s.duplicates,
            "via_gateway": s.via_gateway,
            "unattributed": s.unattributed,
            "charged_usd": s.charged.exact(),
            "tracked_usd": s.tracked.exact(),
            "ledger_entries": s.ledger_entries,
            "unknown_identities": dict(s.unknown_identities.most_common()),
            "flagged_models": dict(s.flagged_models),
        }
    return result


def _print(result: dict[str, Any], s: ImportSummary | None) -> None:
    dry = result["dry_run"]
    out.print(
        f"{result['source']}: {result['records']:,} records from {escape(result['from'])}, "
        f"{result['tokens']:,} tokens, {Money.parse(result['reported_usd'])} reported by "
        "the provider"
    )
    if s is None:
        out.print("Dry run: cost-only records are not booked by this version; nothing was written.")
        return
    out.print(
        f"{'Would book' if dry else 'Booked'} {s.new:,} ({s.duplicates:,} already booked, "
        f"{s.via_gateway:,} seen by the gateway, {s.unattributed:,} unattributed)"
    )
    if s.charged:
        out.print(f"Charged {s.charged} in {s.ledger_entries:,} ledger entries.")
    if s.tracked:
        out.print(f"Tracked {s.tracked} (track mode: nothing debited).")
    if s.unknown_identities:
        err.print("Unmapped identities (`tokenwage identity add KIND VALUE EMAIL`):")
        for ident, n in s.unknown_identities.most_common(10):
            err.print(f"  {escape(ident)}: {n:,} records")
    for model, n in s.flagged_models.items():
        err.print(f"[yellow]{n:,} records of unknown model {escape(model)} at the fallback price")
    if dry:
        out.print("Dry run: nothing was written.")
